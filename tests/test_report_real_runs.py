"""gansweep report on real run folders: short trainings, a diverged run and a tiny sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gansweep.cli import main

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


def test_every_real_run_is_a_row_sorted_by_mode_kl(outputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = report_csv(outputs, tmp_path)
    assert len(frame) == 6
    assert "6 run folders found, 0 skipped" in capsys.readouterr().out
    assert set(frame["run"]) == {
        "runs/lr1e-3", "runs/lr2e-4", "runs/diverged", "sweeps/tiny/trial_0000", "sweeps/tiny/trial_0001", "sweeps/tiny/trial_0002",
    }
    scored = frame.dropna(subset=["mode_kl"])
    assert list(scored["mode_kl"]) == sorted(scored["mode_kl"])  # lower is better: ascending
    assert frame["mode_kl"].isna().tolist()[-1]  # the diverged run, unscored, comes last
    for key in ("model", "data", "loss", "lr", "batch_size", "beta1", "beta2", "seed", "steps", "images_seen", "wall_time_s",
                "images_per_s", "modes_covered", "modes_total", "hq_fraction", "diagnosis", "sweep", "trial"):
        assert key in frame.columns, key


def test_real_runs_carry_their_sweep_trial_and_diagnosis(outputs: Path, tmp_path: Path) -> None:
    frame = report_csv(outputs, tmp_path).set_index("run")
    assert frame.loc["runs/diverged", "status"] == "diverged"
    assert frame.loc["runs/diverged", "diagnosis"].startswith("diverged at step ")
    trials = frame[frame["sweep"] == "tiny"]
    assert sorted(trials["trial"].astype(int)) == [0, 1, 2]
    summary = json.loads((outputs / "sweeps" / "tiny" / "trial_0000" / "summary.json").read_text())
    assert frame.loc["sweeps/tiny/trial_0000", "lr"] == summary["lr"]


def test_filter_and_group_by_on_real_runs(outputs: Path, tmp_path: Path) -> None:
    frame = report_csv(outputs, tmp_path, "--filter", "status == 'completed' and lr >= 1e-3")
    assert set(frame["status"]) == {"completed"} and (frame["lr"] >= 1e-3).all()
    groups = report_csv(outputs, tmp_path, "--group-by", "status")
    counts = dict(zip(groups["status"], groups["count"]))
    assert counts["diverged"] == 1 and sum(counts.values()) == 6


def test_html_page_of_real_runs_embeds_samples_and_sweep_plots(outputs: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert main(["report", str(outputs), "--html", str(page)]) == 0
    html = page.read_text()
    assert "<table" in html and "runs/lr1e-3" in html
    assert html.count("data:image/png;base64,") >= 6  # scatter plots of the top runs and the plots
    assert "tiny" in html
