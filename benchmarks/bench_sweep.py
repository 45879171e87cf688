"""What pruning saves: the same MLP-on-grid25 sweep with the median pruner and without.

    python benchmarks/bench_sweep.py [--trials 30] [--images 100000] [--seed 0] [--out DIR]

Both sweeps use sweeps/mlp_grid25.yaml, the same seed and trial count, on the CPU.
Compute is counted as images shown to D over all trials and as the trials' summed
training time (evaluations included); quality as the best mixture_tv (the sweep's
objective) and the most modes covered by any completed trial. With --out, a finished sweep is not run again (a rerun
of the same sweep continues its study), so one side can be rerun alone by deleting it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gansweep.cli import main
from gansweep.rundir import RunFolder, Status


def run_sweep(out: Path, name: str, pruner: str, trials: int, images: int, seed: int) -> dict[str, float]:
    """Run one sweep and sum up its trials' summaries."""
    code = main([
        "sweep", "--trials", str(trials), "--space", "mlp_grid25.yaml", "--pruner", pruner, "--seed", str(seed),
        "--dir", str(out), "--name", name, "steps=null", f"images={images}", "epochs=null", "log_every=50",
    ])
    if code != 0:
        raise SystemExit(f"sweep {name} exited with {code}")
    summaries = [RunFolder(p).read_summary() for p in sorted((out / name).glob("trial_*"))]
    summaries = [s for s in summaries if s is not None]
    completed = [s.scores for s in summaries if s.status is Status.completed]
    return {
        "trials": len(summaries),
        "pruned": sum(s.status is Status.pruned for s in summaries),
        "stopped early": sum(s.status in (Status.collapsed, Status.overpowered, Status.diverged) for s in summaries),
        "images trained": sum(s.images_seen for s in summaries),
        "training s (all trials)": sum(s.wall_time_s for s in summaries),
        "best mixture_tv": min(s["mixture_tv"] for s in completed),
        "most modes covered": max(s.get("modes_covered", 0) for s in completed),
    }


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--images", type=int, default=100_000, help="image budget of one trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the sweep folders here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    results = {
        pruner: run_sweep(out, f"grid25-{pruner}", pruner, args.trials, args.images, args.seed)
        for pruner in ("none", "median")
    }
    table = Table(title=f"MLP on grid25, {args.trials} trials, {args.images:,} images each, seed {args.seed}")
    table.add_column("")
    for pruner in results:
        table.add_column(f"pruner={pruner}", justify="right")
    table.add_column("median / none", justify="right")
    for key in results["none"]:
        a, b = results["none"][key], results["median"][key]
        ratio = f"{b / a:.2f}" if isinstance(a, (int, float)) and a else "-"
        fmt = (lambda v: f"{v:,.3f}") if isinstance(a, float) else (lambda v: f"{v:,}")
        table.add_row(key, fmt(a), fmt(b), ratio)
    Console(width=120).print(table)
    print(f"sweep folders: {out}")


if __name__ == "__main__":
    main_bench()
