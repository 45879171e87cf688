"""benchmarks/gpu_check.py, the script run whenever a GPU is lent, works end to end (--tiny, on the CPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from train_helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_tiny_measures_every_part_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.md"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=1500, env=subprocess_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = out.read_text()
    assert "failed" not in table and "not measured" not in table, table
    for row in ("default run: wall", "DCGAN step 32 px", "grid25 MLP step, population 2", "grid25 MLP, 20 steps: one at a time",
                "grid25 MLP: population 2", "DCGAN mnist5k: --workers 2"):
        assert row in table, row
