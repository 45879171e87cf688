"""CPU threads shared between the gansweep trainings running on one machine.

Two torch processes that each start a thread per core run 40-100x slower each on a
small machine (measured on 2 cores: 240-452 img/s instead of about 10,000). So every
training on the CPU registers itself in a per-user folder of this machine, with the
threads it asked for (``threads=N``) or 0 for "a fair share". A training with
``threads=0`` takes the cores its process may use, minus those pinned by others, split
evenly between the trainings that ask for a share when it starts, and keeps that count
for the whole run: the thread count changes a float's last bits, and a run's losses
are reproducible only at the count its summary.json records.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

from gansweep.rundir import pid_alive

REGISTRY = Path(tempfile.gettempdir()) / f"gansweep-{os.getuid()}" / "trainings"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def fair_share(requested: int, others: list[int], cores: int) -> int:
    """Threads for a training that asked for `requested` (0: a share) beside `others`
    (the threads each other training asked for, 0 for a share) on `cores` cores."""
    if requested > 0:
        return requested
    pinned = sum(t for t in others if t > 0)
    sharing = 1 + sum(1 for t in others if t == 0)
    return max(1, (cores - pinned) // sharing)


class ThreadShare:
    """This process's entry in the registry; ``threads()`` is its current fair share."""

    def __init__(self, requested: int, registry: Path = REGISTRY):
        self.requested = requested
        self.registry = registry
        self.entry = registry / f"{os.getpid()}.json"

    def __enter__(self) -> "ThreadShare":
        self.registry.mkdir(parents=True, exist_ok=True)
        self.entry.write_text(json.dumps({"threads": self.requested}))
        return self

    def __exit__(self, *exc: object) -> None:
        self.entry.unlink(missing_ok=True)

    def others(self) -> list[int]:
        """The threads asked for by the other live trainings; entries of dead ones are removed."""
        found = []
        for path in self.registry.glob("*.json"):
            if path == self.entry or not path.stem.isdigit():
                continue
            if not pid_alive(int(path.stem)):
                path.unlink(missing_ok=True)
                continue
            try:
                found.append(int(json.loads(path.read_text())["threads"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being written or removed right now
        return found

    def threads(self) -> int:
        return fair_share(self.requested, self.others(), available_cores())


def set_threads(requested: int, share: Optional[ThreadShare]) -> tuple[int, Optional[str]]:
    """Set torch's threads as a training starts: threads=N, else the fair share beside the
    trainings running now (share None: leave torch's default, e.g. on a GPU). Returns the
    threads and a one-line note when other trainings share the cores."""
    import torch

    if requested > 0:
        torch.set_num_threads(requested)
    elif share is not None:
        others = share.others()
        torch.set_num_threads(fair_share(0, others, available_cores()))
        if others:
            return torch.get_num_threads(), _note(len(others), torch.get_num_threads())
    return torch.get_num_threads(), None


def _note(others: int, threads: int) -> str:
    unit = "thread" if threads == 1 else "threads"
    return (f"note: {1 + others} gansweep trainings share the {available_cores()} cores here: "
            f"this one uses {threads} {unit} for the whole run (threads=N sets it)")
