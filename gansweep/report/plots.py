"""The report's figures, drawn with matplotlib's object API (no pyplot, no global
backend switch) and returned as PNG bytes, ready to embed in HTML or write to files.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gansweep.report.load import read_metrics
from gansweep.report.sweeps import (
    SweepTrials,
    best_so_far,
    expected_best,
    finished_mask,
    param_importances,
    pareto_mask,
)
from gansweep.report.table import is_higher_better, is_lr_like, score_columns

# Runs whose training curves are drawn: more lines than this are unreadable.
CURVE_RUNS = 5
# At most this many "score vs hyperparameter" figures, and varying scores per figure.
MAX_HYPERPARAMETERS = 12
MAX_SCORES = 2
# The flat hyperparameters that get a figure when they vary, besides swept keys.
HYPERPARAMETER_COLUMNS = ("lr", "lr_g", "lr_d", "batch_size", "beta1", "beta2", "model", "loss")
DPI = 100
# Figure sizes in inches: at DPI they show about 1:1 in the HTML page's grid cells.
SINGLE_WIDTH = 6.4
PANEL_WIDTH = 4.8
HEIGHT = 3.6
BEST_COLOUR = "#d62728"


@dataclass
class Plot:
    """One figure of the report."""

    name: str
    """File stem, unique in the report: ``curves_loss``, ``sweep_lr_history``..."""
    title: str
    png: bytes
    wide: bool = False
    """Several panels: the HTML page gives it a whole row."""


def make_plots(runs: pd.DataFrame, sweeps: list[SweepTrials], config_columns: list[str],
               sort_key: str | None) -> list[Plot]:
    """Every figure for ``runs`` (already filtered and sorted, best first)."""
    plots = training_curves(runs.head(CURVE_RUNS), sort_key)
    keys = [p for sweep in sweeps for p in sweep.params]
    keys += [c for c in (*HYPERPARAMETER_COLUMNS, *config_columns)
             if c in runs and runs[c].nunique(dropna=True) > 1]
    # One figure per distinct column: lr_g and lr_d usually repeat lr.
    distinct: list[str] = []
    for key in dict.fromkeys(keys):
        if not any(runs[key].equals(runs[other]) for other in distinct):
            distinct.append(key)
    scores = [s for s in score_columns(runs, sort_key) if runs[s].nunique() > 1][:MAX_SCORES]
    for key in distinct[:MAX_HYPERPARAMETERS] if scores else ():
        plots.append(score_vs_hyperparameter(runs, key, scores))
    for sweep in sweeps:
        plots += sweep_plots(sweep)
    return plots


def training_curves(top: pd.DataFrame, sort_key: str | None) -> list[Plot]:
    """D and G losses, and the FID (or the sort key) at each evaluation, of the ``top`` runs."""
    histories = {run: read_metrics(Path(path)) for run, path in zip(top["run"], top["path"])}
    plots = []
    fig, axes = _figure(2)
    drawn = False
    for run, records in histories.items():
        train = [r for r in records if r.get("kind") == "train"]
        for ax, key in zip(axes, ("loss_d", "loss_g")):
            steps, values = _series(train, key)
            if len(steps):
                ax.plot(steps, values, linewidth=1, label=_short(run))
                drawn = True
    if drawn:
        for ax, title in zip(axes, ("discriminator loss", "generator loss")):
            _style(ax, title, "step", "loss")
        axes[1].legend(fontsize=7, loc="best")
        plots.append(_plot("curves_loss", "Losses of the top runs", fig))

    metric = next((k for k in (sort_key, "fid", "mode_kl") if k and _any_eval(histories, k)), None)
    if metric is not None:
        fig, (ax,) = _figure(1)
        for run, records in histories.items():
            steps, values = _series([r for r in records if r.get("kind") == "eval"], metric)
            if len(steps):
                ax.plot(steps, values, marker="o", markersize=3, linewidth=1.2, label=_short(run))
        _style(ax, f"{metric} during training", "step", metric)
        ax.legend(fontsize=7, loc="best")
        plots.append(_plot(f"curves_{_slug(metric)}", f"{metric} over training of the top runs", fig))
    return plots


def score_vs_hyperparameter(runs: pd.DataFrame, key: str, scores: list[str]) -> Plot:
    """One panel per score against ``key``: log x for lr-like keys, a strip for categories."""
    fig, axes = _figure(len(scores))
    x = runs[key]
    numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
    if not numeric:
        categories = sorted({str(v) for v in x.dropna()})
        positions = x.map(lambda v: categories.index(str(v)) if pd.notna(v) else np.nan)
        # Spread the points of one category evenly over +-0.25, so they do not overlap.
        rank = positions.groupby(positions).cumcount()
        count = positions.map(positions.value_counts())
        x = positions + 0.5 * ((rank + 0.5) / count - 0.5)
    for ax, score in zip(axes, scores):
        y = pd.to_numeric(runs[score], errors="coerce")
        ax.scatter(x, y, s=18, alpha=0.75, edgecolors="none")
        best = y.idxmax() if is_higher_better(score) else y.idxmin()
        if pd.notna(best):
            ax.scatter([x[best]], [y[best]], s=90, marker="*", color=BEST_COLOUR, label="best", zorder=3)
        if numeric and is_lr_like(key) and (runs[key].dropna() > 0).all():
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(categories)), categories, rotation=30 if len(categories) > 4 else 0)
        _style(ax, f"{score} vs {key}", key, score)
    return _plot(f"score_vs_{_slug(key)}", f"Scores against {key}", fig)


def sweep_plots(sweep: SweepTrials) -> list[Plot]:
    """History, budget curve, parameter importance and (multi-objective) Pareto front of a sweep."""
    if not sweep.objectives:
        return []
    trials = sweep.trials
    finished = finished_mask(trials)
    number = (trials["trial"] if "trial" in trials else pd.Series(range(len(trials)), index=trials.index)).to_numpy()
    slug = _slug(sweep.name)
    plots = []

    fig, axes = _figure(len(sweep.objectives))
    for ax, objective in zip(axes, sweep.objectives):
        values = pd.to_numeric(trials[objective], errors="coerce").to_numpy(dtype=float)
        ax.scatter(number[finished], values[finished], s=18, label="finished trial")
        if np.isfinite(values[~finished]).any():
            ax.scatter(number[~finished], values[~finished], s=18, facecolors="none", edgecolors="grey",
                       label="pruned / running")
        best = best_so_far(np.where(finished, values, np.nan), is_higher_better(objective))
        ax.step(number, best, where="post", color=BEST_COLOUR, label="best so far")
        _style(ax, f"{objective} per trial", "trial", objective)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    plots.append(_plot(f"sweep_{slug}_history", f"Sweep {sweep.name}: optimization history", fig))

    objective = sweep.objectives[0]
    higher = is_higher_better(objective)
    values = pd.to_numeric(trials.loc[finished, objective], errors="coerce").to_numpy(dtype=float)
    curve = expected_best(values, higher)
    if len(curve):
        fig, (ax,) = _figure(1)
        k = np.arange(1, len(curve) + 1)
        ax.plot(k, curve, marker="o", markersize=3, label="expected best of k random trials")
        observed = best_so_far(values[~np.isnan(values)], higher)
        ax.step(k, observed, where="post", color=BEST_COLOUR, alpha=0.7, label="best so far, in trial order")
        _style(ax, f"best {objective} vs number of trials", "trials (budget)", f"best {objective}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
        plots.append(_plot(f"sweep_{slug}_budget", f"Sweep {sweep.name}: budget curve", fig))

    importances = param_importances(trials[finished], sweep.params, objective)
    if importances:
        fig, (ax,) = _figure(1, height=max(2.4, 0.8 + 0.45 * len(importances)))
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        _style(ax, f"importance for {objective} (fANOVA)", "importance", "")
        plots.append(_plot(f"sweep_{slug}_importance", f"Sweep {sweep.name}: parameter importance", fig))

    if len(sweep.objectives) >= 2:
        plots.append(_pareto_plot(sweep, trials[finished], slug))
    return plots


def _pareto_plot(sweep: SweepTrials, trials: pd.DataFrame, slug: str) -> Plot:
    first, second = sweep.objectives[:2]
    points = trials[[first, second]].apply(pd.to_numeric, errors="coerce").dropna().to_numpy(dtype=float)
    front = pareto_mask(points, [is_higher_better(first), is_higher_better(second)]) if len(points) else np.array([], bool)
    fig, (ax,) = _figure(1)
    ax.scatter(points[~front, 0], points[~front, 1], s=18, color="grey", alpha=0.6, label="dominated")
    ordered = points[front][np.argsort(points[front][:, 0])]
    ax.plot(ordered[:, 0], ordered[:, 1], marker="o", color=BEST_COLOUR, label="Pareto front")
    _style(ax, f"{first} vs {second}", first, second)
    ax.legend(fontsize=7)
    return _plot(f"sweep_{slug}_pareto", f"Sweep {sweep.name}: Pareto front", fig)


def _series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(r.get("step"), r.get(key)) for r in records]
    pairs = [(s, v) for s, v in pairs if isinstance(s, (int, float)) and isinstance(v, (int, float))]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=float)


def _any_eval(histories: dict[str, list[dict]], key: str) -> bool:
    return any(r.get("kind") == "eval" and r.get(key) is not None for records in histories.values() for r in records)


def _style(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def _figure(panels: int, height: float = HEIGHT) -> tuple[Figure, np.ndarray]:
    """A figure of ``panels`` side by side; one panel is wider than each of several."""
    width = SINGLE_WIDTH if panels == 1 else PANEL_WIDTH * panels
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, np.atleast_1d(fig.subplots(1, panels))


def _plot(name: str, title: str, fig: Figure) -> Plot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return Plot(name, title, buffer.getvalue(), wide=len(fig.axes) > 1)


def _short(run: str, width: int = 32) -> str:
    """Legend label: the end of a long run path is the part that tells runs apart."""
    return run if len(run) <= width else "…" + run[-(width - 1):]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"
