"""What a sweep leaves in its folder: trials.csv, best.yaml, plots, and a closing summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Optional

import optuna
import pandas as pd
import yaml
from optuna.trial import FrozenTrial, TrialState

from gansweep.atomic import write_bytes_atomic, write_text_atomic
from gansweep.errors import ReportError
from gansweep.report.load import load_runs
from gansweep.report.plots import SWEEP_PLOT_NEEDS, sweep_plots
from gansweep.report.sweeps import collect_sweeps
from gansweep.rundir import RunFolder
from gansweep.scores import Direction, direction, format_score
from gansweep.sweep.space import CONFIG_GROUPS
from gansweep.sweep.study import finished_trials, trial_status, trial_stop_reason
from gansweep.sweep.trial import NOT_WORKING, trial_dir



def trials_frame(study: optuna.Study, sweep_dir: Path, objectives: list[str]) -> pd.DataFrame:
    """One row per trial, from the study alone (trial folders may be gone): number, state,
    run status, objective values, params, duration, stop reason, why its generator does
    not work (if so), worker and folder."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        status, reason = trial_status(t), trial_stop_reason(t)
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name.lower(), "status": status.value if status else None}
        for i, name in enumerate(objectives):
            row[name] = t.values[i] if t.values else None
        row.update({f"params.{k}": v for k, v in t.params.items()})
        row["duration_s"] = t.user_attrs.get("duration_s")
        row["stop_kind"] = reason.kind.value if reason else None
        row["stop_step"] = reason.step if reason else None
        row["reason"] = str(reason) if reason else None
        row["not_working"] = t.user_attrs.get(NOT_WORKING)  # why it can never be the best, if so
        row["base_config"] = bool(t.user_attrs.get("base_config"))
        row["retry_of"] = t.user_attrs.get("retry_of")
        row["retry_from"] = t.user_attrs.get("retry_from")
        row["worker"] = f"{t.user_attrs['host']}:{t.user_attrs['pid']}" if "pid" in t.user_attrs else None
        row["folder"] = trial_dir(sweep_dir, t.number).name
        rows.append(row)
    return pd.DataFrame(rows)


def write_trials_csv(frame: pd.DataFrame, path: Path) -> None:
    """trials.csv, atomically."""
    write_text_atomic(path, frame.to_csv(index=False))


def working_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The completed trials whose generator works (no ``not_working`` verdict, health.not_working)."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if not t.user_attrs.get(NOT_WORKING)]


def best_trial(study: optuna.Study, objectives: list[str]) -> Optional[FrozenTrial]:
    """The best completed trial with a working generator, None when there is none; for
    several objectives the one best on the first (a Pareto trial), ties broken by the next."""
    signs = [1.0 if direction(o) is Direction.minimize else -1.0 for o in objectives]
    return min(working_trials(study), key=lambda t: ([s * v for s, v in zip(signs, t.values)], t.number), default=None)


def best_yaml_text(stored: dict[str, Any], trial: FrozenTrial, sweep_dir: Path, sweep_name: str, objectives: list[str]) -> str:
    """A primary Hydra config that reproduces the trial (its stored config) with `gansweep train`."""
    scores = ", ".join(f"{o}={format_score(o, v)}" for o, v in zip(objectives, trial.values))
    if "copies" in trial.user_attrs:  # a PBT member: what is rerun is its schedule, not its copied weights
        title = (f"Best member of PBT run {sweep_name}: member {trial.number} ({scores}), replayed from scratch by its "
                 f"schedule; confirm it on new seeds (gansweep confirm {sweep_dir}).")
    else:
        title = f"Best trial of sweep {sweep_name}: trial {trial.number} ({scores})."
    return reproducing_yaml(stored, title, sweep_dir, "best")


def reproducing_yaml(stored: dict[str, Any], title: str, config_dir: Path, config_name: str) -> str:
    """A run's stored config as a primary Hydra config named `config_name` in `config_dir`,
    headed by `title` and the `gansweep train` command that reruns it."""
    stored = dict(stored)
    for key in ("resume", "threads", "overwrite"):
        stored.pop(key, None)
    header = f"# {title}\n# Train it again:  gansweep train --config-dir {config_dir} --config-name {config_name}\n"
    defaults = ["config"] + [{f"override /{g}": stored[g]["name"]} for g in CONFIG_GROUPS] + ["_self_"]
    return header + yaml.safe_dump({"defaults": defaults}, sort_keys=False) + "\n" + yaml.safe_dump(stored, sort_keys=False)


# The report's sweep plots, under the file names a sweep folder has always had.
PLOT_FILES = {
    "history": "optimization_history.png",
    "budget": "budget_curve.png",
    "importance": "param_importances.png",
    "slices": "slices.png",
    "pareto": "pareto_front.png",
}


def write_plots(study: optuna.Study, sweep_dir: Path, objectives: list[str]) -> list[str]:
    """The report's plots of this sweep, drawn from its trial folders; returns notes on plots not drawn.

    We draw our own rather than optuna.visualization's: Optuna draws only COMPLETE
    trials, so a sweep whose trials were mostly pruned or stopped as collapsed showed a
    nearly empty plot, and it needs the study, while the report reads trial folders
    copied from several machines with no study. One drawing serves both.
    """
    try:
        loaded = load_runs([sweep_dir])
    except ReportError as exc:
        return [f"plots skipped: {exc}"]
    trials = next((s for s in collect_sweeps(loaded.runs, loaded.sweeps, objectives[0]) if s.name == study.study_name), None)
    if trials is None:
        return [f"plots skipped: no trial folder of sweep {study.study_name} under {sweep_dir}"]
    trials.objectives = objectives
    drawn = {plot.kind: plot for plot in sweep_plots(trials)}
    notes = []
    for kind, name in PLOT_FILES.items():
        if kind in drawn:
            write_bytes_atomic(sweep_dir / name, drawn[kind].png)
        elif kind != "pareto" or len(objectives) > 1:
            notes.append(f"{name} skipped: it needs {SWEEP_PLOT_NEEDS[kind]}")
    return notes


def write_outputs(study: optuna.Study, sweep_dir: Path, sweep_name: str, objectives: list[str], plots: bool = True,
                  config_from_study: bool = False) -> dict[str, Any]:
    """Write trials.csv, best.yaml and the plots; return the facts the closing summary prints.
    config_from_study: best.yaml is the study's config of the trial, not its folder's
    (population-based training stores the replay, schedule and all, there).

    Without a best trial (none completed, or none draws a working generator) there is no
    best.yaml: one left by an earlier run of the sweep is removed, since it would name a
    trial this sweep no longer calls best.
    """
    frame = trials_frame(study, sweep_dir, objectives)
    write_trials_csv(frame, sweep_dir / "trials.csv")
    best = best_trial(study, objectives)
    notes = []
    best_yaml = sweep_dir / "best.yaml"
    if best is not None:
        # The trial's folder may be on another machine; the study holds its config too.
        stored = (None if config_from_study else RunFolder(trial_dir(sweep_dir, best.number)).read_config()) or best.user_attrs.get("config")
        if stored:
            write_text_atomic(best_yaml, best_yaml_text(stored, best, sweep_dir, sweep_name, objectives))
        else:
            notes.append(f"best.yaml skipped: {trial_dir(sweep_dir, best.number).name}/config.yaml is missing and the study has no copy")
    elif best_yaml.exists():
        best_yaml.unlink()
    if plots:
        notes += write_plots(study, sweep_dir, objectives)
    statuses = Counter(status.value for status in map(trial_status, finished_trials(study)) if status)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    not_working = [t for t in completed if t.user_attrs.get(NOT_WORKING)]
    results = [name for name in ("trials.csv", "best.yaml", *PLOT_FILES.values()) if (sweep_dir / name).exists()]
    return {"best": best, "statuses": statuses, "notes": notes, "frame": frame, "completed": len(completed),
            "not_working": not_working, "results": results}
