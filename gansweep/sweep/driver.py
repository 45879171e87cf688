"""The worker loop: ask Optuna for a trial, run it, tell the outcome, until done.

Any number of workers (separate processes, here or on other machines) run this same loop on one study. A file lock in the sweep folder makes
"check the count, then ask" atomic for the workers of one machine, so a sweep does
not overshoot its trial count; workers on other machines can overshoot by at most
one trial each.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import optuna
from filelock import FileLock
from optuna.trial import TrialState

from gansweep.errors import EXIT_INTERRUPTED, ConfigError, GansweepError, os_error_line
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
    patiently,
    retry_attrs,
    retry_stale_trials,
    running_trials,
)
from gansweep.population import MemberResult, MemberSpec, train_population
from gansweep.sweep.trial import (
    TrialOutcome, TrialPlan, TrialRun, conclude_trial, prepare_trial, settle_abandoned_folders, train_alone, trial_dir,
)


# Where a submitted job reads the storage URL, so that its password is never pickled to disk;
# a WorkerSpec whose storage_url is this name looks it up there.
STORAGE_ENV = "GANSWEEP_STORAGE_URL"


@dataclass
class WorkerSpec:
    """Everything a worker process needs (picklable)."""

    plan: TrialPlan
    study: StudySpec
    space: SearchSpace
    storage_url: Optional[str]  # or STORAGE_ENV: read from the environment (a submitted job)
    sampler: str
    pruner: str
    seed: int
    n_trials: int
    deadline: Optional[float]  # time.time() after which no new trial starts
    worker_index: int = 0
    population: int = 1  # trials trained at once as one batched model (--population)
    gpu: Optional[str] = None  # the one GPU this worker process sees (CUDA_VISIBLE_DEVICES)


def connect(spec: WorkerSpec) -> optuna.Study:
    """Open (or create) the study with this worker's seeded sampler."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the live view reports trials itself
    storage = make_storage(storage_url(spec), spec.plan.sweep_dir)
    study = open_study(spec.study, storage, make_sampler(spec.sampler, spec.seed, spec.space, len(spec.study.objectives)),
                       make_pruner(spec.pruner))
    # Reseeded once the study's size is known: a rerun, another worker or another machine
    # with the same --seed must not sample the same parameters again.
    seed = worker_seed(spec.seed, spec.worker_index, len(study.trials))
    study.sampler = make_sampler(spec.sampler, seed, spec.space, len(spec.study.objectives))
    settle_abandoned_folders(study, spec.plan.sweep_dir)
    return study


def storage_url(spec: WorkerSpec) -> Optional[str]:
    """The worker's storage URL; a job submitted to a scheduler finds it in its environment."""
    if spec.storage_url != STORAGE_ENV:
        return spec.storage_url
    if STORAGE_ENV not in os.environ:
        raise ConfigError(f"the storage URL did not reach this job: ${STORAGE_ENV} is not set here "
                          "(the scheduler must pass the environment on, as sbatch --export=ALL does)")
    return os.environ[STORAGE_ENV]


def worker_seed(seed: int, worker_index: int, trials_so_far: int, host: str | None = None, pid: int | None = None) -> int:
    """The sampler seed of one worker: --seed mixed with this host, this process, the
    worker's index and how many trials the study already holds, so no two workers or
    reruns share one (two sweeps started at once on one node differ only by their pid)."""
    text = f"{seed}/{host or socket.gethostname()}/{pid or os.getpid()}/{worker_index}/{trials_so_far}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def next_trial(spec: WorkerSpec, study: optuna.Study) -> Optional[optuna.trial.Trial]:
    with FileLock(str(spec.plan.sweep_dir / ".ask.lock")):
        # Each database call waits out a restart: a blip here must not end the worker.
        patiently(lambda: retry_stale_trials(study))
        if patiently(lambda: len(finished_trials(study)) + len(running_trials(study))) >= spec.n_trials:
            return None
        # Samples every key of the space (or takes an enqueued trial's fixed values).
        trial = patiently(lambda: study.ask(fixed_distributions=spec.space.params))
        patiently(lambda: mark_alive(trial))  # before the lock is released, so a crash from here on is seen as stale
        return trial


def run_worker(spec: WorkerSpec, on_outcome: Callable[[TrialOutcome], None] | None = None) -> str:
    """Run trials until the study has n_trials finished ones; returns why it stopped."""
    if spec.population > 1:
        return run_population_worker(spec, on_outcome)
    trials = _Trials(spec, connect(spec), on_outcome)
    while not trials.interrupted:
        prepared = trials.take_new()
        if prepared is None:
            return _why_no_trial(spec)
        trials.tell(train_alone(spec.plan, prepared), prepared.trial)
    return "interrupted"


def _why_no_trial(spec: WorkerSpec) -> str:
    return "timeout" if spec.deadline is not None and time.time() >= spec.deadline else "done"


# --population K: trials trained K at a time ---------------------------------------------
#
# The worker asks Optuna for trials one by one (TPE's constant liar keeps pending ones
# apart) and trains up to K at once (gansweep.population). Trials of one shape (everything
# but the per-member keys, population.MEMBER_KEYS; the default space's batch sizes are four
# shapes) share one stack; the stacks of different shapes step in turn in this worker. A
# member that ends (completed, stopped early, pruned, diverged) is told to Optuna at once
# and its slot takes the next trial, whatever its shape. Every model family, loss and
# stabilizer stacks (gansweep.engine).


class _Trials:
    """The trials this worker holds: asked, alive (heartbeats), not yet told."""

    def __init__(self, spec: WorkerSpec, study: optuna.Study, on_outcome: Optional[Callable[[TrialOutcome], None]]):
        self.spec, self.study, self.on_outcome = spec, study, on_outcome
        self.beats: dict[int, Heartbeat] = {}
        self.interrupted = False

    def take_new(self) -> Optional[TrialRun]:
        """The next new trial, prepared; None when the sweep has enough."""
        while True:
            if self.spec.deadline is not None and time.time() >= self.spec.deadline:
                return None
            trial = next_trial(self.spec, self.study)
            if trial is None:
                return None
            self.beats[trial.number] = Heartbeat(self.study, trial).__enter__()
            try:
                return prepare_trial(self.spec.plan, self.study, trial)
            except Exception as exc:  # a config that does not compose fails this trial only
                self.tell(conclude_trial(self.spec.plan, TrialRun(trial, trial_dir(self.spec.plan.sweep_dir, trial.number), time.monotonic()), None, exc), trial)

    def tell(self, outcome: TrialOutcome, trial: optuna.trial.Trial) -> None:
        beat = self.beats.pop(trial.number, None)
        if beat is not None:
            beat.__exit__(None, None, None)
        # skip_if_finished: another host may have failed this trial as stale meanwhile, or
        # a tell that reached the database before a restart is retried by patiently.
        if outcome.state == TrialState.COMPLETE:
            patiently(lambda: self.study.tell(trial, outcome.values, skip_if_finished=True))
        else:
            patiently(lambda: self.study.tell(trial, state=outcome.state, skip_if_finished=True))
        if outcome.status is Status.interrupted:
            # Stopped by the user: leave it to be retried (from its checkpoint) by the next run.
            patiently(lambda: self.study.enqueue_trial(outcome.params, user_attrs=retry_attrs(trial)))
            self.interrupted = True
        if self.on_outcome:
            self.on_outcome(outcome)


def _member(prepared: TrialRun) -> MemberSpec:
    assert prepared.cfg is not None and prepared.hooks is not None
    return MemberSpec(prepared.cfg, prepared.out_dir, prepared.overrides, prepared.hooks, prepared.membership, prepared.resume, tag=prepared)


def run_population_worker(spec: WorkerSpec, on_outcome: Optional[Callable[[TrialOutcome], None]] = None) -> str:
    """Run trials, up to spec.population at once, until the study has n_trials finished ones."""
    study = connect(spec)
    trials = _Trials(spec, study, on_outcome)
    plan = spec.plan

    def done(result: MemberResult) -> None:
        prepared: TrialRun = result.spec.tag
        trials.tell(conclude_trial(plan, prepared, result.summary, result.error), prepared.trial)

    def refill() -> Optional[MemberSpec]:
        if trials.interrupted:
            return None
        prepared = trials.take_new()
        return None if prepared is None else _member(prepared)

    try:
        first = trials.take_new()
        if first is not None:
            train_population([_member(first)], on_done=done, refill=refill, size=spec.population)
    except KeyboardInterrupt:
        trials.interrupted = True
    return "interrupted" if trials.interrupted else _why_no_trial(spec)


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
    if spec.gpu is not None:  # before CUDA starts in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.gpu
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
