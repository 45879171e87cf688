"""gansweep report on real run folders: short trainings, a diverged run and a tiny sweep."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import hyperparameters, train_config

from gansweep.cli import main
from gansweep.rundir import RunFolder
from gansweep.member import flat_hparams

MLP = ["model=mlp", "data=ring8", "data.std=0.1", "model.hidden=32", "steps=40", "log_every=10", "eval.mixture_samples=300"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report") / "outputs"
    for lr in ("1e-3", "2e-4"):
        assert main(["train", f"hydra.run.dir={root}/runs/lr{lr}", *MLP, f"lr={lr}"]) == 0
    diverged = ["model=mlp", "data=ring8", "loss=lsgan", "lr=1e6", "steps=20", "log_every=1", "model.hidden=8"]
    assert main(["train", f"hydra.run.dir={root}/runs/diverged", *diverged]) == 3
    sweep = ["sweep", "--trials", "3", "--name", "tiny", "--dir", str(root / "sweeps"), "--no-early-stop", *MLP]
    assert main(sweep) == 0
    return root


def report_csv(root: Path, tmp_path: Path, *args: str) -> pd.DataFrame:
    csv = tmp_path / "runs.csv"
    assert main(["report", str(root), "--csv", str(csv), *args]) == 0
    return pd.read_csv(csv)


def test_fixture_summaries_carry_the_trainers_hyperparameters() -> None:
    cfg = train_config("mlp", "grid25", lr=1e-3, lr_d=4e-3, batch_size=32, seed=3)
    assert hyperparameters(cfg) == flat_hparams(cfg)


@pytest.mark.slow
def test_every_real_run_is_a_row_sorted_by_the_default_2d_objective(outputs: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    frame = report_csv(outputs, tmp_path)
    out = capsys.readouterr().out
    assert len(frame) == 6
    assert "6 run folders found, 0 skipped; showing 6, sorted by mixture_tv (lower is better)" in out
    assert set(frame["run"]) == {
        "runs/lr1e-3", "runs/lr2e-4", "runs/diverged", "sweeps/tiny/trial_0000", "sweeps/tiny/trial_0001", "sweeps/tiny/trial_0002",
    }
    scored = frame.dropna(subset=["mixture_tv"])
    assert list(scored["mixture_tv"]) == sorted(scored["mixture_tv"])  # lower is better: ascending
    assert frame["run"].iloc[-1] == "runs/diverged"  # unscored: last
    for key in ("model", "data", "loss", "lr", "batch_size", "beta1", "beta2", "seed", "steps", "images_seen", "wall_time_s",
                "images_per_s", "modes_covered", "modes_covered_min", "modes_total", "hq_fraction", "mixture_tv", "diagnosis",
                "sweep", "trial"):
        assert key in frame.columns, key
    # 2D runs on one data set: no image-only keys, nothing flagged as scored differently.
    assert "data.image_size" not in frame and (frame["flags"].isna() | (frame["flags"] == "")).all()


def test_real_runs_carry_their_sweep_trial_and_diagnosis(outputs: Path, tmp_path: Path) -> None:
    frame = report_csv(outputs, tmp_path).set_index("run")
    reason = RunFolder(outputs / "runs" / "diverged").read_summary().stop_reason
    assert frame.loc["runs/diverged", "status"] == "diverged"
    assert frame.loc["runs/diverged", "diagnosis"] == f"diverged at step {reason.step}"
    trials = frame[frame["sweep"] == "tiny"]
    assert sorted(trials["trial"].astype(int)) == [0, 1, 2]
    summary = RunFolder(outputs / "sweeps" / "tiny" / "trial_0000").read_summary()
    assert frame.loc["sweeps/tiny/trial_0000", "lr"] == summary.lr
    # 40 steps on ring8 leave the samples far from the modes: the report says so, not "healthy".
    for run in ("runs/lr2e-4", "sweeps/tiny/trial_0000"):
        hq, covered = frame.loc[run, "hq_fraction"], frame.loc[run, "modes_covered"]
        low = "collapse between modes (0/8 modes covered)" if covered == 0 else f"spread between modes: {hq:.0%} high quality"
        assert hq >= 0.5 or frame.loc[run, "diagnosis"] == low


def test_filter_and_group_by_on_real_runs(outputs: Path, tmp_path: Path) -> None:
    frame = report_csv(outputs, tmp_path, "--filter", "status == 'completed' and lr >= 1e-3")
    assert set(frame["status"]) == {"completed"} and (frame["lr"] >= 1e-3).all()
    groups = report_csv(outputs, tmp_path, "--group-by", "status")
    counts = dict(zip(groups["status"], groups["count"]))
    assert counts["diverged"] == 1 and sum(counts.values()) == 6


@pytest.mark.slow
def test_html_page_of_real_runs_embeds_samples_and_sweep_plots(outputs: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert main(["report", str(outputs), "--html", str(page)]) == 0
    html = page.read_text()
    runs_table = re.search(r'<table class="runs">(.*?)</table>', html, re.S).group(1)
    assert runs_table.count("<tr>") == 1 + 6
    assert ">sweeps/tiny/trial_0002<" in runs_table and ">runs/lr1e-3<" in runs_table
    for plot in ("sweep_tiny_history", "sweep_tiny_budget", "sweep_tiny_slices", "curves_mixture_tv"):
        assert f'id="plot-{plot}"' in html
    assert html.count('class="card"') >= 5  # scatter plots of the top runs


def test_sweep_folder_has_the_reports_plots(outputs: Path) -> None:
    sweep_dir = outputs / "sweeps" / "tiny"
    for name in ("optimization_history.png", "budget_curve.png", "slices.png"):
        assert (sweep_dir / name).stat().st_size > 5_000, name
