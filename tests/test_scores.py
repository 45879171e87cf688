"""The score registry is the one list of scores: a score added there reaches every consumer."""

from __future__ import annotations

import pytest

from gansweep import scores as registry
from gansweep.errors import ConfigError
from gansweep.rundir import RunSummary, Status
from gansweep.scores import SCORES, DataKind, Direction, Score, format_score, is_better, parse_objectives


@pytest.fixture
def dummy(monkeypatch: pytest.MonkeyPatch) -> str:
    """A new score for 2D mixtures, 'sharpness', higher is better."""
    monkeypatch.setitem(SCORES, "sharpness", Score("sharpness", Direction.maximize, frozenset({DataKind.mixture}), ".2f", "test score"))
    return "sharpness"


def test_a_registered_score_is_kept_in_summaries_as_a_score(dummy):
    summary = RunSummary(status=Status.running, run_dir="r", model="mlp", data="ring8", loss="bce", lr=1e-3, lr_g=1e-3,
                         lr_d=1e-3, batch_size=8, beta1=0.5, beta2=0.999, seed=0, total_steps=1)
    summary.set_scores({dummy: 0.7, "unregistered": 1.0, "n_fake": 10})
    assert summary.scores == {dummy: 0.7}
    assert summary.provenance == {"unregistered": 1.0, "n_fake": 10}


def test_a_registered_score_is_an_objective_with_its_direction_and_format(dummy):
    assert parse_objectives(f"{dummy},mixture_tv", is_points=True) == [dummy, "mixture_tv"]
    assert registry.direction(dummy) is Direction.maximize and registry.higher_is_better(dummy)
    assert is_better(0.9, 0.7, dummy) and not is_better(0.9, 0.7, "mixture_tv")
    assert format_score(dummy, 0.123) == "0.12"
    with pytest.raises(ConfigError, match=f"--objective {dummy}: not scored on this data"):
        parse_objectives(dummy, is_points=False)


def test_every_score_the_evaluators_write_is_registered():
    from gansweep.scores import scores_for

    assert scores_for(True, False) == ["mixture_tv", "modes_covered", "modes_covered_min", "hq_fraction", "mode_kl"]
    assert scores_for(False, True) == ["fid", "precision", "recall", "density", "coverage", "modes_covered", "mode_kl",
                                       "inception_score", "confidence"]
    assert scores_for(False, False) == ["fid", "precision", "recall", "density", "coverage"]


def test_every_registered_score_is_documented_in_the_readme_and_the_metrics_page():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for doc in (root / "README.md", root / "docs" / "metrics.md"):
        text = doc.read_text()
        missing = [name for name in SCORES if f"`{name}`" not in text]
        assert not missing, f"{doc.name} does not document {missing}"
