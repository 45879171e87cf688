"""K copies of one MLP architecture as stacked tensors.

A population (gansweep.population) trains K sweep trials at once. Their G's (and D's)
share one architecture, so member k's weights are slice k of tensors shaped
(K, ...): every Linear becomes one batched matrix product over all members. The
layers are read from an ordinary solo module (``models.MLPGenerator`` or
``MLPDiscriminator``), so the stacked forward has the solo model's structure by
construction, and member k's state dict is exactly a solo run's.

Members never mix: batched products and per-member normalisation statistics keep slice k a function of member k alone, so a member
computes bit for bit the same values whatever the others hold (NaNs included), and
dropping or adding members leaves the rest untouched.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gansweep.models import Maxout

Tensors = dict[str, torch.Tensor]


def stack_states(modules: list[nn.Module]) -> tuple[Tensors, Tensors]:
    """(parameters, buffers) of K same-shaped modules, each stacked along a new dim 0;
    the parameters are leaves that require grad."""
    params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in modules]).requires_grad_()
              for name, _ in modules[0].named_parameters()}
    buffers = {name: torch.stack([dict(m.named_buffers())[name] for m in modules]) for name, _ in modules[0].named_buffers()}
    return params, buffers


def member_state(params: Tensors, buffers: Tensors, k: int) -> Tensors:
    """Member k's slices: a solo module's state dict."""
    return {name: t[k].detach().clone() for name, t in {**params, **buffers}.items()}


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    # (K, N, in) @ (K, in, out): one batched product for every member's Linear
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def _batch_norm(x: torch.Tensor, layer: nn.BatchNorm1d, p: Tensors, b: Tensors, key: str, training: bool) -> torch.Tensor:
    """BatchNorm1d with each member's own batch statistics and running averages."""
    if training:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, unbiased=False, keepdim=True)
        with torch.no_grad():  # the running averages, as BatchNorm1d keeps them (unbiased variance)
            n = x.shape[1]
            b[key + "running_mean"].lerp_(mean.squeeze(1), layer.momentum)
            b[key + "running_var"].lerp_(var.squeeze(1) * n / max(n - 1, 1), layer.momentum)
            b[key + "num_batches_tracked"].add_(1)
    else:
        mean, var = b[key + "running_mean"].unsqueeze(1), b[key + "running_var"].unsqueeze(1)
    out = (x - mean) / torch.sqrt(var + layer.eps)
    return out * p[key + "weight"].unsqueeze(1) + p[key + "bias"].unsqueeze(1)


def _layer_norm(x: torch.Tensor, layer: nn.LayerNorm, p: Tensors, key: str) -> torch.Tensor:
    out = F.layer_norm(x, layer.normalized_shape, eps=layer.eps)
    return out * p[key + "weight"].unsqueeze(1) + p[key + "bias"].unsqueeze(1)


def stacked_forward(net: nn.Sequential, p: Tensors, b: Tensors, x: torch.Tensor, training: bool, prefix: str = "net.") -> torch.Tensor:
    """Run the layers of a solo `net` over all members: x is (K, N, ...)."""
    for i, layer in enumerate(net):
        key = f"{prefix}{i}."
        if isinstance(layer, nn.Linear):
            x = _linear(x, p[key + "weight"], p.get(key + "bias"))
        elif isinstance(layer, nn.BatchNorm1d):
            x = _batch_norm(x, layer, p, b, key, training)
        elif isinstance(layer, nn.LayerNorm):
            x = _layer_norm(x, layer, p, key)
        elif isinstance(layer, Maxout):
            x = x.unflatten(-1, (-1, layer.pieces)).amax(dim=-1)
        elif isinstance(layer, nn.Flatten):
            x = x.flatten(2)
        else:  # element-wise activations: the solo layer itself
            x = layer(x)
    return x


def generate(g: nn.Module, p: Tensors, b: Tensors, z: torch.Tensor, training: bool = True) -> torch.Tensor:
    """All members' samples from an MLPGenerator template: z (K, N, z_dim) -> (K, N, *out_shape)."""
    return stacked_forward(g.net, p, b, z, training).reshape(z.shape[0], z.shape[1], *g.out_shape)


def discriminate(d: nn.Module, p: Tensors, b: Tensors, x: torch.Tensor, training: bool = True) -> torch.Tensor:
    """All members' D outputs from an MLPDiscriminator template: (K, N, ...) -> (K, N / pack)."""
    # PacGAN packing per member: each row of a member's batch joins `pack` consecutive samples
    packed = x.reshape(x.shape[0], x.shape[1] // d.pack, d.pack * x.shape[2], *x.shape[3:]) if d.pack > 1 else x
    return stacked_forward(d.net, p, b, packed, training).squeeze(-1)


def member_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Each member's total L2 norm over a list of stacked tensors: (K,)."""
    per_tensor = [torch.linalg.vector_norm(t.flatten(1), dim=1) for t in tensors]
    return torch.linalg.vector_norm(torch.stack(per_tensor), dim=0)


def clip_member_grads(grads: list[torch.Tensor], max_norm: torch.Tensor, norms: torch.Tensor) -> None:
    """Scale each member's gradients down to its own total norm bound, as
    ``clip_grad_norm_`` does for one model; a bound of 0 leaves that member alone."""
    coef = torch.where(max_norm > 0, (max_norm / (norms + 1e-6)).clamp(max=1.0), torch.ones_like(norms))
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))
