"""Training throughput and evaluation cost, measured against references in the same run.

    python benchmarks/bench_train.py [--steps 200] [--device auto]

1. Batch fetching: gansweep's device-resident Batches against a torch DataLoader over the
   same tensor (shuffle, same batch size), per batch.
2. The default DCGAN run's training loop (images/s) and one evaluation with the default
   10,000 samples, so the evaluation share of a default run can be read off.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, TensorDataset

from gansweep.config import to_train_config
from gansweep.data import load_dataset
from gansweep.models import build_models
from gansweep.scoring import build_evaluator, score_generator
from gansweep.train import Batches, pick_device, plan_steps, train
from gansweep.config import compose_config


def time_batches(samples: torch.Tensor, batch_size: int, n: int) -> tuple[float, float]:
    """Seconds per batch: device-tensor Batches vs a shuffling DataLoader."""
    batches = Batches(samples, batch_size, torch.Generator(device=samples.device).manual_seed(0))
    t = time.perf_counter()
    for _ in range(n):
        batches.next()
    ours = (time.perf_counter() - t) / n
    loader = DataLoader(TensorDataset(samples.cpu()), batch_size=batch_size, shuffle=True, drop_last=True)
    t, done = time.perf_counter(), 0
    while done < n:
        for (batch,) in loader:
            batch.to(samples.device)
            done += 1
            if done == n:
                break
    return ours, (time.perf_counter() - t) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps timed")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    cfg = to_train_config(compose_config([f"device={args.device}"]))
    device = pick_device(cfg.device)
    data = load_dataset(cfg.data, cfg.seed)
    ours, loader = time_batches(data.samples.to(device), cfg.batch_size, 500)

    with tempfile.TemporaryDirectory() as tmp:
        timed = to_train_config(compose_config([f"device={args.device}", f"steps={args.steps}", "eval.enabled=false", "sample_every=100000", "checkpoint_every=100000"]))
        started = time.perf_counter()
        result = train(timed, tmp, quiet=True)
        train_s = time.perf_counter() - started
    images_per_s = result.summary["images_seen"] / train_s

    g, _ = build_models(cfg, tuple(data.samples.shape[1:]))
    g.to(device)
    evaluator = build_evaluator(cfg, data, device)  # real statistics: built (or read from the cache) once
    started = time.perf_counter()
    score_generator(evaluator, g, cfg.model.z_dim, cfg.seed, device)
    eval_s = time.perf_counter() - started

    total_steps = plan_steps(cfg, len(data))
    run_train_s = total_steps * cfg.batch_size / images_per_s
    run_eval_s = 4 * eval_s  # eval_every=0: four evaluations, the last at the end
    table = Table(title=f"gansweep train defaults (DCGAN, mnist5k, batch {cfg.batch_size}) on {device}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("batch fetch, Batches (device tensor)", f"{ours * 1e6:,.0f} µs")
    table.add_row("batch fetch, DataLoader (shuffle)", f"{loader * 1e6:,.0f} µs")
    table.add_row("DataLoader / Batches", f"{loader / ours:,.1f}x")
    table.add_row(f"training loop, {args.steps} steps", f"{images_per_s:,.0f} images/s")
    table.add_row(f"one evaluation, {cfg.eval.n_samples:,} samples", f"{eval_s:,.1f} s")
    table.add_row(f"default run: {total_steps} steps of training", f"{run_train_s:,.0f} s")
    table.add_row("default run: 4 evaluations", f"{run_eval_s:,.0f} s")
    table.add_row("evaluation share of the default run", f"{run_eval_s / (run_eval_s + run_train_s):.0%}")
    Console(width=100).print(table)


if __name__ == "__main__":
    main()
