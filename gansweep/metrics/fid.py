"""Fréchet distance between two Gaussians fitted to feature vectors (FID)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from gansweep.errors import GansweepError

# The reference FID code tolerates this much imaginary part on the diagonal of
# sqrtm(sigma1 @ sigma2); more than that means the covariances are broken.
IMAG_TOLERANCE = 1e-3


def feature_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, in float64."""
    x = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), never below zero.

    When the product's square root is not finite (near-singular covariances, e.g. fewer
    samples than feature dimensions) both covariances get ``eps * I`` added first.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched shapes: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")

    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = eps * np.eye(len(mu1))
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > IMAG_TOLERANCE:
            raise GansweepError(
                f"FID: sqrt(sigma1 @ sigma2) has an imaginary part of {imag:.3g}; "
                "the feature covariances are not valid (non-finite or degenerate features?)"
            )
        covmean = covmean.real

    diff = mu1 - mu2
    fid = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    # Rounding can push the distance of (nearly) equal Gaussians a hair below zero.
    return max(float(fid), 0.0)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # Singular products are normal here (dead ReLU features have zero variance); the
    # finiteness and imaginary-part checks in frechet_distance judge the result instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(a)
