"""What gansweep gets out of one GPU, in a few minutes: run it whenever a card is lent.

    python benchmarks/gpu_check.py [--out FILE.md] [--tiny]

Parts, each under its own time limit (a part past it is reported as such, the rest go on):
1. the default run (`gansweep train`): wall time and the share spent evaluating;
2. the DCGAN step at the reference example's architecture (ngf = ndf = 64, batch 64)
   and at 32 px, against a loop shaped like pytorch/examples' dcgan (a DataLoader,
   `.item()` every step), images per second;
3. the time of one step of a population of 1, 16 and 64 members (MLP and DCGAN);
4. trials per hour: grid25 MLP trials and DCGAN mnist5k trials as `gansweep sweep` one at
   a time, with --workers 4, and as populations of 16 and 64 (MLP) or 16 (DCGAN).

Writes a markdown table (stdout, and --out). --tiny shrinks every size so that the
script runs on a CPU in the test suite; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gansweep.config import DNorm, compose_config, to_train_config
from gansweep.data import load_dataset
from gansweep.models import DCGANDiscriminator, DCGANGenerator, dcgan_init
from gansweep.opcount import population_of


@dataclass(frozen=True)
class Sizes:
    """Everything --tiny shrinks."""

    default_overrides: tuple[str, ...]
    loop_steps: int
    widths: tuple[tuple[int, int, int], ...]  # (px, ngf = ndf, batch)
    mlp_steps: int
    dcgan_steps: int
    solo_sample: int  # trials run one at a time, extrapolated to the whole set
    populations: tuple[int, ...]
    workers: int
    worker_trials: int  # trials of the --workers column
    step_ks: tuple[int, ...]  # population sizes whose step is timed
    part_limit_s: float
    mlp: tuple[str, ...] = ()  # overrides of the MLP and DCGAN trials and steps
    dcgan: tuple[str, ...] = ()


FULL = Sizes((), 200, ((64, 64, 64), (32, 64, 64)), 600, 200, 3, (16, 64), 4, 8, (1, 16, 64), 150)
TINY = Sizes(("steps=20", "eval.enabled=false", "model.ngf=4", "model.ndf=4"), 4, ((32, 4, 8),), 20, 6, 1, (2,), 2, 2, (1, 2), 120,
             ("model.hidden=8", "eval.mixture_samples=500"), ("model.ngf=4", "model.ndf=4", "eval.n_samples=500", "eval.interim_samples=200"))
GRID_SPACE = "params:\n  lr: tag(log, interval(1e-4, 2e-3))\n  beta1: interval(0.0, 0.9)\n"
MLP = ["model=mlp", "data=grid25", "eval.mixture_samples=2500"]
DCGAN = ["model=dcgan", "data=mnist5k", "model.conditional=false"]


def gansweep(args: list[str], limit: float) -> float:
    """Seconds a gansweep command took (raises TimeoutError past the limit)."""
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-m", "gansweep", *args], check=True, stdout=subprocess.DEVNULL, timeout=limit)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"past {limit:.0f} s") from None
    return time.monotonic() - started


def default_run(root: Path, sizes: Sizes) -> list[tuple[str, str]]:
    """The default run: wall time and evaluation share."""
    wall = gansweep(["train", f"hydra.run.dir={root / 'default'}", *sizes.default_overrides], sizes.part_limit_s)
    summary = json.loads((root / "default" / "summary.json").read_text())
    rows = [json.loads(line) for line in (root / "default" / "metrics.jsonl").read_text().splitlines()]
    evaluating = sum(r.get("eval_time_s", 0.0) for r in rows if r["kind"] == "eval")
    return [("default run: wall (process)", f"{wall:.1f} s"),
            ("default run: training time, eval share", f"{summary['wall_time_s']:.1f} s, {evaluating / summary['wall_time_s']:.0%}"),
            ("default run: FID", f"{summary.get('scores', {}).get('fid', float('nan')):.2f}")]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reference_loop(px: int, width: int, batch: int, steps: int, device: torch.device) -> float:
    """Images per second of a loop shaped like pytorch/examples' dcgan."""
    cfg = to_train_config(compose_config([*DCGAN, f"data.image_size={px}"]))
    data = load_dataset(cfg.data)
    loader = DataLoader(TensorDataset(data.samples), batch_size=batch, shuffle=True, drop_last=True)
    g, d = DCGANGenerator(100, width, 1, px).to(device), DCGANDiscriminator(width, 1, px, DNorm.batch).to(device)
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = nn.BCEWithLogitsLoss()

    def run(n: int) -> None:
        done = 0
        while done < n:
            for (real,) in loader:
                real = real.to(device)
                ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
                fake = g(torch.randn(batch, 100, device=device))
                opt_d.zero_grad()
                err_d = loss(d(real), ones) + loss(d(fake.detach()), zeros)
                err_d.backward()
                opt_d.step()
                opt_g.zero_grad()
                err_g = loss(d(fake), ones)
                err_g.backward()
                opt_g.step()
                err_d.item(), err_g.item()
                done += 1
                if done == n:
                    return

    return images_per_s(run, steps, batch, device)


def gansweep_loop(px: int, width: int, batch: int, steps: int, device: torch.device) -> float:
    """Images per second of gansweep's step (a population of one) at the same sizes."""
    cfg = to_train_config(compose_config([*DCGAN, f"data.image_size={px}", f"model.ngf={width}", f"model.ndf={width}",
                                          f"batch_size={batch}", "lr=2e-4", "beta1=0.5", "eval.enabled=false", "steps=100000"]))
    with tempfile.TemporaryDirectory() as tmp:
        pop = population_of([cfg], Path(tmp))
        return images_per_s(pop.advance, steps, batch, device)


def images_per_s(run: Callable[[int], object], steps: int, batch: int, device: torch.device) -> float:
    run(max(2, steps // 10))  # warm-up: cudnn's choices, allocator
    sync(device)
    started = time.monotonic()
    run(steps)
    sync(device)
    return steps * batch / (time.monotonic() - started)


def loops(root: Path, sizes: Sizes) -> list[tuple[str, str]]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for px, width, batch in sizes.widths:
        ref = reference_loop(px, width, batch, sizes.loop_steps, device)
        ours = gansweep_loop(px, width, batch, sizes.loop_steps, device)
        rows.append((f"DCGAN step {px} px, ngf=ndf={width}, batch {batch}", f"{ours:,.0f} img/s = {ours / ref:.2f}x examples-shaped ({ref:,.0f})"))
    return rows


def step_times(root: Path, sizes: Sizes) -> list[tuple[str, str]]:
    """Milliseconds per step of a population of K, against K = 1: the step's cost in K."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for label, model, ks in (("grid25 MLP", [*MLP, *sizes.mlp], sizes.step_ks), ("DCGAN mnist5k 32 px", [*DCGAN, *sizes.dcgan], sizes.step_ks[:2])):
        base = None
        for k in ks:
            cfgs = [to_train_config(compose_config([*model, "eval.enabled=false", "steps=100000", f"seed={i}", f"lr={1e-4 * (1 + i % 7)}"]))
                    for i in range(k)]
            pop = population_of(cfgs, root / f"steps_{label.split()[0]}_{k}")
            per_s = images_per_s(pop.advance, sizes.loop_steps, 1, device)
            ms = 1000 / per_s
            base = base or ms
            rows.append((f"{label} step, population {k}", f"{ms:.2f} ms = {ms / base:.2f}x K=1"))
    return rows


def sweep(root: Path, name: str, model: list[str], steps: int, trials: int, flags: list[str], limit: float) -> float:
    """Trials per hour of a sweep of `trials` trials."""
    space = root / "space.yaml"
    space.write_text(GRID_SPACE)
    args = ["sweep", "--trials", str(trials), "--sampler", "random", "--pruner", "none", "--no-early-stop", "--space", str(space),
            "--dir", str(root), "--name", name, *flags, *model, f"steps={steps}"]
    wall = gansweep(args, limit)
    with open(root / name / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    if sum(r.get("status") == "completed" for r in rows) != trials:
        why = Counter(f"{r.get('status')}: {r.get('reason') or r.get('stop_kind') or ''}"[:120] for r in rows)
        raise RuntimeError(f"not all {trials} trials completed: {dict(why)}")
    return trials * 3600 / wall


def trials_per_hour(root: Path, sizes: Sizes) -> list[tuple[str, str]]:
    rows = []
    for label, model, steps, pops in (("grid25 MLP", [*MLP, *sizes.mlp], sizes.mlp_steps, sizes.populations),
                                       ("DCGAN mnist5k", [*DCGAN, *sizes.dcgan], sizes.dcgan_steps, sizes.populations[:1])):
        tag = label.split()[0].lower()
        base = sweep(root, f"{tag}_solo", model, steps, sizes.solo_sample, [], sizes.part_limit_s)
        rows.append((f"{label}, {steps} steps: one at a time ({sizes.solo_sample} trials)", f"{base:,.0f} trials/h"))
        columns = [(f"--workers {sizes.workers}", ["--workers", str(sizes.workers)], sizes.worker_trials)] + [(f"population {k}", ["--population", str(k)], k) for k in pops]
        for name, flags, n in columns:
            try:
                tph = sweep(root, f"{tag}_{name.split()[-1]}_{name.split()[0].strip('-')}", model, steps, n, flags, sizes.part_limit_s)
                rows.append((f"{label}: {name} ({n} trials)", f"{tph:,.0f} trials/h = {tph / base:.1f}x"))
            except (TimeoutError, RuntimeError, subprocess.CalledProcessError) as exc:
                rows.append((f"{label}: {name} ({n} trials)", f"not measured: {exc}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a CPU smoke run for the test suite")
    args = parser.parse_args()
    sizes = TINY if args.tiny else FULL
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no CUDA device)"
    lines = [f"gpu_check on {device}, torch {torch.__version__}{' (--tiny)' if args.tiny else ''}", "", "| part | measured |", "|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for part in (default_run, loops, step_times, trials_per_hour):
            started = time.monotonic()
            try:
                rows = part(Path(tmp), sizes)
            except Exception as exc:  # one part failing still leaves the others' figures
                rows = [(part.__name__, f"failed: {type(exc).__name__}: {exc}".splitlines()[0])]
            lines += [f"| {name} | {value} |" for name, value in rows]
            print(f"{part.__name__}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            if args.out:  # after every part: a run stopped at its time limit keeps what it measured
                args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
