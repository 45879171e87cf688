"""The HTML report opened in real headless Chromium: it renders, and the screenshot is not blank.

Needs the Debian package `chromium`. Without it the test is skipped locally and fails
on CI (CI=true), where the browser must be installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_fixtures import image_scores, train_config, write_run, write_sweep

from gansweep.report import command

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1400, 2000)


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


@pytest.fixture
def browser() -> str:
    path = find_browser()
    if path is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI needs a headless browser for the report test: apt-get install chromium (looked for {BROWSERS})")
        pytest.skip("no chromium: apt-get install chromium")
    return path


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the browser headless, offline and without a user profile of its own."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(browser: str, tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    for i, fid in enumerate([25.0, 32.0, 41.0]):
        write_run(root / "runs" / f"r{i}", train_config(seed=i), image_scores(fid=fid), sample_seed=i)
    write_run(root / "runs" / "live", train_config(), {}, running=True)
    write_sweep(root / "sweeps", "lr", [1e-5, 1e-4, 2e-4, 5e-4, 1e-3], [150.0, 45.0, 30.0, 35.0, 60.0],
                objectives=("fid", "coverage"))
    page = tmp_path / "report.html"
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert command.run(parser.parse_args([str(root), "--html", str(page)])) == 0

    # The DOM Chromium builds holds the table, the sample cards and every plot.
    dom = headless(browser, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<tr>") >= 1 + 9 and dom.stdout.count('class="card"') == 6
    assert 'id="plot-sweep_lr_pareto"' in dom.stdout

    shot = Path(os.environ.get("REPORT_SCREENSHOT", tmp_path / "report.png"))
    shot.parent.mkdir(parents=True, exist_ok=True)
    result = headless(browser, tmp_path / "profile-shot", f"--screenshot={shot}",
                      f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    # Not blank: many colours (text, badges, sample grids, plots) and real contrast.
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 500
    assert image.std() > 20
