"""One GAN run from a TrainConfig into a run folder: a population of one.

``train`` is what the CLI and a sweep trial call. The run is a ``Member``
(gansweep.member: its folder, summary, log and side work) trained by the same loop and
step as a population (gansweep.population, gansweep.engine), so a solo run and a
population member compute the same numbers by the same code. Callers pass hooks that
may stop the run early by raising ``StopTraining``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gansweep.config import TrainConfig
from gansweep.errors import DivergedError
from gansweep.member import MemberSpec, TrainHooks
from gansweep.population import MemberResult, train_population
from gansweep.rundir import RunSummary, SweepMembership, Status


@dataclass
class TrainResult:
    run_dir: Path
    summary: RunSummary

    @property
    def status(self) -> Status:
        return self.summary.status


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    hooks: TrainHooks | None = None,
    sweep: SweepMembership | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> TrainResult:
    """Train one GAN into `run_dir`; with resume=True continue from its last checkpoint.

    ``sweep`` marks a sweep trial in its summary. quiet=True shows no progress (a sweep
    shows its own table). Raises DivergedError (after recording it) when a loss becomes
    non-finite, KeyboardInterrupt (after a checkpoint) on Ctrl-C, and whatever stopped a
    run from starting or finishing.
    """
    spec = MemberSpec(cfg, Path(run_dir), list(overrides), hooks or TrainHooks(), sweep, resume)
    results: list[MemberResult] = []
    try:
        train_population([spec], on_done=results.append, threads=cfg.threads, quiet=quiet)
    except KeyboardInterrupt:
        if not results:  # before the run started: nothing to report
            raise
    (result,) = results  # Ctrl-C: recorded as interrupted, with a checkpoint to resume from
    if result.error is not None:
        raise result.error
    summary = result.summary
    assert summary is not None
    if summary.status is Status.diverged:
        reason = summary.stop_reason
        raise DivergedError(f"{reason}; run folder: {spec.run_dir}", step=reason.step if reason else None)
    return TrainResult(Path(summary.run_dir), summary)

