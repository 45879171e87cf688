"""How a command meets SIGINT and SIGTERM: as a flag a training loop checks between steps,
or held back through the few instructions that must not be cut in two."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator

STOPS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signal() -> Iterator[list[int]]:
    """Turn the first SIGINT/SIGTERM into a flag the loop checks between steps.

    A second Ctrl-C raises KeyboardInterrupt as usual. Outside the main thread
    (no signal handlers possible) this is a no-op.
    """
    caught: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if caught and signum == signal.SIGINT:
            raise KeyboardInterrupt
        caught.append(signum)

    try:
        previous = {s: signal.signal(s, handler) for s in STOPS}
    except ValueError:
        yield caught
        return
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back until the block ends, then deliver them.

    For steps that must happen whole or not at all, such as claiming a folder and
    recording the claim for its clean-up: a stop arriving in between would otherwise leave
    a claim nobody removes. The held signal's handler runs as the block exits, after any
    assignment made inside it.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
