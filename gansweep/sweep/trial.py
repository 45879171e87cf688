"""One sweep trial: an ordinary training run in trial_NNNN/, scored for Optuna."""

from __future__ import annotations

import errno
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import optuna
from optuna.trial import TrialState

from gansweep.config import TrainConfig, compose_config, to_train_config
from gansweep.errors import DivergedError, GansweepError
from gansweep.health import not_working
from gansweep.losses import LOSSES
from gansweep.rundir import RunFolder, RunSummary, Status, StopKind, StopReason, SweepMembership
from gansweep.scores import is_finite_number
from gansweep.sweep.stopping import HealthWatch, TrialStopper
from gansweep.sweep.study import record
from gansweep.train import TrainHooks, train

# The trial user attribute that says why a completed trial's generator does not work
# (health.not_working): Optuna keeps its values to learn from, but it is never the best.
NOT_WORKING = "not_working"


@dataclass
class TrialPlan:
    """What every trial of a sweep shares."""

    sweep_name: str
    sweep_dir: Path
    base_overrides: list[str]  # the space's base, the command line's overrides, budget and threads
    objectives: list[str]
    prune: bool
    early_stop: bool = True  # stop collapsed and D-overpowered trials


@dataclass
class TrialOutcome:
    number: int
    status: Status  # the run's status; its trial_state is the trial's Optuna state
    values: Optional[list[float]] = None  # the objectives, for a completed run
    reason: Optional[StopReason] = None  # why the run ended early, or failed
    params: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    not_working: Optional[str] = None  # why a completed run's generator does not work (health.not_working)

    @property
    def state(self) -> TrialState:
        return TrialState[self.status.trial_state]



def trial_dir(sweep_dir: Path, number: int) -> Path:
    """trial_0007/ for trial 7."""
    return sweep_dir / f"trial_{number:04d}"


def param_overrides(params: dict[str, Any]) -> list[str]:
    """Optuna params -> Hydra overrides (config groups by option name, keys by value)."""
    return [f"{key}={value}" for key, value in params.items()]


def _take_over(stale_dir: Path, new_dir: Path, membership: SweepMembership) -> bool:
    """Mark a stale trial's run failed and copy its folder into the retry's, as the
    retry's own; True when there is a checkpoint to resume."""
    stale = RunFolder(stale_dir)
    summary = stale.read_summary()
    if summary is not None:
        _mark_abandoned(stale, summary, membership.trial)
    if not stale.last_checkpoint.exists():
        return False
    if new_dir.exists():
        shutil.rmtree(new_dir)
    shutil.copytree(stale_dir, new_dir)
    copy = RunFolder(new_dir)
    summary = copy.read_summary()
    if summary is not None:  # a resumed run keeps its summary: make it the retry's
        summary.run_dir, summary.sweep = str(new_dir), membership
        copy.write_summary(summary)
    return True


def settle_abandoned_folders(study: optuna.Study, sweep_dir: Path) -> list[int]:
    """Mark failed the trial folders under sweep_dir that a stopped worker left `running`
    after the study failed their trial as stale (and retried it, maybe on another
    machine), so no report shows them running forever. Returns their trial numbers."""
    trials = study.get_trials(deepcopy=False)
    retried_as = {t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs}
    settled = []
    for t in trials:
        if t.state != optuna.trial.TrialState.FAIL:
            continue
        run = RunFolder(trial_dir(sweep_dir, t.number))
        summary = run.read_summary()
        if summary is None or summary.status is not Status.running or run.running_elsewhere():
            continue
        _mark_abandoned(run, summary, retried_as.get(t.number))
        settled.append(t.number)
    return settled


def _mark_abandoned(run: RunFolder, summary: RunSummary, retried_as: Optional[int]) -> None:
    """Record a trial run whose worker stopped mid-trial as failed, naming its retry."""
    detail = "worker stopped mid-trial" + (f"; retried as trial {retried_as}" if retried_as is not None else "")
    summary.stop(StopReason(StopKind.failed, summary.steps, detail))
    run.write_summary(summary)


@dataclass
class TrialRun:
    """A trial turned into a training run: what `train` (or a population) gets."""

    trial: optuna.trial.Trial
    out_dir: Path
    started: float  # time.monotonic()
    cfg: Optional[TrainConfig] = None
    overrides: list[str] = field(default_factory=list)
    membership: Optional[SweepMembership] = None
    hooks: Optional[TrainHooks] = None
    resume: bool = False
    claim: Optional[RunFolder] = None  # a resumed folder's claim, held by this worker until the trial ends


def prepare_trial(plan: TrialPlan, study: optuna.Study, trial: optuna.trial.Trial) -> TrialRun:
    """The trial's config, folder and hooks; a retried trial takes over its stale
    predecessor's folder and resumes it. Raises GansweepError for a config that does not compose."""
    params = dict(trial.params)
    prepared = TrialRun(trial, trial_dir(plan.sweep_dir, trial.number), time.monotonic())
    retry_of = trial.user_attrs.get("retry_of")
    prepared.membership = SweepMembership(
        plan.sweep_name, trial.number, params, plan.objectives,
        retry_of=retry_of, base_config=bool(trial.user_attrs.get("base_config")),
    )
    prepared.overrides = plan.base_overrides + param_overrides(params)
    prepared.cfg = cfg = to_train_config(compose_config(prepared.overrides))
    if retry_of is not None:
        stale_dir = trial_dir(plan.sweep_dir, retry_of)
        prepared.resume = stale_dir.is_dir() and _take_over(stale_dir, prepared.out_dir, prepared.membership)
        if prepared.resume:  # the copy's claim names the stale worker: make it this one's
            prepared.claim = RunFolder(prepared.out_dir)
            prepared.claim.take_over()
        # Stated in trials.csv: a retry resumes only where the stale trial's folder is reachable.
        record(trial, {"retry_from": "checkpoint" if prepared.resume else (
            "scratch: no checkpoint in its folder" if stale_dir.is_dir()
            else f"scratch: trial {retry_of}'s folder is not under {plan.sweep_dir} (a --dir shared by all machines resumes it)")})
    probabilities = LOSSES[cfg.loss.name].probabilities
    health = HealthWatch(plan.objectives[0], probabilities, prepared.membership.base_config) if plan.early_stop else None
    prepared.hooks = TrialStopper(trial, study, plan.objectives, health, plan.prune, cfg.eval_every).hooks()
    return prepared


def conclude_trial(plan: TrialPlan, prepared: TrialRun, summary: Optional[RunSummary], error: Optional[BaseException] = None) -> TrialOutcome:
    """Turn how the run ended (its summary, or the error that ended it) into an Optuna
    outcome, and record the outcome in the trial's user attributes. Raises the OSError
    of a full disk again."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        # A full disk fails every trial alike: stop the sweep in one line rather than burn its
        # budget; the trial stays running, so once space is freed a rerun retries it.
        raise error
    trial, out_dir = prepared.trial, prepared.out_dir
    outcome = TrialOutcome(trial.number, Status.failed, params=dict(trial.params))
    if isinstance(error, DivergedError):
        recorded = RunFolder(out_dir).read_summary()  # train recorded the divergence, in its words
        outcome.status = Status.diverged
        outcome.reason = recorded.stop_reason if recorded is not None and recorded.stop_reason is not None else StopReason(StopKind.diverged, error.step, str(error))
    elif isinstance(error, GansweepError):
        outcome.reason = StopReason(StopKind.failed, None, str(error))
    elif error is not None:  # a crashing trial must never stop the sweep
        outcome.reason = StopReason(StopKind.failed, None, f"{type(error).__name__}: {error}".splitlines()[0])
    elif summary is not None:
        outcome.status, outcome.reason = summary.status, summary.stop_reason
        if summary.status.has_objective:
            missing = [o for o in plan.objectives if not is_finite_number(summary.scores.get(o))]
            if missing:
                words = f"no finite {missing[0]} in the run's scores (is eval.enabled=false?)"
                summary.stop(StopReason(StopKind.failed, summary.steps, words))
                RunFolder(out_dir).write_summary(summary)
                outcome.status, outcome.reason = summary.status, summary.stop_reason
            else:
                outcome.values = [float(summary.scores[o]) for o in plan.objectives]
                outcome.not_working = not_working(summary.scores)
    outcome.duration_s = time.monotonic() - prepared.started
    attrs = {"status": outcome.status.value, "stop_reason": outcome.reason.to_json() if outcome.reason else None,
             "duration_s": outcome.duration_s, NOT_WORKING: outcome.not_working}
    try:  # the full config, so any machine sharing the study can write best.yaml
        attrs["config"] = RunFolder(out_dir).read_config() or None
    except GansweepError:
        pass
    record(trial, attrs)  # False: another machine failed the trial as stale; its retry counts
    if prepared.claim is not None:
        prepared.claim.release()
    return outcome


def train_alone(plan: TrialPlan, prepared: TrialRun) -> TrialOutcome:
    """Train a prepared trial as a solo run and conclude it."""
    assert prepared.cfg is not None
    try:
        result = train(prepared.cfg, prepared.out_dir, prepared.overrides, hooks=prepared.hooks,
                       sweep=prepared.membership, resume=prepared.resume, quiet=True)
    except Exception as exc:
        return conclude_trial(plan, prepared, None, exc)
    return conclude_trial(plan, prepared, result.summary)
