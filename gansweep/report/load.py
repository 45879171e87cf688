"""Find run folders under one or more roots and load one row per run.

Runs are read only through ``gansweep.rundir``: the typed ``RunSummary``, ``config.yaml``
and the tail of ``metrics.jsonl`` (small files, so a thousand runs load in about a
second). The columns are the summary's fields, one per registered score
(``gansweep.scores.SCORES``), the scores' provenance, the last training values, and the
config keys that differ between runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from gansweep.config import DataConfig
from gansweep.errors import GansweepError, ReportError, RunFolderError
from gansweep.health import TAIL_LINES
from gansweep.report.diagnose import diagnose
from gansweep.rundir import SUMMARY, RunFolder, RunSummary, find_run_dirs
from gansweep.scores import SCORES

# The summary fields a run was configured with, in column order (the rest are outcomes).
HYPERPARAMETERS = ("model", "data", "loss", "lr", "lr_g", "lr_d", "batch_size", "beta1", "beta2", "seed", "total_steps")
# Summary fields that are records of their own: flattened into columns below, or (run_dir) the path.
NESTED_FIELDS = frozenset({"run_dir", "stop_reason", "scores", "provenance", "last_train", "sweep", "best_checkpoint_scores",
                           "best_of", "last_checkpoint_scores"})
# Not a registered score, but the denominator of modes_covered: kept next to the scores.
MODES_TOTAL = "modes_total"
# config.yaml keys that say where and how a run executed, not what it learned: never columns.
RUN_SETTINGS = frozenset({
    "threads", "device", "resume", "overwrite", "log_every", "sample_every", "checkpoint_every", "tensorboard",
    "data.root", "data.download", "eval.enabled", "eval.cache_dir", "eval.batch_size",
    # How a run is scored, not how it trains: scores made differently are flagged as such
    # (report.provenance), not plotted as if the setting were a hyperparameter.
    "eval_every", "eval.n_samples", "eval.interim_samples", "eval.mixture_samples", "eval.pr_k", "eval.dc_k",
    "eval.mode_threshold", "eval.mixture_min_count", "data.eval_samples",
})


def _mixture(data: DataConfig) -> bool:
    return data.is_points


def _images(data: DataConfig) -> bool:
    return not data.is_points


# Config keys that act only on some data. One DataConfig (and EvalConfig) serves every
# data set, so config.yaml holds them everywhere; where they change nothing they are
# left blank, so an image run shows no data.std and does not make data.std "differ".
# Model keys need no entry: each model's config holds only its own keys.
APPLIES: dict[str, Callable[[DataConfig], bool]] = {
    "data.n_samples": _mixture,
    "data.std": _mixture,
    "data.radius": lambda data: data.name == "ring8",
    "data.spacing": lambda data: data.name == "grid25",
    "data.image_size": _images,
    "data.channels": _images,
    "data.feature_net": _images,
    "eval.mixture_samples": _mixture,
    "eval.mixture_min_count": _mixture,
    "eval.n_samples": _images,
    "eval.pr_k": _images,
    "eval.dc_k": _images,
    "eval.mode_threshold": lambda data: data.has_digit_classes,
}


@dataclass
class SweepInfo:
    """What the report knows about one sweep, gathered from its trials' summaries."""

    name: str
    params: list[str] = field(default_factory=list)
    """Sampled config keys (dotted), in first-seen order."""
    objectives: list[str] = field(default_factory=list)
    """The objectives the trials declare; empty means "use the sort key"."""


@dataclass
class LoadResult:
    """The runs found under the roots, one row each, plus what was skipped."""

    runs: pd.DataFrame
    """Columns ``run``, ``status``, ``diagnosis``, the summary's, differing config keys, ``path``."""
    found: int
    """Folders holding a summary.json, loadable or not."""
    skipped: list[Path]
    """summary.json files that could not be read (damaged or half-written)."""
    warnings: list[str]
    sweeps: dict[str, SweepInfo]
    config_columns: list[str]
    """Config keys (dotted) that differ between the runs they apply to, or were swept: the
    ones shown and plotted. The frame holds every applicable key, so a filter, a sort or an
    export can name one that is the same in every run."""


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


def summary_row(summary: RunSummary) -> dict[str, Any]:
    """One run's columns from its summary: hyperparameters, every registered score (blank
    when not scored), the other fields, sweep, trial and the trial a confirmation run
    retrains (``gansweep confirm``), provenance, last training values."""
    # the summary's threads is a run setting like config.yaml's: never a column
    scalars = {f.name: getattr(summary, f.name) for f in dataclasses.fields(RunSummary) if f.name not in NESTED_FIELDS | {"threads"}}
    scalars["status"] = summary.status.value
    row = {key: scalars.pop(key) for key in ("status", *HYPERPARAMETERS)}
    # SCORES is read on every call, so a score added to the registry is a column at once.
    row.update({name: summary.scores.get(name) for name in SCORES})
    row[MODES_TOTAL] = summary.scores.get(MODES_TOTAL)
    row.update(scalars)
    row["sweep"] = summary.sweep.name if summary.sweep else None
    row["trial"] = summary.sweep.trial if summary.sweep else None
    row["confirm_of"] = summary.sweep.confirm_of if summary.sweep else None
    row.update(summary.provenance)
    row.update(summary.last_train)
    row["stop_reason"] = str(summary.stop_reason) if summary.stop_reason else None
    return row


def applicable_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config flattened, without run settings and keys that do nothing for its data."""
    data = _data_settings(config)
    return {
        key: value for key, value in flatten(config).items()
        if key not in RUN_SETTINGS and (data is None or key not in APPLIES or APPLIES[key](data))
    }


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
        raise ReportError(f"no run folders (with {SUMMARY}) found under {where}")
    names = run_names(run_dirs, roots)

    rows: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    skipped: list[Path] = []
    warnings: list[str] = []
    sweeps: dict[str, SweepInfo] = {}
    for run_dir in run_dirs:
        folder = RunFolder(run_dir)
        try:
            summary = folder.read_summary()
        except (RunFolderError, OSError) as exc:
            skipped.append(folder.summary_path)
            warnings.append(f"skipped {exc}" if isinstance(exc, RunFolderError) else f"skipped {folder.summary_path}: {exc}")
            continue
        if summary is None:  # removed since the walk: a run folder being replaced
            continue
        config = _read_or_warn(folder.read_config, {}, warnings)
        tail = _read_or_warn(lambda: folder.read_train_tail(TAIL_LINES), [], warnings)
        row = {"run": names[run_dir], "status": None, "diagnosis": diagnose(summary, tail)}
        row.update(summary_row(summary))
        row["path"] = str(run_dir)
        rows.append(row)
        configs.append(_with_params(applicable_config(config), summary))
        _note_sweep(sweeps, summary)

    if not rows:
        runs = pd.DataFrame(columns=["run", "status", "diagnosis", "path"])
        return LoadResult(runs, len(run_dirs), skipped, warnings, sweeps, [])
    swept = {key for info in sweeps.values() for key in info.params}
    keys = _config_keys(configs, taken=set(rows[0]))
    config_columns = _differing_keys(configs, keys, always=swept)
    # the keys that vary first, then the rest: the table reads what changed, then the settings
    keys = config_columns + [k for k in keys if k not in config_columns]
    runs = pd.DataFrame(rows)
    values = pd.DataFrame([[_scalar(c.get(k)) for k in keys] for c in configs], columns=keys)
    # "path" last, after the config columns, so every exported file reads left to right.
    runs = pd.concat([runs.drop(columns="path"), values, runs["path"]], axis=1)
    return LoadResult(runs, len(run_dirs), skipped, warnings, sweeps, config_columns)


def _read_or_warn(read: Callable[[], Any], empty: Any, warnings: list[str]) -> Any:
    """What ``read`` returns; a damaged config or metrics file is a warning, not a lost run."""
    try:
        return read()
    except RunFolderError as exc:
        warnings.append(f"ignored {exc}")
    except OSError as exc:
        warnings.append(f"ignored {exc.filename}: {exc.strerror}")
    return empty


def _data_settings(config: dict[str, Any]) -> Optional[DataConfig]:
    """The run's data settings as the typed schema, which knows its kind; None when unreadable."""
    data = config.get("data")
    if not isinstance(data, dict):
        return None
    known = {f.name for f in dataclasses.fields(DataConfig)}
    try:
        return DataConfig(**{k: v for k, v in data.items() if k in known})
    except (GansweepError, TypeError):
        return None


def _with_params(config: dict[str, Any], summary: RunSummary) -> dict[str, Any]:
    """Fill swept keys missing from config.yaml from the trial's sampled ``params``."""
    for key, value in (summary.sweep.params if summary.sweep else {}).items():
        config.setdefault(key, value)
    return config


def _note_sweep(sweeps: dict[str, SweepInfo], summary: RunSummary) -> None:
    if summary.sweep is None:
        return
    info = sweeps.setdefault(summary.sweep.name, SweepInfo(summary.sweep.name))
    info.params += [key for key in summary.sweep.params if key not in info.params]
    info.objectives += [name for name in summary.sweep.objectives if name not in info.objectives]


def _config_keys(configs: list[dict[str, Any]], taken: set[str]) -> list[str]:
    """Every config key of the runs that is not a column already (``model.name`` counts as
    taken when ``model`` is a column)."""
    keys: dict[str, None] = {}
    for config in configs:
        keys.update(dict.fromkeys(config))
    return [key for key in keys if key not in taken and not (key.endswith(".name") and key.rpartition(".")[0] in taken)]


def _differing_keys(configs: list[dict[str, Any]], keys: list[str], always: set[str]) -> list[str]:
    """Those of ``keys`` whose values differ between runs.

    Only runs holding a key compare it: another model's keys, or keys that do not apply
    to a run's data, are not "different". A key of a config group compares only runs
    with the same option (``data.std`` among ring8 runs, not ring8 against grid25): two
    options' own defaults are not a choice. Keys in ``always`` are kept even when they do
    not differ (a swept key with one loaded trial).
    """
    differing = []
    for key in keys:
        group = key.rpartition(".")[0]
        by_option: dict[str, set[str]] = {}
        for config in configs:
            if key in config:
                value = json.dumps(config[key], sort_keys=True, default=str)
                by_option.setdefault(str(config.get(f"{group}.name")), set()).add(value)
        if any(len(values) > 1 for values in by_option.values()) or key in always:
            differing.append(key)
    return differing


def _scalar(value: Any) -> Any:
    """Make a config value fit one table cell: lists and dicts become JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def run_names(run_dirs: list[Path], roots: list[Path]) -> dict[Path, str]:
    """Short names: the path below the given root, led by the root's own folder name when
    there are several roots (outputs/a/x and /tmp/run become a/x and run), falling back
    to the path below the roots' common parent should two names clash."""
    def below(run_dir: Path, root: Path, lead: bool) -> str:
        rel = Path(os.path.relpath(run_dir, root)).as_posix()
        if rel == ".":  # a root that is itself a run folder is named by its folder name
            return run_dir.name
        return f"{root.name}/{rel}" if lead else rel

    def own_root(run_dir: Path) -> Path:
        return min((r for r in roots if r == run_dir or r in run_dir.parents), key=lambda r: len(r.parts))

    names = {d: below(d, own_root(d), len(roots) > 1) for d in run_dirs}
    if len(set(names.values())) < len(names):
        base = Path(os.path.commonpath(roots))
        names = {d: below(d, base, False) for d in run_dirs}
    return names
