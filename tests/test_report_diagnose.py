"""The report's plain-words diagnosis, from run folders and from its thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import summary_for, train_lines, write_run

from gansweep.report.diagnose import D_FAKE_LOW, D_REAL_HIGH, G_GRAD_VANISH, diagnose
from gansweep.report.load import load_runs


def diagnosis_of(run_dir: Path) -> str:
    return load_runs([run_dir]).runs.loc[0, "diagnosis"]


def test_healthy_run(tmp_path: Path) -> None:
    assert diagnosis_of(write_run(tmp_path / "ok")) == "healthy"


def test_diverged_run_names_the_first_bad_step(tmp_path: Path) -> None:
    # The trainer writes the non-finite losses as null (docs/run-folder.md, rundir._json_safe).
    run = write_run(tmp_path / "nan", summary_for(status="diverged", steps=1000, fid=None, loss_d=None, loss_g=None),
                    metrics=train_lines(1000, nan_from=950))
    assert diagnosis_of(run) == "diverged at step 950"


def test_diverged_status_without_logged_lines_uses_summary_steps(tmp_path: Path) -> None:
    run = write_run(tmp_path / "nan", summary_for(status="diverged", steps=420, fid=None), metrics=[])
    assert diagnosis_of(run) == "diverged at step 420"


def test_mode_collapse_from_modes_covered(tmp_path: Path) -> None:
    run = write_run(tmp_path / "ring", summary_for(data="ring8", fid=None, modes_covered=2, modes_total=8, mode_kl=1.4))
    assert diagnosis_of(run) == "mode collapse (modes covered 2/8)"


def test_collapsed_status_is_mode_collapse(tmp_path: Path) -> None:
    run = write_run(tmp_path / "c", summary_for(status="collapsed", modes_covered=1, modes_total=25))
    assert diagnosis_of(run) == "mode collapse (modes covered 1/25)"


def test_discriminator_overpowering_from_last_train_lines(tmp_path: Path) -> None:
    run = write_run(tmp_path / "d", metrics=train_lines(1000, d_real=0.995, d_fake=0.004, grad_norm_g=1e-4))
    assert diagnosis_of(run) == "discriminator overpowering"


def test_overpowering_needs_vanishing_generator_gradients(tmp_path: Path) -> None:
    run = write_run(tmp_path / "d", metrics=train_lines(1000, d_real=0.995, d_fake=0.004, grad_norm_g=0.5))
    assert diagnosis_of(run) == "healthy"


def test_overpowering_is_not_judged_on_critic_scores(tmp_path: Path) -> None:
    # hinge critics output raw scores: D(x) = 3 is not a probability near 1.
    run = write_run(tmp_path / "h", summary_for(loss="hinge"),
                    metrics=train_lines(1000, d_real=3.0, d_fake=-3.0, grad_norm_g=1e-4))
    assert diagnosis_of(run) == "healthy"


def test_sweep_stopper_reason_for_overpowering(tmp_path: Path) -> None:
    reason = "discriminator overpowering at step 600: D(x)=0.999, D(G(z))=0.001, |grad G|=1e-07"
    run = write_run(tmp_path / "t", summary_for(status="collapsed", stop_reason=reason))
    assert diagnosis_of(run) == "discriminator overpowering"


@pytest.mark.parametrize(("d_real", "d_fake", "grad_g", "expected"), [
    (D_REAL_HIGH + 0.01, D_FAKE_LOW - 0.01, G_GRAD_VANISH / 2, "discriminator overpowering"),
    (D_REAL_HIGH - 0.01, D_FAKE_LOW - 0.01, G_GRAD_VANISH / 2, "healthy"),
    (D_REAL_HIGH + 0.01, D_FAKE_LOW + 0.01, G_GRAD_VANISH / 2, "healthy"),
    (D_REAL_HIGH + 0.01, D_FAKE_LOW - 0.01, G_GRAD_VANISH * 2, "healthy"),
])
def test_overpowering_thresholds_from_summary_values(d_real: float, d_fake: float, grad_g: float, expected: str) -> None:
    summary = summary_for(d_real=d_real, d_fake=d_fake, grad_norm_g=grad_g)
    assert diagnose(summary, []) == expected


def test_failed_and_untrained_runs() -> None:
    assert diagnose(summary_for(status="failed", stop_reason="CUDA out of memory"), []) == "failed (CUDA out of memory)"
    assert diagnose({"status": "running", "steps": 0}, []) == "no training logged"
