"""Sort, filter, group and format the runs table; render it with rich."""

from __future__ import annotations

import math
from numbers import Integral, Number
from typing import Any

import pandas as pd
from rich.table import Table
from rich.text import Text

from gansweep.errors import ReportError
from gansweep.report.load import SCORE_COLUMNS
from gansweep.sweep.objectives import DIRECTIONS

# Keys where a higher value is better: the scores the sweep maximizes, and throughput.
# Every other key sorts ascending, the better direction for fid, mode_kl, best_fid,
# losses and wall time (and the natural one for lr, steps...).
HIGHER_IS_BETTER = frozenset({k for k, d in DIRECTIONS.items() if d == "maximize"} | {"images_per_s"})
DEFAULT_SORT_KEYS = ("fid", "mode_kl")

# The terminal/HTML table shows these (when not empty) plus the differing config keys;
# exported files carry every column.
DISPLAY_COLUMNS = (
    "run", "status", "diagnosis", "model", "data", "data_used", "loss", "lr", "lr_g", "lr_d", "batch_size",
    "steps", *SCORE_COLUMNS, "best_fid", "wall_time_s", "flags",
)
# Shown only when some run's value differs from the partner column (a data fallback,
# separate G/D learning rates).
SHOWN_WHEN_DIFFERENT = {"data_used": "data", "lr_g": "lr", "lr_d": "lr"}
# Columns that hold counts and steps even when pandas stored them as floats (NaN present).
INT_COLUMNS = frozenset({
    "steps", "total_steps", "images_seen", "batch_size", "seed", "trial", "n_fake", "n_real",
    "modes_covered", "modes_total", "best_fid_step",
})
# Keys whose whole-number values are still measurements, shown with decimals.
FLOAT_COLUMNS = frozenset({*SCORE_COLUMNS, "best_fid", "loss_d", "loss_g", "images_per_s"}) - INT_COLUMNS
STATUS_STYLES = {
    "completed": "green",
    "running": "cyan",
    "diverged": "bold red",
    "failed": "red",
    "collapsed": "magenta",
    "interrupted": "yellow",
    "pruned": "dim",
}
MISSING = "–"


def is_higher_better(key: str) -> bool:
    """True when a larger ``key`` is better (coverage...), False for fid, losses, time..."""
    return key in HIGHER_IS_BETTER


def is_lr_like(key: str) -> bool:
    """True for lr, lr_g, lr_d, optim.lr, learning_rate...: swept on a log scale."""
    leaf = key.rsplit(".", 1)[-1]
    return leaf.startswith("lr") or leaf.endswith("_lr") or "learning_rate" in leaf


def default_sort_key(runs: pd.DataFrame) -> str | None:
    """``fid`` when any run has one, else ``mode_kl``, else None (keep load order)."""
    for key in DEFAULT_SORT_KEYS:
        if key in runs and runs[key].notna().any():
            return key
    return None


def filter_runs(runs: pd.DataFrame, expr: str) -> pd.DataFrame:
    """Keep the runs matching a DataFrame.query expression; a bad one is a ReportError."""
    try:
        kept = runs.query(expr)
    except Exception as exc:  # query raises many types (SyntaxError, UndefinedVariableError, TypeError...)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReportError(f"bad --filter expression {expr!r}: {message}") from None
    if not isinstance(kept, pd.DataFrame):
        raise ReportError(f"bad --filter expression {expr!r}: it must select rows")
    return kept


def sort_runs(runs: pd.DataFrame, key: str | None) -> pd.DataFrame:
    """Sort by ``key`` in its better direction, runs without a value last; stable."""
    if key is None:
        return runs
    if key not in runs:
        raise ReportError(f"cannot sort by {key!r}: no such column (have: {', '.join(runs.columns)})")
    return runs.sort_values(key, ascending=not is_higher_better(key), na_position="last", kind="stable")


def score_columns(runs: pd.DataFrame, sort_key: str | None = None) -> list[str]:
    """Numeric score columns with at least one value, the sort key first.

    ``modes_total`` is left out: it describes the data set, not the run.
    """
    candidates = [sort_key] if sort_key else []
    candidates += [c for c in (*SCORE_COLUMNS, "best_fid") if c not in (sort_key, "modes_total")]
    return [
        c for c in candidates
        if c in runs and pd.api.types.is_numeric_dtype(runs[c]) and runs[c].notna().any()
    ]


def group_runs(runs: pd.DataFrame, by: list[str], sort_key: str | None) -> pd.DataFrame:
    """Per group of ``by`` values: ``count`` of runs and mean/min/max of every score.

    Groups are ordered by the mean of the sort key in its better direction.
    """
    missing = [key for key in by if key not in runs]
    if missing:
        raise ReportError(f"cannot --group-by {', '.join(missing)}: no such column")
    aggregations: dict[str, tuple[str, str]] = {"count": ("run", "size")}
    for score in score_columns(runs, sort_key):
        for stat in ("mean", "min", "max"):
            aggregations[f"{score}_{stat}"] = (score, stat)
    groups = runs.groupby(by, dropna=False, sort=True).agg(**aggregations).reset_index()
    order_key = f"{sort_key}_mean"
    if order_key in groups:
        groups = groups.sort_values(order_key, ascending=not is_higher_better(sort_key), na_position="last", kind="stable")
    return groups


def display_columns(runs: pd.DataFrame, config_columns: list[str]) -> list[str]:
    """The columns worth showing on screen: the usual ones and differing config keys, if not empty."""
    shown = []
    for column in (*DISPLAY_COLUMNS, *config_columns):
        if column not in runs or column in shown or not runs[column].notna().any():
            continue
        if column == "flags" and not runs[column].astype(bool).any():
            continue
        partner = SHOWN_WHEN_DIFFERENT.get(column)
        if partner in runs and runs[column].equals(runs[partner]):
            continue
        shown.append(column)
    return shown


def fit_columns(runs: pd.DataFrame, columns: list[str], width: int, sort_key: str | None) -> list[str]:
    """The columns that fit in ``width`` characters, taken by priority, in table order.

    Priority: run, status, the sort key, diagnosis, flags, then left to right.
    """
    first = ["run", "status", sort_key, "diagnosis", "flags"]
    by_priority = [c for c in first if c in columns] + [c for c in columns if c not in first]
    kept, used = set(), 1  # the table's left border
    for column in by_priority:
        cells = [format_value(column, v) for v in runs[column]]
        needed = max(len(column) + 2, *(len(c) for c in cells)) + 3  # padding and border
        if used + needed <= width:
            kept.add(column)
            used += needed
    return [c for c in columns if c in kept]


def format_value(key: str, value: Any) -> str:
    """Format one cell: durations as 1h02m, lr as 0.0002, counts as integers, scores to 3-4 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, Number):
        return str(value)
    # Group columns (fid_mean, steps_max...) are formatted like the column they summarize.
    base = key.rsplit("_", 1)[0] if key.endswith(("_mean", "_min", "_max")) else key
    if isinstance(value, Integral):
        value, whole = int(value), True
    else:
        value = float(value)
        whole = value.is_integer() and base not in FLOAT_COLUMNS
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if base == "wall_time_s":
        return _duration(value)
    if whole or base in INT_COLUMNS:
        return f"{round(value):,}" if abs(value) >= 100_000 else str(round(value))
    if is_lr_like(base):
        return f"{value:.3g}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 1e-3 or magnitude == 0:
        return f"{value:.3f}"
    return f"{value:.2e}"


def status_style(status: Any) -> str:
    """rich style of a status; unknown statuses are plain."""
    return STATUS_STYLES.get(str(status), "")


def runs_table(runs: pd.DataFrame, columns: list[str], sort_key: str | None, title: str = "") -> Table:
    """A rich Table of ``runs`` showing ``columns``; the sort key column is bold."""
    table = Table(title=title or None, header_style="bold", show_lines=False, pad_edge=False)
    for column in columns:
        numeric = pd.api.types.is_numeric_dtype(runs[column])
        label = column
        if column == sort_key:
            label = f"{column} {'↑' if is_higher_better(column) else '↓'}"
        table.add_column(label, justify="right" if numeric else "left",
                         style="bold" if column == sort_key else None, no_wrap=True)
    for record in runs[columns].itertuples(index=False, name=None):
        cells = []
        for column, value in zip(columns, record):
            text = format_value(column, value)
            style = status_style(value) if column == "status" else ""
            if column == "diagnosis" and text not in ("healthy", MISSING):
                style = "yellow"
            cells.append(Text(text, style=style))
        table.add_row(*cells)
    return table


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
