"""How many ATen ops a training step issues: the cost of a step on a launch-bound GPU.

For nets this small a GPU step costs its kernel launches, not its arithmetic, so the op
count of one step is the CPU-side stand-in for GPU speed. ``step_ops`` sets up a
population of K members exactly as training does and counts the ops of one full step
(D and G updates, Adam, clipping, EMA, and the statistics copy of a log line).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

from gansweep.config import TrainConfig
from gansweep.member import Member, MemberSpec
from gansweep.devices import pick_device
from gansweep.population import Population


# Ops that only make a new view of existing memory: on a GPU they launch no kernel.
VIEW_OPS = frozenset({"aten.view", "aten._unsafe_view", "aten.permute", "aten.as_strided", "aten.transpose", "aten.t",
                      "aten.detach", "aten.expand", "aten.unsqueeze", "aten.squeeze", "aten.split_with_sizes",
                      "aten.split", "aten.slice", "aten.select", "aten.alias"})


class OpCounter(TorchDispatchMode):
    """Counts every ATen op dispatched while it is active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def kernels(self) -> int:
        """The ops that compute or allocate, i.e. all but views: a GPU's kernel launches, about."""
        return sum(n for name, n in self.ops.items() if name not in VIEW_OPS)


def population_of(cfgs: list[TrainConfig], root: Path, stacked: bool | None = None) -> Population:
    """A population of the configs' members, run folders under root, ready to step."""
    device = pick_device(cfgs[0].device)
    pop = Population(device, stacked)
    for i, cfg in enumerate(cfgs):
        pop.admit(Member(MemberSpec(cfg, root / f"member{i}"), device, quiet=True))
    return pop


def step_ops(pop: Population, warmup: int = 2) -> OpCounter:
    """The ops of one step of the population (after `warmup` steps), its log-line copy included."""
    for _ in range(warmup):
        pop.step()
    with OpCounter() as counter:
        pop.step()
        pop.windows()
    return counter
