"""The `schedule:` key: lr_g, lr_d, beta1 and beta2 changed at given steps, as population-based
training writes them and `gansweep train` replays them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from gansweep.config import compose_config, to_train_config
from gansweep.errors import ConfigError
from gansweep.member import TrainHooks
from gansweep.train import train

TINY = ["model=mlp", "data=ring8", "model.hidden=16", "model.depth=2", "batch_size=16", "steps=40", "log_every=1",
        "eval.enabled=false", "sample_every=1000", "threads=1", "lr=1e-3"]


def rows(run_dir: Path) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]


def run(tmp_path: Path, name: str, *overrides: str) -> list[dict]:
    train(to_train_config(compose_config([*TINY, *overrides])), tmp_path / name, quiet=True)
    return rows(tmp_path / name)


def test_a_schedule_changes_the_hyperparameters_from_its_step_on_and_nothing_before(tmp_path: Path) -> None:
    base = run(tmp_path, "base")
    same = run(tmp_path, "same", "schedule=[{step: 20, lr_g: 1e-3, beta1: 0.5}]")  # the values it already has
    changed = run(tmp_path, "changed", "schedule=[{step: 20, lr_g: 5e-4, lr_d: 2e-3}, {step: 30, beta1: 0.0, beta2: 0.9}]")
    losses = lambda rs: [(r["loss_d"], r["loss_g"]) for r in rs]  # noqa: E731
    assert losses(same) == losses(base)  # bit for bit
    assert losses(changed)[:20] == losses(base)[:20]  # steps 1-20 ran with the config's values
    assert losses(changed)[20] != losses(base)[20]  # step 21 with the new lr
    lr = {r["step"]: (r["lr_g"], r["lr_d"]) for r in changed}
    assert lr[19] == (1e-3, 1e-3) and lr[20] == (5e-4, 2e-3) and lr[40] == (5e-4, 2e-3)


def test_a_scheduled_run_resumes_with_the_values_of_its_step(tmp_path: Path) -> None:
    """Stopped at step 17, between the schedule's two changes; the resumed run equals the whole one."""
    schedule = "schedule=[{step: 10, lr_g: 3e-4}, {step: 25, lr_d: 3e-3, beta1: 0.2}]"
    whole = run(tmp_path, "whole", schedule)
    cfg = to_train_config(compose_config([*TINY, schedule]))

    def stop_at_17(row: dict) -> None:
        if row["step"] == 17:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: a checkpoint at step 17, then the run ends

    train(cfg, tmp_path / "resumed", hooks=TrainHooks(on_log=stop_at_17), quiet=True)
    assert len(rows(tmp_path / "resumed")) == 17
    train(cfg, tmp_path / "resumed", resume=True, quiet=True)
    assert [(r["loss_d"], r["lr_g"], r["lr_d"]) for r in rows(tmp_path / "resumed")] == [(r["loss_d"], r["lr_g"], r["lr_d"]) for r in whole]


@pytest.mark.parametrize("schedule, message", [
    ("[{step: 0, lr_g: 1e-3}]", r"^schedule\[0\]\.step=0: must be >= 1"),
    ("[{step: 20, lr_g: 1e-3}, {step: 10, lr_g: 1e-3}]", r"^schedule\[1\]\.step=10: must be >= 1 and larger"),
    ("[{step: 5, lr_d: -1}]", r"^schedule\[0\]\.lr_d=-1(\.0)?: must be a positive number"),
    ("[{step: 5, beta2: 1.0}]", r"^schedule\[0\]\.beta2=1\.0: must be in \[0, 1\)"),
])
def test_a_bad_schedule_is_one_line_naming_the_entry(schedule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        to_train_config(compose_config([*TINY, f"schedule={schedule}"]))
