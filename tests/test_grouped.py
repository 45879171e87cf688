"""The grouped road (gansweep.grouped) computes what vmap of the members' own modules
computes: outputs, gradients and batch-norm statistics, for every DCGAN it covers."""

from __future__ import annotations

import pytest
import torch

from gansweep.config import compose_config, to_train_config
from gansweep.models import build_models
from gansweep.stacked import StackedNet

COVERED = {
    "batch norm": [],
    "conditional": ["model.conditional=true"],
    "packed": ["model.pack=2"],
    "layer norm": ["model.d_norm=layer"],
}


def _members(extra: list[str], k: int, dtype: torch.dtype, channels_last: bool):
    cfgs = [to_train_config(compose_config(["model=dcgan", "data=mnist5k", "model.conditional=false", "model.ngf=4", "model.ndf=4",
                                            "model.z_dim=8", f"seed={i}", *extra])) for i in range(k)]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    nets = [build_models(cfg, (1, 28, 28)) for cfg in cfgs]
    return cfgs[0], [g.to(dtype=dtype, memory_format=fmt) for g, _ in nets], [d.to(dtype=dtype, memory_format=fmt) for _, d in nets]


def _pass(cfg, gs, ds, channels_last: bool, road: str, dtype: torch.dtype):
    """G's samples, D's outputs, the gradients of a loss with a WGAN-GP-style double backward, D's buffers after."""
    g, d = StackedNet.of(gs, channels_last), StackedNet.of(ds, channels_last)
    if road == "vmap":
        g.grouped = d.grouped = None
    gen = torch.Generator().manual_seed(0)
    k = len(gs)
    z = torch.randn(k, 16, cfg.model.z_dim, generator=gen, dtype=dtype)
    cond = (torch.randint(0, 10, (k, 16), generator=gen),) if cfg.model.conditional else ()
    real = (torch.rand(k, 16, 1, 28, 28, generator=gen, dtype=dtype) * 2 - 1).requires_grad_(True)
    fake = g(z, *cond)
    out = d(real, *cond) - d(fake, *cond)
    (grad_x,) = torch.autograd.grad(out.sum(), real, create_graph=True)
    loss = out.pow(2).sum() + grad_x.pow(2).sum()
    grad_g, grad_d = torch.autograd.grad(loss, [g.flat, d.flat])
    return [fake, out, grad_g, grad_d, *d.buffers.values(), *g.buffers.values()]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("variant", COVERED)
def test_grouped_equals_vmap_in_float64(variant: str, channels_last: bool) -> None:
    cfg, gs, ds = _members(COVERED[variant], 3, torch.float64, channels_last)
    assert StackedNet.of(gs, channels_last).grouped is not None and StackedNet.of(ds, channels_last).grouped is not None
    grouped = _pass(cfg, gs, ds, channels_last, "grouped", torch.float64)
    vmapped = _pass(cfg, gs, ds, channels_last, "vmap", torch.float64)
    for a, b in zip(grouped, vmapped, strict=True):
        assert a.shape == b.shape
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
        else:
            assert torch.equal(a, b)  # batch norm's step counters


def test_grouped_members_do_not_mix() -> None:
    """Member 1's outputs do not move when member 0's weights are poisoned."""
    cfg, gs, ds = _members([], 3, torch.float64, True)
    before = _pass(cfg, gs, ds, True, "grouped", torch.float64)
    with torch.no_grad():
        for p in [*gs[0].parameters(), *ds[0].parameters()]:
            p.fill_(1e3)
    after = _pass(cfg, gs, ds, True, "grouped", torch.float64)
    for a, b in zip(before[:2], after[:2]):
        assert torch.equal(a[1:], b[1:]) and not torch.equal(a[0], b[0])


@pytest.mark.parametrize("stabilizer", ["stabilize.spectral_norm=true", "stabilize.d_dropout=0.2"])
def test_nets_the_grouped_road_does_not_cover_run_under_vmap(stabilizer: str) -> None:
    _, gs, ds = _members([stabilizer], 2, torch.float32, True)
    assert StackedNet.of(gs, True).grouped is not None  # G has neither
    assert StackedNet.of(ds, True).grouped is None
