"""Per-sweep analysis from the trials' rows: objectives, best-so-far, the budget curve,
the Pareto front and parameter importances.

Everything is computed from the trials' summary.json values (already in the runs
table), never from the Optuna storage, so copied or partial sweep folders work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd
from scipy.special import gammaln

from gansweep.report.load import SweepInfo
from gansweep.report.table import is_higher_better, is_lr_like
from gansweep.rundir import Status

# fANOVA forest size: 32 trees rank parameters as well as 64 on sweeps of <1,000 trials
# and halve the time; the seed makes the report reproducible.
IMPORTANCE_TREES = 32
IMPORTANCE_SEED = 0


@dataclass
class SweepTrials:
    """One sweep's trials (rows of the runs table, ordered by trial number) and what to plot."""

    name: str
    trials: pd.DataFrame
    params: list[str]
    """Columns of ``trials`` holding the sampled parameters."""
    objectives: list[str]
    """Columns holding the objective values; two or more means multi-objective."""


def param_column(key: str, columns: pd.Index | list[str]) -> str | None:
    """The runs-table column holding sampled config key ``key``.

    ``model.name`` lives in the ``model`` column; other keys keep their dotted name.
    """
    if key in columns:
        return key
    group, _, leaf = key.rpartition(".")
    return group if leaf == "name" and group in columns else None


def collect_sweeps(runs: pd.DataFrame, infos: dict[str, SweepInfo], fallback_objective: str | None) -> list[SweepTrials]:
    """Gather the trials of each sweep present in ``runs``.

    Confirmation runs (``gansweep confirm``: a trial retrained with another seed) are
    not trials: the sweep did not sample them. The objectives are those the trials
    declare (``sweep.objectives`` in summary.json), else ``fallback_objective`` (the
    report's sort key).
    """
    trials_only = runs["sweep"].notna() & runs["confirm_of"].isna()
    sweeps = []
    for name, trials in runs[trials_only].groupby("sweep", sort=True):
        info = infos.get(str(name), SweepInfo(str(name)))
        params = [c for c in (param_column(k, runs.columns) for k in info.params) if c is not None]
        objectives = [o for o in (info.objectives or [fallback_objective]) if o is not None and o in runs]
        trials = trials.sort_values("trial", kind="stable")
        sweeps.append(SweepTrials(str(name), trials, list(dict.fromkeys(params)), objectives))
    return sweeps


def finished_mask(trials: pd.DataFrame) -> np.ndarray:
    """True for trials that ran their whole budget (``Status.has_objective``): only their
    scores are objective values, as only COMPLETE trials carry values in Optuna."""
    return trials["status"].map(lambda s: Status(s).has_objective).to_numpy(dtype=bool)


def stopped_mask(trials: pd.DataFrame) -> np.ndarray:
    """True for trials that ended before their budget (pruned, collapsed, overpowered,
    diverged, failed): their scores, if any, are the last evaluation's."""
    return trials["status"].map(lambda s: Status(s).final and not Status(s).has_objective).to_numpy(dtype=bool)


def best_so_far(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Running best of ``values`` in order; NaN (pruned, failed) entries keep the previous best."""
    filled = np.where(np.isnan(values), -np.inf if higher_is_better else np.inf, values)
    best = np.maximum.accumulate(filled) if higher_is_better else np.minimum.accumulate(filled)
    return np.where(np.isinf(best), np.nan, best)


def expected_best(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Expected best value among k trials drawn at random from ``values``, for k = 1..n.

    The budget curve of Lucic et al. (2018), "Are GANs Created Equal?", computed
    exactly instead of by resampling: with values sorted best first, the best of a random
    k-subset is the i-th value with probability C(n-i, k-1) / C(n, k). NaN are dropped.
    """
    ordered = np.sort(values[~np.isnan(values)])
    if higher_is_better:
        ordered = ordered[::-1]
    n = len(ordered)
    if n == 0:
        return np.array([])
    i = np.arange(1, n + 1)
    curve = np.empty(n)
    for k in range(1, n + 1):
        # Work in logs: C(1000, 500) overflows a float.
        valid = i <= n - k + 1
        log_p = _log_comb(n - i[valid], k - 1) - _log_comb(n, k)
        curve[k - 1] = float(np.sum(ordered[valid] * np.exp(log_p)))
    return curve


def pareto_mask(points: np.ndarray, higher_is_better: list[bool]) -> np.ndarray:
    """True for the points no other point dominates (at least as good everywhere, better somewhere)."""
    signs = np.where(higher_is_better, -1.0, 1.0)
    costs = points * signs  # now lower is better on every axis
    mask = np.ones(len(costs), dtype=bool)
    for j, cost in enumerate(costs):
        dominated = np.all(costs <= cost, axis=1) & np.any(costs < cost, axis=1)
        mask[j] = not dominated.any()
    return mask


def param_importances(trials: pd.DataFrame, params: list[str], objective: str) -> dict[str, float]:
    """fANOVA importance of each parameter for ``objective``, summing to 1, most important first.

    An in-memory Optuna study is rebuilt from the trial rows (distributions inferred
    from the values seen). Parameters that never varied get no importance; with fewer
    than two scored trials, no varying parameter or no varying score the result is empty.
    """
    scored = trials[pd.to_numeric(trials[objective], errors="coerce").notna()]
    varying = [p for p in params if scored[p].nunique(dropna=True) > 1]
    if len(scored) < 2 or not varying:
        return {}
    distributions = {p: _distribution(p, scored[p]) for p in varying}
    frozen = []
    for _, row in scored.iterrows():
        values = {p: _param_value(row[p], distributions[p]) for p in varying}
        if any(v is None for v in values.values()):
            continue
        frozen.append(optuna.trial.create_trial(
            value=float(row[objective]), params=values,
            distributions={p: distributions[p] for p in varying},
        ))
    if len(frozen) < 2 or len({t.value for t in frozen}) < 2:
        return {}  # fANOVA has nothing to explain when every trial scored the same
    direction = "maximize" if is_higher_better(objective) else "minimize"
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    try:
        study = optuna.create_study(direction=direction)
        study.add_trials(frozen)
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=IMPORTANCE_TREES, seed=IMPORTANCE_SEED)
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {k: float(v) for k, v in importances.items()}


def _log_comb(n: np.ndarray | int, k: int) -> np.ndarray:
    return gammaln(np.asarray(n) + 1) - gammaln(k + 1) - gammaln(np.asarray(n) - k + 1)


def _distribution(name: str, values: pd.Series) -> optuna.distributions.BaseDistribution:
    """Numbers get a float/int range (log for lr-like keys); anything else is categorical."""
    present = values.dropna()
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if numeric:
        low, high = float(present.min()), float(present.max())
        log = is_lr_like(name) and low > 0
        if all(float(v).is_integer() for v in present):
            return optuna.distributions.IntDistribution(int(low), int(high), log=log)
        return optuna.distributions.FloatDistribution(low, high, log=log)
    return optuna.distributions.CategoricalDistribution(sorted({str(v) for v in present}))


def _param_value(value: object, distribution: optuna.distributions.BaseDistribution) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return str(value)
    if isinstance(distribution, optuna.distributions.IntDistribution):
        return int(value)
    return float(value)
