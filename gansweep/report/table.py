"""Sort, filter, group and format the runs table; render it with rich."""

from __future__ import annotations

import math
from numbers import Integral, Number
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table
from rich.text import Text

from gansweep.errors import ReportError
from gansweep.report.diagnose import HEALTHY
from gansweep.report.filter import filter_mask
from gansweep.health import not_working
from gansweep.report.load import HYPERPARAMETERS, MODES_TOTAL
from gansweep.rundir import Status
from gansweep.scores import DEFAULT_OBJECTIVE, KEY_SCORES, SCORES, format_score, higher_is_better

# Whole-number values of these are still measurements, shown with decimals.
MEASUREMENTS = frozenset({"loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "images_per_s", "epochs"})
# On a terminal: run names longer than this are cut (RUN_WIDTH_NARROW below
# WIDE_TERMINAL columns), and the diagnosis wraps at DIAGNOSIS_WIDTH, or down to
# DIAGNOSIS_MIN when the scores that matter need the width: neither takes their place.
RUN_WIDTH = 22
RUN_WIDTH_NARROW = 14
WIDE_TERMINAL = 120
DIAGNOSIS_WIDTH = 26
DIAGNOSIS_MIN = 10
MISSING = "–"
# Between a score and its statistic in a group table's column names: fid:mean.
GROUP_STAT = ":"
# The display column of modes_covered beside modes_total: "8/8" under "modes".
MODES = "modes"


def score_name(key: str) -> str | None:
    """The registered score a column holds: ``fid`` for fid and best_fid, else None."""
    for name in (key, key.removeprefix("best_")):
        if name in SCORES:
            return name
    return None


def is_higher_better(key: str) -> bool:
    """True when a larger ``key`` is better (coverage, images_per_s...), False for fid, losses, time..."""
    score = score_name(key)
    return higher_is_better(score) if score else key == "images_per_s"


def is_lr_like(key: str) -> bool:
    """True for lr, lr_g, lr_d, optim.lr, learning_rate...: swept on a log scale."""
    leaf = key.rsplit(".", 1)[-1]
    return leaf.startswith("lr") or leaf.endswith("_lr") or "learning_rate" in leaf


def default_sort_key(runs: pd.DataFrame, sweep_objectives: dict[str, list[str]] | None = None) -> str | None:
    """The objective most runs were judged by, or None: a sweep trial's is its sweep's first
    declared objective (``sweep_objectives``, by sweep name), any other run's the default
    objective of its data (``scores.DEFAULT_OBJECTIVE``); a run counts where it has a value."""
    declared = {name: objs[0] for name, objs in (sweep_objectives or {}).items() if objs}
    own = runs["sweep"].map(declared) if "sweep" in runs and declared else pd.Series(None, index=runs.index, dtype=object)
    counts: dict[str, int] = {}
    for key in dict.fromkeys([*declared.values(), *DEFAULT_OBJECTIVE.values()]):  # ties: a declared one, then as listed
        if key not in runs:
            continue
        judged_by = (own == key) | (own.isna() & (key in DEFAULT_OBJECTIVE.values()))
        counts[key] = int((judged_by & runs[key].notna()).sum())
    best = max(counts, key=counts.get, default=None)
    return best if best is not None and counts[best] > 0 else None


def filter_runs(runs: pd.DataFrame, expr: str) -> pd.DataFrame:
    """Keep the runs matching a --filter expression (gansweep.report.filter: comparisons
    joined by and/or/not, never Python); a bad one is a ReportError."""
    return runs[filter_mask(runs, expr)]


def sort_runs(runs: pd.DataFrame, key: str | None) -> pd.DataFrame:
    """Sort by ``key`` in its better direction, runs without a value last; stable. By a
    score, runs whose generator does not work (``health.not_working``) rank below every
    working one, whatever their value: FID can rank grey noise above half-formed digits."""
    if key is None:
        return runs
    if key not in runs:
        raise ReportError(f"cannot sort by {key!r}: no such column (have: {', '.join(runs.columns)})")
    ranked = runs.sort_values(key, ascending=not is_higher_better(key), na_position="last", kind="stable")
    if score_name(key) is None:
        return ranked
    # Working runs, then runs without a working generator, then runs without a value.
    tier = np.where(ranked[key].isna(), 2, np.where(working(ranked), 0, 1))
    return ranked.iloc[np.argsort(tier, kind="stable")]


def working(runs: pd.DataFrame) -> pd.Series:
    """True for each run whose last scores show a working generator (``health.not_working``)."""
    keys = [k for k in (*SCORES, MODES_TOTAL) if k in runs]

    def works(row: pd.Series) -> bool:
        return not_working({k: float(v) for k, v in row.items() if pd.notna(v)}) is None

    return runs[keys].apply(works, axis=1).astype(bool) if keys and len(runs) else pd.Series(True, index=runs.index)


def score_columns(runs: pd.DataFrame, sort_key: str | None = None) -> list[str]:
    """Registered scores (``scores.SCORES``, in its order) with at least one value, the sort key first."""
    candidates = [sort_key] if sort_key else []
    candidates += [name for name in SCORES if name != sort_key]
    return [
        c for c in candidates
        if c in runs and pd.api.types.is_numeric_dtype(runs[c]) and runs[c].notna().any()
    ]


def group_runs(runs: pd.DataFrame, by: list[str], sort_key: str | None) -> pd.DataFrame:
    """Per group of ``by`` values: ``count`` of runs and ``score:mean``, ``:min``, ``:max``
    of every score (a colon, as ``modes_covered_min`` is a score of its own).

    Groups are ordered by the mean of the sort key in its better direction.
    """
    missing = [key for key in by if key not in runs]
    if missing:
        raise ReportError(f"cannot --group-by {', '.join(missing)}: no such column")
    aggregations: dict[str, tuple[str, str]] = {"count": ("run", "size")}
    for score in score_columns(runs, sort_key):
        for stat in ("mean", "min", "max"):
            aggregations[f"{score}{GROUP_STAT}{stat}"] = (score, stat)
    groups = runs.groupby(by, dropna=False, sort=True).agg(**aggregations).reset_index()
    order_key = f"{sort_key}{GROUP_STAT}mean"
    if order_key in groups:
        groups = groups.sort_values(order_key, ascending=not is_higher_better(sort_key), na_position="last", kind="stable")
    return groups


def primary_scores(runs: pd.DataFrame, sort_key: str | None, objectives: list[str]) -> list[str]:
    """The columns runs are judged by, those with a value: the sort key and the sweeps'
    declared objectives; without either, the default objective of each kind of data."""
    keys = dict.fromkeys([*([sort_key] if sort_key else []), *objectives]) or dict.fromkeys(DEFAULT_OBJECTIVE.values())
    return [key for key in keys if key in runs and runs[key].notna().any()]


def default_objectives(runs: pd.DataFrame) -> list[str]:
    """The default objective of each kind of data the runs are on, those with a value."""
    return [key for key in DEFAULT_OBJECTIVE.values() if key in runs and runs[key].notna().any()]


def key_scores(runs: pd.DataFrame, sort_key: str | None = None) -> list[str]:
    """The scores that matter for the runs' data (``scores.KEY_SCORES``: modes and HQ share
    on 2D mixtures, FID, precision and modes on images), those with a value; those of the
    sort key's kind of data first."""
    kinds = sorted(KEY_SCORES, key=lambda kind: sort_key not in SCORES or kind not in SCORES[sort_key].kinds)
    names = dict.fromkeys(name for kind in kinds for name in KEY_SCORES[kind])
    return [name for name in names if name in runs and runs[name].notna().any()]


def with_modes(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a ``modes`` column, modes_covered/modes_total as "8/8", for display."""
    if "modes_covered" not in runs or MODES_TOTAL not in runs:
        return runs
    cells = [f"{int(c)}/{int(t)}" if pd.notna(c) and pd.notna(t) else None
             for c, t in zip(runs["modes_covered"], runs[MODES_TOTAL])]
    return runs.assign(**{MODES: cells})


def compact_columns(runs: pd.DataFrame, config_columns: list[str], primary: list[str]) -> list[str]:
    """The default columns, in this order: run, status, diagnosis, the primary scores, the
    scores that matter for the data (``key_scores``), the other objective scores with a
    value, the hyperparameters and config keys that vary among ``runs``, and flags when
    any run has one. modes_covered shows as ``modes`` ("8/8") where ``runs`` has that column.

    A column equal to one already chosen in every row (lr_g that follows lr) is left out.
    """
    scores = list(dict.fromkeys([*primary, *key_scores(runs, primary[0] if primary else None)]))
    scores += [name for name, score in SCORES.items() if score.objective and name not in scores and name in runs and runs[name].notna().any()]
    columns = ["run", "status", "diagnosis", *[MODES if s == "modes_covered" and MODES in runs else s for s in scores]]
    for key in (*HYPERPARAMETERS, *config_columns):
        if key in runs and runs[key].nunique(dropna=True) > 1 and not any(runs[key].equals(runs[c]) for c in columns):
            columns.append(key)
    if "flags" in runs and runs["flags"].astype(bool).any():
        columns.append("flags")
    return columns


def chosen_columns(runs: pd.DataFrame, names: list[str]) -> list[str]:
    """``--columns a,b``: those columns, in that order; an unknown name is a ReportError."""
    unknown = [name for name in names if name not in runs]
    if unknown:
        raise ReportError(f"--columns {','.join(unknown)}: no such column (see --all-columns for every column)")
    return list(dict.fromkeys(names))


def fit_columns(runs: pd.DataFrame, columns: list[str], width: int, first: list[str],
                sort_key: str | None = None) -> tuple[list[str], int]:
    """The columns that fit in ``width`` characters, taken by priority, in table order,
    and the width the diagnosis wraps at.

    Priority: ``first`` (in its order), then the columns that are not scores, left to
    right (the hyperparameters that tell runs apart), then the remaining scores. The
    diagnosis takes DIAGNOSIS_MIN while ``first`` is placed, then what is left of its
    natural width up to DIAGNOSIS_WIDTH, before any other column.
    """
    rest = [c for c in columns if c not in first]
    firsts = [c for c in dict.fromkeys(first) if c in columns]  # a score named twice (objective, default) counts once
    others = [c for c in rest if score_name(c) is None] + [c for c in rest if score_name(c) is not None]
    needed = {c: _natural_width(runs, c, c == sort_key) + 3 for c in columns}  # padding and border
    diagnosis = needed.pop("diagnosis", 3) - 3
    kept, used = set(), 1  # the table's left border
    if diagnosis:
        kept.add("diagnosis")
        used += min(diagnosis, DIAGNOSIS_MIN) + 3
    for column in [c for c in firsts if c != "diagnosis"]:
        if used + needed[column] <= width:
            kept.add(column)
            used += needed[column]
    wrap = min(diagnosis, DIAGNOSIS_MIN)
    if diagnosis:
        wrap = max(wrap, min(diagnosis, DIAGNOSIS_WIDTH, width - used + wrap))
        used += wrap - min(diagnosis, DIAGNOSIS_MIN)
    for column in others:
        if used + needed[column] <= width:
            kept.add(column)
            used += needed[column]
    return [c for c in columns if c in kept], wrap


def _natural_width(runs: pd.DataFrame, column: str, arrow: bool) -> int:
    cells = [len(format_value(column, v)) for v in runs[column]]
    return max(len(column) + (2 if arrow else 0), *cells)


def short_names(names: list[str], width: int | None = None) -> tuple[str, list[str]]:
    """The folder prefix all run names share, and each name without it; with ``width``,
    longer names lose their leading folders, then the end of their last folder: a run
    folder's name starts with what tells it apart (its time, or trial number)."""
    parts = [name.split("/") for name in names]
    common = 0
    while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
        common += 1
    rest = ["/".join(p[common:]) for p in parts]
    return "/".join(parts[0][:common]) if parts else "", [_shorten(r, width) for r in rest]


def format_value(key: str, value: Any) -> str:
    """Format one cell: scores in their registry format, durations as 1h02m, lr as 0.0002,
    counts as integers, other measurements to 3-4 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, Number):
        return str(value)
    # Group columns (fid:mean, steps:max...) are formatted like the column they summarize.
    base = key.partition(GROUP_STAT)[0]
    value = int(value) if isinstance(value, Integral) else float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    score = score_name(base)
    if score is not None and not (SCORES[score].fmt == "d" and not float(value).is_integer()):
        return format_score(score, value)
    if base == "wall_time_s":
        return _duration(value)
    if float(value).is_integer() and base not in MEASUREMENTS:
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
    """rich style of a status (``Status.style``)."""
    return Status(str(status)).style


def runs_table(runs: pd.DataFrame, columns: list[str], sort_key: str | None, title: str = "", wrap: int | None = None) -> Table:
    """A rich Table of ``runs`` showing ``columns``; the sort key column is bold.

    ``wrap``: the width the diagnosis wraps at (on a terminal); otherwise no cell wraps.
    """
    table = Table(title=title or None, header_style="bold", show_lines=False, pad_edge=False)
    for column in columns:
        numeric = pd.api.types.is_numeric_dtype(runs[column])
        label = column
        if column == sort_key:
            label = f"{column} {'↑' if is_higher_better(column) else '↓'}"
        wraps = wrap is not None and column == "diagnosis"
        table.add_column(label, justify="right" if numeric or column == MODES else "left", style="bold" if column == sort_key else None,
                         no_wrap=not wraps, max_width=wrap if wraps else None)
    for record in runs[columns].itertuples(index=False, name=None):
        cells = []
        for column, value in zip(columns, record):
            text = format_value(column, value)
            style = status_style(value) if column == "status" else ""
            if column == "diagnosis" and text not in (HEALTHY, MISSING):
                style = "yellow"
            cells.append(Text(text, style=style))
        table.add_row(*cells)
    return table


def _shorten(name: str, width: int | None) -> str:
    """Drop leading folders (as "…/") until the name fits; a last folder still too long
    keeps its start ("14-42-07.123456…"): times and trial numbers lead a run's name."""
    if width is None or len(name) <= width:
        return name
    parts = name.split("/")
    while len(parts) > 1 and len("…/" + "/".join(parts)) > width:
        parts.pop(0)
    tail = "/".join(parts)
    if len(parts) > 1 or len(tail) <= width - 2:
        return "…/" + tail
    return tail[:width - 1] + "…"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
