"""Early stopping for sweep trials, as TrainHooks.

Two kinds of rule, each ending the run with a StopReason:

* health (``HealthWatch``, pure): the rules and thresholds of gansweep.health, with its
  stricter ``STOP`` bar. Discriminator overpowering for ``OVERPOWER_PATIENCE`` log
  lines in a row; mode collapse when the latest evaluation is collapsed (realistic
  samples on few modes) and the first objective did not improve. The sweep's base
  trial is never stopped as collapsed: it measures the sweep's starting point, and a
  default that only looks collapsed early on is worth seeing to the end.
* pruning: single-objective studies ask Optuna's pruner at every evaluation;
  multi-objective studies (where Optuna cannot prune) stop a trial whose first
  objective is worse than the median of the other trials at the same share of the
  budget, once MEDIAN_STARTUP trials have finished.

Divergence (non-finite losses) is caught by the training loop itself, for every trial.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import optuna

from gansweep.health import OVERPOWER_PATIENCE, STOP, collapse_stop, d_overpowers, overpowering_words
from gansweep.rundir import StopKind, StopReason
from gansweep.scores import format_score, is_better
from gansweep.sweep.study import patiently
from gansweep.member import StopTraining, TrainHooks

MEDIAN_STARTUP = 5  # finished trials the multi-objective median rule waits for


def budget_percent(step: int, total: int, evals: int) -> int:
    """Optuna's step for an evaluation: its share of the budget in percent, snapped to the
    grid of `evals` evaluations per run, so that trials whose step counts round
    differently (other batch sizes) report the same steps (25, 50, 75 for four)."""
    k = round(evals * step / max(1, total))
    return round(100 * k / evals)


@dataclass
class HealthWatch:
    """The health rules of one trial, fed its log lines and evaluations in order.

    Pure: no Optuna, no files, so a recorded run can be replayed through it.
    """

    objective: str  # the sweep's first objective: collapse only stops what stopped improving
    probabilities: bool  # D outputs are probabilities (bce), so D(x)/D(G(z)) can be judged
    base_config: bool = False  # the sweep's base trial: never stopped as collapsed
    _overpowered: int = field(default=0, init=False)  # overpowered log lines in a row
    _evals: list[Mapping[str, Any]] = field(default_factory=list, init=False)

    def log(self, row: Mapping[str, Any]) -> Optional[StopReason]:
        """The reason to stop after this train line, or None."""
        d_real, d_fake, grad_g = row.get("d_real"), row.get("d_fake"), row.get("grad_norm_g")
        overpowered = d_overpowers(d_real, d_fake, grad_g, self.probabilities, th=STOP)
        self._overpowered = self._overpowered + 1 if overpowered else 0
        if self._overpowered < OVERPOWER_PATIENCE:
            return None
        words = f"{overpowering_words(d_real, d_fake, grad_g)} for {OVERPOWER_PATIENCE} log lines"
        return StopReason(StopKind.d_overpowering, row.get("step"), words)

    def evaluate(self, step: int, scores: Mapping[str, Any]) -> Optional[StopReason]:
        """The reason to stop after this evaluation, or None."""
        self._evals.append(dict(scores))
        if self.base_config:
            return None
        words = collapse_stop(self._evals, self.objective, th=STOP)
        return StopReason(StopKind.mode_collapse, step, words) if words else None


@dataclass
class TrialStopper:
    """The hooks one trial runs with: its health watch (None: off) and the pruning rule."""

    trial: optuna.trial.Trial
    study: optuna.Study
    objectives: list[str]
    health: Optional[HealthWatch]  # None: --no-early-stop
    prune: bool  # a pruner is on
    eval_every: int = 0  # the trial's eval_every (0: four evaluations per run)

    def on_log(self, row: dict[str, Any]) -> None:
        reason = self.health.log(row) if self.health else None
        if reason:
            raise StopTraining(reason)

    def on_eval(self, step: int, total: int, scores: dict[str, Any]) -> None:
        if step >= total:  # the last evaluation: the run is over anyway
            return
        reason = self.health.evaluate(step, scores) if self.health else None
        if reason is None and self.prune:
            reason = self._prune_reason(step, total, scores)
        if reason:
            raise StopTraining(reason)

    def _prune_reason(self, step: int, total: int, scores: dict[str, Any]) -> Optional[StopReason]:
        first = self.objectives[0]
        value = scores.get(first)
        if value is None:
            return None
        evals = 4 if self.eval_every == 0 else max(1, round(total / self.eval_every))
        pct = budget_percent(step, total, evals)
        shown = f"{first}={format_score(first, value)}"
        # Each call waits out a database blip rather than fail a trial that is training well.
        if len(self.objectives) == 1:
            patiently(lambda: self.trial.report(float(value), pct))
            pruned = patiently(self.trial.should_prune)
            return StopReason(StopKind.pruned, step, f"{pct}% of the budget, {shown}") if pruned else None
        patiently(lambda: self.trial.set_user_attr(f"progress_{pct}", float(value)))
        others = [
            t.user_attrs[f"progress_{pct}"]
            for t in patiently(lambda: self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
            if f"progress_{pct}" in t.user_attrs
        ]
        median = statistics.median(others) if len(others) >= MEDIAN_STARTUP else None
        if median is None or not is_better(median, float(value), first):
            return None
        detail = f"{pct}% of the budget, {shown} worse than the median {format_score(first, median)} of {len(others)} finished trials"
        return StopReason(StopKind.pruned, step, detail)

    def hooks(self) -> TrainHooks:
        return TrainHooks(on_log=self.on_log, on_eval=self.on_eval)
