import math

import numpy as np
import pytest
import torch

from gansweep.metrics.modes import (
    ClassModes,
    class_histogram,
    class_modes,
    mixture_modes,
    stacked_modes,
)

RING8 = torch.tensor([[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)])
GRID25 = torch.cartesian_prod(torch.arange(-4.0, 5.0, 2.0), torch.arange(-4.0, 5.0, 2.0))
# Share of a 2-D Gaussian within 3 std of its mean: P(chi2 with 2 dof <= 9).
WITHIN_3_STD = 1 - math.exp(-4.5)


def probs_for(labels: list[int], top: float = 0.9) -> torch.Tensor:
    """Softmax-like rows: ``top`` on the label, the rest spread over the other 9 classes."""
    probs = torch.full((len(labels), 10), (1 - top) / 9, dtype=torch.float64)
    probs[torch.arange(len(labels)), labels] = top
    return probs


def mixture_sample(centers: torch.Tensor, std: float, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return centers[torch.randint(len(centers), (n,), generator=g)] + std * torch.randn(n, 2, generator=g)


# Digit classes ------------------------------------------------------------------------


def test_class_histogram_normalises_counts():
    np.testing.assert_array_equal(class_histogram(torch.tensor([0, 0, 2, 3]), 4), [0.5, 0.0, 0.25, 0.25])


def test_class_modes_threshold_kl_and_confidence():
    # Shares 0.58, 0.37, 0.03, 0.02: the threshold is 0.25 * 1/10 = 0.025, so 3 are covered.
    labels = [0] * 58 + [1] * 37 + [2] * 3 + [3] * 2
    result = class_modes(probs_for(labels), np.full(10, 0.1), threshold=0.25)
    p = np.array([0.58, 0.37, 0.03, 0.02])
    assert result.modes_covered == 3
    assert result.modes_total == 10
    assert result.mode_kl == pytest.approx(float(np.sum(p * np.log(p / 0.1))), rel=1e-6)
    assert result.confidence == pytest.approx(0.9)


def test_matching_histograms_have_zero_kl_and_full_coverage():
    result = class_modes(probs_for(list(range(10)) * 5), np.full(10, 0.1))
    assert result == ClassModes(modes_covered=10, modes_total=10, mode_kl=pytest.approx(0.0, abs=1e-12), confidence=pytest.approx(0.9))


def test_collapse_onto_one_class_has_kl_log10():
    assert class_modes(probs_for([7] * 20), np.full(10, 0.1)).mode_kl == pytest.approx(math.log(10), rel=1e-6)


def test_class_absent_from_real_data_gives_large_finite_kl():
    real = np.array([0.5, 0.5] + [0.0] * 8)
    kl = class_modes(probs_for([2] * 10), real).mode_kl
    assert math.isfinite(kl) and kl == pytest.approx(math.log(1 / 1e-10), rel=1e-3)


def test_class_count_must_match():
    with pytest.raises(ValueError, match="real_hist has 5 classes, fake_probs has 10"):
        class_modes(probs_for([0]), np.full(5, 0.2))


# 2-D mixtures --------------------------------------------------------------------------


@pytest.mark.parametrize(("centers", "std"), [(RING8, 0.01), (GRID25, 0.05)])
def test_samples_from_the_mixture_cover_every_mode(centers, std):
    result = mixture_modes(mixture_sample(centers, std, 5000), centers, std, min_count=10)
    assert result.modes_covered == result.modes_covered_min == result.modes_total == len(centers)
    assert result.hq_fraction == pytest.approx(WITHIN_3_STD, abs=0.005)
    assert result.mode_kl < 0.01


def test_three_ring_modes_cover_exactly_three():
    points = mixture_sample(RING8[[0, 3, 5]], 0.01, 3000)
    result = mixture_modes(points, RING8, 0.01)
    assert result.modes_covered == 3
    assert result.hq_fraction == pytest.approx(WITHIN_3_STD, abs=0.01)


def test_equal_mass_on_three_modes_has_kl_log_8_over_3():
    points = RING8[[0, 3, 5]].repeat(10, 1)  # exactly on the centers: all high quality
    result = mixture_modes(points, RING8, 0.01)
    assert result.hq_fraction == 1.0
    assert result.mode_kl == pytest.approx(math.log(8 / 3), rel=1e-12)


def test_points_far_from_every_mode_are_not_high_quality():
    result = mixture_modes(torch.full((100, 2), 0.5), RING8, 0.01)
    assert (result.modes_covered, result.modes_covered_min, result.hq_fraction) == (0, 0, 0.0)
    assert result.mode_kl == pytest.approx(math.log(8))


def test_min_count_separates_modes_with_few_samples():
    points = torch.cat([RING8[0].repeat(10, 1), RING8[1].repeat(9, 1)])
    result = mixture_modes(points, RING8, 0.01, min_count=10)
    assert (result.modes_covered, result.modes_covered_min) == (2, 1)


# Stacked MNIST --------------------------------------------------------------------------


def test_all_thousand_combinations_cover_every_mode():
    codes = torch.arange(1000)
    digits = torch.stack([codes // 100, codes // 10 % 10, codes % 10], dim=1)
    result = stacked_modes(digits)
    assert (result.modes_covered, result.modes_total) == (1000, 1000)
    assert result.mode_kl == pytest.approx(0.0, abs=1e-12)


def test_one_combination_covers_one_mode():
    result = stacked_modes(torch.tensor([[4, 0, 2]] * 50))
    assert result.modes_covered == 1
    assert result.mode_kl == pytest.approx(math.log(1000))


def test_stacked_kl_of_two_modes_split_three_to_one():
    result = stacked_modes(torch.tensor([[1, 2, 3]] * 3 + [[3, 2, 1]]))
    assert result.modes_covered == 2
    assert result.mode_kl == pytest.approx(0.75 * math.log(750) + 0.25 * math.log(250))


def test_inception_score_known_answers():
    from gansweep.metrics.modes import inception_score

    eye = torch.eye(10)
    assert inception_score(eye.repeat(100, 1)) == pytest.approx(10.0, rel=1e-6)  # ten certain classes, evenly: the maximum
    assert inception_score(eye[[3]].repeat(1000, 1)) == pytest.approx(1.0)  # one class: collapse
    assert inception_score(torch.full((1000, 10), 0.1)) == pytest.approx(1.0)  # no class certain: noise
    half = torch.cat([eye[[0]], eye[[1]]]).repeat(500, 1)
    assert inception_score(half) == pytest.approx(2.0, rel=1e-6)  # two classes: e^(log 2)
    codes = torch.arange(1000)
    stacked = torch.stack([eye[codes // 100], eye[codes // 10 % 10], eye[codes % 10]], dim=1)
    assert inception_score(stacked, chunk=300) == pytest.approx(1000.0, rel=1e-5)  # every stacked code once
