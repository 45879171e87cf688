import numpy as np
import pytest
import torch

from gansweep.errors import GansweepError
from gansweep.metrics.fid import feature_stats, frechet_distance


def eigen_fid(mu1, sigma1, mu2, sigma2) -> float:
    """Independent FID: tr sqrt(s1 s2) = tr sqrt(r s2 r) with r = s1^(1/2), via eigh only."""
    w, v = np.linalg.eigh(sigma1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root @ sigma2 @ root
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.sqrt(np.clip(eig, 0, None)).sum())


def test_feature_stats_mean_and_unbiased_covariance_in_float64():
    mu, sigma = feature_stats(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_array_equal(mu, [2.0, 4.0])
    np.testing.assert_array_equal(sigma, [[2.0, 4.0], [4.0, 8.0]])


def test_feature_stats_needs_two_rows():
    with pytest.raises(ValueError, match="N >= 2"):
        feature_stats(np.ones((1, 3)))


def test_diagonal_gaussians_have_closed_form_distance():
    # |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2 = 25 + 1 + 1
    fid = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([3.0, 4.0]), np.diag([4.0, 9.0]))
    assert fid == pytest.approx(27.0, abs=1e-12)


def test_identical_gaussians_are_at_distance_zero():
    g = torch.Generator().manual_seed(0)
    mu, sigma = feature_stats(torch.randn(200, 16, generator=g))
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("n", [400, 20])  # 20 < 32 dims: rank-deficient covariances
def test_matches_independent_eigen_computation(n):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(n, 32, generator=g, dtype=torch.float64)
    b = 1.5 * torch.randn(n, 32, generator=g, dtype=torch.float64) @ torch.randn(32, 32, generator=g, dtype=torch.float64) / 6 + 0.3
    mu1, s1 = feature_stats(a)
    mu2, s2 = feature_stats(b)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(eigen_fid(mu1, s1, mu2, s2), rel=1e-6)


def test_zero_covariances_reduce_to_squared_mean_distance():
    fid = frechet_distance(np.zeros(3), np.zeros((3, 3)), np.array([1.0, 2.0, 2.0]), np.zeros((3, 3)))
    assert fid == pytest.approx(9.0, abs=1e-9)


def test_large_imaginary_square_root_is_an_error():
    # sigma1 is not a covariance: its product with I has eigenvalue -1, whose root is i.
    with pytest.raises(GansweepError, match="imaginary part of 1"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="mismatched shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
