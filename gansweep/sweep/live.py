"""The sweep's live view: a rich table on a terminal, one plain line per trial elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import optuna
from optuna.trial import TrialState
from rich.live import Live
from rich.table import Table

from gansweep.errors import GansweepError
from gansweep.progress import console
from gansweep.rundir import RunFolder
from gansweep.scores import is_better
from gansweep.sweep.study import patiently, trial_status, trial_stop_reason
from gansweep.sweep.trial import NOT_WORKING, trial_dir

ROWS = 20  # most recent trials shown
WAITING = "waiting"  # shown for an enqueued trial no worker has taken yet


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _styled_status(t: optuna.trial.FrozenTrial) -> str:
    status = trial_status(t)
    return WAITING if status is None else f"[{status.style}]{status.value}[/]"


def trial_progress(run_dir: Path) -> str:
    """A running trial's steps and ETA from its folder's summary (written at each
    checkpoint): ``120/400 steps, ETA 35s``; ``starting`` before its first."""
    try:
        summary = RunFolder(run_dir).read_summary()
    except GansweepError:  # being replaced (a retry taking the folder over)
        summary = None
    if summary is None or not summary.steps:
        return "starting"
    eta = summary.wall_time_s * max(summary.total_steps - summary.steps, 0) / summary.steps
    return f"{summary.steps}/{summary.total_steps} steps, ETA {eta:.0f}s"


def trials_table(study: optuna.Study, objectives: list[str], n_trials: int, sweep_dir: Path | None = None) -> Table:
    """The trials so far, newest last, with the best value so far; with ``sweep_dir``, a
    running trial's time column holds its steps and ETA."""
    trials = study.get_trials(deepcopy=False)
    first = objectives[0]
    table = Table(title=f"sweep {study.study_name}: {len(trials)} trials (target {n_trials})", expand=False)
    for col in ("trial", "status", "params", *objectives, "best " + first, "time"):
        table.add_column(col, justify="right" if col not in ("status", "params") else "left")
    best: Optional[float] = None
    rows = []
    for t in trials:
        value = t.values[0] if t.values else None
        # A pruned trial's value is only an intermediate one; noise is never the best.
        complete = t.state == TrialState.COMPLETE and not t.user_attrs.get(NOT_WORKING)
        if complete and value is not None and (best is None or is_better(value, best, first)):
            best = value
        params = " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        values = [_fmt(v) for v in (t.values or [None] * len(objectives))]
        duration = t.user_attrs.get("duration_s")
        if t.state == TrialState.RUNNING and sweep_dir is not None:
            time_cell = trial_progress(trial_dir(sweep_dir, t.number))
        else:
            time_cell = f"{duration:.0f}s" if duration else "-"
        rows.append((str(t.number), _styled_status(t), params, *values, _fmt(best), time_cell))
    for row in rows[-ROWS:]:
        table.add_row(*row)
    return table


class LiveView:
    """The table redraws itself from the study twice a second on a terminal; elsewhere
    refresh() prints the trials that finished since its last call."""

    def __init__(self, study: optuna.Study, objectives: list[str], n_trials: int, sweep_dir: Path | None = None):
        self.study, self.objectives, self.n_trials, self.sweep_dir = study, objectives, n_trials, sweep_dir
        self.interactive = console.is_terminal and sys.stdout.isatty()
        self._live: Optional[Live] = None
        self._printed: set[int] = set()

    def __enter__(self) -> "LiveView":
        if self.interactive:
            self._live = Live(
                get_renderable=lambda: trials_table(self.study, self.objectives, self.n_trials, self.sweep_dir),
                console=console, refresh_per_second=2,
            )
            self._live.start()
        return self

    def refresh(self) -> None:
        """Redraw the table now, or print the trials that finished since the last call."""
        if self._live is not None:
            self._live.refresh()
            return
        for t in patiently(lambda: self.study.get_trials(deepcopy=False)):
            if t.state.is_finished() and t.number not in self._printed:
                self._printed.add(t.number)
                values = ", ".join(f"{o}={_fmt(v)}" for o, v in zip(self.objectives, t.values or []))
                status, reason = trial_status(t), trial_stop_reason(t)
                if t.user_attrs.get(NOT_WORKING):
                    reason = f"no working generator: {t.user_attrs[NOT_WORKING]}"
                console.print(
                    f"trial {t.number}: {status.value if status else WAITING}  {values}  "
                    + " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
                    + (f"  ({reason})" if reason else ""),
                    markup=False,
                )

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.stop()
