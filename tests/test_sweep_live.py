"""The sweep's live table: a running trial shows its steps and ETA."""

from __future__ import annotations

from pathlib import Path

import optuna
from report_fixtures import train_config, write_run
from rich.console import Console

from gansweep.rundir import StopKind, StopReason
from gansweep.sweep.live import trials_table


def test_a_running_trial_shows_its_steps_and_eta(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="s")
    done = study.ask()
    done.set_user_attr("duration_s", 12.0)
    study.tell(done, 0.5)
    running, waiting = study.ask(), study.ask()
    # 250 of 1000 steps in 22.5 s (the fixture's 0.09 s a step): 67.5 s to go.
    write_run(tmp_path / f"trial_{running.number:04d}", train_config(steps=1000), running=True,
              stop=StopReason(StopKind.interrupted, 250, "not stopped: the fixture's step count"))
    console = Console(width=200, record=True, color_system=None)
    console.print(trials_table(study, ["mixture_tv"], 3, tmp_path))
    rows = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if line.startswith("│")}
    assert "250/1000 steps, ETA 68s" in rows[str(running.number)]
    assert "starting" in rows[str(waiting.number)] and "12s" in rows[str(done.number)]
