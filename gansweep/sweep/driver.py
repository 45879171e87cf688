"""The worker loop: ask Optuna for a trial, run it, tell the outcome, until done.

Any number of workers (separate processes, here or on other machines) run this same loop on one study. A file lock in the sweep folder makes
"check the count, then ask" atomic for the workers of one machine, so a sweep does
not overshoot its trial count; workers on other machines can overshoot by at most
one trial each.
"""

from __future__ import annotations

import ctypes
import hashlib
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import optuna
from filelock import FileLock
from optuna.trial import TrialState

from gansweep.errors import EXIT_INTERRUPTED, GansweepError, os_error_line
from gansweep.progress import err_console
from gansweep.rundir import Status
from gansweep.sweep.space import SearchSpace
from gansweep.sweep.study import (
    Heartbeat,
    StudySpec,
    finished_trials,
    make_pruner,
    make_sampler,
    make_storage,
    mark_alive,
    open_study,
    retry_attrs,
    retry_stale_trials,
    running_trials,
)
from gansweep.sweep.trial import TrialOutcome, TrialPlan, run_trial


@dataclass
class WorkerSpec:
    """Everything a worker process needs (picklable)."""

    plan: TrialPlan
    study: StudySpec
    space: SearchSpace
    storage_url: Optional[str]
    sampler: str
    pruner: str
    seed: int
    n_trials: int
    deadline: Optional[float]  # time.time() after which no new trial starts
    worker_index: int = 0


def connect(spec: WorkerSpec) -> optuna.Study:
    """Open (or create) the study with this worker's seeded sampler."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the live view reports trials itself
    storage = make_storage(spec.storage_url, spec.plan.sweep_dir)
    study = open_study(spec.study, storage, make_sampler(spec.sampler, spec.seed, spec.space, len(spec.study.objectives)),
                       make_pruner(spec.pruner))
    # Reseeded once the study's size is known: a rerun, another worker or another machine
    # with the same --seed must not sample the same parameters again.
    seed = worker_seed(spec.seed, spec.worker_index, len(study.trials))
    study.sampler = make_sampler(spec.sampler, seed, spec.space, len(spec.study.objectives))
    return study


def worker_seed(seed: int, worker_index: int, trials_so_far: int, host: str | None = None) -> int:
    """The sampler seed of one worker: --seed mixed with this host, the worker's index and
    how many trials the study already holds, so no two workers or reruns share one."""
    text = f"{seed}/{host or socket.gethostname()}/{worker_index}/{trials_so_far}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _next_trial(spec: WorkerSpec, study: optuna.Study) -> Optional[optuna.trial.Trial]:
    with FileLock(str(spec.plan.sweep_dir / ".ask.lock")):
        retry_stale_trials(study)
        if len(finished_trials(study)) + len(running_trials(study)) >= spec.n_trials:
            return None
        # Samples every key of the space (or takes an enqueued trial's fixed values).
        trial = study.ask(fixed_distributions=spec.space.params)
        mark_alive(trial)  # before the lock is released, so a crash from here on is seen as stale
        return trial


def run_worker(spec: WorkerSpec, on_outcome: Callable[[TrialOutcome], None] | None = None) -> str:
    """Run trials until the study has n_trials finished ones; returns why it stopped."""
    study = connect(spec)
    while True:
        if spec.deadline is not None and time.time() >= spec.deadline:
            return "timeout"
        trial = _next_trial(spec, study)
        if trial is None:
            return "done"
        with Heartbeat(study, trial):
            outcome = run_trial(spec.plan, study, trial)
        # skip_if_finished: another host may have failed this trial as stale meanwhile.
        if outcome.state == TrialState.COMPLETE:
            study.tell(trial, outcome.values, skip_if_finished=True)
        else:
            study.tell(trial, state=outcome.state, skip_if_finished=True)
        if on_outcome:
            on_outcome(outcome)
        if outcome.status is Status.interrupted:
            # Stopped by the user: leave it to be retried (from its checkpoint) by the next run.
            study.enqueue_trial(outcome.params, user_attrs=retry_attrs(trial))
            return "interrupted"


def _die_with_parent() -> None:
    # Linux: a worker whose parent is killed (even kill -9) gets SIGTERM instead of running on.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def worker_process(spec: WorkerSpec) -> None:
    """Entry point of a `--workers N` child process: errors are one line and an exit code,
    which the parent reads (its trials share the CPU cores through gansweep.threads)."""
    _die_with_parent()
    try:
        if run_worker(spec) == "interrupted":
            sys.exit(EXIT_INTERRUPTED)
    except GansweepError as exc:
        err_console.print(f"error: worker {spec.worker_index}: {exc}")
        sys.exit(exc.exit_code)
    except OSError as exc:
        err_console.print(f"error: worker {spec.worker_index}: {os_error_line(exc)}")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
