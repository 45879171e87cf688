"""Reliability: runs and sweeps killed at random points, bad inputs, runs started at once.

    python benchmarks/bench_reliability.py [--kills 5] [--seed 0] [--write]

1. Runs killed (SIGKILL) at a random moment and resumed with `resume=`: steps lost since
   the last checkpoint, and whether the resumed run's losses equal those of the same
   run never killed (CPU, same seed).
2. Sweeps killed (SIGKILL) mid-trial and rerun with the same command: finished trials
   against the count asked for, and trials counted twice.
3. Bad inputs: each must exit 2 with one line on stderr and no traceback.
4. Runs started at the same instant with default folder names: folders unique.

Every process is `python -m gansweep` with threads=1 on a tiny MLP on ring8. `--write`
puts the table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from md_section import write_section

RUN = ["model=mlp", "data=ring8", "data.std=0.1", "model.hidden=32", "eval.mixture_samples=300", "log_every=10",
       "checkpoint_every=25", "threads=1"]
BEGIN, END = "<!-- bench_reliability: begin -->", "<!-- bench_reliability: end -->"


def gansweep(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gansweep", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd)


def train_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "train"]


def losses(run: Path) -> list[tuple[int, float, float]]:
    return [(r["step"], r["loss_d"], r["loss_g"]) for r in train_rows(run)]


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], delay: float) -> None:
    """SIGKILL `proc` `delay` seconds after `ready()` first holds."""
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def killed_runs(root: Path, kills: int, rng: random.Random) -> dict[str, str]:
    steps = 400
    reference = root / "reference"
    gansweep("train", *RUN, f"steps={steps}", f"hydra.run.dir={reference}").communicate()
    expected = losses(reference)
    lost, identical = [], 0
    for k in range(kills):
        run = root / f"killed_{k}"
        proc = gansweep("train", *RUN, f"steps={steps}", f"hydra.run.dir={run}")
        kill_when(proc, lambda: (run / "checkpoints" / "last.pt").exists(), rng.uniform(0.0, 2.0))
        logged = train_rows(run)[-1]["step"] if (run / "metrics.jsonl").exists() else 0
        checkpoint = json.loads((run / "summary.json").read_text())["steps"]  # written with every checkpoint
        lost.append(max(0, logged - checkpoint))
        gansweep("train", f"resume={run}").communicate()
        identical += losses(run) == expected
    return {"runs killed (SIGKILL at a random moment after the first checkpoint) and resumed": f"{kills}",
            "steps lost per kill (logged before the kill minus the last checkpoint)": f"{min(lost)}-{max(lost)} (checkpoints every 25 steps)",
            "resumed runs whose losses equal the never-killed run's": f"{identical} of {kills}"}


def killed_sweeps(root: Path, kills: int, rng: random.Random) -> dict[str, str]:
    trials = 6
    args = ["sweep", "--dir", str(root / "sweeps"), "--name", "killed", "--trials", str(trials), "--sampler", "random",
            *RUN, "steps=300"]
    checkpoints = lambda: len(list((root / "sweeps" / "killed").glob("trial_*/checkpoints/last.pt")))  # noqa: E731
    for _ in range(kills):
        before = checkpoints()
        proc = gansweep(*args)
        kill_when(proc, lambda: checkpoints() > before, rng.uniform(0.0, 1.0))  # a trial of this process has checkpointed
    done = gansweep(*args)
    done.communicate()
    frame = pd.read_csv(root / "sweeps" / "killed" / "trials.csv")
    retried_numbers = set(frame["retry_of"].dropna().astype(int))
    finished = frame[~frame["trial"].isin(retried_numbers) & (frame["state"] != "running")]
    params = finished[[c for c in frame.columns if c.startswith("params.")]]
    retried = len(retried_numbers)
    resumed = int((frame.get("retry_from") == "checkpoint").sum()) if "retry_from" in frame else 0
    return {"sweep processes killed mid-trial, then rerun": f"{kills} (then one rerun to the end)",
            "finished trials / asked": f"{len(finished)} / {trials}",
            "finished trials counted twice (same number or same parameters)": f"{finished['trial'].duplicated().sum() + params.duplicated().sum()}",
            "killed trials retried / of them resumed from their checkpoint (same --dir)": f"{retried} / {resumed}"}


BAD_INPUTS = [
    ["train", "lr=-1"], ["train", "batch_size=0"], ["train", "model=foo"], ["train", "epochs=abc"],
    ["train", "data=folder", "data.root=/nonexistent"], ["train", "model.conditional=maybe"],
    ["train", "model.pack=3", "batch_size=64", "model=mlp", "data=ring8"], ["train", "resume=/nonexistent"],
    ["train", "hydra.run.dir=/proc/x"], ["train", "stabilize.real_label=0.9", "loss=hinge"],
    ["train", "model=dcgan", "data=ring8"], ["train", "data=stacked_mnist", "model.conditional=true"],
    ["sweep", "--trials", "0"], ["sweep", "--dir", "/proc/x", "--trials", "1"], ["sweep", "--objective", "nope"],
    ["sweep", "--launcher", "local", "--mem-gb", "0"], ["eval", "/nonexistent"], ["report", "/nonexistent"],
]


def bad_inputs(root: Path) -> dict[str, str]:
    clean = 0
    for args in BAD_INPUTS:
        proc = gansweep(*args, cwd=root)
        out, err = proc.communicate()
        lines = err.strip().splitlines()
        clean += proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out + err
    return {"bad inputs tried (train, sweep, eval, report)": f"{len(BAD_INPUTS)}",
            "answered with one line, exit code 2, no traceback": f"{clean} of {len(BAD_INPUTS)}"}


def concurrent_runs(root: Path, n: int = 4) -> dict[str, str]:
    procs = [gansweep("train", *RUN, "steps=20", cwd=root) for _ in range(n)]
    outs = [p.communicate()[0] for p in procs]
    folders = {line.split("run folder: ", 1)[1].strip() for out in outs for line in out.splitlines() if line.startswith("run folder: ")}
    return {"runs started at the same instant, default folder names": f"{n}", "distinct run folders": f"{len(folders)} of {n}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="bench-reliability-"))
    rows: dict[str, str] = {}
    for part in (lambda: killed_runs(root, args.kills, rng), lambda: killed_sweeps(root, 3, rng),
                 lambda: bad_inputs(root), lambda: concurrent_runs(root)):
        measured = part()
        rows.update(measured)
        for key, value in measured.items():
            print(f"{key}: {value}", flush=True)
    if args.write:
        table = "\n".join(["| measure | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows.items())])
        text = (f"{BEGIN}\n`python benchmarks/bench_reliability.py --kills {args.kills} --seed {args.seed} --write`:\n\n"
                f"{table}\n{END}")
        write_section(Path(__file__).resolve().parents[1] / "BENCHMARKS.md", BEGIN, END, "Reliability", text)


if __name__ == "__main__":
    main()
