"""A real full disk: a small tmpfs mounted for the test (which needs root; skipped elsewhere,
except when GANSWEEP_REQUIRE_FULL_DISK=1, as .ci/run sets it as root: there a mount that
fails is a failure, not a silent skip)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from train_helpers import gansweep_process

# A 512-wide MLP's checkpoint (weights and Adam's moments) is about 6 MB: it cannot fit.
BIG_MLP = ["model=mlp", "data=ring8", "model.hidden=512", "steps=200", "eval.enabled=false", "threads=1"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'}); it needs root"
        if os.environ.get("GANSWEEP_REQUIRE_FULL_DISK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.slow
def test_a_checkpoint_that_finds_the_disk_full_is_one_line_and_exit_2(small_disk: Path) -> None:
    """torch's zip writer fails a short write with a bare RuntimeError, which reached the
    user as a Hydra traceback and exit 1."""
    run = small_disk / "run"
    done = gansweep_process("train", *BIG_MLP, f"hydra.run.dir={run}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {run / 'checkpoints' / 'last.pt'}: No space left on device; check the path, its permissions and the free space"]
    assert not list((run / "checkpoints").iterdir())  # no partial checkpoint left behind
