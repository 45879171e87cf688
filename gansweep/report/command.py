"""``gansweep report ROOT... [--sort KEY] [--top N] [--filter EXPR] [--group-by a,b]
[--columns a,b | --all-columns] [outputs]``.

Reads run folders, prints the runs table (and group table), and writes the requested
CSV / JSON / Parquet / HTML / PNG files. The table shows a compact set of columns by
default, on a terminal or not; on a terminal those that do not fit are named instead.
Errors are raised as ReportError; the main CLI prints them as one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape

from gansweep.atomic import write_bytes_atomic
from gansweep.errors import ReportError
from gansweep.report.export import FORMATS, table_bytes
from gansweep.report.html import Page, render_page
from gansweep.report.load import load_runs
from gansweep.report.plots import importance_note, make_plots
from gansweep.report.provenance import flag_mixed_scoring
from gansweep.report.sweeps import collect_sweeps
from gansweep.report.table import (
    MODES,
    RUN_WIDTH,
    RUN_WIDTH_NARROW,
    WIDE_TERMINAL,
    chosen_columns,
    compact_columns,
    default_objectives,
    default_sort_key,
    filter_runs,
    fit_columns,
    group_runs,
    is_higher_better,
    key_scores,
    primary_scores,
    runs_table,
    short_names,
    score_name,
    sort_runs,
    with_modes,
)

# A table not cut to a terminal keeps its natural width, within these.
MIN_NATURAL_WIDTH = 80
MAX_NATURAL_WIDTH = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` flags to ``parser``."""
    parser.add_argument("roots", nargs="+", type=Path, metavar="ROOT",
                        help="folders to search, at any depth, for run folders (holding summary.json)")
    parser.add_argument("--sort", metavar="KEY",
                        help="column to rank by, in its better direction (default: the default objective most runs have, "
                             "fid for images, mixture_tv for 2D mixtures)")
    parser.add_argument("--top", type=_positive_int, metavar="N", help="keep only the best N runs")
    parser.add_argument("--filter", metavar="EXPR",
                        help="comparisons of columns with values joined by and/or/not, never Python, e.g. "
                             "\"model == 'dcgan' and (batch_size >= 64 or not model.ngf == 32)\"")
    parser.add_argument("--group-by", metavar="A,B",
                        help="comma-separated columns: count and mean/min/max of the scores per group")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--columns", metavar="A,B",
                       help="show these columns, in this order (default: run, status, diagnosis, the objective "
                            "scores, the hyperparameters that vary among the runs shown)")
    shown.add_argument("--all-columns", action="store_true", help="show every column (the exported files always have all)")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="write the table as CSV")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the table as JSON records")
    parser.add_argument("--parquet", type=Path, metavar="PATH", help="write the table as Parquet (needs pyarrow)")
    parser.add_argument("--html", type=Path, metavar="PATH", help="write a self-contained HTML report")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write the report's plots as PNG files")


def run(args: argparse.Namespace, out: Console | None = None, err: Console | None = None) -> int:
    """Run ``gansweep report``; returns the exit code (0). Raises ReportError on bad input.

    ``out`` and ``err`` default to the terminal's stdout and stderr.
    """
    out = out or Console(highlight=False)
    err = err or Console(stderr=True, highlight=False, soft_wrap=True)

    # Load every run and say what could not be read.
    result = load_runs(args.roots)
    _warn(err, result.warnings)
    if result.runs.empty:
        raise ReportError(f"all {result.found} run folders under {_roots(args)} were skipped (damaged summary.json)")

    # Select, flag and rank.
    runs = result.runs
    if args.filter:
        runs = filter_runs(runs, args.filter)
        if runs.empty:
            raise ReportError(f"no run matches --filter {args.filter!r} ({len(result.runs)} runs loaded)")
    runs, flag_warnings = flag_mixed_scoring(runs)
    _warn(err, flag_warnings)
    sort_key = args.sort or default_sort_key(runs, {name: info.objectives for name, info in result.sweeps.items()})
    runs = sort_runs(runs, sort_key)
    by = _split(args.group_by, "--group-by") if args.group_by else []
    groups = group_runs(runs, by, sort_key) if by else None
    shown = runs.head(args.top) if args.top else runs
    # Every file serialized and every path checked before the table is printed: a bad
    # --parquet or --html is one line, not a screenful and then the line.
    exported = groups if groups is not None else runs
    tables = {getattr(args, fmt): table_bytes(exported, fmt) for fmt in FORMATS if getattr(args, fmt)}
    for path in [*tables, *[p for p in (args.html, args.plots) if p is not None]]:
        _check_writable(path)

    # Print: the compact columns cut to the terminal, or the chosen ones at full width.
    declared = [o for info in result.sweeps.values() for o in info.objectives]
    primary = primary_scores(shown, sort_key, declared)
    fit = out.is_terminal and not (args.columns or args.all_columns)
    prefix, names = short_names(list(shown["run"]), (RUN_WIDTH if out.width >= WIDE_TERMINAL else RUN_WIDTH_NARROW) if fit else None)
    if args.all_columns:
        columns = list(shown.columns)
    elif args.columns:
        columns = chosen_columns(shown, _split(args.columns, "--columns"))
    else:
        shown = with_modes(shown)
        columns = compact_columns(shown, result.config_columns, primary)
    title = f"runs in {prefix}/" if prefix else ""
    # By role: who, how it ended, why; the objective; the scores that matter for the data.
    key = [MODES if k == "modes_covered" and MODES in shown else k for k in key_scores(shown, sort_key)]
    first = list(dict.fromkeys(["run", "status", "diagnosis", *primary, *key, *default_objectives(shown), "flags"]))
    _print_table(out, shown.assign(run=names), columns, sort_key, title, first if fit else None)
    if groups is not None:
        _print_table(out, groups, list(groups.columns), None, "groups", [*by, "count"] if out.is_terminal else None)
    out.print(_counts_line(result.found, len(result.skipped), len(runs), len(shown), sort_key), soft_wrap=True)

    # Write the requested files: every run that passed the filter (--top only shortens the
    # screen), or the group table when grouping.
    for path, data in tables.items():  # all serialized first: a format error writes nothing
        _write(path, data, out)
    if args.html is None and args.plots is None:
        return 0
    sweeps = collect_sweeps(runs, result.sweeps, sort_key)
    plots = make_plots(runs, sweeps, result.config_columns, sort_key)
    notes = [note for note in map(importance_note, sweeps) if note]
    for note in notes:
        err.print(f"note: {note}", markup=False)
    if args.plots is not None:
        for plot in plots:
            _write(args.plots / f"{plot.name}.png", plot.png, out)
    if args.html is not None:
        page = Page(
            runs=shown.assign(run=short_names(list(shown["run"]))[1]), columns=columns, sort_key=sort_key,
            roots=[str(r) for r in args.roots], found=result.found, skipped=len(result.skipped),
            warnings=result.warnings + flag_warnings + notes, groups=groups, plots=plots,
        )
        _write(args.html, render_page(page).encode("utf-8"), out)
    return 0


def _print_table(out: Console, frame: pd.DataFrame, columns: list[str], sort_key: str | None, title: str,
                 first: list[str] | None) -> None:
    """With ``first`` (the columns that matter most), print the columns that fit the
    terminal and name the others; without, print every column at the table's natural width."""
    on_screen, wrap = fit_columns(frame, columns, out.width, first, sort_key) if first is not None else (columns, None)
    table = runs_table(frame, on_screen, sort_key, title=title, wrap=wrap)
    if first is None:
        width = out.width
        out.width = MAX_NATURAL_WIDTH  # measure the table unconstrained, then print it at that width
        out.width = max(MIN_NATURAL_WIDTH, out.measure(table).maximum)
        out.print(table)
        out.width = width
    else:
        out.print(table)
    if len(on_screen) < len(columns):
        hidden = ", ".join(c for c in columns if c not in on_screen)
        out.print(f"hidden to fit the terminal: {hidden} (see --columns, --all-columns, --csv or --html)",
                  style="dim", markup=False)


def _warn(err: Console, lines: list[str]) -> None:
    for line in lines:
        err.print(f"[yellow]warning:[/] {escape(line)}")


def _counts_line(found: int, skipped: int, matched: int, shown: int, sort_key: str | None) -> str:
    line = f"{found} run folders found, {skipped} skipped"
    if matched < found - skipped:
        line += f", {matched} match the filter"
    line += f"; showing {shown}"
    if sort_key:
        better = score_name(sort_key) is not None or sort_key == "images_per_s"
        order = f"{'higher' if is_higher_better(sort_key) else 'lower'} is better" if better else "ascending"
        line += f", sorted by {sort_key} ({order})"
    return line


def _write(path: Path, data: bytes, out: Console) -> None:
    """Write one file atomically; an OS failure becomes a one-line ReportError."""
    try:
        write_bytes_atomic(path, data)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from None
    out.print(f"wrote {path}", markup=False, soft_wrap=True)


def _check_writable(path: Path) -> None:
    """A ReportError unless ``path`` can be written: not a folder (for a file), and its
    nearest existing parent a folder this process may write into."""
    parent = path.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent == path.absolute() and not path.is_dir():
        parent = parent.parent  # the file exists: it is replaced in its folder
    try:  # a probe, as os.access says yes to root even where nothing can be written (/proc)
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".gansweep-probe-"))
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror} in {parent}") from None


def _split(text: str, flag: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise ReportError(f"{flag} needs at least one column name")
    return keys


def _roots(args: argparse.Namespace) -> str:
    return ", ".join(str(r) for r in args.roots)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
