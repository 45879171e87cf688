"""The Optuna study behind a sweep: storage, samplers, pruners, liveness and counting.

Workers (processes, possibly on other machines) share one study through its storage.
Each running trial carries a heartbeat (a user attribute refreshed by a thread) and
its host and pid. A running trial whose process is gone (same host) or whose
heartbeat is older than the grace period is stale: it is marked failed and its
parameters are enqueued again as a retry, which resumes from the stale trial's last
checkpoint. A finished count ignores failures that were retried, so nothing is lost
and nothing is counted twice.

Everything a sweep reports about a trial is in the study, not in its folder: besides
Optuna's state, values and params, a finished trial carries its run ``status``, its
``stop_reason`` (StopReason.to_json()), ``duration_s``, the ``host`` and ``pid`` that
ran it, and ``base_config`` / ``retry_of`` when they apply.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.trial import TrialState

from gansweep.atomic import write_bytes_atomic
from gansweep.errors import ConfigError
from gansweep.rundir import Status, StopReason, pid_alive
from gansweep.scores import direction
from gansweep.sweep.space import SearchSpace, grid_values

HEARTBEAT_S = 10.0  # how often a running trial says it is alive
STORAGE_PATIENCE_S = 120.0  # how long a write to the study waits out a database restart or a network blip
GRACE_S = 60.0  # a heartbeat older than this marks a trial on another host stale
SAMPLERS = ("tpe", "random", "grid", "nsga2", "qmc")
PRUNERS = ("median", "hyperband", "none")
WARMUP_PERCENT = 40  # the median pruner judges evaluations after this share of the budget


def redact_url(url: str) -> str:
    """A storage URL with its password replaced by ***, fit for a log line or a file."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def with_driver(url: str, installed: Optional[set[str]] = None) -> str:
    """postgresql://... with the driver that is installed: SQLAlchemy 2 assumes psycopg 3
    for a bare postgresql://, which fails when only psycopg2 (gansweep's [postgres] extra)
    is there. A URL that names its driver is kept."""
    if not url.startswith("postgresql://"):
        return url
    if installed is None:
        installed = {name for name in ("psycopg2", "psycopg") if importlib.util.find_spec(name) is not None}
    driver = "psycopg2" if "psycopg2" in installed else "psycopg" if "psycopg" in installed else None
    return url.replace("postgresql://", f"postgresql+{driver}://", 1) if driver else url


def _open_rdb(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage; when another machine creates its tables at the same instant
    (the database then refuses one of the two CREATEs), try again: the tables exist now."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    # pool_pre_ping: a connection the server dropped (a restart, a network blip) is replaced
    # when next taken from the pool, rather than failing whatever the worker does next.
    engine = {"pool_pre_ping": True}
    for attempt in range(1, attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except (IntegrityError, ProgrammingError):
            time.sleep(0.2 * attempt)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine)


def make_storage(url: str | None, sweep_dir: Path) -> Any:
    """--storage URL (any Optuna RDB URL), or a journal file in the sweep folder."""
    if url:
        driven = with_driver(url)
        try:
            return _open_rdb(driven)
        except Exception as exc:
            shown = redact_url(url)  # as the user typed it, password hidden
            reason = str(exc).splitlines()[0].replace(driven, redact_url(driven))
            raise ConfigError(f"--storage {shown}: cannot open ({reason})") from None
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / "study.journal"
    lock = JournalFileSymlinkLock(str(path))
    if path.exists():
        repair_journal(path, lock)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


def repair_journal(path: Path, lock: JournalFileSymlinkLock) -> None:
    """Drop the records a full disk tore (Optuna would fail every read after the next
    append). A torn record is a write that failed, so its operation never happened: the
    torn end is cut in place, and a torn line inside (left by an older gansweep) is removed."""
    lock.acquire()  # the lock Optuna's writers append under
    try:
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        lines = data[:end].splitlines(keepends=True)
        whole = [line for line in lines if _is_record(line)]
        if len(whole) < len(lines):
            write_bytes_atomic(path, b"".join(whole))
        elif end < len(data):
            os.truncate(path, end)  # in place: other readers' offsets up to here stay right
    finally:
        lock.release()


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class _GridSampler(optuna.samplers.GridSampler):
    """GridSampler without its Study.stop() at the end of the grid: that call only works
    inside study.optimize(), and the sweep counts its trials itself."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, state: TrialState, values: Any) -> None:
        return None


def make_sampler(name: str, seed: int, space: SearchSpace, n_objectives: int) -> optuna.samplers.BaseSampler:
    """The sampler named by --sampler, seeded."""
    if name == "tpe":
        # constant_liar: trials still running (other workers, machines, population members)
        # count as bad, so the next trial is not sampled on top of them
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return _GridSampler(grid_values(space), seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    raise ConfigError(f"--sampler {name}: choose one of {', '.join(SAMPLERS)}")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The pruner named by --pruner. Steps are percent of the budget (0-100)."""
    if name == "median":
        # Not before 50% of the budget: early GAN scores are noisy (on 2D mixtures a trial that
        # has not reached any mode yet scores the same as a collapsed one).
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=WARMUP_PERCENT)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=25, max_resource=100, reduction_factor=2)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner {name}: choose one of {', '.join(PRUNERS)}")


@dataclass
class StudySpec:
    """What identifies a sweep: a rerun must match it to continue the same study."""

    name: str
    objectives: list[str]
    space_text: str
    base_overrides: list[str]
    # Enqueued by the machine that creates the study, and only by it: two machines that
    # start at one instant would each see an empty study and measure the base config twice.
    first_params: Optional[dict[str, Any]] = None


def open_study(spec: StudySpec, storage: Any, sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner) -> optuna.Study:
    """Create the study, or load it and check it is the same sweep."""
    directions = [direction(o).value for o in spec.objectives]
    try:
        study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner, directions=directions)
        if spec.first_params is not None:
            study.enqueue_trial(spec.first_params, user_attrs={"base_config": True})
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
    identity = (("objectives", spec.objectives), ("space", spec.space_text), ("base_overrides", spec.base_overrides))
    # A key not yet stored is written, not compared: another machine that created the same
    # study at the same instant may be writing its keys one by one right now.
    stored = study.user_attrs
    for key, mine in identity:
        if key not in stored:
            study.set_user_attr(key, mine)
    stored = study.user_attrs
    for key, mine in identity:
        if stored.get(key) != mine:
            raise ConfigError(
                f"--name {spec.name}: this sweep was started with other {key} ({stored.get(key)!r}); "
                "rerun it as it was, or give a new --name"
            )
    return study


def is_stale(trial: optuna.trial.FrozenTrial, now: float) -> bool:
    """A running trial whose worker is gone. One that never got a heartbeat (its worker
    died between asking for it and marking it alive) is judged from when it was asked."""
    attrs = trial.user_attrs
    if attrs.get("host") == socket.gethostname() and "pid" in attrs and attrs["pid"] != os.getpid():
        return not pid_alive(int(attrs["pid"]))
    asked = trial.datetime_start.timestamp() if trial.datetime_start is not None else now
    return now - float(attrs.get("heartbeat", asked)) > GRACE_S


def retry_stale_trials(study: optuna.Study) -> list[int]:
    """Fail stale running trials and enqueue their parameters again; returns their numbers."""
    now = time.time()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_stale(t, now):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)  # a retried call may find it failed
            study.enqueue_trial(t.params, user_attrs=retry_attrs(t), skip_if_exists=False)
            failed.append(t.number)
    return failed


def retry_attrs(trial: optuna.trial.FrozenTrial | optuna.trial.Trial) -> dict[str, Any]:
    """The user attributes of the trial that retries ``trial``: which one it retries,
    and whether it is still the base configuration."""
    attrs: dict[str, Any] = {"retry_of": trial.number}
    if trial.user_attrs.get("base_config"):
        attrs["base_config"] = True
    return attrs


# The status of a trial that recorded none: a stale trial failed by another worker, or a
# trial of a sweep from before statuses were recorded.
_UNRECORDED = {TrialState.RUNNING: Status.running, TrialState.COMPLETE: Status.completed,
               TrialState.PRUNED: Status.pruned, TrialState.FAIL: Status.failed}


def trial_status(trial: optuna.trial.FrozenTrial) -> Status | None:
    """The run status of a trial; None for one that has not started (waiting)."""
    if trial.state == TrialState.RUNNING:
        return Status.running
    recorded = trial.user_attrs.get("status")
    return Status(recorded) if recorded is not None else _UNRECORDED.get(trial.state)


def trial_stop_reason(trial: optuna.trial.FrozenTrial) -> StopReason | None:
    """Why the trial's run stopped early, as the trial recorded it; None when it did not."""
    recorded = trial.user_attrs.get("stop_reason")
    return StopReason.from_json(recorded) if recorded else None


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials with a final outcome; a failure that was retried is not one."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in trials if t.state in done and t.number not in retried]


def running_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials some worker is running now."""
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def mark_alive(trial: optuna.trial.Trial) -> None:
    """Record who runs the trial (host, pid) and that it is alive now."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("heartbeat", time.time())


T = TypeVar("T")


def patiently(call: Callable[[], T], patience_s: float = STORAGE_PATIENCE_S) -> T:
    """call(), retried while the database cannot be reached (Optuna raises
    StorageInternalError for a dropped or refused connection): a restart of a second
    must not cost a trial that trained for an hour."""
    deadline, delay = time.monotonic() + patience_s, 0.5
    while True:
        try:
            return call()
        except StorageInternalError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 10.0)


def record(trial: optuna.trial.Trial, attrs: dict[str, Any]) -> bool:
    """Store user attributes of a trial this worker runs, waiting out a database blip;
    False when another worker has meanwhile failed the trial as stale."""
    try:
        for key, value in attrs.items():
            patiently(lambda: trial.set_user_attr(key, value))
    except UpdateFinishedTrialError:
        return False
    return True


class Heartbeat:
    """Refreshes the heartbeat of a trial every HEARTBEAT_S seconds while it runs (the
    worker marks it alive with mark_alive when it takes the trial)."""

    def __init__(self, study: optuna.Study, trial: optuna.trial.Trial, interval: float = HEARTBEAT_S):
        self.study, self.trial, self.interval = study, trial, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except UpdateFinishedTrialError:  # finished in between: the next beat is moot
                return
            except Exception:  # the database is unreachable for now: beat again next time
                continue

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
