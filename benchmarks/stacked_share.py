"""What share of a default sweep's trials trained stacked with another trial.

    python benchmarks/stacked_share.py [--trials 20] [--population 4 8 16]

The default sweep (sweeps/default.yaml) draws batch_size from {32, 64, 128, 256}; a
worker's population steps trials of one shape as one stack and trials of other shapes as
stacks of their own. A trial "trained stacked" when, at some step, its stack held another
member. Training length does not change which trials meet, only when slots free up, so
the sweeps here are short (30 steps, one evaluation of 500 samples, no pruning or early
stop); each trial's summary.json records the largest stack it stepped in (stack_max).
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from gansweep.cli import main as gansweep
from gansweep.rundir import RunFolder


def share_stacked(root: Path, trials: int, size: int) -> tuple[int, int]:
    """(trials that shared a stack at some step, trials trained) for one sweep, from each
    trial's summary.json (stack_max: the most runs it stepped with, itself included)."""
    with redirect_stdout(StringIO()):  # its progress lines; an error line goes to stderr
        code = gansweep(["sweep", "--trials", str(trials), "--population", str(size), "--pruner", "none", "--no-early-stop",
                         "--dir", str(root), "--name", f"pop{size}", "steps=30", "eval_every=30", "eval.n_samples=500", "threads=1"])
    if code != 0:
        raise SystemExit(f"stacked_share: the sweep exited {code}")
    summaries = [RunFolder(path).read_summary() for path in sorted((root / f"pop{size}").glob("trial_*"))]
    widest = [s.stack_max or 1 for s in summaries if s is not None]
    return sum(1 for k in widest if k > 1), len(widest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--population", type=int, nargs="+", default=[4, 8, 16])
    args = parser.parse_args()
    print("| --population | trials | trained stacked | share |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.population:
            stacked, trained = share_stacked(Path(tmp), args.trials, size)
            print(f"| {size} | {trained} | {stacked} | {stacked / trained:.0%} |", flush=True)


if __name__ == "__main__":
    main()
