"""`gansweep report` as a terminal of COLUMNS columns shows it (and tmux, where installed):
what matters fits at 80."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from report_fixtures import image_scores, mixture_scores, train_config, write_run, write_sweep


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DCGAN sweep, two default-named runs seconds apart (one drawing noise) and two ring8 runs."""
    root = tmp_path_factory.mktemp("outputs")
    write_sweep(root / "sweeps", "dcgan-lr", [2e-4, 5e-4, 1e-3], [32.5, 25.0, 41.0])
    day = root / "2026-12-04"
    write_run(day / "14-42-07.123456_dcgan_mnist5k", train_config(data="mnist5k"), image_scores(fid=339.6, precision=0.0, modes_covered=1))
    write_run(day / "14-42-09.654321_dcgan_mnist5k", train_config(data="mnist5k", lr=1e-3, tensorboard=True, eval_every=500),
              image_scores(fid=415.2, precision=0.21))
    write_run(day / "15-01-30.000001_mlp_ring8", train_config("mlp", "ring8"), mixture_scores(hq_fraction=0.93, mixture_tv=0.08))
    write_run(day / "15-03-12.500000_mlp_ring8", train_config("mlp", "ring8", lr=1e-3),
              mixture_scores(hq_fraction=0.0, modes_covered=0, mixture_tv=0.9889))
    return root


def terminal_report(columns: int, *argv: str) -> str:
    """The report's stdout on a terminal COLUMNS wide (rich's TTY_COMPATIBLE stands in for the tty)."""
    env = {**os.environ, "COLUMNS": str(columns), "TTY_COMPATIBLE": "1", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "gansweep", "report", *argv], env=env, capture_output=True, text=True, check=True)
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)


def header(out: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith("┃"))
    return [cell.strip().removesuffix(" ↓").removesuffix(" ↑") for cell in line.strip("┃").split("┃")]


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_images_show_the_objective_precision_and_modes_at_every_width(outputs: Path, columns: int) -> None:
    out = terminal_report(columns, str(outputs))
    assert header(out)[:6] == ["run", "status", "diagnosis", "fid", "precision", "modes"]
    assert max(len(line) for line in out.splitlines()[:-1]) <= columns  # all but the closing counts line
    # Runs started two seconds apart keep the start of their names, which tells them apart.
    assert re.search(r"│14-42-09\.\S*", out) and re.search(r"│14-42-07\.\S*", out)
    # The noise run (lower FID) ranks below the digits.
    assert out.index("│14-42-09") < out.index("│14-42-07")


@pytest.mark.parametrize("columns", [80, 200])
def test_2d_runs_show_the_objective_modes_and_hq_share_at_80_columns(outputs: Path, columns: int) -> None:
    out = terminal_report(columns, str(outputs / "2026-12-04"), "--sort", "mixture_tv")
    assert header(out)[:6] == ["run", "status", "diagnosis", "mixture_tv", "modes", "hq_fraction"]
    assert " 0/8" in out


def test_200_columns_show_the_varying_hyperparameters_and_no_run_settings_even_when_they_vary(outputs: Path) -> None:
    shown = header(terminal_report(200, str(outputs)))
    assert {"lr", "model", "data"} <= set(shown)
    assert not {"eval.enabled", "eval_every", "tensorboard", "threads"} & set(shown)


def test_200_columns_show_every_score_that_fits(outputs: Path) -> None:
    # FID is the sweep's objective and the default one: its width once, not once a role.
    assert {"recall", "density", "coverage"} <= set(header(terminal_report(200, str(outputs))))


@pytest.mark.slow
def test_sorting_by_a_hyperparameter_says_ascending_not_better(outputs: Path) -> None:
    assert terminal_report(200, str(outputs), "--sort", "lr").splitlines()[-1].endswith("sorted by lr (ascending)")
    assert terminal_report(200, str(outputs), "--sort", "precision").splitlines()[-1].endswith("(higher is better)")


@pytest.mark.slow
def test_run_settings_get_no_plot_panel_even_when_they_vary(outputs: Path, tmp_path: Path) -> None:
    terminal_report(200, str(outputs), "--plots", str(tmp_path))
    names = {p.name for p in tmp_path.iterdir()}
    assert "score_vs_lr.png" in names
    assert not {"score_vs_tensorboard.png", "score_vs_eval.enabled.png", "score_vs_eval_every.png"} & names


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("columns", [80, 120, 200])
def test_in_a_real_terminal_of_tmux_the_table_fits_and_keeps_what_matters(outputs: Path, columns: int) -> None:
    session = f"gansweep-test-{os.getpid()}-{columns}"
    # A server of its own (-L): a new session sent to a server that is exiting after the
    # previous test's kill fails with exit status 1.
    tmux = ["tmux", "-L", session, "-f", "/dev/null"]
    command = f"env -u COLUMNS -u TTY_COMPATIBLE OMP_NUM_THREADS=1 {sys.executable} -m gansweep report {outputs}; sleep 30"
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", str(columns), "-y", "60", command], check=True)
    try:
        screen = ""
        for _ in range(300):  # the report imports pandas and rich: a few seconds
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
            if "run folders found" in screen:
                break
            time.sleep(0.1)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    assert header(screen)[:6] == ["run", "status", "diagnosis", "fid", "precision", "modes"]
    assert all(len(line.rstrip()) <= columns for line in screen.splitlines())


def test_a_sweep_declaring_another_objective_is_sorted_by_it_and_shows_it_fourth_at_80_columns(tmp_path: Path) -> None:
    """Its trials were judged by coverage, not by the default FID of digit runs."""
    write_sweep(tmp_path, "by-coverage", [2e-4, 5e-4, 1e-3], [32.5, 25.0, 41.0], objectives=("coverage",))
    out = terminal_report(80, str(tmp_path))
    assert header(out)[:4] == ["run", "status", "diagnosis", "coverage"]
    assert out.splitlines()[-1].endswith("sorted by coverage (higher is better)")
