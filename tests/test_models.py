"""Model options: separate G/D sizes, G batch norm, maxout D, N(0, 0.02) init, PacGAN packing, presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from gansweep.cli import main
from gansweep.config import DNorm, GNorm, MLPConfig, TrainConfig, compose_config, to_train_config
from gansweep.errors import ConfigError
from gansweep.losses import gradient_penalty
from gansweep.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    Maxout,
    MLPDiscriminator,
    MLPGenerator,
    build_models,
    pack_samples,
)
from gansweep.sweep.space import build_space, parse_space, space_file

ROOT = Path(__file__).resolve().parents[1]


def compose(*overrides: str) -> TrainConfig:
    """The config these overrides compose, unconditional unless they say otherwise."""
    return to_train_config(compose_config(["model.conditional=false", *overrides]))


def linears(net: nn.Module) -> list[tuple[int, int, bool]]:
    """(in_features, out_features, has bias) of every Linear, in order."""
    return [(m.in_features, m.out_features, m.bias is not None) for m in net.modules() if isinstance(m, nn.Linear)]


def first_input(net: nn.Module, layer: type, x: torch.Tensor) -> torch.Tensor:
    """What the first `layer` module of `net` receives when `net` runs on x."""
    seen: list[torch.Tensor] = []
    module = next(m for m in net.modules() if isinstance(m, layer))
    handle = module.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    net(x)
    handle.remove()
    return seen[0]


# Packing ------------------------------------------------------------------------------


def test_pack_samples_puts_consecutive_samples_side_by_side():
    x = torch.arange(12.0).view(6, 2)
    assert pack_samples(x, 3).tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    assert pack_samples(x, 1).tolist() == x.tolist()
    images = torch.arange(8.0).view(4, 1, 1, 2)
    assert pack_samples(images, 2).tolist() == [[[[0, 1]], [[2, 3]]], [[[4, 5]], [[6, 7]]]]
    with pytest.raises(ValueError, match="^a batch of 6 samples does not split into packs of 4$"):
        pack_samples(x, 4)


@pytest.mark.parametrize("pack", [1, 2, 4])
def test_mlp_shapes_with_packing(pack):
    torch.manual_seed(0)
    g = MLPGenerator(4, 8, 2, "relu", (2,))
    d = MLPDiscriminator(8, 2, "relu", (2,), DNorm.none, pack=pack)
    points = g(torch.randn(8, 4))
    assert points.shape == (8, 2)
    assert d(points).shape == (8 // pack,)
    assert linears(d)[0] == (pack * 2, 8, True)


@pytest.mark.parametrize("pack", [1, 2, 4])
def test_dcgan_shapes_with_packing(pack):
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=5, ngf=4, channels=3, image_size=28)
    d = DCGANDiscriminator(ndf=4, channels=3, image_size=28, norm=DNorm.batch, pack=pack)
    images = g(torch.randn(8, 5))
    assert images.shape == (8, 3, 28, 28)
    assert d(images).shape == (8 // pack,)
    assert d.net[0].in_channels == pack * 3


def test_mlp_discriminator_sees_the_features_of_consecutive_samples_concatenated():
    torch.manual_seed(0)
    x = torch.randn(6, 2)
    d = MLPDiscriminator(8, 1, "relu", (2,), DNorm.none, pack=3)
    by_hand = torch.stack([torch.cat([x[0], x[1], x[2]]), torch.cat([x[3], x[4], x[5]])])
    assert torch.equal(first_input(d, nn.Linear, x), by_hand)


def test_dcgan_discriminator_sees_consecutive_images_stacked_along_channels():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 28, 28)
    d = DCGANDiscriminator(ndf=4, channels=3, image_size=28, norm=DNorm.none, pack=2)
    by_hand = torch.stack([torch.cat([x[0], x[1]]), torch.cat([x[2], x[3]])])
    seen = first_input(d, nn.Conv2d, x)
    assert seen.shape == (2, 6, 28, 28) and torch.equal(seen, by_hand)


def test_batch_size_must_split_into_packs():
    with pytest.raises(ConfigError, match=r"^batch_size=50: must be divisible by model\.pack=4 \(D judges 4 samples at once\)$"):
        compose("model=mlp", "model.pack=4", "batch_size=50")
    with pytest.raises(ConfigError, match=r"^batch_size=63: must be divisible by model\.pack=2 "):
        compose("model=dcgan", "model.pack=2", "batch_size=63")
    assert compose("model=mlp", "model.pack=4", "batch_size=64").model.pack == 4


class _PackedLinear(nn.Module):
    """A critic linear in its packed input: its gradient is `w` for every pack."""

    def __init__(self, w: list[float]):
        super().__init__()
        self.w = torch.tensor(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pack_samples(x, 2) @ self.w


def test_gradient_penalty_takes_the_norm_over_each_pack():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    # Per pack the gradient is (3, 0, 0, 4), norm 5: (5 - 1)^2. Per sample it would be 3 and 4.
    assert gradient_penalty(_PackedLinear([3.0, 0.0, 0.0, 4.0]), real, fake).item() == 16.0


def test_gradient_penalty_trains_a_packed_discriminator():
    torch.manual_seed(0)
    d = MLPDiscriminator(8, 2, "relu", (2,), DNorm.none, pieces=3, pack=2)
    penalty = gradient_penalty(d, torch.randn(6, 2), torch.randn(6, 2))
    penalty.backward()
    assert penalty.shape == () and torch.isfinite(penalty)
    weights = [p for name, p in d.named_parameters() if name.endswith("weight")]  # biases do not move the gradient
    assert len(weights) == 3 and all(p.grad is not None and torch.isfinite(p.grad).all() for p in weights)


# Maxout, batch norm, sizes, init --------------------------------------------------------


def test_maxout_takes_the_max_of_each_run_of_pieces():
    assert Maxout(2)(torch.tensor([[1.0, 5.0, 3.0, 2.0]])).tolist() == [[5.0, 3.0]]
    torch.manual_seed(0)
    d = MLPDiscriminator(3, 1, "relu", (2,), DNorm.none, pieces=5)
    assert linears(d) == [(2, 15, True), (3, 1, True)]
    x = torch.randn(4, 2)
    linear, maxout, out = d.net[1:]
    pre = linear(x)  # 3 units x 5 pieces
    by_hand = torch.stack([pre[:, 5 * unit : 5 * unit + 5].max(dim=1).values for unit in range(3)], dim=1)
    assert torch.equal(maxout(pre), by_hand)
    assert torch.equal(d(x), out(by_hand).view(-1))


def test_generator_batch_norm_uses_the_statistics_of_each_batch():
    torch.manual_seed(0)
    g = MLPGenerator(4, 8, 2, "relu", (2,), GNorm.batch)
    assert linears(g) == [(4, 8, False), (8, 8, False), (8, 2, True)]
    assert [type(m) for m in g.net] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear]
    z = torch.randn(16, 4)
    normed = []
    g.net[1].register_forward_hook(lambda mod, args, out: normed.append(out.clone()))  # before the in-place ReLU
    out = g(z)
    pre = g.net[0](z)
    by_hand = (pre - pre.mean(dim=0)) / (pre.var(dim=0, unbiased=False) + 1e-5).sqrt()  # scale 1, shift 0 at init
    assert torch.allclose(normed[0], by_hand, atol=1e-6)
    assert not torch.allclose(g(z[:4])[0], out[0])  # sample 0 depends on the batch it came in
    assert linears(MLPGenerator(4, 8, 2, "relu", (2,))) == [(4, 8, True), (8, 8, True), (8, 2, True)]


def test_g_and_d_sizes_follow_hidden_and_depth_unless_set():
    g, d = build_models(compose("model=mlp", "model.hidden=16", "model.g_hidden=32", "model.d_depth=1"), (2,))
    assert [out for _, out, _ in linears(g)] == [32, 32, 32, 2]
    assert [out for _, out, _ in linears(d)] == [16, 1]
    g, d = build_models(compose("model=mlp", "model.hidden=16", "model.g_depth=1", "model.d_hidden=8"), (2,))
    assert [out for _, out, _ in linears(g)] == [16, 2]
    assert [out for _, out, _ in linears(d)] == [8, 8, 8, 1]
    m = MLPConfig(hidden=16, depth=2, d_hidden=4)
    assert (m.g_layers, m.d_layers) == ((16, 2), (4, 2))


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.g_hidden=0", r"^model\.g_hidden=0: must be >= 1 or null$"),
        ("model.d_depth=-1", r"^model\.d_depth=-1: must be >= 1 or null$"),
        ("model.d_maxout=0", r"^model\.d_maxout=0: must be >= 1 \(1 = no maxout\)$"),
        ("model.pack=0", r"^model\.pack=0: must be >= 1$"),
        ("model.g_norm=layer", r"^model\.g_norm=layer: "),
    ],
)
def test_new_keys_are_checked_in_one_line(override, message):
    with pytest.raises(ConfigError, match=message):
        compose("model=mlp", override)


def test_normal_init_draws_linear_weights_from_n_0_002():
    torch.manual_seed(0)
    g, d = build_models(compose("model=mlp", "model.hidden=400", "model.init=normal"), (2,))
    weights = torch.cat([m.weight.flatten() for net in (g, d) for m in net.modules() if isinstance(m, nn.Linear)])
    assert weights.mean().abs() < 1e-3 and weights.std().item() == pytest.approx(0.02, rel=0.01)
    assert all(not m.bias.any() for net in (g, d) for m in net.modules() if isinstance(m, nn.Linear))
    torch.manual_seed(0)
    g, _ = build_models(compose("model=mlp", "model.hidden=400"), (2,))
    assert g.net[2].weight.std().item() == pytest.approx(400**-0.5 / 3**0.5, rel=0.01)  # PyTorch's uniform(+-1/sqrt(fan_in))


# Presets and sweeps ---------------------------------------------------------------------


@pytest.mark.parametrize("preset,pack", [("pacgan", 1), ("pacgan2", 2), ("pacgan4", 4)])
def test_pacgan_presets_build_the_papers_2d_architecture(preset, pack):
    cfg = compose(f"+experiment={preset}")
    assert (cfg.model.name, cfg.model.z_dim, cfg.model.pack, cfg.data.name) == ("mlp", 2, pack, "grid25")
    assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.batch_size) == (1e-4, 0.8, 0.999, 100 * pack)  # 100 packs per D step
    assert compose(f"+experiment={preset}", "data=ring8").data.name == "ring8"
    torch.manual_seed(0)
    g, d = build_models(cfg, (2,))
    assert linears(g) == [(2, 400, False)] + [(400, 400, False)] * 3 + [(400, 2, True)]
    assert [m.num_features for m in g.modules() if isinstance(m, nn.BatchNorm1d)] == [400] * 4
    assert sum(isinstance(m, nn.ReLU) for m in g.modules()) == 4
    assert linears(d) == [(2 * pack, 1000, True), (200, 1000, True), (200, 1000, True), (200, 1, True)]
    assert [m.pieces for m in d.modules() if isinstance(m, Maxout)] == [5, 5, 5]
    g_weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Linear)])
    assert g_weights.std().item() == pytest.approx(0.02, rel=0.01)
    assert d(g(torch.randn(100, 2))).shape == (100 // pack,)


def test_the_shipped_architecture_space_starts_from_pacgan():
    source, text = space_file(str(ROOT / "sweeps" / "mlp_grid25_arch.yaml"))
    exprs, base = parse_space(source, text)
    base_dict = compose_config(base)
    space = build_space(source, exprs, base_dict)
    cfg = to_train_config(base_dict)
    assert (cfg.lr, cfg.beta1, cfg.batch_size, cfg.data.name) == (1e-4, 0.8, 100, "grid25")
    for key, dist in space.params.items():
        value = getattr(cfg.model, key.split(".")[1])
        assert value in (dist.choices if hasattr(dist, "choices") else range(dist.low, dist.high + 1)), key
    for pack in space.params["model.pack"].choices:
        assert cfg.batch_size % pack == 0


@pytest.mark.slow
def test_a_sweep_searches_the_new_model_keys(tmp_path: Path):
    space = tmp_path / "space.yaml"
    space.write_text(
        "params:\n  model.pack: choice(1, 2)\n  model.d_maxout: choice(1, 3)\n"
        "  model.g_norm: choice(none, batch)\n  model.g_hidden: choice(16, 32)\n"
    )
    args = [
        "sweep", "--dir", str(tmp_path / "sweeps"), "--name", "arch", "--trials", "2", "--space", str(space),
        "--pruner", "none", "--no-early-stop",
        "model=mlp", "data=grid25", "steps=10", "model.hidden=16", "eval.mixture_samples=300", "log_every=5",
    ]
    assert main(args) == 0
    folders = sorted((tmp_path / "sweeps" / "arch").glob("trial_*"))
    assert len(folders) == 2
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "completed"
        params = summary["sweep"]["params"]
        assert set(params) == {"model.pack", "model.d_maxout", "model.g_norm", "model.g_hidden"}
        model = yaml.safe_load((folder / "config.yaml").read_text())["model"]
        assert {f"model.{key}": model[key] for key in ("pack", "d_maxout", "g_norm", "g_hidden")} == params


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_space_composes_at_its_bounds_and_names_its_budget(path: Path):
    """Each value a sweep of this space can draw (every choice, both ends of every
    interval) gives a valid typed config on top of the space's base."""
    source, text = space_file(str(path))
    exprs, base = parse_space(source, text)
    space = build_space(source, exprs, compose_config(base))
    for key, dist in space.params.items():
        values = dist.choices if hasattr(dist, "choices") else (dist.low, dist.high)
        for value in values:
            got = to_train_config(compose_config([*base, f"{key}={value}"]))
            for part in key.split("."):
                got = getattr(got, part)
            got = got.name if key == "loss" else getattr(got, "value", got)  # a config group; an enum
            assert got == pytest.approx(value) if isinstance(value, float) else got == value, (key, value)
    if "grid25" in path.name or "ring8" in path.name:
        assert "Budget" in text or "budget" in text, f"{path.name} names the per-trial budget it was designed for"


# The confirmed trials of BENCHMARKS.md's 2D sweeps: (data, loss, steps, hidden, lr, batch, beta1, lr_decay).
FOUND = {
    "grid25_best": ("grid25", "hinge", 20_000, 128, 0.0003807063680148415, 128, 0.027425104010531776, "none"),
    "ring8_best": ("ring8", "bce", 10_000, 384, 0.0003449673689246388, 128, 0.3619672817058057, "linear"),
}


@pytest.mark.parametrize("preset", list(FOUND))
def test_presets_found_by_search_hold_the_confirmed_trial_and_take_any_seed(preset, tmp_path: Path):
    """The preset holds the values the sweep drew for its trial, and
    `gansweep train +experiment=PRESET seed=N` trains it."""
    data, loss, steps, hidden, lr, batch, beta1, decay = FOUND[preset]
    cfg = compose(f"+experiment={preset}", "seed=7")
    assert (cfg.model.name, cfg.data.name, cfg.loss.name, cfg.seed, cfg.steps) == ("mlp", data, loss, 7, steps)
    assert (cfg.model.z_dim, cfg.model.g_layers, cfg.model.d_layers, cfg.model.pack) == (2, (hidden, 3), (hidden, 3), 1)
    assert (cfg.lr, cfg.batch_size, cfg.beta1, cfg.beta2, cfg.lr_decay.value) == (lr, batch, beta1, 0.999, decay)
    run = tmp_path / "run"
    assert main(["train", f"+experiment={preset}", "seed=7", "steps=20", "eval.mixture_samples=200", "threads=1", f"hydra.run.dir={run}"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["seed"], summary["loss"], summary["steps"]) == ("completed", 7, loss, 20)
    assert summary["scores"]["modes_total"] == {"grid25": 25, "ring8": 8}[data]


def test_the_pbt_preset_is_the_replay_its_pbt_run_confirmed(tmp_path: Path):
    """grid25_pbt: grid25_best packed over 2, with the start values and schedule of the PBT
    run's best member (BENCHMARKS.md), and it trains with any seed."""
    cfg = compose("+experiment=grid25_pbt", "seed=7")
    assert (cfg.model.pack, cfg.model.z_dim, cfg.model.g_layers, cfg.loss.name, cfg.steps, cfg.batch_size) == (2, 2, (128, 3), "hinge", 25_000, 128)
    assert (cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.beta2) == (0.0004483962819001558, 0.0004584070847011658, 0.18934430496645682, 0.9128797371357199)
    assert [entry.step for entry in cfg.schedule] == [15_000, 20_000]
    run = tmp_path / "run"
    assert main(["train", "+experiment=grid25_pbt", "seed=7", "steps=20", "eval.mixture_samples=200", "threads=1", f"hydra.run.dir={run}"]) == 0
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
