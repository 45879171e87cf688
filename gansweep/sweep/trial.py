"""One sweep trial: an ordinary training run in trial_NNNN/, scored for Optuna."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import optuna
from optuna.trial import TrialState

from gansweep.config import to_train_config
from gansweep.errors import DivergedError, GansweepError
from gansweep.losses import LOSSES
from gansweep.rundir import RunFolder
from gansweep.sweep.stopping import TrialStopper
from gansweep.train import train
from gansweep.train_command import compose_config


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
    state: TrialState
    status: str  # the run's status: completed, pruned, collapsed, diverged, failed
    values: Optional[list[float]] = None
    reason: Optional[str] = None
    params: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


def trial_dir(sweep_dir: Path, number: int) -> Path:
    """trial_0007/ for trial 7."""
    return sweep_dir / f"trial_{number:04d}"


def param_overrides(params: dict[str, Any]) -> list[str]:
    """Optuna params -> Hydra overrides (config groups by option name, keys by value)."""
    return [f"{key}={value}" for key, value in params.items()]


def _take_over(stale_dir: Path, new_dir: Path, stale_number: int, new_number: int) -> bool:
    """Copy a stale trial's folder into the retry's; True when there is a checkpoint to resume."""
    stale = RunFolder(stale_dir)
    if stale.summary_path.exists():
        stale.update_summary(status="failed", stop_reason=f"worker stopped mid-trial; retried as trial {new_number}")
    if not stale.last_checkpoint.exists():
        return False
    if new_dir.exists():
        shutil.rmtree(new_dir)
    shutil.copytree(stale_dir, new_dir)
    RunFolder(new_dir).update_summary(trial=new_number, retry_of=stale_number)
    return True


def run_trial(plan: TrialPlan, study: optuna.Study, trial: optuna.trial.Trial) -> TrialOutcome:
    """Train the trial's config and turn the run's summary into an Optuna outcome."""
    started = time.monotonic()
    params = dict(trial.params)
    out_dir = trial_dir(plan.sweep_dir, trial.number)
    outcome = TrialOutcome(trial.number, TrialState.FAIL, "failed", params=params)
    retry_of = trial.user_attrs.get("retry_of")
    try:
        overrides = plan.base_overrides + param_overrides(params)
        cfg = to_train_config(compose_config(overrides))
        resume = retry_of is not None and _take_over(trial_dir(plan.sweep_dir, retry_of), out_dir, retry_of, trial.number)
        stopper = TrialStopper(
            trial, study, plan.objectives, LOSSES[cfg.loss.name].probabilities, plan.prune, plan.early_stop, cfg.eval_every
        )
        extra = {"sweep": plan.sweep_name, "trial": trial.number, "params": params, "objectives": plan.objectives}
        if retry_of is not None:
            extra["retry_of"] = retry_of
        result = train(cfg, out_dir, overrides, hooks=stopper.hooks(), extra_summary=extra, resume=resume, quiet=True)
        summary = result.summary
        outcome.status, outcome.reason = result.status, summary.get("stop_reason")
        if result.status == "completed":
            missing = [o for o in plan.objectives if summary.get(o) is None]
            if missing:
                outcome.reason = f"no {missing[0]} in the run's scores (is eval.enabled=false?)"
                outcome.status = "failed"
                RunFolder(out_dir).update_summary(status="failed", stop_reason=outcome.reason)
            else:
                outcome.values = [float(summary[o]) for o in plan.objectives]
                outcome.state = TrialState.COMPLETE
        elif result.status in ("pruned", "collapsed"):
            outcome.state = TrialState.PRUNED
    except DivergedError as exc:
        outcome.status, outcome.state = "diverged", TrialState.PRUNED
        outcome.reason = RunFolder(out_dir).read_summary().get("stop_reason") or str(exc)  # names the step
    except GansweepError as exc:
        outcome.reason = str(exc)
    except Exception as exc:  # a crashing trial must never stop the sweep
        outcome.reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
    outcome.duration_s = time.monotonic() - started
    for key, value in (("status", outcome.status), ("reason", outcome.reason), ("duration_s", outcome.duration_s)):
        trial.set_user_attr(key, value)
    return outcome
