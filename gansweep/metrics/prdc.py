"""Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Each real sample gets a ball whose radius is the distance to its k-th nearest other
real sample (the point itself is excluded); likewise for fake samples.

- precision: share of fake samples inside at least one real ball (radius k = pr_k).
- recall:    share of real samples inside at least one fake ball (radius k = pr_k).
- density:   real balls (k = dc_k) containing each fake sample, averaged and divided
             by dc_k; about 1 when fake matches real, above 1 when fakes crowd dense regions.
- coverage:  share of real balls (k = dc_k) that contain at least one fake sample.

Distances are computed in row blocks with torch.cdist so 10,000 x 10,000 needs only
one (block, N) matrix at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float


def knn_radii(features: torch.Tensor, k: int, block_size: int = 1000) -> torch.Tensor:
    """Distance from each row of (N, D) ``features`` to its k-th nearest other row, (N,)."""
    return _nearest_distances(features, k, block_size)[:, k - 1]


def real_radii(real: torch.Tensor, pr_k: int = 3, dc_k: int = 5, block_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """``(knn_radii(real, pr_k), knn_radii(real, dc_k))`` from one pass over the distances."""
    nearest = _nearest_distances(real, max(pr_k, dc_k), block_size)
    return nearest[:, pr_k - 1], nearest[:, dc_k - 1]


def _nearest_distances(features: torch.Tensor, k: int, block_size: int) -> torch.Tensor:
    """(N, k) ascending distances from each row to its k nearest other rows."""
    n = features.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} samples, got {k}")
    x = features.double()
    blocks = []
    for start in range(0, n, block_size):
        dist = torch.cdist(x[start : start + block_size], x)
        # The smallest distance is each point to itself: drop it.
        blocks.append(dist.topk(k + 1, dim=1, largest=False).values[:, 1:])
    return torch.cat(blocks)


def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    pr_k: int = 3,
    dc_k: int = 5,
    block_size: int = 1000,
    radii: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> PRDC:
    """Precision, recall (k = pr_k) and density, coverage (k = dc_k) of (M, D) ``fake`` vs (N, D) ``real``.

    ``radii`` may pass ``real_radii(real, pr_k, dc_k)`` computed once for many calls.
    """
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must be (N, D) with equal D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    real, fake = real.double(), fake.to(real.device).double()
    real_pr, real_dc = radii if radii is not None else real_radii(real, pr_k, dc_k, block_size)
    real_pr, real_dc = real_pr.to(real.device).double(), real_dc.to(real.device).double()
    fake_pr = knn_radii(fake, pr_k, block_size)

    fake_in_real = torch.zeros(len(fake), dtype=torch.bool, device=real.device)  # precision
    real_in_fake = torch.zeros(len(real), dtype=torch.bool, device=real.device)  # recall
    balls_per_fake = torch.zeros(len(fake), dtype=torch.int64, device=real.device)  # density
    real_covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)  # coverage
    for start in range(0, len(fake), block_size):
        stop = start + block_size
        dist = torch.cdist(fake[start:stop], real)  # (block, N)
        fake_in_real[start:stop] = (dist <= real_pr).any(dim=1)
        real_in_fake |= (dist <= fake_pr[start:stop, None]).any(dim=0)
        inside_dc = dist <= real_dc
        balls_per_fake[start:stop] = inside_dc.sum(dim=1)
        real_covered |= inside_dc.any(dim=0)

    return PRDC(
        precision=fake_in_real.double().mean().item(),
        recall=real_in_fake.double().mean().item(),
        density=balls_per_fake.sum().item() / (dc_k * len(fake)),
        coverage=real_covered.double().mean().item(),
    )
