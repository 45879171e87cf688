"""`gansweep sweep --launcher`: worker jobs through submitit. The local executor runs them
as real processes on this machine, through the same code path as SLURM."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from train_helpers import gansweep_process

from gansweep.cli import main
from gansweep.sweep import launcher

TINY = ["model=mlp", "data=ring8", "data.std=0.1", "steps=40", "model.hidden=32", "eval.mixture_samples=300", "log_every=10"]


@pytest.mark.slow
def test_two_local_jobs_finish_every_trial_once_and_each_keeps_its_logs(tmp_path: Path) -> None:
    done = gansweep_process("sweep", "--dir", str(tmp_path), "--launcher", "local", "--workers", "2", "--trials", "4",
                            "--pruner", "none", "--no-early-stop", "--name", "jobs", *TINY, timeout=300)
    assert done.returncode == 0, done.stderr
    sweep_dir = tmp_path / "jobs"
    frame = pd.read_csv(sweep_dir / "trials.csv")
    assert sorted(frame["trial"]) == [0, 1, 2, 3] and (frame["state"] == "complete").all()
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0000", "trial_0001", "trial_0002", "trial_0003"]
    # One log pair per job, named by its job id, as submitit writes them on SLURM.
    job_ids = sorted(p.name.split("_")[0] for p in (sweep_dir / "jobs").glob("*_0_log.out"))
    assert len(job_ids) == 2 and len(set(job_ids)) == 2
    for j in job_ids:
        logs = "".join((sweep_dir / "jobs" / f"{j}_0_log.{kind}").read_text() for kind in ("out", "err"))
        assert f"job_id={j}" in logs  # submitit logs the job environment first thing
    assert f"submitted 2 local job(s): {', '.join(job_ids)}" in done.stdout
    assert "sweep done: 4 finished trials (4 completed)" in done.stdout


def test_without_submitit_the_launcher_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # its import now fails
    code = main(["sweep", "--dir", str(tmp_path), "--launcher", "slurm", "--trials", "1", "--name", "none", *TINY])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --launcher slurm: submitit is not installed; pip install 'gansweep[slurm]'"]


def test_slurm_where_there_is_none_is_one_line_and_creates_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)  # no srun on this machine
    assert main(["sweep", "--dir", str(tmp_path), "--launcher", "slurm", "--trials", "1", "--name", "x", *TINY]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --launcher slurm: no SLURM here (srun is not on PATH); run the sweep on the cluster's login node, "
        "or try it on this machine with --launcher local"]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flag, value, message", [
    ("--time-min", "0", "--time-min 0: must be > 0"),
    ("--gpus-per-job", "-1", "--gpus-per-job -1: must be >= 0"),
    ("--mem-gb", "0", "--mem-gb 0.0: must be > 0"),
])
def test_bad_job_resources_are_one_line_before_anything_starts(tmp_path: Path, capsys, flag, value, message) -> None:
    assert main(["sweep", "--dir", str(tmp_path), "--launcher", "local", flag, value, "--trials", "1", *TINY]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_the_storage_url_reaches_the_jobs_by_environment_and_is_never_written(tmp_path: Path) -> None:
    """submitit pickles each job's arguments into the jobs folder, which sits on a shared
    file system: the URL (with its password, for a database) must not be among them."""
    (tmp_path / "db").mkdir()
    url = f"sqlite:///{tmp_path / 'db' / 'study.sqlite3'}"
    done = gansweep_process("sweep", "--dir", str(tmp_path / "sweeps"), "--launcher", "local", "--trials", "1",
                            "--name", "secret", "--storage", url, *TINY, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "sweep done: 1 finished trials (1 completed)" in done.stdout
    written = [p for p in (tmp_path / "sweeps").rglob("*") if p.is_file()]
    assert any(p.name.endswith("_submitted.pkl") for p in written)
    assert [p for p in written if url.encode() in p.read_bytes()] == []
