"""Training progress on screen: a rich bar on a terminal, plain lines elsewhere (CI, nohup)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _fmt(row: dict[str, Any]) -> str:
    def num(key: str, spec: str) -> str:
        value = row.get(key)
        return format(value, spec) if isinstance(value, (int, float)) else "-"

    return (
        f"epoch {num('epoch', '.2f')}  loss_d {num('loss_d', '.4f')}  loss_g {num('loss_g', '.4f')}  "
        f"{num('images_per_s', ',.0f')} img/s"
    )


class ProgressDisplay:
    """Shows step/total, epoch, losses, throughput and ETA for one run."""

    def __init__(self, total: int, start: int, title: str, plain_every_s: float = 30.0, quiet: bool = False):
        self.total = total
        self.quiet = quiet
        self.interactive = console.is_terminal and sys.stdout.isatty() and not quiet
        self.plain_every_s = plain_every_s
        self._last_plain = time.monotonic()
        self._last_pct = -1
        self._progress: Progress | None = None
        if self.interactive:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._task = self._progress.add_task(title, total=total, completed=start, info="")
            self._progress.start()
        elif not quiet:
            console.print(f"{title}: step {start}/{total}")

    def update(self, step: int, row: dict[str, Any]) -> None:
        """Move the bar to `step`; print a plain line every 10% or plain_every_s seconds."""
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=_fmt(row))
            return
        if self.quiet:
            return
        pct = int(10 * step / max(1, self.total))
        now = time.monotonic()
        if pct > self._last_pct or now - self._last_plain >= self.plain_every_s:
            self._last_pct, self._last_plain = pct, now
            console.print(f"step {step}/{self.total}  {_fmt(row)}")

    def note(self, text: str) -> None:
        """A line above the bar (evaluation results, warnings), wrapped between words: the
        console's soft wrap would leave it to the terminal, which breaks numbers in two."""
        if not self.quiet:
            console.print(text, soft_wrap=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
