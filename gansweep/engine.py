"""The training step, written once for K stacked members (a solo run is K = 1).

A member's G and D are rows of stacked networks (gansweep.stacked); its settings that
may differ from its neighbours' (lr, betas, lr decay, every stabilizer's strength,
seed) are (K, 1) tensors, and its noise comes from its own keys (gansweep.noise). So
one step is the same sequence of ops for any K: n_critic D updates, then one G update,
each with one gradient, one clip, one Adam update per network, and the EMA of G.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Optional
import torch

from gansweep import noise
from gansweep.adam import AdamState, adam_step
from gansweep.batches import StackedBatches
from gansweep.losses import GanLoss, gradient_penalty
from gansweep.stacked import StackedNet

# The columns of a step's statistics, one row per member.
STATS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")


@dataclass(frozen=True)
class StepSpec:
    """What every member of a stack shares: the loss, the budget shape, which stabilizers run."""

    loss: GanLoss
    n_critic: int
    gp_weight: float  # > 0: the WGAN-GP penalty
    z_dim: int
    smoothing: bool  # some member smooths its real labels
    instance_noise: bool  # some member adds instance noise
    clipping: bool  # some member clips a gradient
    ema: bool  # some member keeps an EMA of G
    fused_adam: bool  # on the CPU: torch's fused Adam, member by member (gansweep.adam)


@dataclass
class Knobs:
    """Per-member constants of the step, (K, 1) unless said."""

    beta1: torch.Tensor
    beta2: torch.Tensor
    clip_g: torch.Tensor  # (K,); 0 = off
    clip_d: torch.Tensor  # (K,)
    ema: torch.Tensor  # EMA decay
    real_label: torch.Tensor
    keys: torch.Tensor  # (K,) int64: the members' base noise keys
    lr: torch.Tensor  # (K, 2): lr_g, lr_d before decay
    decay: torch.Tensor  # the lr decay: DECAYS' index
    total: torch.Tensor  # steps in the budget
    noise: torch.Tensor  # instance noise std at step 0
    betas_host: list[tuple[float, float]]  # (beta1, beta2) per member, for the fused form

    TENSORS = ("beta1", "beta2", "clip_g", "clip_d", "ema", "real_label", "keys", "lr", "decay", "total", "noise")

    def select(self, idx: torch.Tensor, keep: list[int]) -> "Knobs":
        return Knobs(*(getattr(self, f).index_select(0, idx) for f in self.TENSORS), [self.betas_host[k] for k in keep])

    def concat(self, other: "Knobs") -> "Knobs":
        return Knobs(*(torch.cat([getattr(self, f), getattr(other, f)]) for f in self.TENSORS), self.betas_host + other.betas_host)


DECAYS = ("none", "linear", "cosine")


def schedule(kn: Knobs, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's (lr_g, lr_d) (K, 2) and instance-noise std (K,) at its step, computed on
    the device from its step counter: no host copy, so no sync, per step. The lr decays as
    gansweep.member.lr_factor says; instance noise (Sønderby et al. 2016) falls linearly
    from its start to 0 over the budget."""
    progress = (steps.to(kn.total.dtype).unsqueeze(1) / kn.total).clamp(max=1.0)
    cosine = 0.5 * (1 + torch.cos(math.pi * progress))
    factor = torch.where(kn.decay == 1, 1 - progress, torch.where(kn.decay == 2, cosine, torch.ones_like(progress)))
    return kn.lr * factor, (kn.noise * (1 - progress)).squeeze(1)


@dataclass
class Stack:
    """Every member's tensors: networks, Adam moments, the EMA of G, data order."""

    g: StackedNet
    d: StackedNet
    adam_g: AdamState
    adam_d: AdamState
    ema_flat: torch.Tensor  # (K, P_G): the EMA of G's parameters
    ema_buffers: dict[str, torch.Tensor]  # and of its buffers
    ema_n: torch.Tensor  # (K, 1): EMA updates so far
    batches: StackedBatches
    knobs: Knobs
    steps: torch.Tensor  # (K,) int64: each member's step count, on the device
    window_start: torch.Tensor  # (K,) int64: the step of its last log line

    @property
    def k(self) -> int:
        return self.g.k

    def select(self, keep: list[int]) -> "Stack":
        """The members at `keep`, in that order."""
        idx = torch.tensor(keep, device=self.ema_n.device, dtype=torch.int64)
        return Stack(
            self.g.select(idx), self.d.select(idx), self.adam_g.select(idx), self.adam_d.select(idx),
            self.ema_flat.index_select(0, idx), {n: t.index_select(0, idx) for n, t in self.ema_buffers.items()},
            self.ema_n.index_select(0, idx), self.batches.select(keep), self.knobs.select(idx, keep),
            self.steps.index_select(0, idx), self.window_start.index_select(0, idx),
        )

    def concat(self, other: "Stack") -> "Stack":
        return Stack(
            self.g.concat(other.g), self.d.concat(other.d), self.adam_g.concat(other.adam_g), self.adam_d.concat(other.adam_d),
            torch.cat([self.ema_flat, other.ema_flat]), {n: torch.cat([t, other.ema_buffers[n]]) for n, t in self.ema_buffers.items()},
            torch.cat([self.ema_n, other.ema_n]), self.batches.concat(other.batches), self.knobs.concat(other.knobs),
            torch.cat([self.steps, other.steps]), torch.cat([self.window_start, other.window_start]),
        )

    @torch.no_grad()
    def copy_member(self, dst: int, src: int) -> None:
        """Member dst takes member src's networks, Adam moments and EMA (population-based
        training's exploit); its data order, noise keys and knobs stay its own."""
        rows = [self.g.flat, self.d.flat, *self.g.buffers.values(), *self.d.buffers.values(), self.ema_flat, *self.ema_buffers.values(),
                self.ema_n, *(t for a in (self.adam_g, self.adam_d) for t in (a.exp_avg, a.exp_avg_sq, a.step))]
        for t in rows:
            t[dst] = t[src]

    def ema_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's EMA of G as a solo state dict."""
        return self.g.member_state(k, self.ema_flat, self.ema_buffers)

    @torch.no_grad()
    def sampler(self, idx: list[int], ema: list[bool]) -> StackedNet:
        """The generators that draw and are scored for members idx: each one's EMA of G where
        ema says so, else its G (a new stack; its rows are copies)."""
        at = torch.tensor(idx, device=self.ema_n.device)
        use = torch.tensor(ema, device=self.ema_n.device)
        pick = lambda avg, now: torch.where(use.view(-1, *[1] * (now.dim() - 1)), avg.index_select(0, at), now.index_select(0, at))  # noqa: E731
        return self.g.with_rows(pick(self.ema_flat, self.g.flat.detach()),
                                {n: pick(self.ema_buffers[n], t) for n, t in self.g.buffers.items()})

    def load_ema(self, k: int, state: dict[str, torch.Tensor]) -> None:
        self.ema_flat[k].copy_(self.g.layout.row(state))
        for n, t in self.ema_buffers.items():
            t[k].copy_(state[n])


def _noisy(x: torch.Tensor, sigma: torch.Tensor, key: torch.Tensor, on: bool) -> torch.Tensor:
    """Each member's x plus its own instance noise of std sigma[k] (none when no member has any)."""
    if not on:
        return x
    return x + sigma.view(-1, *[1] * (x.dim() - 1)) * noise.normal(key, tuple(x.shape[1:]), x.dtype)


def _clip(grad: torch.Tensor, bound: torch.Tensor, on: bool) -> torch.Tensor:
    """Each member's gradient norm before clipping; scales rows down to their bound where set."""
    norms = torch.linalg.vector_norm(grad, dim=1)
    if on:  # as clip_grad_norm_ does it, per member; a bound of 0 leaves the member alone
        coef = torch.where(bound > 0, (bound / (norms + 1e-6)).clamp(max=1.0), torch.ones_like(norms))
        grad.mul_(coef.unsqueeze(1))
    return norms


def train_step(s: Stack, spec: StepSpec, host_lr: Optional[list[tuple[float, float]]] = None) -> torch.Tensor:
    """One step of every member; returns its statistics (K, len(STATS)) on the device.

    Every per-member value comes from tensors already on the device (its step counter,
    its knobs), so a step copies nothing from the host. host_lr: the members' (lr_g, lr_d)
    as numbers, for the CPU's per-member Adam (StepSpec.fused_adam)."""
    kn, dtype = s.knobs, s.g.flat.dtype
    lr, sigma = schedule(kn, s.steps)
    lr_g, lr_d = lr[:, 0:1], lr[:, 1:2]
    count = s.steps * spec.n_critic
    real_label = kn.real_label if spec.smoothing else 1.0
    d_loss = partial(spec.loss.d, real_label=real_label) if spec.loss.probabilities else spec.loss.d
    # the CPU's per-member Adam takes each member's lr and betas as numbers
    per_member = lambda j: [(rates[j], *b) for rates, b in zip(host_lr, kn.betas_host)] if spec.fused_adam else None  # noqa: E731

    # (1) Update D: minimise the D loss on a real and a fake batch, n_critic times.
    for i in range(spec.n_critic):
        c = count + i
        real, labels = s.batches.next()
        cond = () if labels is None else (labels,)  # a conditional G draws the real batch's classes
        z = noise.normal(noise.draw_key(kn.keys, noise.Z, c), (real.shape[1], spec.z_dim), dtype)
        fake = s.g(z, *cond)
        out_real = s.d(_noisy(real, sigma, noise.draw_key(kn.keys, noise.NOISE_REAL, c), spec.instance_noise), *cond)
        out_fake = s.d(_noisy(fake.detach(), sigma, noise.draw_key(kn.keys, noise.NOISE_FAKE, c), spec.instance_noise), *cond)
        loss_d = d_loss(out_real, out_fake)
        if spec.gp_weight > 0:
            alpha = noise.uniform(noise.draw_key(kn.keys, noise.GP_ALPHA, c), (real.shape[1],) + (1,) * (real.dim() - 2), dtype)
            loss_d = loss_d + spec.gp_weight * gradient_penalty(s.d, real, fake.detach(), *cond, alpha=alpha, per_member=True)
        (grad,) = torch.autograd.grad(loss_d.sum(), s.d.flat)
        norm_d = _clip(grad, kn.clip_d, spec.clipping)  # the norm before clipping: the diagnostic of exploding gradients
        adam_step(s.d.flat, grad, s.adam_d, lr_d, kn.beta1, kn.beta2, per_member(1))

    # (2) Update G: make D score the fakes as real; the EMA of G follows.
    out_g = s.d(_noisy(fake, sigma, noise.draw_key(kn.keys, noise.NOISE_G, count), spec.instance_noise), *cond)
    loss_g = spec.loss.g(out_g)
    (grad,) = torch.autograd.grad(loss_g.sum(), s.g.flat)
    norm_g = _clip(grad, kn.clip_g, spec.clipping)
    adam_step(s.g.flat, grad, s.adam_g, lr_g, kn.beta1, kn.beta2, per_member(0))
    if spec.ema:
        _update_ema(s)

    with torch.no_grad():
        to_p = torch.sigmoid if spec.loss.probabilities else (lambda t: t)
        return torch.stack([loss_d, loss_g, to_p(out_real).mean(-1), to_p(out_fake).mean(-1), norm_d, norm_g], dim=1)


@torch.no_grad()
def _update_ema(s: Stack) -> None:
    """AveragedModel's EMA per member: a copy on the first update, then a lerp towards G by
    1 - decay, for parameters and floating buffers alike (integer buffers are copied)."""
    weight = torch.where(s.ema_n == 0, torch.ones_like(s.knobs.ema), 1 - s.knobs.ema)
    s.ema_flat.lerp_(s.g.flat.detach(), weight)
    for name, avg in s.ema_buffers.items():
        current = s.g.buffers[name]
        if avg.is_floating_point():
            avg.lerp_(current, weight.view(-1, *[1] * (avg.dim() - 1)))
        else:
            avg.copy_(current)
    s.ema_n.add_(1)

