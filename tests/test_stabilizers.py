"""The stabilizers (stabilize.*): each one takes effect, shown with a number."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import gansweep.engine as engine_module
from gansweep import noise
from gansweep.cli import main
from gansweep.config import compose_config, to_train_config
from gansweep.errors import ConfigError
from gansweep.losses import LOSSES
from gansweep.models import KeyedDropout, build_models
from gansweep.rundir import RunFolder
from gansweep.scoring import build_evaluator, score_generator
from gansweep.data import load_dataset
from gansweep.sweep.space import build_space, parse_space, space_file
from gansweep.train import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=mlp", "data=ring8", "model.hidden=16", "model.z_dim=4", "batch_size=16", "threads=1", "log_every=1"]


def cfg_of(*overrides: str):
    return to_train_config(compose_config([*TINY, *overrides]))


def test_one_sided_label_smoothing_makes_0_9_the_real_target():
    # The BCE gradient on a real logit vanishes exactly where sigmoid(logit) is the target.
    logit = torch.tensor([math.log(9.0)], dtype=torch.float64, requires_grad=True)  # sigmoid = 0.9
    fake = torch.zeros(1, dtype=torch.float64)
    (smoothed,) = torch.autograd.grad(LOSSES["bce"].d(logit, fake, real_label=0.9), logit)
    (plain,) = torch.autograd.grad(LOSSES["bce"].d(logit, fake), logit)
    assert smoothed.item() == pytest.approx(0.0, abs=1e-15)
    assert plain.item() == pytest.approx(-0.1)  # the unsmoothed target 1 still pulls D(x) up
    with pytest.raises(ConfigError, match=r"stabilize.real_label=0.9: label smoothing needs loss=bce"):
        cfg_of("loss=hinge", "stabilize.real_label=0.9")


def test_instance_noise_is_added_to_every_d_input_and_annealed_to_zero(monkeypatch, tmp_path):
    draws = noise.normal(torch.tensor([5]), (200_000,), torch.float64)[0]
    assert draws.std().item() == pytest.approx(1.0, rel=0.01)  # 200k draws: std known to 0.2%
    assert draws.mean().item() == pytest.approx(0.0, abs=0.01)

    seen: list[float] = []
    noisy = engine_module._noisy
    monkeypatch.setattr(engine_module, "_noisy", lambda x, sigma, key, on: seen.append(float(sigma[0])) or noisy(x, sigma, key, on))
    train(cfg_of("steps=4", "eval.enabled=false", "stabilize.instance_noise=0.2"), tmp_path / "run", quiet=True)
    # Per step: the real batch, the fake batch for D, the fakes for G.
    assert seen == pytest.approx([0.2] * 3 + [0.15] * 3 + [0.1] * 3 + [0.05] * 3)


def test_dropout_in_d_follows_every_hidden_activation():
    _, d = build_models(cfg_of("stabilize.d_dropout=0.3", "model.depth=3"), (2,))
    drops = [m for m in d.modules() if isinstance(m, KeyedDropout)]
    assert [float(m.p) for m in drops] == pytest.approx([0.3, 0.3, 0.3])
    x = torch.randn(64, 2)
    d.train()
    assert not torch.equal(d(x), d(x))  # a new mask per call
    d.eval()
    assert torch.equal(d(x), d(x))


def test_clipped_gradient_norms_never_exceed_the_bound(monkeypatch, tmp_path):
    def norms_at_each_step(*overrides: str) -> list[float]:
        norms: list[float] = []
        step = engine_module.adam_step

        def recording_step(flat, grad, *args, **kwargs):
            norms.append(torch.linalg.vector_norm(grad).item())  # the gradient Adam is handed, after clipping
            return step(flat, grad, *args, **kwargs)

        monkeypatch.setattr(engine_module, "adam_step", recording_step)
        train(cfg_of("steps=10", "eval.enabled=false", *overrides), tmp_path / "-".join(overrides or ("plain",)), quiet=True)
        monkeypatch.setattr(engine_module, "adam_step", step)
        return norms

    plain = norms_at_each_step()
    clipped = norms_at_each_step("stabilize.clip_d=0.05", "stabilize.clip_g=0.05")
    assert len(clipped) == 20 and max(plain) > 0.05  # without the clip, the bound is exceeded
    assert max(clipped) <= 0.05 * (1 + 1e-6)


def test_spectral_norm_keeps_every_d_weight_at_spectral_norm_one():
    torch.manual_seed(0)
    _, d = build_models(cfg_of("stabilize.spectral_norm=true", "model.hidden=64"), (2,))
    d.train()
    for _ in range(30):  # each forward pass runs one power iteration
        d(torch.randn(16, 2))
    weights = [m.weight for m in d.modules() if isinstance(m, nn.Linear)]
    assert len(weights) == 4
    assert [torch.linalg.matrix_norm(w.detach(), ord=2).item() for w in weights] == pytest.approx([1.0] * 4, abs=0.02)


@pytest.mark.slow
def test_the_ema_generator_is_what_samples_scores_and_best_pt_hold(tmp_path, capsys):
    run = tmp_path / "ema"
    args = [*TINY, "steps=60", "eval_every=30", "data.std=0.5", "eval.mixture_samples=500", "stabilize.ema=0.9"]
    assert main(["train", *args, f"hydra.run.dir={run}"]) == 0
    ckpt = RunFolder(run).load_checkpoint()
    raw, ema = ckpt["g"], ckpt["g_ema"]
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)  # the average is not the raw weights
    summary = RunFolder(run).read_summary()

    cfg = cfg_of(*args[len(TINY):])
    data = load_dataset(cfg.data, cfg.seed)
    evaluator = build_evaluator(cfg, data, torch.device("cpu"))
    scored = {}
    for name, state in (("raw", raw), ("ema", ema)):
        g, _ = build_models(cfg, (2,))
        g.load_state_dict(state)
        scored[name] = score_generator(evaluator, g, cfg.model.z_dim, cfg.seed, torch.device("cpu"))
    assert scored["ema"]["mixture_tv"] == summary.scores["mixture_tv"]
    assert scored["raw"]["mixture_tv"] != summary.scores["mixture_tv"]
    assert main(["eval", str(run)]) == 0  # gansweep eval scores the average too
    assert RunFolder(run).read_summary().scores == summary.scores


def test_the_stabilizer_space_searches_every_key():
    source, text = space_file(str(ROOT / "sweeps" / "stabilizers.yaml"))
    exprs, base = parse_space(source, text)
    space = build_space(source, exprs, compose_config(base))
    assert set(space.params) == {"lr"} | {f"stabilize.{k}" for k in
                                          ("real_label", "instance_noise", "d_dropout", "clip_g", "clip_d", "spectral_norm", "ema")}


@pytest.mark.slow
def test_a_sweep_trains_with_the_stabilizers_it_samples(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  stabilize.ema: choice(0.0, 0.9)\n  stabilize.spectral_norm: choice(false, true)\n"
                     "  stabilize.instance_noise: choice(0.0, 0.1)\n")
    assert main(["sweep", "--dir", str(tmp_path), "--name", "stab", "--trials", "2", "--space", str(space), "--sampler", "random",
                 "--pruner", "none", "--no-early-stop", *TINY, "steps=10", "eval.mixture_samples=200"]) == 0
    for folder in sorted((tmp_path / "stab").glob("trial_*")):
        summary = RunFolder(folder).read_summary()
        stored = RunFolder(folder).read_config()["stabilize"]
        assert {f"stabilize.{k}": stored[k] for k in ("ema", "spectral_norm", "instance_noise")} == summary.sweep.params
        assert ("g_ema" in RunFolder(folder).load_checkpoint()) == (stored["ema"] > 0)
