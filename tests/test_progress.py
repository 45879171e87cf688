"""Lines above the progress bar wrap between words, never inside a number."""

from __future__ import annotations

import io
import re

from rich.console import Console

from gansweep import progress


def test_an_eval_line_wider_than_the_terminal_wraps_between_words(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=out, width=40, force_terminal=True, color_system=None, soft_wrap=True))
    display = progress.ProgressDisplay(total=100, start=0, title="run", quiet=False)
    line = "eval @ step 400: fid 31.234, precision 0.712, recall 0.655, coverage 0.803 (2.1s)"
    display.note(line)
    display.close()
    printed = out.getvalue().split(line.split(":")[0], 1)[1]
    assert all(len(row) <= 40 for row in printed.splitlines())
    tokens = re.findall(r"\S+", printed)
    assert {"31.234,", "0.712,", "0.655,", "0.803"} <= set(tokens)
