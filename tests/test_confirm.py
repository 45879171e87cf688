"""`gansweep confirm`: the top trials of a real tiny sweep retrained with new seeds."""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
from pathlib import Path

import pandas as pd
import pytest

from gansweep.cli import main
from gansweep.confirm import SEED_BASE
from gansweep.rundir import CLAIM, RunFolder, Status

TINY = ["model=mlp", "data=ring8", "data.std=0.2", "model.hidden=16", "model.z_dim=4", "steps=100", "log_every=10",
        "eval.mixture_samples=300", "threads=1"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("confirm")
    space = root / "space.yaml"
    space.write_text("params:\n  lr: choice(1e-3, 3e-3)\n")
    args = ["sweep", "--dir", str(root), "--name", "s", "--trials", "2", "--space", str(space), "--sampler", "grid",
            "--pruner", "none", "--no-early-stop", *TINY]
    assert main(args) == 0
    return root / "s"


@pytest.fixture(scope="module")
def confirmed(sweep_dir: Path) -> tuple[Path, str]:
    """The sweep with both trials confirmed on seeds 1000 and 1001, and what confirm printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # rich's console writes to whatever sys.stdout is
        assert main(["confirm", str(sweep_dir), "--top", "2", "--seeds", "2"]) == 0
    return sweep_dir, printed.getvalue()


@pytest.mark.slow
def test_two_trials_two_seeds_give_mean_std_and_worst_per_trial(confirmed: tuple[Path, str]) -> None:
    sweep_dir, out = confirmed
    assert "mean ± std" in out and "confirm.csv" in out

    frame = pd.read_csv(sweep_dir / "confirm.csv")
    assert sorted(frame["trial"]) == [0, 1] and (frame["seeds"] == 2).all()
    for _, row in frame.iterrows():
        runs = [RunFolder(sweep_dir / "confirm" / f"trial_{int(row['trial']):04d}_seed_{SEED_BASE + i}").read_summary() for i in (0, 1)]
        assert [r.seed for r in runs] == [SEED_BASE, SEED_BASE + 1]
        assert all(r.status is Status.completed and r.sweep.confirm_of == row["trial"] for r in runs)
        values = [r.scores["mixture_tv"] for r in runs]
        assert row["mixture_tv_mean"] == pytest.approx(statistics.fmean(values))
        assert row["mixture_tv_std"] == pytest.approx(statistics.stdev(values))
        assert row["mixture_tv_worst"] == pytest.approx(max(values))  # lower is better: the worst is the highest
        trial = RunFolder(sweep_dir / f"trial_{int(row['trial']):04d}").read_summary()
        assert row["sweep_mixture_tv"] == pytest.approx(trial.scores["mixture_tv"])
        assert runs[0].lr == trial.lr  # the trial's own config, only the seed changed


@pytest.mark.slow
def test_confirmed_best_yaml_trains_the_trial_best_over_the_new_seeds(confirmed: tuple[Path, str]) -> None:
    from gansweep.config import compose_config, from_yaml_file, to_train_config

    sweep_dir, _ = confirmed
    frame = pd.read_csv(sweep_dir / "confirm.csv")
    best = int(frame.sort_values("mixture_tv_mean")["trial"].iloc[0])
    text = (sweep_dir / "confirmed_best.yaml").read_text()
    assert text.startswith(f"# Best confirmed trial of sweep s: trial {best}, mixture_tv ")
    composed = to_train_config(compose_config([], "confirmed_best", str(sweep_dir)))
    trial_cfg = from_yaml_file(str(sweep_dir / f"trial_{best:04d}" / "config.yaml"))
    assert (composed.lr, composed.seed, composed.steps, composed.model) == (trial_cfg.lr, trial_cfg.seed, trial_cfg.steps, trial_cfg.model)


@pytest.mark.slow
def test_a_rerun_reuses_finished_confirmations(confirmed: tuple[Path, str]) -> None:
    sweep_dir, _ = confirmed
    folder = sweep_dir / "confirm" / "trial_0000_seed_1000"
    before = (folder / "summary.json").read_text()
    assert main(["confirm", str(sweep_dir), "--top", "1", "--seeds", "1"]) == 0
    assert (folder / "summary.json").read_text() == before


@pytest.mark.slow
def test_two_workers_train_the_seeds_in_two_processes(confirmed: tuple[Path, str]) -> None:
    sweep_dir, _ = confirmed
    assert main(["confirm", str(sweep_dir), "--top", "1", "--seeds", "6", "--workers", "2"]) == 0
    frame = pd.read_csv(sweep_dir / "confirm.csv")
    assert frame["seeds"].tolist() == [6] and frame["completed"].tolist() == [6]
    trial = int(frame["trial"][0])
    folders = [sweep_dir / "confirm" / f"trial_{trial:04d}_seed_{SEED_BASE + i}" for i in range(6)]
    assert [RunFolder(f).read_summary().seed for f in folders] == [SEED_BASE + i for i in range(6)]
    # Seeds 1000 and 1001 were trained by the fixture; four new trainings keep both
    # workers busy well past the other's start-up.
    pids = {json.loads((f / CLAIM).read_text())["pid"] for f in folders[2:]}
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_folder_without_completed_trials_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["confirm", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"error: {tmp_path}: no sweep study here (no study.journal); give the folder gansweep sweep "
                                "printed, and its --storage where it used a database"]


def test_confirm_reads_the_study_so_a_trial_on_another_machine_is_confirmed(sweep_dir: Path, tmp_path: Path, capsys) -> None:
    """Machines sharing a study each hold only their own trial folders: confirm ranks the
    study's trials and trains from the config the study keeps, not from the folders here."""
    import shutil

    import optuna

    from gansweep.sweep.outputs import best_trial
    from gansweep.sweep.study import make_storage

    copy = tmp_path / "s"
    shutil.copytree(sweep_dir, copy, ignore=shutil.ignore_patterns("confirm*"))
    study = optuna.load_study(study_name="s", storage=make_storage(None, copy))
    best = best_trial(study, ["mixture_tv"]).number
    shutil.rmtree(copy / f"trial_{best:04d}")  # on the other machine

    assert main(["confirm", str(copy), "--top", "1", "--seeds", "1"]) == 0
    assert f"confirming trials {best} by mixture_tv" in capsys.readouterr().out
    assert pd.read_csv(copy / "confirm.csv")["trial"].tolist() == [best]
    assert RunFolder(copy / "confirm" / f"trial_{best:04d}_seed_{SEED_BASE}").read_summary().sweep.confirm_of == best
