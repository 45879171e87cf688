"""Trials per hour: one at a time, two worker processes, and population training.

    python benchmarks/bench_population.py [--steps 2000] [--preset-steps 600] [--write]

The same 16 grid25 trials (a 4 x 4 grid over lr and beta1, --sampler grid, no pruning
or early stops, so every trial gets the same updates) run as `gansweep sweep` in four
ways: one trial at a time, --workers 2, --population 8 and --population 16; for the
default 3x256 MLP and for PacGAN's grid25 preset (+experiment=pacgan). Prints trials per
hour (16 over the command's wall time, start-up included) and the ratio to one at a
time, measured in this one sitting; --write puts the table in BENCHMARKS.md. Run it
with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gansweep.threads import available_cores

sys.path.insert(0, str(Path(__file__).parent))
from md_section import write_section  # noqa: E402

TRIALS = 16
SPACE = """\
# 16 grid points: the same trials in every column of bench_population.py
params:
  lr: choice(1e-4, 3e-4, 1e-3, 3e-3)
  beta1: choice(0.0, 0.5, 0.8, 0.9)
"""
COLUMNS = (("one at a time", []), ("--workers 2", ["--workers", "2"]),
           ("population 8", ["--population", "8"]), ("population 16", ["--population", "16"]))
MODELS = (("default 3x256 MLP", [], "steps"), ("grid25 preset (PacGAN)", ["+experiment=pacgan"], "preset_steps"))
BEGIN, END = "<!-- bench_population:begin -->", "<!-- bench_population:end -->"


def run_column(root: Path, space: Path, flags: list[str], overrides: list[str], steps: int) -> tuple[float, float]:
    """(wall seconds, mean mixture_tv over the trials) of one sweep."""
    name = f"s{len(list(root.iterdir()))}"
    args = ["sweep", "--trials", str(TRIALS), "--sampler", "grid", "--pruner", "none", "--no-early-stop",
            "--space", str(space), "--dir", str(root), "--name", name, *flags,
            "data=grid25", "model=mlp", *overrides, f"steps={steps}"]
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "gansweep", *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    with open(root / name / "trials.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("mixture_tv")]
    if len(rows) != TRIALS:
        raise SystemExit(f"{name}: {len(rows)} of {TRIALS} trials have a score")
    return wall, statistics.mean(float(r["mixture_tv"]) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="updates per trial, default MLP")
    parser.add_argument("--preset-steps", type=int, default=600, help="updates per trial, PacGAN preset")
    parser.add_argument("--write", action="store_true", help="put the table in BENCHMARKS.md")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-population-"))
    space = root / "space.yaml"
    space.write_text(SPACE)
    (root / "runs").mkdir()
    device = "cuda" if torch.cuda.is_available() else f"CPU, {available_cores()} cores"
    lines = [BEGIN, "", f"`python benchmarks/bench_population.py --steps {args.steps} --preset-steps {args.preset_steps}` "
             f"({device}, torch {torch.__version__}): {TRIALS} grid25 trials, the same in every column, each "
             f"trained for the same updates; trials per hour include start-up.", ""]
    for label, overrides, key in MODELS:
        steps = getattr(args, key)
        results = [run_column(root / "runs", space, flags, overrides, steps) for _, flags in COLUMNS]
        base = TRIALS * 3600 / results[0][0]
        per_hour = [TRIALS * 3600 / wall for wall, _ in results]
        print(f"{label}, {steps} updates per trial:")
        for (column, _), (wall, tv), rate in zip(COLUMNS, results, per_hour):
            print(f"  {column:15s} {wall:7.1f} s  {rate:6.0f} trials/h  ratio {rate / base:.2f}  mean mixture_tv {tv:.3f}")
        lines += [f"**{label}**, {steps} updates per trial", "",
                  "| | " + " | ".join(c for c, _ in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS),
                  "| trials per hour | " + " | ".join(f"{r:.0f}" for r in per_hour) + " |",
                  "| ratio | " + " | ".join(f"{r / base:.2f}" for r in per_hour) + " |",
                  "| mean mixture_tv | " + " | ".join(f"{tv:.3f}" for _, tv in results) + " |", ""]
    lines.append(END)
    if args.write:
        write_section(Path(__file__).parent.parent / "BENCHMARKS.md", BEGIN, END, "Population training: trials per hour", "\n".join(lines))


if __name__ == "__main__":
    main()
