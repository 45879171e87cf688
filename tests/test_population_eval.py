"""One evaluation pass for a population: every member due is drawn from one stacked sampler
and featurised together, and each member's scores are what its own evaluation gives."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import torch

from gansweep.errors import DivergedError
from gansweep.member import Member, MemberSpec
from gansweep.metrics.features import DigitNet
from gansweep.population import Population
from gansweep.scoring import score_generator

from test_population import DCGAN, config

# The default DCGAN shrunk (conditional, batch norm), scored on 300 samples in batches of 100.
SCORED = [*DCGAN[:-1], "model.conditional=true", "eval.n_samples=300", "eval.batch_size=100", "eval.interim_samples=300",
          "eval_every=1000", "sample_every=1000", "checkpoint_every=1000", "log_every=1", "steps=2000", "threads=1"]
# Members differ in seed and lr; the second scores its EMA of G, the last fewer samples (a pass of its own).
MEMBERS = [["seed=0"], ["seed=1", "lr=1e-3", "stabilize.ema=0.9"], ["seed=2", "beta1=0.8"], ["seed=3", "eval.n_samples=200"]]
SCORES = ("fid", "precision", "recall", "density", "coverage", "modes_covered", "mode_kl", "confidence", "inception_score",
          "class_agreement")


@pytest.fixture
def population(tmp_path: Path) -> Iterator[Population]:
    """Four members after 6 steps with a log line each, no evaluation yet."""
    pop = Population(torch.device("cpu"))
    for i, m in enumerate(MEMBERS):
        pop.admit(Member(MemberSpec(config(*SCORED, *m), tmp_path / f"m{i}"), torch.device("cpu"), quiet=True, threads=1))
    pop.advance(6)
    yield pop


def _solo_scores(pop: Population, k: int) -> dict:
    """Member k scored alone, as `gansweep eval` scores a checkpoint: its own sampler module."""
    m = pop.members[k]
    m.sampler.load_state_dict(pop.stack.ema_state(k) if m.cfg.stabilize.ema > 0 else pop.stack.g.member_state(k))
    return score_generator(m.evaluator, m.sampler, m.cfg.model.z_dim, m.cfg.seed, torch.device("cpu"), m.eval_samples())


@pytest.mark.slow
def test_one_pass_featurises_all_members_together_and_scores_each_as_alone(population: Population,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    featurise = DigitNet.features_and_probs
    monkeypatch.setattr(DigitNet, "features_and_probs", lambda net, x: calls.append(len(x)) or featurise(net, x))
    results = population.evaluate([0, 1, 2, 3])
    # Members 0-2 share a pass: 3 batches of 3 x 100 images; member 3 scores 200 in its own: 2 of 100.
    assert calls == [300, 300, 300, 100, 100]
    calls.clear()
    for k in range(4):
        alone = _solo_scores(population, k)
        together = results[k].scores
        assert together["n_fake"] == alone["n_fake"] == (200 if k == 3 else 300)
        # The stacked sampler's grouped convolutions round differently from the solo module's
        # (float32); a few pixels differ in the last bit, and the scores by up to 1e-9
        # relative (measured); counts agree exactly.
        for name in SCORES:
            assert together[name] == pytest.approx(alone[name], rel=1e-7, abs=1e-9), name
        assert together["modes_covered"] == alone["modes_covered"]
    assert len(calls) == 3 + 3 + 3 + 2  # alone, each member featurises its own batches
    assert results[0].seconds > 0 and results[0].seconds == results[1].seconds  # a share of the one pass


@pytest.mark.slow
def test_a_member_drawing_nan_fails_alone_and_the_others_scores_do_not_move(population: Population) -> None:
    clean = population.evaluate([0, 1, 2])
    with torch.no_grad():
        population.stack.g.flat[2].fill_(float("nan"))
    poisoned = population.evaluate([0, 1, 2])
    assert isinstance(poisoned[2].scores, DivergedError)
    assert "non-finite samples" in str(poisoned[2].scores)
    for k in (0, 1):
        assert poisoned[k].scores == clean[k].scores  # bit for bit: the NaN member's samples never met theirs
