"""Per-sweep analysis and plots: budget curve, best so far, Pareto front, importances,
objectives, finished and stopped trials, and the plots a sweep folder gets."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from report_fixtures import image_scores, train_config, write_run, write_sweep

from gansweep.report import plots
from gansweep.report.load import load_runs
from gansweep.report.plots import make_plots, sweep_plots
from gansweep.report.sweeps import (
    best_so_far,
    collect_sweeps,
    expected_best,
    finished_mask,
    param_column,
    param_importances,
    pareto_mask,
    stopped_mask,
)
from gansweep.rundir import StopKind, SweepMembership

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_expected_best_of_k_random_trials_is_exact() -> None:
    # Pairs of {1, 2, 3}: {1,2} {1,3} {2,3} -> minima 1, 1, 2 -> 4/3.
    assert expected_best(np.array([3.0, 1.0, 2.0]), higher_is_better=False) == pytest.approx([2.0, 4 / 3, 1.0])
    assert expected_best(np.array([3.0, 1.0, np.nan, 2.0]), higher_is_better=True) == pytest.approx([2.0, 8 / 3, 3.0])
    big = np.linspace(1, 100, 1000)  # C(1000, 500) would overflow without logs
    curve = expected_best(big, higher_is_better=False)
    assert curve[0] == pytest.approx(big.mean()) and curve[-1] == pytest.approx(1.0)
    assert np.all(np.diff(curve) <= 1e-9)


def test_best_so_far_skips_missing_values() -> None:
    values = np.array([np.nan, 5.0, 7.0, np.nan, 3.0])
    assert best_so_far(values, higher_is_better=False)[1:].tolist() == [5.0, 5.0, 5.0, 3.0]
    assert math.isnan(best_so_far(values, higher_is_better=False)[0])
    assert best_so_far(values, higher_is_better=True)[1:].tolist() == [5.0, 7.0, 7.0, 7.0]


def test_pareto_mask_low_fid_high_coverage() -> None:
    points = np.array([[20.0, 0.5], [30.0, 0.9], [25.0, 0.4], [40.0, 0.8], [20.0, 0.5]])
    assert pareto_mask(points, [False, True]).tolist() == [True, True, False, False, True]


def test_param_column_maps_group_names() -> None:
    assert param_column("lr", ["lr", "model"]) == "lr"
    assert param_column("model.name", ["lr", "model"]) == "model"
    assert param_column("model.ngf", ["lr", "model"]) is None


def test_importance_finds_the_parameter_that_matters(tmp_path: Path) -> None:
    lrs = [10 ** (-5 + 0.25 * i) for i in range(12)]
    fids = [30 + 40 * abs(math.log10(lr) + 3.7) for lr in lrs]  # only lr matters; ngf alternates
    write_sweep(tmp_path, "s", lrs, fids)
    result = load_runs([tmp_path])
    sweep, = collect_sweeps(result.runs, result.sweeps, "fid")
    assert sweep.params == ["lr", "model.ngf"] and sweep.objectives == ["fid"]
    importances = param_importances(sweep.trials, sweep.params, "fid")
    assert set(importances) == {"lr", "model.ngf"}
    assert importances["lr"] > 0.8 and sum(importances.values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_declared_objectives_give_a_pareto_front(tmp_path: Path) -> None:
    write_sweep(tmp_path, "mo", [1e-5, 1e-4, 2e-4, 1e-3], [150.0, 45.0, 30.0, 60.0], objectives=("fid", "coverage"))
    write_sweep(tmp_path, "so", [1e-5, 1e-4, 2e-4], [150.0, 45.0, 30.0])
    result = load_runs([tmp_path])
    sweeps = {s.name: s for s in collect_sweeps(result.runs, result.sweeps, "fid")}
    assert sweeps["mo"].objectives == ["fid", "coverage"] and sweeps["so"].objectives == ["fid"]
    names = {p.name for p in make_plots(result.runs, list(sweeps.values()), result.config_columns, "fid")}
    assert {"sweep_mo_pareto", "sweep_mo_history", "sweep_so_history", "sweep_so_budget"} <= names
    assert "sweep_so_pareto" not in names


def test_only_completed_trials_count_as_finished_with_a_score(tmp_path: Path) -> None:
    kinds = [None, StopKind.pruned, StopKind.mode_collapse, StopKind.diverged, StopKind.d_overpowering,
             StopKind.interrupted, StopKind.failed, None]
    write_sweep(tmp_path, "p", [1e-4] * len(kinds), [45.0, 10.0, 12.0, None, 20.0, 25.0, None, 50.0], stops=kinds)
    result = load_runs([tmp_path])
    sweep, = collect_sweeps(result.runs, result.sweeps, "fid")
    assert list(sweep.trials["status"]) == ["completed", "pruned", "collapsed", "diverged", "overpowered",
                                            "interrupted", "failed", "completed"]
    assert finished_mask(sweep.trials).tolist() == [True, False, False, False, False, False, False, True]
    # Stopped: ended for good before the budget. Interrupted trials continue, so they are neither.
    assert stopped_mask(sweep.trials).tolist() == [False, True, True, True, True, False, True, False]


def test_confirmation_runs_are_rows_but_not_trials(tmp_path: Path) -> None:
    sweep_dir = write_sweep(tmp_path, "c", [1e-4, 2e-4], [45.0, 30.0])
    again = SweepMembership("c", 1, {"lr": 2e-4, "model.ngf": 64}, ["fid"], confirm_of=1)
    write_run(sweep_dir / "confirm" / "trial_0001_seed1000", train_config(lr=2e-4, seed=1000), image_scores(fid=33.0),
              sweep=again)
    result = load_runs([tmp_path])
    assert len(result.runs) == 3 and result.runs["confirm_of"].tolist().count(1) == 1
    sweep, = collect_sweeps(result.runs, result.sweeps, "fid")
    assert sweep.trials["trial"].tolist() == [0, 1] and sweep.trials["fid"].tolist() == [45.0, 30.0]


def test_stopped_trials_are_drawn_at_their_last_score_with_their_own_marker(tmp_path: Path) -> None:
    # Seven of eight trials stopped early: the plots must still show them.
    kinds = [None] + [StopKind.pruned, StopKind.mode_collapse] * 3 + [StopKind.d_overpowering]
    lrs = [10 ** (-5 + 0.3 * i) for i in range(len(kinds))]
    write_sweep(tmp_path, "mostly_stopped", lrs, [40.0 + i for i in range(len(kinds))], stops=kinds)
    result = load_runs([tmp_path])
    sweep, = collect_sweeps(result.runs, result.sweeps, "fid")
    drawn = {plot.kind for plot in sweep_plots(sweep)}
    assert {"history", "budget", "slices"} <= drawn and "importance" not in drawn  # one completed trial

    ax = Figure().subplots()
    assert plots._scatter_trials(ax, sweep.trials["trial"].to_numpy(float), sweep.trials["fid"].to_numpy(float), sweep.trials)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["completed", "stopped early (pruned, collapsed, overpowered): last score"]
    assert [len(c.get_offsets()) for c in ax.collections] == [1, 7]
    assert ax.collections[1].get_paths()[0] != ax.collections[0].get_paths()[0]  # another marker


@pytest.mark.parametrize("values", [[1e-4, 6e-4], [1.5e-4, 3e-4], [1e-5, 1e-3], [1e-6, 1e-1]])
def test_log_axis_tick_labels_do_not_overlap(values: list[float]) -> None:
    fig = Figure(figsize=(plots.PANEL_WIDTH, plots.HEIGHT), dpi=plots.DPI)
    ax = fig.subplots()
    xs = np.geomspace(*values, 7)
    ax.scatter(xs, np.arange(7))
    plots._log_x(ax, xs)
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
    lo, hi = ax.get_xlim()
    boxes = sorted((t.get_window_extent(renderer) for t in labels if lo <= t.get_position()[0] <= hi), key=lambda b: b.x0)
    assert len(boxes) >= 2  # a range under a decade is still labelled
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))
    assert not any(t.get_text() for t in ax.get_xticklabels(minor=True))


def test_categories_are_strips_centred_on_their_tick_not_spread_in_row_order() -> None:
    values = pd.Series(["bce"] * 20 + ["hinge"] * 20)
    x, categories = plots.strip_positions(values)
    assert categories == ["bce", "hinge"]
    assert np.all(np.abs(x[:20]) <= plots.STRIP_JITTER) and np.all(np.abs(x[20:] - 1) <= plots.STRIP_JITTER)
    assert not (np.all(np.diff(x[:20]) > 0) or np.all(np.diff(x[:20]) < 0))  # no trend along the rows


@pytest.mark.slow
def test_sweep_folder_plots_are_the_reports(tmp_path: Path) -> None:
    from gansweep.sweep import outputs  # imports the trainer, and torch

    study = SimpleNamespace(study_name="ring")  # write_plots reads the trial folders, not the study
    lrs = [1e-4 * 1.5 ** k for k in range(12)]
    sweep_dir = write_sweep(tmp_path, "ring", lrs, [30.0 + abs(k - 5) * 5 for k in range(12)],
                            stops=[None, StopKind.pruned] + [None] * 9 + [StopKind.mode_collapse])
    assert outputs.write_plots(study, sweep_dir, ["fid"]) == []  # 10 completed trials: importance too
    for name in ("optimization_history.png", "budget_curve.png", "param_importances.png", "slices.png"):
        assert (sweep_dir / name).read_bytes().startswith(PNG_MAGIC), name
    assert not (sweep_dir / "pareto_front.png").exists()  # one objective

    # One completed trial: no importances, and a note says what they need: ten.
    few = write_sweep(tmp_path, "few", [1e-4, 2e-4], [45.0, 30.0], stops=[None, StopKind.pruned])
    notes = outputs.write_plots(SimpleNamespace(study_name="few"), few, ["fid", "coverage"])
    assert notes == [f"param_importances.png skipped: it needs {plots.SWEEP_PLOT_NEEDS['importance']}"]
    assert (few / "pareto_front.png").exists() and (few / "slices.png").exists()
    assert outputs.write_plots(SimpleNamespace(study_name="other"), few, ["fid"]) == [
        f"plots skipped: no trial folder of sweep other under {few}"
    ]


def test_the_best_star_skips_a_generator_that_does_not_work(tmp_path: Path) -> None:
    """Grey noise (precision 0) with FID 339.6 beats digits at 415.2 by FID alone; the star
    goes to the digits, as the table ranks them, and to the noise only when nothing works."""
    write_sweep(tmp_path, "gate", [1e-4, 2e-4, 5e-4], [339.6, 415.2, 450.0])
    runs = load_runs([tmp_path]).runs.sort_values("trial", ignore_index=True)
    assert plots.best_position(runs, "fid") == 0
    runs.loc[0, "precision"] = 0.0
    assert plots.best_position(runs, "fid") == 1
    runs["precision"] = 0.0
    assert plots.best_position(runs, "fid") == 0
    runs["fid"] = float("nan")
    assert plots.best_position(runs, "fid") is None
