"""README's "What gansweep guarantees": every test a line names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_guarantees_name_exists() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## What gansweep guarantees", 1)[1].split("\n## ", 1)[0]
    named = 0
    for line in section.split("\n- ")[1:]:
        refs = re.findall(r"`(test_\w+\.py)?(?:::(test_\w+))?`", line)
        assert refs, f"a guarantee names no test: {line[:60]}"
        module = None
        for file, test in refs:
            module = file or module
            source = (ROOT / "tests" / module).read_text()
            assert not test or f"def {test}(" in source, f"{module}::{test} does not exist"
            named += 1
    assert named >= 10
