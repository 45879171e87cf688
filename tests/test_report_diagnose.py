"""The report's plain-words diagnosis, from run folders, with health.py's thresholds and words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixtures import image_scores, mixture_scores, train_config, train_rows, write_run

from gansweep.health import DESCRIBE
from gansweep.report.diagnose import PROBABILITY_LOSSES
from gansweep.report.load import load_runs
from gansweep.rundir import RunFolder, StopKind, StopReason


def diagnosis_of(run_dir: Path) -> str:
    return load_runs([run_dir]).runs.loc[0, "diagnosis"]


def test_healthy_runs(tmp_path: Path) -> None:
    assert diagnosis_of(write_run(tmp_path / "mnist")) == "healthy"
    assert diagnosis_of(write_run(tmp_path / "ring", train_config("mlp", "ring8"))) == "healthy"


def test_2d_samples_between_the_modes_are_spread_not_healthy(tmp_path: Path) -> None:
    # All 8 modes "covered" by a few points, 98% of the samples off every mode.
    run = write_run(tmp_path / "grid", train_config("mlp", "grid25"), mixture_scores(hq_fraction=0.02, modes_covered=25, modes_total=25))
    assert diagnosis_of(run) == "spread between modes: 2% high quality"


def test_2d_samples_together_off_every_mode_are_collapse_between_modes(tmp_path: Path) -> None:
    # A ring8 generator drawing one blob between two modes: no sample on any mode.
    run = write_run(tmp_path / "blob", train_config("mlp", "ring8"), mixture_scores(hq_fraction=0.0, modes_covered=0))
    assert diagnosis_of(run) == "collapse between modes (0/8 modes covered)"


def test_images_with_low_precision_are_not_yet_realistic(tmp_path: Path) -> None:
    # Noise that the digit classifier puts into one class: few modes, but not collapse.
    run = write_run(tmp_path / "noise", train_config(), image_scores(precision=0.012, modes_covered=1))
    assert diagnosis_of(run) == "not yet realistic (precision 0.012)"


@pytest.mark.parametrize(("hq", "healthy"), [(DESCRIBE.hq_min - 0.01, False), (DESCRIBE.hq_min, True)])
def test_never_healthy_below_the_high_quality_bar(tmp_path: Path, hq: float, healthy: bool) -> None:
    run = write_run(tmp_path / "r", train_config("mlp", "ring8"), mixture_scores(hq_fraction=hq))
    assert (diagnosis_of(run) == "healthy") is healthy


@pytest.mark.parametrize(("precision", "healthy"), [(DESCRIBE.precision_min - 0.001, False), (DESCRIBE.precision_min, True)])
def test_never_healthy_below_the_precision_bar(tmp_path: Path, precision: float, healthy: bool) -> None:
    run = write_run(tmp_path / "r", train_config(), image_scores(precision=precision))
    assert (diagnosis_of(run) == "healthy") is healthy


def test_realistic_samples_on_few_modes_are_mode_collapse(tmp_path: Path) -> None:
    run = write_run(tmp_path / "ring", train_config("mlp", "ring8"), mixture_scores(hq_fraction=0.95, modes_covered=2))
    assert diagnosis_of(run) == "mode collapse (modes covered 2/8, 95% high quality)"
    run = write_run(tmp_path / "mnist", train_config(), image_scores(precision=0.8, modes_covered=3))
    assert diagnosis_of(run) == "mode collapse (modes covered 3/10, precision 0.80)"


def test_stopped_as_collapsed_uses_the_collapse_words(tmp_path: Path) -> None:
    stop = StopReason(StopKind.mode_collapse, 600, "mode collapse (modes covered 1/8, 90% high quality)")
    collapsed = mixture_scores(hq_fraction=0.9, modes_covered=1)
    run = write_run(tmp_path / "c", train_config("mlp", "ring8"), collapsed, stop=stop)
    assert diagnosis_of(run) == "mode collapse (modes covered 1/8, 90% high quality)"
    # The sweep's bar is stricter than the report's: what it stopped is collapse even when
    # the last scores alone would not say so.
    run = write_run(tmp_path / "s", train_config("mlp", "ring8"), mixture_scores(), stop=stop)
    assert diagnosis_of(run) == "mode collapse at step 600"


def test_stopped_for_d_overpowering_says_so_from_the_structured_reason(tmp_path: Path) -> None:
    # Its logged values look ordinary: the stop reason alone tells.
    stop = StopReason(StopKind.d_overpowering, 600, "D(x)=0.999, D(G(z))=0.001, |grad G|=1e-07 for 20 log lines")
    run = write_run(tmp_path / "t", train_config("mlp", "ring8"), stop=stop)
    assert diagnosis_of(run) == "discriminator overpowering at step 600"


def test_diverged_step_comes_from_the_structured_reason(tmp_path: Path) -> None:
    run = write_run(tmp_path / "nan", train_config(), {}, stop=StopReason(StopKind.diverged, 950, "non-finite loss"))
    # The summary's steps counts on to the check that caught it; the reason names the step.
    folder = RunFolder(run)
    summary = folder.read_summary()
    summary.steps = 1000
    folder.write_summary(summary)
    assert diagnosis_of(run) == "diverged at step 950"


def test_discriminator_overpowering_from_the_last_train_lines(tmp_path: Path) -> None:
    run = write_run(tmp_path / "d", train=train_rows(1000, d_real=0.995, d_fake=0.004))
    assert diagnosis_of(run) == "discriminator overpowering"
    run = write_run(tmp_path / "g", train=train_rows(1000, grad_norm_g=DESCRIBE.g_grad_vanish / 10))
    assert diagnosis_of(run) == "discriminator overpowering"


def test_overpowering_is_not_judged_on_critic_scores(tmp_path: Path) -> None:
    # hinge critics output raw scores: D(x) = 3 is not a probability near 1.
    run = write_run(tmp_path / "h", train_config(loss="hinge"), train=train_rows(1000, d_real=3.0, d_fake=-3.0))
    assert diagnosis_of(run) == "healthy"


def test_probability_losses_match_the_loss_registry() -> None:
    from gansweep import losses  # imports torch, which the report itself does without

    assert PROBABILITY_LOSSES == {name for name, loss in losses.LOSSES.items() if loss.probabilities}


def test_failed_and_unscored_runs(tmp_path: Path) -> None:
    run = write_run(tmp_path / "oom", train_config(), {}, stop=StopReason(StopKind.failed, 12, "CUDA out of memory"))
    assert diagnosis_of(run) == "failed (CUDA out of memory)"
    assert diagnosis_of(write_run(tmp_path / "new", train_config(), {}, running=True, train=[])) == "no training logged"
    assert diagnosis_of(write_run(tmp_path / "early", train_config(), {}, running=True)) == "not scored yet"
    assert diagnosis_of(write_run(tmp_path / "no_eval", train_config(), {})) == "not scored"


def test_diagnosis_reads_the_summary_through_rundir(tmp_path: Path) -> None:
    # A stop reason written as prose (the old format) is not a gansweep summary any more.
    run = write_run(tmp_path / "old")
    summary = json.loads((run / "summary.json").read_text())
    summary["stop_reason"] = "discriminator overpowering at step 600"
    (run / "summary.json").write_text(json.dumps(summary))
    result = load_runs([tmp_path])
    assert result.runs.empty and "not a gansweep summary" in result.warnings[0]
