"""Adam over stacked flat rows, with each member's lr and betas held as (K, 1) tensors.

The update is element-wise, so member k's row moves exactly as a solo Adam with
member k's settings would move it, in the same number of ops for any K: the form for a
GPU, where a step costs its launches. On the CPU, torch's fused kernel per member is
faster (``adam_step``'s per_member form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

EPS = 1e-8  # torch.optim.Adam's default


@dataclass
class AdamState:
    """Adam's moments per member: (K, P) rows like the parameters, and (K, 1) step counts."""

    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    step: torch.Tensor

    @staticmethod
    def zeros(flat: torch.Tensor) -> "AdamState":
        rows = flat.detach()
        return AdamState(torch.zeros_like(rows), torch.zeros_like(rows), torch.zeros(rows.shape[0], 1, dtype=rows.dtype, device=rows.device))

    def member(self, k: int) -> dict[str, Any]:
        """Member k's state as a checkpoint holds it."""
        return {"exp_avg": self.exp_avg[k].clone(), "exp_avg_sq": self.exp_avg_sq[k].clone(), "step": float(self.step[k, 0])}

    def load_member(self, k: int, state: dict[str, Any]) -> None:
        self.exp_avg[k].copy_(state["exp_avg"])
        self.exp_avg_sq[k].copy_(state["exp_avg_sq"])
        self.step[k, 0] = state["step"]

    def select(self, idx: torch.Tensor) -> "AdamState":
        return AdamState(*(t.index_select(0, idx) for t in (self.exp_avg, self.exp_avg_sq, self.step)))

    def concat(self, other: "AdamState") -> "AdamState":
        return AdamState(*(torch.cat([a, b]) for a, b in ((self.exp_avg, other.exp_avg), (self.exp_avg_sq, other.exp_avg_sq), (self.step, other.step))))


@torch.no_grad()
def adam_step(flat: torch.Tensor, grad: torch.Tensor, state: AdamState, lr: torch.Tensor, beta1: torch.Tensor, beta2: torch.Tensor,
              per_member: Optional[list[tuple[float, float, float]]] = None) -> None:
    """One Adam update of every member's row; lr, beta1 and beta2 are (K, 1).

    per_member (the CPU's form) gives each member's (lr, beta1, beta2) as plain numbers:
    torch's fused kernel then updates one member's row at a time, which stays in cache
    where the element-wise passes over all K rows go to memory (BENCHMARKS.md). Tests
    check the two forms against each other."""
    state.step.add_(1)
    if per_member is not None:
        for k, (lr_k, b1, b2) in enumerate(per_member):
            torch._fused_adam_(  # type: ignore[attr-defined]
                [flat[k]], [grad[k]], [state.exp_avg[k]], [state.exp_avg_sq[k]], [], [state.step[k, 0]],
                lr=lr_k, beta1=b1, beta2=b2, weight_decay=0.0, eps=EPS, amsgrad=False, maximize=False,
            )
        return
    state.exp_avg.lerp_(grad, 1 - beta1)
    state.exp_avg_sq.mul_(beta2).add_(grad.square().mul_(1 - beta2))
    bias1 = 1 - beta1.pow(state.step)
    bias2 = (1 - beta2.pow(state.step)).sqrt_()
    denom = state.exp_avg_sq.sqrt().div_(bias2).add_(EPS)
    flat.sub_(state.exp_avg.div(denom).mul_(lr / bias1))
