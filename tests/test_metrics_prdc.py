import pytest
import torch

from gansweep.metrics.prdc import PRDC, knn_radii, prdc, real_radii

# 1-D points small enough to check by hand; no distance ties a ball radius.
REAL = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
FAKE = torch.tensor([[0.5], [2.5], [20.0]])


def test_knn_radius_skips_the_point_itself():
    assert knn_radii(REAL, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(REAL, k=3).tolist() == [7.0, 6.0, 4.0, 7.0]


def test_real_radii_gives_both_ks_from_one_pass():
    pr, dc = real_radii(REAL, pr_k=1, dc_k=3)
    assert pr.tolist() == [1.0, 1.0, 2.0, 4.0]
    assert dc.tolist() == [7.0, 6.0, 4.0, 7.0]


def test_hand_computed_case_k1():
    # Real balls (k=1): 0±1, 1±1, 3±2, 7±4. Fake balls: 0.5±2, 2.5±2, 20±17.5.
    # precision: 0.5 and 2.5 lie in a real ball, 20 does not -> 2/3.
    # recall: every real point lies in a fake ball (20±17.5 reaches 7) -> 1.
    # density: 0.5 is in 2 balls, 2.5 in 1, 20 in 0 -> 3 / (k=1 * 3 fakes) = 1.
    # coverage: balls of 0, 1, 3 hold a fake, 7's does not -> 3/4.
    assert prdc(REAL, FAKE, pr_k=1, dc_k=1) == PRDC(precision=2 / 3, recall=1.0, density=1.0, coverage=0.75)


def test_hand_computed_case_k2():
    # Real balls (k=2): 0±3, 1±2, 3±3, 7±6. 0.5 is in 3 of them, 2.5 in all 4, 20 in none.
    # density = 7 / (k=2 * 3 fakes); every real ball holds a fake -> coverage 1.
    result = prdc(REAL, FAKE, pr_k=2, dc_k=2)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == 1.0
    assert result.density == pytest.approx(7 / 6)
    assert result.coverage == 1.0


def test_block_size_does_not_change_the_answer():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 2, generator=g), 0.8 * torch.randn(250, 2, generator=g) + 0.5
    assert prdc(real, fake, block_size=7) == prdc(real, fake, block_size=1000)


def test_same_samples_score_perfect_precision_recall_coverage():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=g)
    result = prdc(x, x.clone())
    assert (result.precision, result.recall, result.coverage) == (1.0, 1.0, 1.0)


def test_far_apart_sets_score_zero():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(100, 3, generator=g)
    assert prdc(real, real + 100.0) == PRDC(0.0, 0.0, 0.0, 0.0)


def test_k_must_leave_a_neighbour():
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\] for 4 samples, got 4"):
        knn_radii(REAL, k=4)


def test_feature_dims_must_match():
    with pytest.raises(ValueError, match="equal D"):
        prdc(REAL, torch.zeros(3, 2))
