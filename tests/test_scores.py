"""The score registry is the one list of scores: a score added there reaches every consumer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from metrics_fixtures import cycling, mnist5k

from gansweep import scores as registry
from gansweep.errors import ConfigError
from gansweep.rundir import RunSummary, Status
from gansweep.cli import main
from gansweep.metrics.evaluate import EvalSettings, Evaluator, RealData, scored_kinds
from gansweep.metrics.features import FEATURE_NETS
from gansweep.scores import SCORES, DataKind, Direction, Score, format_score, is_better, parse_objectives, scores_for

RING8 = torch.tensor([[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)])


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
    assert parse_objectives(f"{dummy},mixture_tv", frozenset({DataKind.mixture})) == [dummy, "mixture_tv"]
    assert registry.direction(dummy) is Direction.maximize and registry.higher_is_better(dummy)
    assert is_better(0.9, 0.7, dummy) and not is_better(0.9, 0.7, "mixture_tv")
    assert format_score(dummy, 0.123) == "0.12"
    with pytest.raises(ConfigError, match=f"--objective {dummy}: this run's evaluator does not compute it"):
        parse_objectives(dummy, frozenset({DataKind.image}))


class StandIn:
    """A stand-in for the Inception network (its weights are not on every machine): what
    the evaluator writes depends on the network's kind, not on its features."""

    name, sha256 = "inception", "0" * 64

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(images.float(), 4).flatten(1)


COMBINATIONS = [  # (evaluator kind, feature net, digit classes, conditional)
    ("mixture", "none", False, False),
    *[("image", net, digits, conditional) for net in ("digit_cnn", "inception")
      for digits in (True, False) for conditional in (True, False)],
    ("stacked", "digit_cnn", True, False),
    ("stacked", "inception", True, False),
]


@pytest.mark.parametrize("kind,net,digits,conditional", COMBINATIONS)
def test_every_evaluator_writes_exactly_the_scores_the_registry_promises(tmp_path, monkeypatch, kind, net, digits, conditional):
    monkeypatch.setitem(FEATURE_NETS, "inception", lambda device: StandIn())
    images, labels = mnist5k()
    real = {
        "mixture": RealData("mixture", RING8, "ring8", centers=RING8, std=0.05),
        "image": RealData("image", images[:200], "digits", labels=labels[:200], digit_classes=digits),
        "stacked": RealData("stacked", images[:600].reshape(200, 3, 28, 28), "stacked"),
    }[kind]
    evaluator = Evaluator(real, EvalSettings(n_samples=60, feature_net=net, cache_dir=tmp_path), torch.device("cpu"))
    written = evaluator(cycling(real.samples[:60]), classes=10 if conditional else 0)
    promised = scores_for(scored_kinds(kind, net, digits, conditional))
    assert [name for name in SCORES if name in written] == promised


def test_an_objective_the_run_cannot_produce_is_refused_before_the_sweep_starts(tmp_path, capsys):
    args = ["sweep", "--dir", str(tmp_path), "--trials", "1", "--objective", "modes_covered", "data=mnist5k",
            "data.feature_net=inception", "steps=2"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --objective modes_covered: this run's evaluator does not compute it; choose from fid, ")
    assert "\n" not in err and not any(tmp_path.iterdir())


@pytest.mark.parametrize(("searched", "objective", "refused"), [
    ("data.feature_net: choice(digit_cnn, inception)", "modes_covered", "data.feature_net=inception"),
    ("data: choice(mnist5k, ring8)", "fid", "data=ring8"),
])
def test_an_objective_that_a_searched_option_cannot_produce_is_refused_before_the_sweep_starts(tmp_path, capsys, searched,
                                                                                               objective, refused):
    """The base config (digits, scored by the digit network) computes the objective; one option of the space does not."""
    space = tmp_path / "space.yaml"
    space.write_text(f"params:\n  {searched}\n")
    out = tmp_path / "sweeps"
    args = ["sweep", "--dir", str(out), "--space", str(space), "--trials", "1", "--objective", objective, "data=mnist5k",
            "data.feature_net=digit_cnn", "steps=2"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {refused} (searched): --objective {objective}: this run's evaluator does not compute it")
    assert "\n" not in err and not out.exists()


def test_every_registered_score_is_documented_in_the_readme_and_the_metrics_page():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for doc in (root / "README.md", root / "docs" / "metrics.md"):
        text = doc.read_text()
        missing = [name for name in SCORES if f"`{name}`" not in text]
        assert not missing, f"{doc.name} does not document {missing}"
