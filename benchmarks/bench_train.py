"""Training throughput and evaluation cost, measured against references in the same run.

    python benchmarks/bench_train.py [--steps 200] [--device auto]

1. Batch fetching: gansweep's device-resident Batches against a torch DataLoader over the
   same tensor (shuffle, same batch size), per batch.
2. One D and G step of the default DCGAN in contiguous and channels-last layout.
3. The digit CNN featurising 10,000 images as it was trained against as evaluations use
   it (BatchNorm folded, channels-last).
4. The default run itself: its wall time, what each of its evaluations cost, its scores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, TensorDataset

from gansweep.config import to_train_config
from gansweep.data import load_dataset
from gansweep.metrics.classifier import load_digit_classifier
from gansweep.models import build_models
from gansweep.metrics.features import load_digit_net
from gansweep.batches import StackedBatches
from gansweep.devices import pick_device
from gansweep.train import train
from gansweep.config import compose_config


def time_batches(samples: torch.Tensor, batch_size: int, n: int) -> tuple[float, float]:
    """Seconds per batch: device-tensor batches (one member's) vs a shuffling DataLoader."""
    batches = StackedBatches(samples, None, batch_size, torch.tensor([0], device=samples.device))
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
    images_per_s = result.summary.images_seen / train_s

    plain_s, ready_s = time_featurising(device)
    contiguous_ms, channels_last_ms = (time_dcgan_step(cfg, device, layout) for layout in (torch.contiguous_format, torch.channels_last))

    # The default run itself, as `gansweep train` runs it: its metrics.jsonl says what
    # each evaluation cost, its summary the whole wall time.
    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, tmp, quiet=True)
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    wall = run.summary.wall_time_s
    eval_s = sum(r["eval_time_s"] for r in evals)
    scores = run.summary.scores

    table = Table(title=f"gansweep train defaults (DCGAN, mnist5k, batch {cfg.batch_size}) on {device}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("batch fetch, Batches (device tensor)", f"{ours * 1e6:,.0f} µs")
    table.add_row("batch fetch, DataLoader (shuffle)", f"{loader * 1e6:,.0f} µs")
    table.add_row("DataLoader / Batches", f"{loader / ours:,.1f}x")
    table.add_row(f"training loop, {args.steps} steps", f"{images_per_s:,.0f} images/s")
    table.add_row("one D and G step of the default DCGAN, contiguous", f"{contiguous_ms:,.1f} ms")
    table.add_row("one D and G step of the default DCGAN, channels-last (as trained)", f"{channels_last_ms:,.1f} ms")
    table.add_row("contiguous / channels-last", f"{contiguous_ms / channels_last_ms:,.2f}x")
    table.add_row("digit CNN on 10,000 images, as trained (BN, contiguous, batches of 500)", f"{plain_s:,.2f} s")
    table.add_row("digit CNN on 10,000 images, as scored (BN folded, channels-last, batches of 100)", f"{ready_s:,.2f} s")
    table.add_row("as trained / as scored", f"{plain_s / ready_s:,.1f}x")
    table.add_row(f"default run: {run.summary.steps} steps, wall time", f"{wall:,.1f} s")
    for r in evals:
        table.add_row(f"  evaluation at step {r['step']}, {r['n_fake']:,} samples", f"{r['eval_time_s']:,.2f} s")
    table.add_row("evaluation share of the default run", f"{eval_s / wall:.1%}")
    table.add_row("default run: FID / precision / classes", f"{scores['fid']:.2f} / {scores['precision']:.3f} / {scores['modes_covered']}")
    Console(width=120).print(table)


def time_dcgan_step(cfg, device: torch.device, layout: torch.memory_format, steps: int = 60) -> float:
    """Milliseconds per D and G update (bce, unconditional) of the config's DCGAN in one memory layout."""
    torch.manual_seed(0)
    shape = (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    plain = replace(cfg, model=replace(cfg.model, conditional=False))
    g, d = (net.to(device, memory_format=layout) for net in build_models(plain, shape))
    opt_g, opt_d = torch.optim.Adam(g.parameters(), cfg.lr), torch.optim.Adam(d.parameters(), cfg.lr)
    real = (torch.rand(cfg.batch_size, *shape, device=device) * 2 - 1).contiguous(memory_format=layout)
    for step in range(steps + 10):
        if step == 10:  # after warm-up
            started = time.perf_counter()
        fake = g(torch.randn(cfg.batch_size, cfg.model.z_dim, device=device))
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        F.softplus(-d(fake)).mean().backward()
        opt_g.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps * 1000


def time_featurising(device: torch.device, n: int = 10_000) -> tuple[float, float]:
    """Seconds for the digit CNN to featurise n images: the network as trained against
    the one evaluations use (load_digit_net), on the same images in the same run."""
    images = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)).mul(2).sub(1).to(device)
    plain, _ = load_digit_classifier(device)
    ready = load_digit_net(device)

    def timed(fn, batch: int) -> float:
        fn(images[:batch])  # warm-up
        started = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, n, batch):
                fn(images[start : start + batch])
        return time.perf_counter() - started

    return timed(plain.features, 500), timed(ready.features, 100)


if __name__ == "__main__":
    main()
