"""Per-sweep analysis: budget curve, best so far, Pareto front, importances, objectives."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import write_sweep

from gansweep.report.load import load_runs
from gansweep.report.plots import make_plots
from gansweep.report.sweeps import (
    best_so_far,
    collect_sweeps,
    expected_best,
    finished_mask,
    param_column,
    param_importances,
    pareto_mask,
)


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


def test_declared_objectives_give_a_pareto_front(tmp_path: Path) -> None:
    write_sweep(tmp_path, "mo", [1e-5, 1e-4, 2e-4, 1e-3], [150.0, 45.0, 30.0, 60.0], objectives=("fid", "coverage"))
    write_sweep(tmp_path, "so", [1e-5, 1e-4, 2e-4], [150.0, 45.0, 30.0])
    result = load_runs([tmp_path])
    sweeps = {s.name: s for s in collect_sweeps(result.runs, result.sweeps, "fid")}
    assert sweeps["mo"].objectives == ["fid", "coverage"] and sweeps["so"].objectives == ["fid"]
    names = {p.name for p in make_plots(result.runs, list(sweeps.values()), result.config_columns, "fid")}
    assert {"sweep_mo_pareto", "sweep_mo_history", "sweep_so_history", "sweep_so_budget"} <= names
    assert "sweep_so_pareto" not in names


def test_pruned_trials_do_not_count_as_finished(tmp_path: Path) -> None:
    write_sweep(tmp_path, "p", [1e-4, 2e-4, 5e-4, 1e-3], [45.0, 10.0, 35.0, None],
                statuses=["completed", "pruned", "completed", "running"])
    result = load_runs([tmp_path])
    sweep, = collect_sweeps(result.runs, result.sweeps, "fid")
    assert finished_mask(sweep.trials).tolist() == [True, False, True, False]
