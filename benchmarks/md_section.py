"""Replace one generated section of a markdown file (BENCHMARKS.md) between two markers."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, begin: str, end: str, heading: str, text: str) -> None:
    """Put `text` (which starts with `begin` and ends with `end`) in place of the old
    section, or append it under `heading` when the file has none yet."""
    md = path.read_text()
    if begin in md:
        md = md[: md.index(begin)] + text + md[md.index(end) + len(end):]
    else:
        md = md.rstrip() + f"\n\n## {heading}\n\n" + text + "\n"
    path.write_text(md)
