"""The default sweep objectives cannot be won by a bad generator.

2D mixtures: mixture_tv must rank (a) the exact mixture, (b) all modes with half the
samples high quality, (c) a few modes, all high quality, then last (d) one mode and (e)
points spread uniformly over the plane. Every case is seeded, so each value is the same
on every machine; 1e-3 covers float summation order. The 2,500 points are PacGAN's count.
Images: FID ranks a blurry ten-digit generator above a one-digit one (tests/test_metrics_evaluate.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from gansweep.metrics.modes import REAL_HQ_FRACTION, mixture_modes
from gansweep.scores import SCORES, default_objective

N = 2500
GRID25 = torch.cartesian_prod(torch.arange(-4.0, 5.0, 2.0), torch.arange(-4.0, 5.0, 2.0))
RING8 = torch.tensor([[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)])
MIXTURES = {"grid25": (GRID25, 0.05, 5.0), "ring8": (RING8, 0.01, 1.5)}  # centers, std, half-width of the plane


def generators(centers: torch.Tensor, std: float, extent: float) -> dict[str, torch.Tensor]:
    """N points from each of the five cases, seeded."""
    g = torch.Generator().manual_seed(0)
    m = len(centers)

    def around(idx: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return centers[idx] + scale * std * torch.randn(len(idx), 2, generator=g)

    exact = around(torch.randint(m, (N,), generator=g))
    on_mode = around(torch.randint(m, (N // 2,), generator=g))
    off_mode = around(torch.randint(m, (N - N // 2,), generator=g)) + extent / 4 * torch.randn(N - N // 2, 2, generator=g).sign()
    few = 5 if m == 25 else 3
    return {
        "a exact mixture": exact,
        "b all modes, half HQ": torch.cat([on_mode, off_mode]),
        "c few modes, all HQ": around(torch.arange(N) % few * (m // few), 0.5),
        "d one mode": around(torch.zeros(N, dtype=torch.long), 0.5),
        "e uniform over the plane": (torch.rand(N, 2, generator=g) * 2 - 1) * extent,
    }


# Measured mixture_tv per case, in the order the objective must rank them.
MEASURED = {
    "grid25": {"a exact mixture": 0.0379, "b all modes, half HQ": 0.4941, "c few modes, all HQ": 0.8022,
               "d one mode": 0.9604, "e uniform over the plane": 0.9705},
    "ring8": {"a exact mixture": 0.0217, "b all modes, half HQ": 0.4941, "c few modes, all HQ": 0.6292,
              "d one mode": 0.8764, "e uniform over the plane": 0.9869},
}


@pytest.fixture(scope="module", params=list(MIXTURES))
def scored(request) -> tuple[str, dict[str, dict]]:
    centers, std, extent = MIXTURES[request.param]
    cases = generators(centers, std, extent)
    return request.param, {name: mixture_modes(points, centers, std, min_count=10) for name, points in cases.items()}


def test_the_default_2d_objective_is_mixture_tv_and_lower_is_better():
    assert default_objective(is_points=True) == ["mixture_tv"]
    assert SCORES["mixture_tv"].better.value == "minimize"


def test_each_case_scores_its_measured_value(scored):
    name, results = scored
    assert {case: r.mixture_tv for case, r in results.items()} == pytest.approx(MEASURED[name], abs=1e-3)


def test_the_cases_rank_in_the_required_order(scored):
    _, results = scored
    ranked = sorted(results, key=lambda case: results[case].mixture_tv)
    assert ranked[:3] == ["a exact mixture", "b all modes, half HQ", "c few modes, all HQ"]
    assert set(ranked[3:]) == {"d one mode", "e uniform over the plane"}


def test_the_cases_are_what_they_claim(scored):
    _, results = scored
    a, b, c, d, e = results.values()
    assert a.modes_covered == a.modes_total and a.hq_fraction == pytest.approx(REAL_HQ_FRACTION, abs=0.01)
    assert b.modes_covered == b.modes_total and b.hq_fraction == pytest.approx(0.5, abs=0.01)
    assert c.modes_covered == (5 if c.modes_total == 25 else 3) and c.hq_fraction == 1.0
    assert d.modes_covered == 1 and d.hq_fraction == 1.0
    assert e.hq_fraction < 0.02


def test_mode_kl_alone_would_be_fooled_by_the_uniform_spray():
    """Why mode_kl is not the default: it scores HQ samples only, so a spray that touches most modes wins."""
    centers, std, extent = MIXTURES["grid25"]
    cases = generators(centers, std, extent)
    kl = {name: mixture_modes(points, centers, std, 10).mode_kl for name, points in cases.items()}
    assert kl["e uniform over the plane"] < kl["c few modes, all HQ"]  # measured 0.21 against 1.61
