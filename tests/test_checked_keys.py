"""Unknown config keys fail before any work, added with + or not, naming the closest known key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gansweep.cli import main

TINY = ["model=mlp", "data=ring8", "steps=2", "eval.mixture_samples=300"]


@pytest.mark.parametrize(("override", "message"), [
    ("+stabilize.emaa=0.99", "+stabilize.emaa=0.99: no such config key; did you mean stabilize.ema?"),
    ("+foo=1", "+foo=1: no such config key (gansweep train --cfg job lists every key)"),
    ("model.hiden=8", "model.hiden=8: no such config key; did you mean model.hidden?"),
])
def test_a_sweep_over_an_unknown_key_fails_in_one_line_before_its_folder_exists(tmp_path: Path, capsys, override: str, message: str) -> None:
    assert main(["sweep", "--dir", str(tmp_path), "--name", "typo", "--trials", "1", *TINY, override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err
    assert not (tmp_path / "typo").exists()


def test_a_space_with_a_misspelt_key_names_the_key_it_meant(tmp_path: Path, capsys) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  lrr: interval(1e-5, 1e-2)\n")
    assert main(["sweep", "--dir", str(tmp_path), "--space", str(space), "--trials", "1", *TINY]) == 2
    assert "lrr: no such config key; did you mean lr? " in capsys.readouterr().err
