"""Mode-collapse metrics: digit classes, 2D Gaussian mixtures and stacked MNIST.

All functions are pure: they take classifier outputs or points and return counts and
divergences, so each can be checked against a hand-computed answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

# Added to every bin of both histograms in class_modes' KL so a class the real data
# lacks gives a large but finite divergence instead of infinity.
KL_EPS = 1e-10
STACKED_MODES = 1000
# Share of a 2D isotropic Gaussian within 3 std of its center (chi-square, 2 dof): the
# HQ fraction of the real mixture itself.
REAL_HQ_FRACTION = 1.0 - math.exp(-4.5)


@dataclass(frozen=True)
class ClassModes:
    modes_covered: int  # classes with at least threshold * (1 / num_classes) of the samples
    modes_total: int
    mode_kl: float  # KL(generated class histogram || real class histogram), nats
    confidence: float  # mean max softmax probability


@dataclass(frozen=True)
class MixtureModes:
    modes_covered: int  # modes nearest to at least one high-quality sample
    modes_covered_min: int  # modes nearest to at least min_count high-quality samples
    modes_total: int
    hq_fraction: float  # share of samples within 3 std of their nearest mode
    mode_kl: float  # KL(HQ mode histogram || uniform), nats
    mixture_tv: float  # total variation to the real mixture over the modes plus an off-mode bin


@dataclass(frozen=True)
class StackedModes:
    modes_covered: int  # distinct 3-digit codes among the samples
    modes_total: int
    mode_kl: float  # KL(code histogram || uniform over 1000), nats


def class_histogram(labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Share of each class among integer ``labels``, (num_classes,) summing to 1."""
    counts = torch.bincount(labels.long().flatten().cpu(), minlength=num_classes).double().numpy()
    return counts / counts.sum()


def class_modes(fake_probs: torch.Tensor, real_hist: np.ndarray, threshold: float = 0.25) -> ClassModes:
    """Class coverage and histogram KL of generated samples from their (N, C) class probabilities."""
    num_classes = fake_probs.shape[1]
    if len(real_hist) != num_classes:
        raise ValueError(f"real_hist has {len(real_hist)} classes, fake_probs has {num_classes}")
    fake_hist = class_histogram(fake_probs.argmax(dim=1), num_classes)
    p = (fake_hist + KL_EPS) / (1 + num_classes * KL_EPS)
    q = (np.asarray(real_hist, np.float64) + KL_EPS) / (1 + num_classes * KL_EPS)
    return ClassModes(
        modes_covered=int((fake_hist >= threshold / num_classes).sum()),
        modes_total=num_classes,
        mode_kl=float(np.sum(p * np.log(p / q))),
        confidence=fake_probs.max(dim=1).values.double().mean().item(),
    )


def inception_score(probs: torch.Tensor, chunk: int = 2048) -> float:
    """Salimans et al.'s Inception score, exp(E_x KL(p(y|x) || p(y))), from (N, C) class
    probabilities, or (N, 3, 10) for stacked MNIST, whose classes are the 1000 codes.

    One split over all N samples (the original averages 10 splits of 5,000). It lies
    between 1 (every sample the same class, or no class certain) and the class count.
    """
    def joint(rows: torch.Tensor) -> torch.Tensor:
        rows = rows.double()
        if rows.dim() == 3:  # independent digits per channel: p(abc|x) = p(a|x) p(b|x) p(c|x)
            rows = torch.einsum("na,nb,nc->nabc", rows[:, 0], rows[:, 1], rows[:, 2]).reshape(len(rows), -1)
        return rows.clamp_min(KL_EPS)

    marginal = sum(joint(probs[i : i + chunk]).sum(dim=0) for i in range(0, len(probs), chunk)) / len(probs)
    kl = sum((p * (p.log() - marginal.log())).sum() for p in (joint(probs[i : i + chunk]) for i in range(0, len(probs), chunk)))
    return math.exp(float(kl) / len(probs))


def mixture_modes(points: torch.Tensor, centers: torch.Tensor, std: float, min_count: int = 10) -> MixtureModes:
    """VEEGAN/PacGAN mode metrics of (N, 2) ``points`` against the (M, 2) mixture ``centers``.

    A point is high quality (HQ) when it lies within 3 std of its nearest center. With no
    HQ points at all, mode_kl is log(M), the value for total collapse onto one mode.

    mixture_tv compares the histogram over M + 1 bins (each mode's HQ samples, then every
    non-HQ sample) with the real mixture's (REAL_HQ_FRACTION / M per mode, the rest off
    mode): half the L1 distance, 0 for the exact mixture and near 1 both for one mode
    and for points sprayed over the plane, which mode_kl alone scores well.
    """
    points, centers = points.double().cpu(), centers.double().cpu()
    dist, nearest = torch.cdist(points, centers).min(dim=1)
    hq = dist <= 3 * std
    counts = torch.bincount(nearest[hq], minlength=len(centers)).double()
    n_hq = counts.sum().item()
    if n_hq == 0:
        kl = float(np.log(len(centers)))
    else:
        p = counts[counts > 0] / n_hq  # empty modes add 0 * log 0 = 0
        kl = torch.sum(p * torch.log(p * len(centers))).item()
    return MixtureModes(
        modes_covered=int((counts >= 1).sum()),
        modes_covered_min=int((counts >= min_count).sum()),
        modes_total=len(centers),
        hq_fraction=hq.double().mean().item(),
        mode_kl=kl,
        mixture_tv=mixture_tv(counts, len(points)),
    )


def mixture_tv(hq_counts: torch.Tensor, n: int) -> float:
    """Total variation between (HQ count per mode, off-mode count) / n and the real mixture's shares."""
    m = len(hq_counts)
    fake = torch.cat([hq_counts.double(), (n - hq_counts.sum()).reshape(1).double()]) / n
    real = torch.cat([torch.full((m,), REAL_HQ_FRACTION / m, dtype=torch.float64),
                      torch.tensor([1.0 - REAL_HQ_FRACTION], dtype=torch.float64)])
    return 0.5 * torch.sum(torch.abs(fake - real)).item()


def stacked_modes(digits: torch.Tensor) -> StackedModes:
    """Modes of stacked MNIST from the (N, 3) digit predicted for each channel: code 100a + 10b + c."""
    codes = (digits.long().cpu() * torch.tensor([100, 10, 1])).sum(dim=1)
    counts = torch.bincount(codes, minlength=STACKED_MODES).double()
    p = counts[counts > 0] / counts.sum()
    return StackedModes(
        modes_covered=int((counts > 0).sum()),
        modes_total=STACKED_MODES,
        mode_kl=torch.sum(p * torch.log(p * STACKED_MODES)).item(),
    )
