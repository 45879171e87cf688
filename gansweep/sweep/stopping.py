"""GAN-aware early stopping for sweep trials, as TrainHooks.

Three rules, each raising StopTraining with its reason:

* mode collapse: an evaluation finds exactly one mode covered (of > 1) after an earlier
  evaluation found more, or in the second half of the budget (early on, covering no or
  few modes only means G has not learnt yet);
* discriminator overpowering: for PATIENCE_LOGS consecutive log lines D(x) > D_REAL_MIN
  and D(G(z)) < D_FAKE_MAX (bce loss), or the generator's gradient norm is below
  G_GRAD_MIN: G has nothing left to learn from;
* pruning: single-objective studies ask Optuna's pruner at every evaluation;
  multi-objective studies (where Optuna cannot prune) stop a trial whose first
  objective is worse than the median of the other trials at the same share of the
  budget, once MEDIAN_STARTUP trials have finished.
Divergence (non-finite losses) is caught by the training loop itself.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import optuna

from gansweep.sweep.objectives import is_better
from gansweep.train import StopTraining, TrainHooks

PATIENCE_LOGS = 20
D_REAL_MIN = 0.99
D_FAKE_MAX = 0.01
G_GRAD_MIN = 1e-6
MEDIAN_STARTUP = 5


def budget_percent(step: int, total: int, evals: int) -> int:
    """Optuna's step for an evaluation: its share of the budget in percent, snapped to the
    grid of `evals` evaluations per run, so that trials whose step counts round
    differently (other batch sizes) report the same steps (25, 50, 75 for four)."""
    k = round(evals * step / max(1, total))
    return round(100 * k / evals)


@dataclass
class TrialStopper:
    """The hooks one trial runs with."""

    trial: optuna.trial.Trial
    study: optuna.Study
    objectives: list[str]
    probabilities: bool  # D outputs are probabilities (bce), so D(x)/D(G(z)) can be judged
    prune: bool  # a pruner is on
    early_stop: bool = True  # the collapse and overpowering rules are on
    eval_every: int = 0  # the trial's eval_every (0: four evaluations per run)
    _overpowered: int = field(default=0, init=False)
    _most_modes: int = field(default=0, init=False)

    def on_log(self, row: dict[str, Any]) -> None:
        weak_g = row.get("grad_norm_g", 1.0) < G_GRAD_MIN
        d_wins = self.probabilities and row.get("d_real", 0) > D_REAL_MIN and row.get("d_fake", 1) < D_FAKE_MAX
        self._overpowered = self._overpowered + 1 if (weak_g or d_wins) else 0
        if self.early_stop and self._overpowered >= PATIENCE_LOGS:
            raise StopTraining(
                "collapsed",
                f"discriminator overpowering at step {row['step']}: D(x)={row.get('d_real', float('nan')):.3f}, "
                f"D(G(z))={row.get('d_fake', float('nan')):.3f}, |grad G|={row.get('grad_norm_g', float('nan')):.2g} "
                f"for {PATIENCE_LOGS} log lines",
            )

    def on_eval(self, step: int, total: int, scores: dict[str, Any]) -> None:
        modes, modes_total = scores.get("modes_covered"), scores.get("modes_total")
        if modes is not None and modes_total and modes_total > 1:
            dropped = modes == 1 and (self._most_modes > 1 or 2 * step >= total)
            self._most_modes = max(self._most_modes, modes)
            if self.early_stop and dropped and step < total:
                raise StopTraining("collapsed", f"mode collapse at step {step}: modes covered {modes}/{modes_total}")
        value = scores.get(self.objectives[0])
        if value is None or not self.prune or step >= total:
            return
        evals = 4 if self.eval_every == 0 else max(1, round(total / self.eval_every))
        pct = budget_percent(step, total, evals)
        if len(self.objectives) == 1:
            self.trial.report(float(value), pct)
            if self.trial.should_prune():
                raise StopTraining("pruned", f"pruned at {pct}% of the budget: {self.objectives[0]}={value:.4g}")
            return
        self.trial.set_user_attr(f"progress_{pct}", float(value))
        others = [
            t.user_attrs[f"progress_{pct}"]
            for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if f"progress_{pct}" in t.user_attrs
        ]
        if len(others) >= MEDIAN_STARTUP and is_better(statistics.median(others), float(value), self.objectives[0]):
            raise StopTraining(
                "pruned",
                f"pruned at {pct}% of the budget: {self.objectives[0]}={value:.4g} worse than the median "
                f"{statistics.median(others):.4g} of {len(others)} finished trials",
            )

    def hooks(self) -> TrainHooks:
        return TrainHooks(on_log=self.on_log, on_eval=self.on_eval)
