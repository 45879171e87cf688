"""The report's figures, drawn with matplotlib's object API (no pyplot, no global
backend switch) and returned as PNG bytes, ready to embed in HTML or write to files.

The sweep figures are the one way gansweep draws a sweep: ``gansweep sweep`` writes
them into its folder through ``sweep_plots`` too (gansweep/sweep/outputs.py).
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from gansweep.errors import RunFolderError
from gansweep.lineage import PBT_LINEAGE, History, lineage_png
from gansweep.report.sweeps import (
    SweepTrials,
    best_so_far,
    expected_best,
    finished_mask,
    param_importances,
    pareto_mask,
    stopped_mask,
)
from gansweep.report.table import is_higher_better, is_lr_like, score_columns, working
from gansweep.rundir import RunFolder
from gansweep.scores import DEFAULT_OBJECTIVE

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
LEGEND_HEIGHT = 0.5  # a legend under the panels
# Panels per row of a sweep's slice plot (one panel per swept parameter).
SLICE_COLUMNS = 3
BEST_COLOUR = "#d62728"
# Parameter importance is drawn from at least this many completed trials: fANOVA's
# forest fitted to three trials ranks parameters by chance.
MIN_IMPORTANCE_TRIALS = 10
# A categorical value's points are jittered within +-this of its tick, at random (seeded):
# spread in row order they would draw a trend the data does not have.
STRIP_JITTER = 0.15
# What each sweep plot needs from the trials to be drawn; gansweep sweep notes the missing ones.
SWEEP_PLOT_NEEDS = {
    "history": "a trial with a score",
    "budget": "a completed trial with a score",
    "importance": "10 completed trials with different scores and a parameter that varies (fANOVA on fewer draws noise)",
    "slices": "a swept parameter and a trial with a score",
    "pareto": "two objectives and a completed trial with both scores",
}


@dataclass
class Plot:
    """One figure of the report."""

    name: str
    """File stem, unique in the report: ``curves_loss``, ``sweep_lr_history``..."""
    title: str
    png: bytes
    wide: bool = False
    """Several panels: the HTML page gives it a whole row."""
    kind: str = ""
    """A sweep figure's kind, a key of SWEEP_PLOT_NEEDS: a sweep folder names its file by it."""


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
    return plots + lineage_plots(runs, sort_key)


def lineage_plots(runs: pd.DataFrame, sort_key: str | None) -> list[Plot]:
    """Per population-based training run among ``runs``: its members' hyperparameters by
    step, coloured by their score (the sort key, else the PBT's objective)."""
    plots = []
    members = [(row, Path(row["path"]) / PBT_LINEAGE) for row in runs.to_dict("records")]
    by_pbt: dict[str, list[tuple[dict, Path]]] = {}
    for row, path in members:
        if path.is_file():
            by_pbt.setdefault(str(row.get("sweep")), []).append((row, path))
    for name, rows in by_pbt.items():
        summary = RunFolder(Path(rows[0][0]["path"])).read_summary()
        objective = sort_key or (summary.sweep.objectives[0] if summary and summary.sweep and summary.sweep.objectives else None)
        if objective is None:
            continue
        records = [(row, json.loads(path.read_text())) for row, path in rows]
        histories = {rec["member"]: History.from_record(rec) for _, rec in records}
        scores = {rec["member"]: row.get(objective) for row, rec in records}
        total = summary.total_steps if summary is not None else max(h.steps[-1][0] for h in histories.values()) + 1
        png = lineage_png(histories, scores, objective, total, f"pbt {name}")
        plots.append(Plot(f"lineage_{name}", f"PBT {name}: each member's hyperparameters by step, coloured by {objective}", png, wide=True))
    return plots


def training_curves(top: pd.DataFrame, sort_key: str | None) -> list[Plot]:
    """D and G losses, and the sort key (else a default objective) at each evaluation, of the ``top`` runs."""
    histories = {run: _metrics(Path(path)) for run, path in zip(top["run"], top["path"])}
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

    metric = next((k for k in (sort_key, *DEFAULT_OBJECTIVE.values()) if k and _any_eval(histories, k)), None)
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
    x, categories = strip_positions(runs[key])
    for ax, score in zip(axes, scores):
        y = _numbers(runs[score])
        ax.scatter(x, y, s=18, alpha=0.75, edgecolors="none")
        best = best_position(runs, score)
        if best is not None:
            ax.scatter([x[best]], [y[best]], s=90, marker="*", color=BEST_COLOUR, label="best", zorder=3)
        if categories is not None:
            ax.set_xticks(range(len(categories)), categories, rotation=30 if len(categories) > 4 else 0)
        elif is_lr_like(key) and (runs[key].dropna() > 0).all():
            _log_x(ax, runs[key].dropna().to_numpy(dtype=float))
        _style(ax, f"{score} vs {key}", key, score)
    return _plot(f"score_vs_{_slug(key)}", f"Scores against {key}", fig)


def _working_first(runs: pd.DataFrame, mask: np.ndarray) -> tuple[np.ndarray, bool]:
    """``mask`` narrowed to the runs with a working generator (``health.not_working``) where
    any of them has one, as the table ranks them; and whether it was narrowed."""
    works = mask & working(runs).to_numpy(dtype=bool)
    return (works, True) if works.any() else (mask, False)


def best_position(runs: pd.DataFrame, score: str) -> int | None:
    """The position of the run a plot stars as best by ``score``, working generators first;
    None without a value."""
    y = _numbers(runs[score])
    pool, _ = _working_first(runs, np.isfinite(y))
    if not pool.any():
        return None
    ranked = np.where(pool, y, np.nan)
    return int(np.nanargmax(ranked) if is_higher_better(score) else np.nanargmin(ranked))


def sweep_plots(sweep: SweepTrials) -> list[Plot]:
    """History, budget curve, parameter importance, slices and (several objectives) the
    Pareto front of a sweep, from its trials' rows.

    Trials stopped early (pruned, collapsed, overpowered, diverged) are drawn at their
    last score with their own marker: a sweep whose trials were mostly stopped still
    shows where they got to. Best-so-far lines, the budget curve, importances and the
    Pareto front use completed trials only, whose scores are objective values; the
    best-so-far lines and the budget curve only those with a working generator, which
    alone can be a sweep's best, where there are any.
    """
    if not sweep.objectives:
        return []
    trials = sweep.trials
    finished = finished_mask(trials)
    can_win, narrowed = _working_first(trials, finished)  # with no working generator, what the trials reached
    counted = "completed, working" if narrowed else "completed"
    number = trials["trial"].to_numpy(dtype=float)
    slug = _slug(sweep.name)
    plots = []

    fig, axes = _figure(len(sweep.objectives), height=HEIGHT + LEGEND_HEIGHT)
    drawn = False
    for ax, objective in zip(axes, sweep.objectives):
        values = _numbers(trials[objective])
        drawn |= _scatter_trials(ax, number, values, trials)
        best = best_so_far(np.where(can_win, values, np.nan), is_higher_better(objective))
        if np.isfinite(best).any():
            ax.step(number, best, where="post", color=BEST_COLOUR, label=f"best so far ({counted})")
        _style(ax, f"{objective} per trial", "trial", objective)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_below(fig)
    if drawn:
        plots.append(_plot(f"sweep_{slug}_history", f"Sweep {sweep.name}: optimization history", fig, "history"))

    objective = sweep.objectives[0]
    higher = is_higher_better(objective)
    values = _numbers(trials.loc[can_win, objective])
    curve = expected_best(values, higher)
    if len(curve):
        fig, (ax,) = _figure(1)
        k = np.arange(1, len(curve) + 1)
        ax.plot(k, curve, marker="o", markersize=3, label="expected best of k random trials")
        observed = best_so_far(values[~np.isnan(values)], higher)
        ax.step(k, observed, where="post", color=BEST_COLOUR, alpha=0.7, label="best so far, in trial order")
        _style(ax, f"best {objective} vs number of completed trials", "completed trials (budget)", f"best {objective}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
        plots.append(_plot(f"sweep_{slug}_budget", f"Sweep {sweep.name}: budget curve", fig, "budget"))

    importances = param_importances(trials[finished], sweep.params, objective) if finished.sum() >= MIN_IMPORTANCE_TRIALS else {}
    if importances:
        fig, (ax,) = _figure(1, height=max(2.4, 0.8 + 0.45 * len(importances)))
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        _style(ax, f"importance for {objective} (fANOVA, completed trials)", "importance", "")
        plots.append(_plot(f"sweep_{slug}_importance", f"Sweep {sweep.name}: parameter importance", fig, "importance"))

    slices = _slices(sweep, objective)
    if slices is not None:
        plots.append(_plot(f"sweep_{slug}_slices", f"Sweep {sweep.name}: {objective} against each parameter", slices, "slices"))

    if len(sweep.objectives) >= 2:
        pareto = _pareto_plot(sweep, trials[finished], slug)
        if pareto is not None:
            plots.append(pareto)
    return plots


def importance_note(sweep: SweepTrials) -> str | None:
    """Why a sweep's parameter importance is not drawn, when too few trials completed."""
    completed = int(finished_mask(sweep.trials).sum())
    if not sweep.objectives or completed >= MIN_IMPORTANCE_TRIALS:
        return None
    return (f"sweep {sweep.name}: parameter importance not drawn: {completed} completed trials, "
            f"and fANOVA needs {MIN_IMPORTANCE_TRIALS} (from fewer it ranks parameters by chance)")


def _slices(sweep: SweepTrials, objective: str) -> Figure | None:
    """One panel per swept parameter: the objective of every trial against its value."""
    trials = sweep.trials
    values = _numbers(trials[objective])
    params = [p for p in sweep.params if trials[p].notna().any()]
    if not params or not np.isfinite(values).any():
        return None
    columns = min(len(params), SLICE_COLUMNS)
    rows = math.ceil(len(params) / columns)
    width = SINGLE_WIDTH if columns == 1 else PANEL_WIDTH * columns
    fig = Figure(figsize=(width, HEIGHT * rows + LEGEND_HEIGHT), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, param in zip(axes, params):
        x, categories = strip_positions(trials[param])
        _scatter_trials(ax, x, values, trials)
        if categories is not None:
            ax.set_xticks(range(len(categories)), categories, rotation=30 if len(categories) > 4 else 0)
        elif is_lr_like(param) and (trials[param].dropna() > 0).all():
            _log_x(ax, trials[param].dropna().to_numpy(dtype=float))
        _style(ax, f"{objective} vs {param}", param, objective)
    _legend_below(fig)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    return fig


def _scatter_trials(ax, x: np.ndarray, y: np.ndarray, trials: pd.DataFrame) -> bool:
    """Completed trials as dots, stopped ones as crosses at their last score, running or
    interrupted ones as rings; a legend entry per kind drawn. True when anything was drawn."""
    finished, stopped = finished_mask(trials), stopped_mask(trials)
    shown = np.isfinite(x) & np.isfinite(y)
    stopped_as = ", ".join(dict.fromkeys(trials["status"][stopped & shown]))
    kinds = [
        (finished, "completed", {"marker": "o", "s": 20}),
        (stopped, f"stopped early ({stopped_as}): last score", {"marker": "x", "s": 26, "color": "#ff7f0e"}),
        (~finished & ~stopped, "running / interrupted: latest score", {"marker": "o", "s": 20, "facecolors": "none", "edgecolors": "grey"}),
    ]
    drawn = False
    for mask, label, style in kinds:
        if (mask & shown).any():
            ax.scatter(x[mask & shown], y[mask & shown], label=label, **style)
            drawn = True
    return drawn


def _legend_below(fig: Figure) -> None:
    """One legend under the panels, of every kind of mark they show: over a panel it
    would hide the trials of a crowded sweep."""
    entries: dict[str, object] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=3, fontsize=7, frameon=False)


def _pareto_plot(sweep: SweepTrials, trials: pd.DataFrame, slug: str) -> Plot | None:
    first, second = sweep.objectives[:2]
    points = trials[[first, second]].apply(pd.to_numeric, errors="coerce").dropna().to_numpy(dtype=float)
    if not len(points):
        return None
    front = pareto_mask(points, [is_higher_better(first), is_higher_better(second)])
    fig, (ax,) = _figure(1)
    ax.scatter(points[~front, 0], points[~front, 1], s=18, color="grey", alpha=0.6, label="dominated")
    ordered = points[front][np.argsort(points[front][:, 0])]
    ax.plot(ordered[:, 0], ordered[:, 1], marker="o", color=BEST_COLOUR, label="Pareto front")
    _style(ax, f"{first} vs {second} (completed trials)", first, second)
    ax.legend(fontsize=7)
    return _plot(f"sweep_{slug}_pareto", f"Sweep {sweep.name}: Pareto front", fig, "pareto")


def strip_positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """x positions of ``values``: the numbers themselves, or for categories a strip: the
    category's index plus a seeded random jitter within +-STRIP_JITTER."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float), None
    categories = sorted({str(v) for v in values.dropna()})
    positions = values.map(lambda v: categories.index(str(v)) if pd.notna(v) else np.nan).to_numpy(dtype=float)
    jitter = np.random.default_rng(0).uniform(-STRIP_JITTER, STRIP_JITTER, len(positions))
    return positions + jitter, categories


def _log_x(ax, values: np.ndarray) -> None:
    """A log x axis labelled 1e-4, 2e-4, 5e-4...: matplotlib's default labels the minor
    ticks of a range under a decade in full (2x10^-4, 3x10^-4...) and they overlap."""
    ax.set_xscale("log")
    decades = math.log10(values.max() / values.min()) if len(values) else 0.0
    subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=8))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _metrics(run_dir: Path) -> list[dict]:
    """A run's metrics rows; a damaged file draws no curve (load_runs has warned about it)."""
    try:
        return RunFolder(run_dir).read_metrics()
    except (RunFolderError, OSError):
        return []


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


def _plot(name: str, title: str, fig: Figure, kind: str = "") -> Plot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return Plot(name, title, buffer.getvalue(), wide=len([ax for ax in fig.axes if ax.get_visible()]) > 1, kind=kind)


def _short(run: str, width: int = 32) -> str:
    """Legend label: the end of a long run path is the part that tells runs apart."""
    return run if len(run) <= width else "…" + run[-(width - 1):]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"
