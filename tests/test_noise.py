"""Counter-based noise (gansweep.noise): finite at the extremes, standard normal, the same for
a member whatever its neighbours."""

from __future__ import annotations

import pytest
import torch

from gansweep import noise


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_extreme_bit_patterns_give_finite_normals(dtype: torch.dtype) -> None:
    # The default run once drew 24 bits that float32 rounded to u = 1: z = inf at step 1499.
    u = noise.unit(torch.tensor([0, 2**noise.BITS - 1]), dtype)
    assert 0 < u[0] < u[1] < 1
    z = torch.special.ndtri(u)
    assert torch.isfinite(z).all() and z[1] == pytest.approx(-z[0]) and 5.0 < float(z[1]) < 5.6


def test_normals_are_standard_and_each_key_draws_its_own() -> None:
    keys = torch.tensor([noise.seed_key(0), noise.seed_key(1)])
    z = noise.normal(noise.draw_key(keys, noise.Z, torch.tensor([3, 3])), (100_000,), torch.float64)
    for row in z:  # 100k draws: mean known to 0.01 (3 sd), std to 0.7%
        assert float(row.mean()) == pytest.approx(0.0, abs=0.01) and float(row.std()) == pytest.approx(1.0, rel=0.01)
    assert abs(float(torch.corrcoef(z)[0, 1])) < 0.01
    alone = noise.normal(noise.draw_key(keys[1:], noise.Z, torch.tensor([3])), (100_000,), torch.float64)
    assert torch.equal(alone[0], z[1])  # a member's noise does not depend on who else draws
