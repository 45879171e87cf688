"""Find run folders under one or more roots and load one row per run.

A run folder is any folder holding a ``summary.json`` (see docs/run-folder.md). Only
small files are read: ``summary.json``, ``config.yaml`` and the tail of
``metrics.jsonl``, so a thousand runs load in about a second.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gansweep.errors import ReportError
from gansweep.report.diagnose import TAIL_LINES, diagnose

SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"

# Folders inside a run that never hold other runs; not walking them keeps discovery fast.
SKIP_DIRS = frozenset({SAMPLES_DIR, "checkpoints", ".hydra", "__pycache__", ".git"})

# The C loader is ~10x faster than the pure-Python one; it matters at 1,000 runs.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Enough bytes of metrics.jsonl to hold the last TAIL_LINES train lines (~300 bytes each).
TAIL_BYTES = 32 * 1024

SCORE_COLUMNS = (
    "fid", "precision", "recall", "density", "coverage",
    "modes_covered", "modes_total", "mode_kl", "hq_fraction", "confidence",
)
PROVENANCE_COLUMNS = ("n_fake", "n_real", "feature_net", "feature_net_sha256")
# The last logged training values: not shown, but there to --sort and --filter on.
TRAINING_COLUMNS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "stop_reason")
# Summary keys copied into the table, in column order; scores follow "images_per_s".
RUN_COLUMNS = (
    "status", "model", "data", "data_used", "loss", "lr", "lr_g", "lr_d", "batch_size",
    "beta1", "beta2", "seed", "steps", "images_seen", "wall_time_s", "images_per_s",
    *SCORE_COLUMNS, "best_fid", "best_fid_step", "sweep", "trial", *PROVENANCE_COLUMNS,
    *TRAINING_COLUMNS,
)


@dataclass
class SweepInfo:
    """What the report knows about one sweep, gathered from its trials' summaries."""

    name: str
    params: list[str] = field(default_factory=list)
    """Sampled config keys (dotted), in first-seen order."""
    objectives: list[str] = field(default_factory=list)
    """Objective names when trials declare ``objectives``; empty means "use the sort key"."""


@dataclass
class LoadResult:
    """The runs found under the roots, one row each, plus what was skipped."""

    runs: pd.DataFrame
    """Columns ``run``, RUN_COLUMNS, ``diagnosis``, differing config keys, ``path``."""
    found: int
    """Folders holding a summary.json, loadable or not."""
    skipped: list[Path]
    """summary.json files that could not be read (damaged or half-written)."""
    warnings: list[str]
    sweeps: dict[str, SweepInfo]
    config_columns: list[str]
    """Config keys (dotted) that differ between runs, or were swept."""


def find_run_dirs(root: Path) -> list[Path]:
    """Return every folder under ``root`` (itself included) that holds a summary.json.

    A run folder is not searched further: runs do not nest.
    """
    found: list[Path] = []
    for current, dirs, files in os.walk(root):
        if SUMMARY_FILE in files:
            found.append(Path(current))
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
    return found


def read_train_tail(run_dir: Path, n: int = TAIL_LINES) -> list[dict[str, Any]]:
    """Return the last ``n`` ``"kind": "train"`` lines of metrics.jsonl (oldest first).

    Reads only the end of the file; a torn last line (a run still writing) is ignored.
    """
    path = run_dir / METRICS_FILE
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            chunk = f.read()
    except OSError:
        return []
    lines = chunk.decode("utf-8", errors="replace").splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line of the chunk is cut
    tail: list[dict[str, Any]] = []
    for line in reversed(lines):
        record = _parse_json_line(line)
        if record is not None and record.get("kind") == "train":
            tail.append(record)
            if len(tail) == n:
                break
    return tail[::-1]


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Return every parseable line of metrics.jsonl; damaged lines are dropped."""
    try:
        text = (run_dir / METRICS_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = (_parse_json_line(line) for line in text.splitlines())
    return [r for r in records if r is not None]


def latest_sample(run_dir: Path) -> Path | None:
    """The sample grid of the highest step (``samples/step_XXXXXXX.png``), or None."""
    best: tuple[int, Path] | None = None
    for path in (run_dir / SAMPLES_DIR).glob("step_*.png"):
        step = path.stem.removeprefix("step_")
        if step.isdigit() and (best is None or int(step) > best[0]):
            best = (int(step), path)
    return best[1] if best else None


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys: ``{"model": {"ngf": 64}}`` -> ``{"model.ngf": 64}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def load_runs(roots: list[Path]) -> LoadResult:
    """Load every run under ``roots`` into a DataFrame with one row per run.

    Raises ReportError when a root is missing or no run folder is found at all.
    """
    for root in roots:
        if not root.is_dir():
            raise ReportError(f"no such folder: {root}")
    roots = [root.resolve() for root in roots]
    # dict.fromkeys: a run under two of the given roots (one inside the other) loads once.
    run_dirs = list(dict.fromkeys(d for root in roots for d in find_run_dirs(root)))
    if not run_dirs:
        where = ", ".join(str(r) for r in roots)
        raise ReportError(f"no run folders (with {SUMMARY_FILE}) found under {where}")
    base = _common_base(roots)

    rows: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    skipped: list[Path] = []
    warnings: list[str] = []
    sweeps: dict[str, SweepInfo] = {}
    for run_dir in run_dirs:
        summary, problem = _read_summary(run_dir / SUMMARY_FILE)
        if summary is None:
            skipped.append(run_dir / SUMMARY_FILE)
            warnings.append(f"skipped {run_dir / SUMMARY_FILE}: {problem}")
            continue
        config, problem = _read_config(run_dir / CONFIG_FILE)
        if problem:
            warnings.append(f"ignored {run_dir / CONFIG_FILE}: {problem}")
        row: dict[str, Any] = {"run": _relative(run_dir, base)}
        row.update({key: _scalar(summary.get(key)) for key in RUN_COLUMNS})
        row["diagnosis"] = diagnose(summary, read_train_tail(run_dir))
        row["path"] = str(run_dir)
        rows.append(row)
        configs.append(_with_params(flatten(config), summary))
        _note_sweep(sweeps, summary)

    if not rows:
        runs = pd.DataFrame(columns=["run", *RUN_COLUMNS, "diagnosis", "path"])
        return LoadResult(runs, len(run_dirs), skipped, warnings, sweeps, [])
    swept = {key for info in sweeps.values() for key in info.params}
    config_columns = _differing_keys(configs, taken=set(rows[0]), always=swept)
    for row, config in zip(rows, configs):
        row.update({key: _scalar(config.get(key)) for key in config_columns})
    runs = pd.DataFrame(rows)
    # "path" last, after the config columns, so every exported file reads left to right.
    runs = runs[[c for c in runs.columns if c != "path"] + ["path"]]
    return LoadResult(runs, len(run_dirs), skipped, warnings, sweeps, config_columns)


def _parse_json_line(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _read_summary(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    if not text.strip():
        return None, "empty file (half-written?)"
    try:
        summary = json.loads(text)
    except ValueError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno})"
    if not isinstance(summary, dict):
        return None, "not a JSON object"
    return summary, ""


def _read_config(path: Path) -> tuple[dict[str, Any], str]:
    if not path.is_file():
        return {}, ""
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        return {}, f"not valid YAML ({type(exc).__name__})"
    return (config, "") if isinstance(config, dict) else ({}, "not a YAML mapping")


def _with_params(config: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """Fill swept keys missing from config.yaml from the trial's ``params``."""
    params = summary.get("params")
    if isinstance(params, dict):
        for key, value in params.items():
            config.setdefault(key, value)
    return config


def _note_sweep(sweeps: dict[str, SweepInfo], summary: dict[str, Any]) -> None:
    name = summary.get("sweep")
    if not name:
        return
    info = sweeps.setdefault(str(name), SweepInfo(str(name)))
    params = summary.get("params")
    for key in params if isinstance(params, dict) else ():
        if key not in info.params:
            info.params.append(key)
    objectives = summary.get("objectives")  # a list of score names, or {name: value}
    for key in objectives if isinstance(objectives, (list, dict)) else ():
        if key not in info.objectives:
            info.objectives.append(key)


def _differing_keys(configs: list[dict[str, Any]], taken: set[str], always: set[str]) -> list[str]:
    """Config keys whose values differ between runs and that are not columns already.

    ``model.name`` counts as taken when ``model`` is a column. Keys in ``always`` are
    kept even when they do not differ (a swept key with one loaded trial).
    """
    keys: dict[str, None] = {}
    for config in configs:
        keys.update(dict.fromkeys(config))
    differing = []
    for key in keys:
        group, _, leaf = key.rpartition(".")
        if key in taken or (leaf == "name" and group in taken):
            continue
        values = {json.dumps(c.get(key), sort_keys=True, default=str) for c in configs}
        if len(values) > 1 or key in always:
            differing.append(key)
    return differing


def _scalar(value: Any) -> Any:
    """Make a summary/config value fit one table cell: lists and dicts become JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def _common_base(roots: list[Path]) -> Path:
    """Runs are named relative to this: the (resolved) root, or the roots' common parent."""
    return roots[0] if len(roots) == 1 else Path(os.path.commonpath(roots))


def _relative(run_dir: Path, base: Path) -> str:
    rel = os.path.relpath(run_dir, base)
    # A root that is itself a run folder is named by its folder name, not ".".
    return run_dir.name if rel == "." else Path(rel).as_posix()
