"""GAN losses as pure functions of discriminator outputs (raw logits/scores).

Each loss has a D side, ``d(real, fake)``, and a G side, ``g(fake)``, both to be
minimised. They average over the last dim: a solo run's (N,) outputs give a scalar, a
population's (K, N) outputs one loss per member. The WGAN-GP penalty needs D itself and lives in
``gradient_penalty``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Scores = torch.Tensor


@dataclass(frozen=True)
class GanLoss:
    d: Callable[[Scores, Scores], torch.Tensor]
    g: Callable[[Scores], torch.Tensor]
    probabilities: bool  # D's outputs read as probabilities through a sigmoid


def _bce_d(real: Scores, fake: Scores, real_label: float | torch.Tensor = 1.0) -> torch.Tensor:
    # -t log D(x) - (1 - t) log(1 - D(x)) - log(1 - D(G(z))) with target t for reals (1, or
    # 0.9 for one-sided label smoothing), written with softplus to stay finite on large logits;
    # t may be a (K, 1) tensor, one target per member
    if isinstance(real_label, float) and real_label == 1.0:
        return F.softplus(-real).mean(-1) + F.softplus(fake).mean(-1)
    return (real_label * F.softplus(-real) + (1 - real_label) * F.softplus(real)).mean(-1) + F.softplus(fake).mean(-1)


def _bce_g(fake: Scores) -> torch.Tensor:
    # Non-saturating: maximise log D(G(z)) instead of minimising log(1 - D(G(z)))
    return F.softplus(-fake).mean(-1)


def _lsgan_d(real: Scores, fake: Scores) -> torch.Tensor:
    return 0.5 * ((real - 1).pow(2).mean(-1) + fake.pow(2).mean(-1))


def _lsgan_g(fake: Scores) -> torch.Tensor:
    return 0.5 * (fake - 1).pow(2).mean(-1)


def _hinge_d(real: Scores, fake: Scores) -> torch.Tensor:
    return F.relu(1 - real).mean(-1) + F.relu(1 + fake).mean(-1)


def _wasserstein_d(real: Scores, fake: Scores) -> torch.Tensor:
    return fake.mean(-1) - real.mean(-1)


def _critic_g(fake: Scores) -> torch.Tensor:
    return -fake.mean(-1)


LOSSES = {
    "bce": GanLoss(_bce_d, _bce_g, probabilities=True),
    "lsgan": GanLoss(_lsgan_d, _lsgan_g, probabilities=False),
    "hinge": GanLoss(_hinge_d, _critic_g, probabilities=False),
    "wgan_gp": GanLoss(_wasserstein_d, _critic_g, probabilities=False),
}


def gradient_penalty(
    d: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor, *cond: torch.Tensor,
    alpha: torch.Tensor | None = None, per_member: bool = False,
) -> torch.Tensor:
    """Gulrajani et al.: E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates x_hat.

    Each sample is interpolated with its own alpha. A packed D (PacGAN) returns one
    output per pack of consecutive samples; the norm is then taken over the whole pack,
    which is D's input. `cond` holds a conditional D's labels, shared by real and fake.
    per_member: the inputs are stacked (K, N, ...) and D gives (K, N / pack) outputs; the
    result is then one penalty per member, and `alpha` (shaped to broadcast over a
    sample) is the members' own draw.
    """
    if alpha is None:
        alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = d(x_hat, *cond)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    per_sample = grad.reshape(*out.shape, -1) if per_member else grad.reshape(out.numel(), -1)
    return (per_sample.norm(2, dim=-1) - 1).pow(2).mean(-1)
