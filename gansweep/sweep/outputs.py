"""What a sweep leaves in its folder: trials.csv, best.yaml, plots, and a closing summary."""

from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import optuna
import pandas as pd
import yaml
from optuna.trial import FrozenTrial, TrialState

from gansweep.atomic import write_bytes_atomic, write_text_atomic
from gansweep.rundir import RunFolder
from gansweep.sweep.objectives import DIRECTIONS
from gansweep.sweep.study import finished_trials
from gansweep.sweep.trial import trial_dir

GROUPS = ("model", "data", "loss")


def trials_frame(study: optuna.Study, sweep_dir: Path, objectives: list[str]) -> pd.DataFrame:
    """One row per trial: number, state, run status, objective values, params, duration."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "trial": t.number,
            "state": t.state.name.lower(),
            "status": t.user_attrs.get("status", t.state.name.lower()),
        }
        for i, name in enumerate(objectives):
            row[name] = t.values[i] if t.values else None
        row.update({f"params.{k}": v for k, v in t.params.items()})
        row["duration_s"] = t.user_attrs.get("duration_s")
        row["reason"] = t.user_attrs.get("reason")
        row["retry_of"] = t.user_attrs.get("retry_of")
        row["folder"] = trial_dir(sweep_dir, t.number).name
        rows.append(row)
    return pd.DataFrame(rows)


def write_trials_csv(frame: pd.DataFrame, path: Path) -> None:
    """trials.csv, atomically."""
    write_text_atomic(path, frame.to_csv(index=False))


def best_trial(study: optuna.Study, objectives: list[str]) -> Optional[FrozenTrial]:
    """The best completed trial; for several objectives, the Pareto trial best on the first."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        return None
    if len(objectives) == 1:
        return study.best_trial
    front = study.best_trials
    sign = 1 if DIRECTIONS[objectives[0]] == "minimize" else -1
    return min(front, key=lambda t: sign * t.values[0])


def best_yaml_text(trial: FrozenTrial, sweep_dir: Path, sweep_name: str, objectives: list[str]) -> str:
    """A primary Hydra config that reproduces the trial with `gansweep train`."""
    stored = yaml.safe_load(RunFolder(trial_dir(sweep_dir, trial.number)).config_path.read_text())
    for key in ("resume", "threads"):
        stored.pop(key, None)
    scores = ", ".join(f"{o}={v:.4g}" for o, v in zip(objectives, trial.values))
    header = (
        f"# Best trial of sweep {sweep_name}: trial {trial.number} ({scores}).\n"
        f"# Train it again:  gansweep train --config-dir {sweep_dir} --config-name best\n"
    )
    defaults = ["config"] + [{f"override /{g}": stored[g]["name"]} for g in GROUPS] + ["_self_"]
    return header + yaml.safe_dump({"defaults": defaults}, sort_keys=False) + "\n" + yaml.safe_dump(stored, sort_keys=False)


def _save(ax: Any, path: Path) -> None:
    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    fig.set_size_inches(max(fig.get_size_inches()[0], 7), max(fig.get_size_inches()[1], 4.5))
    buf = io.BytesIO()
    # Trim at save time: tight_layout() would push Optuna's colorbars over the last panel.
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue())
    import matplotlib.pyplot as plt

    plt.close(fig)


def write_plots(study: optuna.Study, sweep_dir: Path, objectives: list[str]) -> list[str]:
    """Optimization history, importances, slices (and the Pareto front); returns notes on skipped plots."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as ovm

    first = objectives[0]
    target = (lambda t: t.values[0]) if len(objectives) > 1 else None
    plots = {
        "optimization_history.png": lambda: ovm.plot_optimization_history(study, target=target, target_name=first),
        "param_importances.png": lambda: ovm.plot_param_importances(study, target=target, target_name=first),
        "slices.png": lambda: ovm.plot_slice(study, target=target, target_name=first),
    }
    if len(objectives) > 1:
        plots["pareto_front.png"] = lambda: ovm.plot_pareto_front(study, target_names=objectives)
    notes = []
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "no complete trials" is said in notes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make in plots.items():
            try:
                _save(make(), sweep_dir / name)
            except Exception as exc:  # e.g. importances need two completed trials with varied params
                notes.append(f"{name} skipped: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return notes


def write_outputs(study: optuna.Study, sweep_dir: Path, sweep_name: str, objectives: list[str], plots: bool = True) -> dict[str, Any]:
    """Write trials.csv, best.yaml and the plots; return the facts the closing summary prints."""
    frame = trials_frame(study, sweep_dir, objectives)
    write_trials_csv(frame, sweep_dir / "trials.csv")
    best = best_trial(study, objectives)
    if best is not None:
        write_text_atomic(sweep_dir / "best.yaml", best_yaml_text(best, sweep_dir, sweep_name, objectives))
    notes = write_plots(study, sweep_dir, objectives) if plots else []
    statuses = Counter(t.user_attrs.get("status", t.state.name.lower()) for t in finished_trials(study))
    return {"best": best, "statuses": statuses, "notes": notes, "frame": frame}
