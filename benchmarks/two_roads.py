"""The stacked engine's two roads for K DCGANs, measured against each other.

    python benchmarks/two_roads.py [--quick]

- vmap: each member's solo module code runs under torch.func.vmap over (K, ...)
  parameter stacks; vmap turns each convolution into a grouped one and moves K in and
  out of the channels around every layer.
- grouped (gansweep.grouped, the engine's road for DCGANs): the same K networks run as
  one network of grouped layers, a batch laid out (N, K x C, H, W) from start to end.

Both run from the same flat (K, P) rows (gansweep.stacked), on the same inputs;
tests/test_grouped.py checks they compute the same numbers. What is timed is the
forward and backward passes of one GAN step (D on a real and a fake batch, then G through
D; BCE losses; the gradient of every member's flat row), the part of a step where the
roads differ: Adam, clipping and EMA act on the flat rows either way. Prints a markdown
table of milliseconds (median of repeated runs, one thread) and ATen ops per pass, with
the ops that are not views (on a GPU, about its kernel launches) in brackets.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from torch.nn import functional as F

from gansweep.config import DNorm
from gansweep.models import DCGANDiscriminator, DCGANGenerator, dcgan_init
from gansweep.opcount import OpCounter
from gansweep.stacked import StackedNet

Z_DIM, CHANNELS, SIZE, BATCH = 100, 1, 32, 32


def stacks(k: int, width: int, road: str) -> tuple[StackedNet, StackedNet]:
    """K DCGANs (G and D, ngf = ndf = width) as the engine stacks them, on one road."""
    gs, ds = [], []
    for seed in range(k):
        torch.manual_seed(seed)
        g, d = DCGANGenerator(Z_DIM, width, CHANNELS, SIZE), DCGANDiscriminator(width, CHANNELS, SIZE, DNorm.batch)
        for net, group in ((g, gs), (d, ds)):
            net.apply(dcgan_init)
            group.append(net.to(memory_format=torch.channels_last))  # the engine's layout for images on the CPU
    g, d = StackedNet.of(gs, True), StackedNet.of(ds, True)
    g.stacked = d.stacked = True  # K = 1 stacked too, not the solo shortcut
    if road == "vmap":
        g.grouped = d.grouped = None
    return g, d


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Each member's mean BCE over its batch, summed over members: (K, B) logits."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none").mean(dim=1).sum()


def gan_pass(g: StackedNet, d: StackedNet) -> Callable[[torch.Tensor, torch.Tensor], None]:
    def run(z: torch.Tensor, real: torch.Tensor) -> None:
        fake = g(z)
        torch.autograd.grad(_bce(d(real), 1.0) + _bce(d(fake.detach()), 0.0), d.flat)
        torch.autograd.grad(_bce(d(fake), 1.0), g.flat)
    return run


def measure(run: Callable, args: tuple, reps: int) -> tuple[float, int, int]:
    """Median milliseconds of one pass, its ATen ops, and those of them that are not views."""
    for _ in range(2):
        run(*args)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run(*args)
        times.append((time.perf_counter() - t) * 1000)
    with OpCounter() as counter:
        run(*args)
    return statistics.median(times), counter.total, counter.kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K = 1 and 4 only, few repetitions")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ks, reps = ((1, 4), 3) if args.quick else ((1, 4, 16), 15)
    print(f"| DCGAN, {SIZE} px, batch {BATCH} | K | vmap | grouped | vmap / grouped | ops (not views): vmap | ops (not views): grouped |")
    print("|---|---|---|---|---|---|---|")
    for label, width in (("tiny, ngf = ndf = 4", 4), ("default, ngf = ndf = 32", 32)):
        for k in ks:
            gen = torch.Generator().manual_seed(0)
            z = torch.randn(k, BATCH, Z_DIM, generator=gen)
            real = (torch.rand(k * BATCH, CHANNELS, SIZE, SIZE, generator=gen) * 2 - 1).contiguous(memory_format=torch.channels_last)
            args_ = (z, real.view(k, BATCH, CHANNELS, SIZE, SIZE))
            ms_v, ops_v, kernels_v = measure(gan_pass(*stacks(k, width, "vmap")), args_, reps)
            ms_g, ops_g, kernels_g = measure(gan_pass(*stacks(k, width, "grouped")), args_, reps)
            print(f"| {label} | {k} | {ms_v:.2f} ms | {ms_g:.2f} ms | {ms_v / ms_g:.2f}x | {ops_v} ({kernels_v}) | {ops_g} ({kernels_g}) |",
                  flush=True)


if __name__ == "__main__":
    main()
