"""K copies of one network as stacked tensors: any model family, one forward for all.

Member k's parameters are row k of one flat (K, P) tensor, and its buffers (batch-norm
statistics, spectral-norm vectors, dropout counters) slice k of (K, ...) tensors. A
forward pass runs the solo module's own code on those tensors (bound into a storage-less
copy of it, as ``torch.func.functional_call`` would, at a fraction of its host time):
under ``vmap`` for K members, so each op runs once for all of them (Linears become
batched products), and directly on the one row when K = 1, which is the solo run's
speed. A DCGAN's K members run instead as one network of grouped convolutions
(gansweep.grouped): the same arithmetic as vmap's road in 22% fewer kernels. Either way,
member k's numbers are a function of member k alone: members never mix, and row k is
exactly a solo module's state dict.

The flat row is what makes the rest of a step independent of K and of the layer count:
one gradient, one norm, one Adam update and one EMA update per network.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
from torch import nn
from torch.func import vmap

from gansweep.grouped import Forward, grouped_forward

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Layout:
    """Where each parameter of a module sits in a flat row. Conv weights of a channels-last
    network are stored in (out, kh, kw, in) order, so their views are channels-last too."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    channels_last: bool

    @staticmethod
    def of(module: nn.Module, channels_last: bool) -> "Layout":
        named = list(module.named_parameters())
        return Layout(tuple(n for n, _ in named), tuple(p.shape for _, p in named), channels_last)

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    def _last(self, shape: torch.Size) -> bool:
        return self.channels_last and len(shape) == 4

    def views(self, flat: torch.Tensor) -> Tensors:
        """Each parameter as a (K, *shape) view of the flat (K, P) rows."""
        k = flat.shape[0]
        out: Tensors = {}
        for name, shape, part in zip(self.names, self.shapes, flat.split(self.sizes, dim=1)):
            if self._last(shape):
                o, i, h, w = shape
                out[name] = part.view(k, o, h, w, i).permute(0, 1, 4, 2, 3)
            else:
                out[name] = part.view(k, *shape)
        return out

    def row(self, params: Tensors) -> torch.Tensor:
        """One member's flat row from its parameters (a solo state dict)."""
        parts = [(params[n].permute(0, 2, 3, 1) if self._last(s) else params[n]).reshape(-1) for n, s in zip(self.names, self.shapes)]
        return torch.cat(parts)

    def params(self, row: torch.Tensor) -> Tensors:
        """One member's parameters (contiguous copies) from its flat row."""
        return {n: v[0].contiguous().clone() for n, v in self.views(row.unsqueeze(0)).items()}


def _template(module: nn.Module) -> nn.Module:
    """A copy of the module without storage: only its code and structure are used."""
    return copy.deepcopy(module).to("meta")


class _Bound:
    """A template module whose parameters and buffers are set to given tensors before each
    call. functional_call does the same, but walks the module tree and swaps every tensor
    back after each call, which cost about 0.4 ms a call, a fifth of a small net's step."""

    def __init__(self, template: nn.Module):
        self.module = template
        self.slots = {name: _slot(template, name, "_parameters") for name, _ in template.named_parameters()}
        self.slots |= {name: _slot(template, name, "_buffers") for name, _ in template.named_buffers()}

    def __call__(self, params: Tensors, buffers: Tensors, *inputs: torch.Tensor) -> torch.Tensor:
        for tensors in (params, buffers):
            for name, t in tensors.items():
                table, attr = self.slots[name]
                table[attr] = t
        return self.module(*inputs)


def _slot(template: nn.Module, name: str, kind: str) -> tuple[dict[str, torch.Tensor], str]:
    """The dict (a submodule's _parameters or _buffers) and key that hold tensor `name`."""
    owner, _, attr = name.rpartition(".")
    return getattr(template.get_submodule(owner), kind), attr


class StackedNet:
    """K same-shaped copies of a network: flat parameters, stacked buffers, one forward."""

    def __init__(self, module: nn.Module, channels_last: bool, flat: torch.Tensor, buffers: Tensors):
        self.template = _Bound(_template(module))
        self.layout = Layout.of(module, channels_last)
        self.flat = flat  # (K, P), a leaf that requires grad
        self.buffers = buffers  # name -> (K, ...)
        self.stacked: Optional[bool] = None  # None: K = 1 runs directly on its row, K > 1 stacked; True: always stacked
        # A stacked DCGAN runs as one network of grouped layers (gansweep.grouped), other nets under vmap.
        self.grouped: Optional[Forward] = grouped_forward(self.template.module, channels_last)

    @staticmethod
    def of(modules: list[nn.Module], channels_last: bool) -> "StackedNet":
        """The stack of K solo modules (their current parameters and buffers)."""
        layout = Layout.of(modules[0], channels_last)
        flat = torch.stack([layout.row(dict(m.named_parameters())).detach() for m in modules])
        buffers = {n: torch.stack([dict(m.named_buffers())[n] for m in modules]).clone() for n, _ in modules[0].named_buffers()}
        return StackedNet(modules[0], channels_last, flat.requires_grad_(), buffers)

    @property
    def k(self) -> int:
        return self.flat.shape[0]

    def __call__(self, x: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
        """Every member's output for its own inputs: x (K, N, ...) -> (K, ...)."""
        params = self.layout.views(self.flat)
        if self.stacked or (self.stacked is None and self.k > 1):
            if self.grouped is not None:
                return self.grouped(params, self.buffers, x, *cond)
            return vmap(self.template, randomness="error")(params, self.buffers, x, *cond)
        p = {n: t[0] for n, t in params.items()}
        b = {n: t[0] for n, t in self.buffers.items()}
        return self.template(p, b, x[0], *(c[0] for c in cond)).unsqueeze(0)

    def member_state(self, k: int, flat: Optional[torch.Tensor] = None, buffers: Optional[Tensors] = None) -> Tensors:
        """Member k's solo state dict (of these rows, or of `flat`/`buffers` of the same layout)."""
        flat = self.flat if flat is None else flat
        buffers = self.buffers if buffers is None else buffers
        return {**self.layout.params(flat[k].detach()), **{n: t[k].clone() for n, t in buffers.items()}}

    def load_member(self, k: int, state: Tensors) -> None:
        """Put a solo state dict into row k (e.g. a checkpoint's, or another member's)."""
        with torch.no_grad():
            self.flat[k].copy_(self.layout.row(state))
            for n, t in self.buffers.items():
                t[k].copy_(state[n])

    def with_rows(self, flat: torch.Tensor, buffers: Tensors) -> "StackedNet":
        """The same network holding other rows of its layout (an EMA of it, a selection)."""
        return StackedNet._wrap(self, flat, buffers)

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """The network in eval mode (batch norm on its running statistics, no dropout) for the block."""
        self.template.module.eval()
        try:
            yield
        finally:
            self.template.module.train()

    def select(self, idx: torch.Tensor) -> "StackedNet":
        """The members at idx, in that order (a new stack)."""
        return StackedNet._wrap(self, self.flat.detach().index_select(0, idx), {n: t.index_select(0, idx) for n, t in self.buffers.items()})

    def concat(self, other: "StackedNet") -> "StackedNet":
        return StackedNet._wrap(self, torch.cat([self.flat.detach(), other.flat.detach()]),
                                {n: torch.cat([t, other.buffers[n]]) for n, t in self.buffers.items()})

    @staticmethod
    def _wrap(like: "StackedNet", flat: torch.Tensor, buffers: Tensors) -> "StackedNet":
        new = object.__new__(StackedNet)
        new.template, new.layout, new.flat, new.buffers = like.template, like.layout, flat.requires_grad_(), buffers
        new.stacked, new.grouped = like.stacked, like.grouped
        return new
