"""Two ways to step K DCGANs at once, measured against each other on the same arithmetic.

    python benchmarks/two_roads.py [--quick]

- vmap: the engine's road (gansweep.stacked): each member's solo module code runs under
  torch.func.vmap over (K, ...) parameter stacks; vmap turns each convolution into a
  grouped one and reshapes around it.
- grouped: the same K networks written directly as one network of grouped layers: a
  convolution with groups=K holds K members' filters, a BatchNorm over K x C channels
  keeps each member's statistics, and a batch is laid out (B, K x C, H, W) from start
  to end, so nothing is reshaped between layers.

Both roads start from the same K solo modules; before timing, the script checks that
they compute the same outputs and losses. What is timed is the forward and backward
passes of one GAN step (D on a real and a fake batch, then G through D; BCE losses,
gradients of every parameter): the part of a step where the two roads differ. Adam,
clipping and EMA act on the flat (K, P) rows either way. Prints a markdown table of
milliseconds and ATen ops per pass, one thread, medians of repeated runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from gansweep.config import DNorm
from gansweep.models import DCGANDiscriminator, DCGANGenerator, dcgan_init
from gansweep.opcount import OpCounter
from gansweep.stacked import StackedNet

Z_DIM, CHANNELS, SIZE = 100, 1, 32
LAYOUT = torch.channels_last  # the engine's layout for images on the CPU


def grouped(members: list[nn.Sequential]) -> nn.Sequential:
    """One network of grouped layers computing the K members' Sequential nets side by side."""
    k, layers = len(members), []
    for parts in zip(*members):
        first = parts[0]
        if isinstance(first, (nn.Conv2d, nn.ConvTranspose2d)):
            kind = type(first)
            layer = kind(first.in_channels * k, first.out_channels * k, first.kernel_size, first.stride, first.padding,
                         bias=False, groups=k)
            # Both kinds keep a group's filters in consecutive rows of dim 0, member by member.
            layer.weight.data.copy_(torch.cat([p.weight.data for p in parts]))
        elif isinstance(first, nn.BatchNorm2d):
            layer = nn.BatchNorm2d(first.num_features * k)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(layer, name).data.copy_(torch.cat([getattr(p, name).data for p in parts]))
        else:  # activations act element-wise on any layout
            layer = first
        layers.append(layer)
    return nn.Sequential(*layers).to(memory_format=LAYOUT)


def solo_nets(k: int, ngf: int, ndf: int) -> tuple[list[nn.Module], list[nn.Module]]:
    gs, ds = [], []
    for seed in range(k):
        torch.manual_seed(seed)
        g, d = DCGANGenerator(Z_DIM, ngf, CHANNELS, SIZE), DCGANDiscriminator(ndf, CHANNELS, SIZE, DNorm.batch)
        g.apply(dcgan_init)
        d.apply(dcgan_init)
        gs.append(g.to(memory_format=LAYOUT))
        ds.append(d.to(memory_format=LAYOUT))
    return gs, ds


def _bce_sum(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Each member's mean BCE over its batch, summed over members: (K, B) logits."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none").mean(dim=1).sum()


def vmap_road(gs: list[nn.Module], ds: list[nn.Module]) -> Callable[[torch.Tensor, torch.Tensor], tuple]:
    g, d = StackedNet.of(gs, True), StackedNet.of(ds, True)
    g.stacked = d.stacked = True  # K = 1 under vmap too, as the grouped road has no solo shortcut either

    def step(z: torch.Tensor, real: torch.Tensor) -> tuple:
        """z (K, B, Z), real (K, B, C, H, W) -> (D logits on real, on fake (K, B), gradients)."""
        fake = g(z)
        out_real, out_fake = d(real), d(fake.detach())
        (grad_d,) = torch.autograd.grad(_bce_sum(out_real, 1.0) + _bce_sum(out_fake, 0.0), d.flat)
        (grad_g,) = torch.autograd.grad(_bce_sum(d(fake), 1.0), g.flat)
        return out_real, out_fake, grad_d, grad_g

    return step


def grouped_road(gs: list[nn.Module], ds: list[nn.Module]) -> Callable[[torch.Tensor, torch.Tensor], tuple]:
    k = len(gs)
    g, d = grouped([m.net for m in gs]), grouped([m.net for m in ds])
    g_params, d_params = list(g.parameters()), list(d.parameters())

    def logits(x: torch.Tensor) -> torch.Tensor:
        return d(x).view(x.shape[0], k).t()  # (B, K, 1, 1) -> (K, B)

    def step(z: torch.Tensor, real: torch.Tensor) -> tuple:
        """z (B, K x Z, 1, 1), real (B, K x C, H, W), the grouped layout."""
        fake = g(z)
        out_real, out_fake = logits(real), logits(fake.detach())
        grads_d = torch.autograd.grad(_bce_sum(out_real, 1.0) + _bce_sum(out_fake, 0.0), d_params)
        grads_g = torch.autograd.grad(_bce_sum(logits(fake), 1.0), g_params)
        return out_real, out_fake, grads_d, grads_g

    return step


def inputs(k: int, batch: int, seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The same noise and real batch in each road's layout."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(k, batch, Z_DIM, generator=gen)
    real = torch.rand(k, batch, CHANNELS, SIZE, SIZE, generator=gen) * 2 - 1
    stacked_real = real.reshape(k * batch, CHANNELS, SIZE, SIZE).contiguous(memory_format=LAYOUT).view(k, batch, CHANNELS, SIZE, SIZE)
    grouped_z = z.transpose(0, 1).reshape(batch, k * Z_DIM, 1, 1)
    grouped_real = real.transpose(0, 1).reshape(batch, k * CHANNELS, SIZE, SIZE).contiguous(memory_format=LAYOUT)
    return (z, stacked_real), (grouped_z, grouped_real)


def check_same(k: int, ngf: int, ndf: int, batch: int) -> None:
    """Both roads, from the same members and inputs, give the same D outputs (tolerance of float32 sums)."""
    gs, ds = solo_nets(k, ngf, ndf)
    (z, real), (gz, greal) = inputs(k, batch)
    a, b = vmap_road(gs, ds)(z, real), grouped_road(*solo_nets(k, ngf, ndf))(gz, greal)
    for name, x, y in (("D(real)", a[0], b[0]), ("D(fake)", a[1], b[1])):
        if not torch.allclose(x, y, rtol=1e-4, atol=1e-4):
            raise SystemExit(f"the roads differ at K={k}, ngf={ngf}: {name} max |diff| {(x - y).abs().max():.3g}")


def measure(step: Callable, args: tuple, reps: int) -> tuple[float, int, int]:
    """Median milliseconds of one pass, its ATen ops, and those of them that are not views."""
    for _ in range(2):
        step(*args)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step(*args)
        times.append((time.perf_counter() - t) * 1000)
    with OpCounter() as counter:
        step(*args)
    return statistics.median(times), counter.total, counter.kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K = 1 and 4 only, few repetitions")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ks, reps = ((1, 4), 3) if args.quick else ((1, 4, 16), 15)
    print("| DCGAN, 32 px, batch 32 | K | vmap | grouped | vmap / grouped | ops (not views): vmap | ops (not views): grouped |")
    print("|---|---|---|---|---|---|---|")
    for label, width in (("tiny, ngf = ndf = 4", 4), ("default, ngf = ndf = 32", 32)):
        for k in ks:
            check_same(k, width, width, 32)
            gs, ds = solo_nets(k, width, width)
            (z, real), (gz, greal) = inputs(k, 32)
            ms_v, ops_v, kernels_v = measure(vmap_road(gs, ds), (z, real), reps)
            ms_g, ops_g, kernels_g = measure(grouped_road(*solo_nets(k, width, width)), (gz, greal), reps)
            print(f"| {label} | {k} | {ms_v:.2f} ms | {ms_g:.2f} ms | {ms_v / ms_g:.2f}x | {ops_v} ({kernels_v}) | {ops_g} ({kernels_g}) |",
                  flush=True)


if __name__ == "__main__":
    main()
