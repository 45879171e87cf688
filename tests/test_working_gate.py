"""The working-generator gate: noise, or samples on no mode, is never a sweep's best,
never in best.yaml, never confirmed, and ranks below working runs in the report."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from metrics_fixtures import cycling, mnist_halves
from report_fixtures import image_scores, mixture_scores, train_config, write_run
from test_report import report

from gansweep.cli import main
from gansweep.confirm import confirmed, summarize
from gansweep.health import not_working
from gansweep.metrics.evaluate import EvalSettings, Evaluator, RealData
from gansweep.rundir import RunSummary, Status
from gansweep.sweep.outputs import best_trial
from gansweep.sweep.trial import NOT_WORKING

CPU = torch.device("cpu")
N = 500
RING8 = torch.tensor([[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)])
# An MLP-GAN on ring8 two steps in: every sample in a blob at the centre, on no mode.
BLOB = ["model=mlp", "data=ring8", "model.hidden=16", "model.z_dim=4", "steps=2", "eval.mixture_samples=300", "threads=1"]


def test_noise_and_a_blob_between_modes_are_not_working_generators_and_a_real_collapse_is(tmp_path: Path) -> None:
    (real, real_labels), (other, labels) = mnist_halves()
    digits = Evaluator(RealData("image", real, "mnist5k-half-a", labels=real_labels),
                       EvalSettings(n_samples=N, cache_dir=tmp_path), CPU)
    noise = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert not_working(digits(cycling(noise))) == "not yet realistic (precision 0.000)"
    assert not_working(digits(cycling(other[labels == 3]))) is None  # one real digit: collapsed, but a generator

    ring = Evaluator(RealData("mixture", RING8, "ring8", centers=RING8, std=0.01), EvalSettings(n_samples=N), CPU)
    blob = 0.05 * torch.randn(N, 2, generator=torch.Generator().manual_seed(0))
    assert not_working(ring(cycling(blob))) == "collapse between modes (0/8 modes covered)"
    assert not_working(ring(cycling(RING8[:1].repeat(N, 1)))) is None


def test_best_trial_skips_a_better_value_drawn_by_noise() -> None:
    study = optuna.create_study(direction="minimize")
    for fid, verdict in ((339.6, "not yet realistic (precision 0.000)"), (415.0, None), (484.0, None)):
        trial = study.ask()
        trial.set_user_attr(NOT_WORKING, verdict)
        study.tell(trial, fid)
    assert best_trial(study, ["fid"]).number == 1

    only_noise = optuna.create_study(direction="minimize")
    trial = only_noise.ask()
    trial.set_user_attr(NOT_WORKING, "not yet realistic (precision 0.000)")
    only_noise.tell(trial, 339.6)
    assert best_trial(only_noise, ["fid"]) is None


@pytest.mark.slow
def test_a_sweep_that_finds_no_working_generator_says_so_writes_no_best_yaml_and_confirms_nothing(tmp_path: Path, capsys) -> None:
    sweep_dir = tmp_path / "blob"
    sweep_dir.mkdir()
    (sweep_dir / "best.yaml").write_text("# left by an earlier run\n")
    assert main(["sweep", "--dir", str(tmp_path), "--name", "blob", "--trials", "2", "--pruner", "none", *BLOB]) == 0
    out = capsys.readouterr().out
    assert not (sweep_dir / "best.yaml").exists()
    lines = [line for line in out.splitlines() if line.startswith("best:")]
    assert lines == ["best: none; no working generator in 2 completed trials (trial 0: collapse between modes (0/8 modes "
                     "covered)); give them a longer budget (steps=, images= or epochs=) and rerun"]
    assert "confirm it" not in out and "best.yaml" not in next(line for line in out.splitlines() if line.startswith("results:"))
    assert list(pd.read_csv(sweep_dir / "trials.csv")["not_working"]) == ["collapse between modes (0/8 modes covered)"] * 2

    assert main(["confirm", str(sweep_dir), "--top", "1", "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "none of the 2 completed trials draws a working generator" in err
    assert "\n" not in err and not (sweep_dir / "confirm").exists()


def test_report_ranks_runs_without_a_working_generator_below_working_ones(tmp_path: Path) -> None:
    write_run(tmp_path / "noise", scores=image_scores(fid=339.6, precision=0.0))
    write_run(tmp_path / "digits", scores=image_scores(fid=415.0, precision=0.3))
    ring = train_config("mlp", "ring8")
    write_run(tmp_path / "ring_blob", ring, mixture_scores(hq_fraction=0.0, modes_covered=0, mixture_tv=0.9889))
    write_run(tmp_path / "ring_ok", ring, mixture_scores(hq_fraction=0.9, mixture_tv=0.99))

    for key, order in (("fid", ["digits", "noise", "ring_blob", "ring_ok"]), ("mixture_tv", ["ring_ok", "ring_blob", "digits", "noise"])):
        assert report(str(tmp_path), "--sort", key, "--csv", str(tmp_path / "runs.csv"))[0] == 0
        assert list(pd.read_csv(tmp_path / "runs.csv")["run"]) == order


def test_a_confirmation_whose_new_seeds_draw_noise_is_not_the_confirmed_best() -> None:
    def retrained(trial: int, fid: float, precision: float) -> RunSummary:
        return RunSummary(status=Status.completed, run_dir=f"t{trial}", model="dcgan", data="mnist", loss="bce", lr=2e-4,
                          lr_g=2e-4, lr_d=2e-4, batch_size=64, beta1=0.5, beta2=0.999, seed=1000, total_steps=100,
                          scores=image_scores(fid=fid, precision=precision))
    # trial 1's mean FID is lower only because one of its new seeds drew noise (FID 339.6 beats 415)
    runs = {0: [retrained(0, 415.0, 0.3), retrained(0, 420.0, 0.3)], 1: [retrained(1, 339.6, 0.0), retrained(1, 400.0, 0.3)]}
    frame = summarize(runs, "fid", {0: 400.0, 1: 390.0})
    assert list(frame["trial"]) == [0, 1] and list(frame["not_working"]) == [0, 1]
    assert confirmed(frame.iloc[0], "fid")

    only_noise = summarize({1: runs[1]}, "fid", {1: 390.0})
    assert not confirmed(only_noise.iloc[0], "fid")
