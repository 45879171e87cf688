"""Conditional GANs (model.conditional): G(z, y) and a projection D(x, y), labelled
batches, one grid row per class, and class_agreement with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from metrics_fixtures import mnist_halves
from PIL import Image

from gansweep.cli import main
from gansweep.config import compose_config, to_train_config
from gansweep.errors import ConfigError
from gansweep.metrics.evaluate import EvalSettings, Evaluator, RealData
from gansweep.models import ConditionalGenerator, ProjectionDiscriminator, build_models
from gansweep.metrics.evaluate import scored_kinds
from gansweep.scores import parse_objectives

CPU = torch.device("cpu")
TINY = ["model.conditional=true", "model.z_dim=8", "batch_size=16", "threads=1", "log_every=2"]
N = 2000  # samples per known-answer case, 200 per class


def cfg_of(*overrides: str):
    return to_train_config(compose_config([*TINY, *overrides]))


@pytest.mark.parametrize("model", [["model=dcgan", "model.ngf=8", "model.ndf=8"], ["model=mlp", "model.hidden=16"]])
def test_projection_d_adds_the_class_embedding_inner_product_to_the_unconditional_logit(model):
    torch.manual_seed(0)
    g, d = build_models(cfg_of(*model), (1, 28, 28))
    assert isinstance(g, ConditionalGenerator) and isinstance(d, ProjectionDiscriminator)
    z, x = torch.randn(4, 8), torch.rand(4, 1, 28, 28) * 2 - 1
    y = torch.tensor([0, 3, 3, 9])
    g.eval(), d.eval()
    with torch.no_grad():
        phi = d.net[:-1](x).flatten(1)
        expected = d.net[-1](d.net[:-1](x)).view(-1) + (d.embed.weight[y] * phi).sum(dim=1)
        assert torch.equal(d(x, y), expected)
        # The class changes D's verdict on the same image, and G's sample for the same noise.
        assert (d(x, y) - d(x, (y + 1) % 10)).abs().min() > 0
        assert (g(z, y) - g(z, (y + 1) % 10)).abs().amax(dim=(1, 2, 3)).min() > 0
    assert g(z, y).shape == (4, 1, 28, 28)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data=stacked_mnist"], r"model.conditional=True: data=stacked_mnist has no classes to condition on"),
        (["model=mlp", "data=ring8"], r"model.conditional=True: data=ring8 has no classes"),
        (["model.pack=2"], r"model.conditional=True: a packed D \(model.pack=2\)"),
    ],
)
def test_conditioning_without_classes_or_with_packing_is_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        cfg_of(*overrides)


def test_class_agreement_is_an_objective_only_of_conditional_runs():
    conditional = scored_kinds("image", "digit_cnn", digit_classes=True, conditional=True)
    assert parse_objectives("class_agreement,fid", conditional) == ["class_agreement", "fid"]
    with pytest.raises(ConfigError, match=r"--objective class_agreement: this run's evaluator does not compute it"):
        parse_objectives("class_agreement", scored_kinds("image", "digit_cnn", digit_classes=True))


@pytest.fixture(scope="module")
def agreement(tmp_path_factory) -> dict[str, dict]:
    """Half of mnist5k as real data; fake 'conditional generators' built from the other half."""
    (real, real_labels), (other, labels) = mnist_halves()
    evaluator = Evaluator(RealData("image", real, "mnist5k-half-a", labels=real_labels),
                          EvalSettings(n_samples=N, cache_dir=tmp_path_factory.mktemp("cache")), CPU)
    by_class = [other[labels == c] for c in range(10)]

    def drawing(shift: int):
        """Sample i is a real digit of class (i + shift) mod 10: shift 0 obeys the request."""
        drawn = 0

        def generate(n: int) -> torch.Tensor:
            nonlocal drawn
            out = torch.stack([by_class[(i + shift) % 10][i // 10] for i in range(drawn, drawn + n)])
            drawn += n
            return out

        return generate

    noise = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return {
        "obeys": evaluator(drawing(0), classes=10),
        "off_by_one": evaluator(drawing(1), classes=10),
        "noise": evaluator(lambda n: noise[:n], classes=10),
        "unconditional": evaluator(drawing(0)),
    }


@pytest.mark.slow
def test_class_agreement_scores_its_known_answers(agreement):
    # Measured, as counts of 2,000. Real digits of the asked class agree as often as the
    # classifier is right (8 misread, about its held-out error); the same digits one class
    # off agree once; noise lands in one class, so it agrees for that class's tenth.
    assert agreement["obeys"]["class_agreement"] == 1992 / N
    assert agreement["off_by_one"]["class_agreement"] == 1 / N
    assert agreement["noise"]["class_agreement"] == 200 / N
    assert "class_agreement" not in agreement["unconditional"]


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cond") / "run"
    args = ["train", f"hydra.run.dir={run}", *TINY, "model.ngf=8", "model.ndf=8", "steps=6",
            "eval_every=3", "eval.n_samples=300", "eval.interim_samples=100", "sample_every=6"]
    assert main(args) == 0
    return run


def test_a_conditional_run_scores_class_agreement_and_draws_one_row_per_class(conditional_run):
    summary = json.loads((conditional_run / "summary.json").read_text())
    assert 0.0 <= summary["scores"]["class_agreement"] <= 1.0
    # Ten rows of eight 32-px images (mnist5k's default size) with make_grid's 2-px padding.
    with Image.open(conditional_run / "samples" / "step_0000006.png") as grid:
        assert grid.size == (8 * 34 + 2, 10 * 34 + 2)


def test_interim_evaluations_score_fewer_samples_and_the_last_the_full_count(conditional_run):
    rows = [json.loads(line) for line in (conditional_run / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["n_fake"]) for r in rows if r["kind"] == "eval"]
    assert evals == [(3, 100), (6, 300)]
