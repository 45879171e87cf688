"""Two trainings on one machine: each takes every core (torch's default) or shares them.

    python benchmarks/bench_threads.py [--steps 1500]

Runs the same MLP-on-ring8 training (a) alone, (b) twice at once with threads=N (N = the
cores this process may use: what torch does by default, and what gansweep did before it
shared the cores), (c) twice at once with threads=0 (gansweep's fair share). Prints
images/s per training, and the speed of each concurrent one against the lone run of
the same sitting. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from gansweep.threads import available_cores


def launch(folder: Path, steps: int, threads: int) -> subprocess.Popen:
    args = ["train", "model=mlp", "data=ring8", f"steps={steps}", "eval.enabled=false", "log_every=100",
            "sample_every=1000000", f"threads={threads}", f"hydra.run.dir={folder}"]
    return subprocess.Popen([sys.executable, "-m", "gansweep", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def images_per_s(folder: Path) -> float:
    return json.loads((folder / "summary.json").read_text())["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-threads-"))
    cores = available_cores()
    launch(root / "alone", args.steps, 0).wait()
    alone = images_per_s(root / "alone")
    print(f"{cores} cores; one training alone: {alone:,.0f} images/s")
    for label, threads in ((f"two at once, threads={cores} each (every core)", cores), ("two at once, threads=0 (shared)", 0)):
        folders = [root / f"{threads}-{i}" for i in range(2)]
        for p in [launch(f, args.steps, threads) for f in folders]:
            p.wait()
        speeds = [images_per_s(f) for f in folders]
        print(f"{label}: " + ", ".join(f"{v:,.0f} images/s ({v / alone:.2f} of alone)" for v in speeds)
              + f"; together {sum(speeds) / alone:.2f} of alone")


if __name__ == "__main__":
    main()
