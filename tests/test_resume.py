"""Stopping a run (kill -9, Ctrl-C) and `gansweep train resume=DIR`: one continuous run."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
from train_helpers import (
    TINY_MLP,
    assert_complete_run,
    gansweep_process,
    losses,
    subprocess_env,
    summary,
    train_cli,
    train_rows,
)

from gansweep.config import to_train_config
from gansweep.rundir import RunFolder, Status
from gansweep.member import TrainHooks
from gansweep.train import train
from gansweep.config import compose_config

BUDGET = 200
# Every step logged, so a line is one step's values and series compare line by line.
RUN = [*TINY_MLP, f"steps={BUDGET}", "batch_size=16", "log_every=1", "checkpoint_every=50", "sample_every=100", "seed=7"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The same run, never stopped."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert train_cli(*RUN, f"hydra.run.dir={run}") == 0
    return run


def start_run(run: Path, logs: Path) -> subprocess.Popen:
    with open(logs / "stdout", "w") as out, open(logs / "stderr", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "gansweep", "train", *RUN, f"hydra.run.dir={run}"],
            stdout=out, stderr=err, env=subprocess_env(), cwd=logs,
        )


def wait_for(proc: subprocess.Popen, ready: Callable[[], bool], logs: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before it could be stopped:\n{(logs / 'stderr').read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the run never reached its first checkpoint")
        time.sleep(0.005)


def n_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def assert_one_continuous_series(run: Path) -> None:
    steps = [r["step"] for r in train_rows(run)]
    assert steps == list(range(1, BUDGET + 1))


@pytest.mark.slow
def test_resume_after_kill_9_finishes_the_budget_as_one_series(tmp_path, uninterrupted):
    run = tmp_path / "run"
    proc = start_run(run, tmp_path)
    ckpt = run / "checkpoints" / "last.pt"
    # Kill a few steps after the first checkpoint, so lines past it must be dropped and redone.
    wait_for(proc, lambda: ckpt.exists() and n_lines(run / "metrics.jsonl") >= 60, tmp_path)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL

    before = summary(run)
    assert before["status"] == "running"
    saved_at = RunFolder(run).load_checkpoint()["step"]
    assert saved_at in (50, 100) and before["steps"] == saved_at
    assert max(r["step"] for r in RunFolder(run).read_metrics()) >= saved_at

    assert train_cli(f"resume={run}") == 0

    assert_complete_run(run, steps=BUDGET, model="mlp", data="ring8", loss="bce")
    assert_one_continuous_series(run)
    after = summary(run)
    assert after["started_at"] == before["started_at"] and after["wall_time_s"] > before["wall_time_s"]
    # The checkpoint holds every RNG state: the resumed run is the uninterrupted run, bit for bit.
    assert losses(run) == losses(uninterrupted)


@pytest.mark.slow
def test_ctrl_c_leaves_an_interrupted_run_that_resume_continues(tmp_path, uninterrupted):
    run = tmp_path / "run"
    proc = start_run(run, tmp_path)
    wait_for(proc, (run / "checkpoints" / "last.pt").exists, tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130

    err = (tmp_path / "stderr").read_text()
    assert "Traceback" not in err
    s = summary(run)
    step = s["steps"]
    assert s["status"] == "interrupted"
    assert s["stop_reason"] == {"kind": "interrupted", "step": step, "detail": f"continue with: gansweep train resume={run}"}
    assert err.strip() == f"interrupted at step {step}: continue with: gansweep train resume={run}"
    assert 50 <= step < BUDGET
    ckpt = RunFolder(run).load_checkpoint()  # saved on the way out, at the step it stopped
    assert ckpt["step"] == step and ckpt["images_seen"] == s["images_seen"]
    assert [r["step"] for r in train_rows(run)] == list(range(1, step + 1))

    assert train_cli(f"resume={run}") == 0

    assert_complete_run(run, steps=BUDGET, model="mlp", data="ring8", loss="bce")
    assert_one_continuous_series(run)
    assert losses(run) == losses(uninterrupted)


def test_resume_between_log_lines_gives_the_same_lines_as_an_uninterrupted_run(tmp_path):
    cfg = to_train_config(compose_config([*TINY_MLP, "steps=20", "batch_size=16", "log_every=5", "checkpoint_every=3"]))
    assert train(cfg, tmp_path / "whole").status == "completed"

    # A kill -9 just after the line of step 10, while the last checkpoint is the one of step 9.
    def snapshot(row: dict) -> None:
        if row["step"] == 10:
            shutil.copytree(tmp_path / "killed", tmp_path / "copy")

    train(cfg, tmp_path / "killed", hooks=TrainHooks(on_log=snapshot))
    assert RunFolder(tmp_path / "copy").load_checkpoint()["step"] == 9
    assert train_cli(f"resume={tmp_path / 'copy'}") == 0
    assert losses(tmp_path / "copy") == losses(tmp_path / "whole")


# Resume refusals ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    assert train_cli(*TINY_MLP, "steps=3", "batch_size=8", f"hydra.run.dir={run}") == 0
    return run


def test_resume_of_a_completed_run_changes_nothing(finished, capsys):
    before = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    assert train_cli(f"resume={finished}") == 0
    assert "run already completed (3 steps); nothing to do" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()} == before


def _copy_as_stopped(finished: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    folder = RunFolder(run)
    summary = folder.read_summary()
    summary.status = Status.running
    folder.write_summary(summary)
    return run


class Payload:
    """Any class outside torch's allowlist: unpickling it could run its code."""


@pytest.mark.parametrize(
    "damage,message",
    [
        ("other overrides", r"^resume=.*: give no other overrides \(lr=1e-3\); the run keeps its own config$"),
        ("not a run folder", r"^resume=.*: not a run folder \(no config\.yaml\)"),
        ("no checkpoint", r"checkpoints/last\.pt: no checkpoint; the run stopped before its first one"),
        ("damaged checkpoint", r"checkpoints/last\.pt: damaged checkpoint \(\w+\); start the run anew$"),
        ("damaged config", r"config\.yaml: model\.name='gan' is not dcgan or mlp$"),
        ("another run's config", r"checkpoints/last\.pt: written by another config than this folder's config\.yaml \(the folder mixes two runs\)"),
        ("cut config", r"config\.yaml: cut short or edited since the run wrote it \(the checkpoint is for the config as written\)"),
        ("pickled object", r"checkpoints/last\.pt: refused: it holds code \(more than tensors and plain values\)"),
        ("older checkpoint", r"checkpoints/last\.pt: written by an older gansweep, whose training it cannot continue"),
    ],
)
def test_resume_refuses_what_it_cannot_continue_with_exit_2(finished, tmp_path, capsys, damage, message):
    run = _copy_as_stopped(finished, tmp_path)
    ckpt = run / "checkpoints" / "last.pt"
    args = [f"resume={run}"]
    if damage == "other overrides":
        args.append("lr=1e-3")
    elif damage == "not a run folder":
        (run / "config.yaml").unlink()
    elif damage == "no checkpoint":
        ckpt.unlink()
    elif damage == "damaged checkpoint":  # and no older one to fall back to
        ckpt.write_bytes(ckpt.read_bytes()[:100])
        (run / "checkpoints" / "previous.pt").unlink()
    elif damage == "damaged config":
        (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("name: mlp", "name: gan"))
    elif damage == "another run's config":  # a new run here was killed before its first checkpoint
        (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("hidden: 16", "hidden: 32"))
    elif damage == "cut config":  # a full disk or a crash cut it at a line: what is left still parses
        text = (run / "config.yaml").read_text()
        (run / "config.yaml").write_text("".join(text.splitlines(keepends=True)[: len(text.splitlines()) * 2 // 3]))
    elif damage == "older checkpoint":
        state = torch.load(ckpt, weights_only=True)
        state.pop("config_sha256")
        torch.save(state, ckpt)
    elif damage == "pickled object":
        state = torch.load(ckpt, weights_only=True)
        torch.save({**state, "payload": Payload()}, ckpt)
    before = summary(run)

    assert train_cli(*args) == 2

    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    import re

    assert re.search(message, lines[0][len("error: "):]), lines[0]
    assert summary(run) == before


def test_a_resumed_run_can_be_resumed_again(tmp_path):
    """Two stops in one run: the series stays continuous and the checkpoint keeps its place in the data."""
    cfg = to_train_config(compose_config([*TINY_MLP, "steps=12", "batch_size=8", "log_every=1", "checkpoint_every=4"]))
    train(cfg, tmp_path / "whole")
    stops = iter((5, 9))
    stop_at = [next(stops)]

    def stop(row: dict) -> None:
        if row["step"] == stop_at[0]:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    assert train(cfg, run, hooks=TrainHooks(on_log=stop)).status == "interrupted"
    assert summary(run)["steps"] == 5
    stop_at[0] = next(stops)
    assert train(cfg, run, hooks=TrainHooks(on_log=stop), resume=True).status == "interrupted"
    assert summary(run)["steps"] == 9
    assert train(cfg, run, resume=True).status == "completed"
    assert [r["step"] for r in train_rows(run)] == list(range(1, 13))
    assert losses(run) == losses(tmp_path / "whole")
    resumed, whole = (RunFolder(r).load_checkpoint()["batches"] for r in (run, tmp_path / "whole"))
    assert torch.equal(resumed["perm"], whole["perm"]) and (resumed["pos"], resumed["epoch"]) == (whole["pos"], whole["epoch"])


@pytest.mark.slow
def test_after_a_kill_9_only_one_process_writes_the_folder_again(tmp_path):
    """The claim names a dead process after kill -9: the first resume takes it over, and a
    second resume or an overwrite=true run started beside it is refused, leaving one series."""
    run, long_run = tmp_path / "run", [*TINY_MLP, "steps=1000000", "batch_size=16", "log_every=1", "checkpoint_every=50"]
    logs = {name: tmp_path / name for name in ("first", "resumed")}
    for folder in logs.values():
        folder.mkdir()

    def gansweep(logs: Path, *args: str) -> subprocess.Popen:
        with open(logs / "stdout", "w") as out, open(logs / "stderr", "w") as err:
            return subprocess.Popen([sys.executable, "-m", "gansweep", "train", *args], stdout=out, stderr=err,
                                    env=subprocess_env(), cwd=logs)

    first = gansweep(logs["first"], *long_run, f"hydra.run.dir={run}")
    wait_for(first, (run / "checkpoints" / "last.pt").exists, logs["first"])
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    config = (run / "config.yaml").read_bytes()

    resumed = gansweep(logs["resumed"], f"resume={run}")
    try:
        wait_for(resumed, lambda: f'"pid": {resumed.pid}' in (run / ".gansweep-run").read_text(), logs["resumed"])
        second = gansweep_process("train", f"resume={run}")
        overwrite = gansweep_process("train", *TINY_MLP, "steps=20", "overwrite=true", f"hydra.run.dir={run}")
    finally:
        resumed.send_signal(signal.SIGINT)
        assert resumed.wait(timeout=60) == 130

    assert second.returncode == 2 and overwrite.returncode == 2
    assert f"the run is still training ({socket.gethostname()} pid {resumed.pid})" in second.stderr
    assert f"its run is still training ({socket.gethostname()} pid {resumed.pid})" in overwrite.stderr
    assert (run / "config.yaml").read_bytes() == config
    steps = [r["step"] for r in train_rows(run)]
    assert steps == list(range(1, len(steps) + 1)) and summary(run)["steps"] == len(steps)


def test_a_damaged_last_checkpoint_falls_back_to_the_one_before(tmp_path):
    """last.pt replaced only once the new one is complete, the one before kept as previous.pt:
    a damaged last.pt costs the steps since the previous checkpoint, not the run."""
    cfg = to_train_config(compose_config([*TINY_MLP, "steps=12", "batch_size=8", "log_every=1", "checkpoint_every=4"]))
    train(cfg, tmp_path / "whole")

    def stop(row: dict) -> None:
        if row["step"] == 9:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    train(cfg, run, hooks=TrainHooks(on_log=stop))
    folder = RunFolder(run)
    assert (folder.load_checkpoint()["step"], torch.load(folder.previous_checkpoint, weights_only=True)["step"]) == (9, 8)
    folder.last_checkpoint.write_bytes(folder.last_checkpoint.read_bytes()[:100])

    assert train_cli(f"resume={run}") == 0
    assert [r["step"] for r in train_rows(run)] == list(range(1, 13))
    assert losses(run) == losses(tmp_path / "whole")


def test_a_checkpoint_refused_for_code_says_so_whatever_the_case_of_torchs_words(tmp_path, monkeypatch):
    """torch 2.14 words the refusal "unsupported GLOBAL"; it is not damage."""
    import pickle

    from gansweep.errors import CheckpointError

    ckpt = tmp_path / "checkpoints" / "last.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"x")

    def refuse(*args, **kwargs):
        raise pickle.UnpicklingError("Weights only load failed. unsupported GLOBAL test_resume.Payload was found")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError, match=r"last\.pt: refused: it holds code"):
        RunFolder(tmp_path).load_checkpoint()


def test_a_damaged_summary_says_how_to_resume_and_deleting_it_does(finished, tmp_path, capsys):
    """config.yaml and the checkpoint are the run's state: the summary is rewritten from them."""
    run = _copy_as_stopped(finished, tmp_path)
    (run / "summary.json").write_text('{"status": "runn')
    capsys.readouterr()

    assert train_cli(f"resume={run}") == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {run / 'summary.json'}: damaged; config.yaml and the checkpoint are what a resume needs: "
        f"delete summary.json and run gansweep train resume={run} again")

    (run / "summary.json").unlink()
    assert train_cli(f"resume={run}") == 0
    assert summary(run)["status"] == "completed" and summary(run)["steps"] == 3


def test_a_resume_at_another_thread_count_says_its_losses_will_differ_in_the_last_bits(tmp_path, capsys):
    """threads=0 is a fair share of the cores at start; other trainings may change it between sessions."""
    cfg = to_train_config(compose_config([*TINY_MLP, "steps=12", "batch_size=8", "log_every=1", "checkpoint_every=4",
                                          "threads=1"]))

    def stop(row: dict) -> None:
        if row["step"] == 5:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    assert train(cfg, run, hooks=TrainHooks(on_log=stop), quiet=True).status == "interrupted"
    assert summary(run)["threads"] == 1
    folder = RunFolder(run)
    record = folder.read_summary()
    record.threads = 2  # as if the first session had been given two
    folder.write_summary(record)
    capsys.readouterr()
    assert train(cfg, run, resume=True).status == "completed"
    out = " ".join(capsys.readouterr().out.split())  # the note wraps between words at the console's width
    assert "note: this run trained with 2 CPU thread(s) and continues with 1: its losses will differ in the last bits" in out
    assert summary(run)["threads"] == 1
    assert train(cfg, tmp_path / "again").status == "completed"
    assert "CPU thread(s) and continues" not in capsys.readouterr().out
