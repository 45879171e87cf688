"""Counter-based random numbers: every member of a population draws its own noise in one op.

A training step needs noise (z, instance noise, gradient-penalty mixing, dropout masks,
the data order) for K members at once. torch's generators are one stream each, so K
members with their own streams would cost K draws per step. Here a draw is a pure
function of (key, element index): a 32-bit integer hash, evaluated element-wise, so one
call fills a (K, ...) tensor with each member's own numbers. A member's key is a hash of
its seed, the purpose of the draw (a stream id) and its step, so its noise is the same
whether it trains alone or beside others, needs no generator state in checkpoints, and
is untouched by evaluation or anything else that uses torch's generators.

The hash is Chris Wellons' "lowbias32" shape with multipliers below 2**31, so every
product of a 32-bit value fits in int64 without overflow on any device.
"""

from __future__ import annotations

import math

import torch

MASK = 0xFFFFFFFF
_M1, _M2 = 0x7FEB352D, 0x5BD1E995  # odd multipliers < 2**31
_GOLDEN = 0x1E3779B9  # spreads consecutive stream ids and steps apart

# Stream ids: what a draw is for. A member's draws of one stream at one step never repeat.
Z, NOISE_REAL, NOISE_FAKE, NOISE_G, GP_ALPHA, PERM, DROPOUT = range(1, 8)


def mix(x: torch.Tensor) -> torch.Tensor:
    """The 32-bit hash of int64 tensors holding values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = (x * _M1) & MASK
    x = x ^ (x >> 15)
    x = (x * _M2) & MASK
    return x ^ (x >> 16)


def seed_key(seed: int) -> int:
    """A member's base key from its config seed (host-side, once per member)."""
    return int(mix(torch.tensor([seed & MASK], dtype=torch.int64))[0])


def draw_key(base: torch.Tensor, stream: int, counter: torch.Tensor) -> torch.Tensor:
    """The key of one draw: members' base keys (K,), a stream id and a per-member counter (K,)
    such as the step."""
    return mix((mix((base + stream * _GOLDEN) & MASK) + counter * _GOLDEN) & MASK)


_TABLES: dict[tuple[int, str], torch.Tensor] = {}


def _hashed_index(n: int, device: torch.device) -> torch.Tensor:
    """mix(0..n-1), cached: the per-element half of every draw of n numbers."""
    key = (n, str(device))
    if key not in _TABLES:
        _TABLES[key] = mix(torch.arange(n, dtype=torch.int64, device=device))
    return _TABLES[key]


BITS = 23  # float32's mantissa: (b + 0.5) / 2**23 is exact, so never rounds to 0 or 1


def unit(bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """BITS random bits as a number strictly inside (0, 1): the inverse normal CDF of it is finite.
    (24 bits gave 1 - 2**-25, which float32 rounds to 1: an infinite z once in 2**24 draws.)"""
    return (bits.to(dtype) + 0.5) * 2.0**-BITS


def uniform(key: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Uniform numbers in (0, 1) of shape key.shape + shape, one independent set per key."""
    n = math.prod(shape)
    bits = mix((_hashed_index(n, key.device) + key.unsqueeze(-1)) & MASK) >> (32 - BITS)
    return unit(bits, dtype).view(*key.shape, *shape)


def normal(key: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Standard normal numbers of shape key.shape + shape, by the inverse CDF of uniform()."""
    return torch.special.ndtri(uniform(key, shape, dtype))
