"""Shuffled minibatches for K members at once, each in its own order, epoch by epoch.

The data set lives on the device once; each member holds a permutation of it (a row of a
(K, n) tensor) and a position in it. A step's batch for every member is one gather. The
positions are plain numbers on the host, so knowing when a member starts a new epoch
costs no device sync; its new order is drawn from its seed and epoch (gansweep.noise),
so it is the same whether the member trains alone or in a population.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from gansweep import noise


class StackedBatches:
    """Member k's batches of `batch_size` samples, its data order drawn from keys[k].

    samples (n, ...) are shared by every member; with shared=False they are (K, n, ...),
    each member's own draw of a data set that depends on its seed (the 2D mixtures)."""

    def __init__(self, samples: torch.Tensor, labels: Optional[torch.Tensor], batch_size: int, keys: torch.Tensor, shared: bool = True):
        self.samples, self.labels, self.shared = samples, labels, shared
        self.n = samples.shape[0 if shared else 1]
        self.batch_size = min(batch_size, self.n)  # never more than the whole set
        self.keys = keys  # (K,) int64 on the device: the members' base keys
        self.pos = np.zeros(len(keys), dtype=np.int64)  # on the host: when a member starts an epoch
        self.pos_t = torch.zeros(len(keys), dtype=torch.int64, device=keys.device)  # the same, on the device
        self.epoch = np.zeros(len(keys), dtype=np.int64)
        self.perm = self._orders(keys, self.epoch)
        self.offsets = torch.arange(self.batch_size, device=samples.device)

    def _orders(self, keys: torch.Tensor, epochs: np.ndarray) -> torch.Tensor:
        counter = torch.as_tensor(epochs, device=keys.device)
        return noise.uniform(noise.draw_key(keys, noise.PERM, counter), (self.n,), torch.float32).argsort(dim=1)

    def next(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Every member's next (samples (K, B, ...), labels (K, B) or None)."""
        done = self.pos + self.batch_size > self.n
        if done.any():  # these members start a new epoch in a new order
            rows = np.flatnonzero(done)
            self.epoch[rows] += 1
            self.pos[rows] = 0
            rows_t = torch.as_tensor(rows, device=self.keys.device)
            self.perm[rows_t] = self._orders(self.keys[rows_t], self.epoch[rows])
            self.pos_t[rows_t] = 0
        idx = self.perm.gather(1, self.pos_t.unsqueeze(1) + self.offsets)  # no host copy between epochs
        self.pos += self.batch_size
        self.pos_t.add_(self.batch_size)
        at = idx if self.shared else (self.rows, idx)
        return self.samples[at], (None if self.labels is None else self.labels[at])

    @property
    def rows(self) -> torch.Tensor:
        return torch.arange(len(self.keys), device=self.keys.device).unsqueeze(1)

    def member(self, k: int) -> dict[str, Any]:
        """Member k's place in its data, as its checkpoint holds it."""
        return {"perm": self.perm[k].cpu(), "pos": int(self.pos[k]), "epoch": int(self.epoch[k])}

    def load_member(self, k: int, state: dict[str, Any]) -> None:
        self.perm[k] = state["perm"].to(self.perm.device)
        self.pos[k], self.epoch[k] = state["pos"], state["epoch"]
        self.pos_t[k] = state["pos"]

    def select(self, keep: list[int]) -> "StackedBatches":
        idx = torch.tensor(keep, device=self.keys.device, dtype=torch.int64)
        new = StackedBatches.__new__(StackedBatches)
        new.__dict__.update(self.__dict__)
        new.keys, new.perm, new.pos_t = self.keys.index_select(0, idx), self.perm.index_select(0, idx), self.pos_t.index_select(0, idx)
        new.pos, new.epoch = self.pos[keep].copy(), self.epoch[keep].copy()
        if not self.shared:
            new.samples = self.samples.index_select(0, idx)
            new.labels = None if self.labels is None else self.labels.index_select(0, idx)
        return new

    def concat(self, other: "StackedBatches") -> "StackedBatches":
        new = StackedBatches.__new__(StackedBatches)
        new.__dict__.update(self.__dict__)
        new.keys, new.perm, new.pos_t = torch.cat([self.keys, other.keys]), torch.cat([self.perm, other.perm]), torch.cat([self.pos_t, other.pos_t])
        new.pos, new.epoch = np.concatenate([self.pos, other.pos]), np.concatenate([self.epoch, other.epoch])
        if not self.shared:
            new.samples = torch.cat([self.samples, other.samples])
            new.labels = None if self.labels is None else torch.cat([self.labels, other.labels])
        return new
