"""The Hydra config tree: every group option composes into the typed schema, and shrinks to a smoke run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from gansweep.config import (
    DATA_NAMES,
    LOSS_NAMES,
    DCGANConfig,
    LrDecay,
    MLPConfig,
    TrainConfig,
    from_yaml_file,
    one_line,
    to_train_config,
    to_yaml,
)
from gansweep.errors import ConfigError
from gansweep.losses import LOSSES, gradient_penalty
from gansweep.models import MODELS, build_models, conditioning
from gansweep.config import compose_config
from gansweep.train_command import override_variants

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose(*overrides: str) -> TrainConfig:
    return to_train_config(compose_config(list(overrides)))


def test_the_yaml_options_are_the_names_the_code_knows():
    assert options("model") == sorted(MODELS)
    assert options("experiment") == ["grid25_best", "grid25_pbt", "pacgan", "pacgan2", "pacgan4", "ring8_best"]
    assert options("data") == sorted(DATA_NAMES)
    assert options("loss") == sorted(LOSS_NAMES) == sorted(LOSSES)


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in ("model", "data", "loss") for o in options(g)], ids=lambda v: str(v)
)
def test_every_group_option_composes_into_the_typed_config(group, option):
    cfg = compose(f"{group}={option}")
    assert isinstance(cfg, TrainConfig)
    assert getattr(cfg, group).name == option
    assert isinstance(cfg.model, {"dcgan": DCGANConfig, "mlp": MLPConfig}[cfg.model.name])
    assert isinstance(cfg.lr_g, float) and cfg.lr_g == cfg.lr  # interpolations resolved


def _sample_shape(cfg: TrainConfig) -> tuple[int, ...]:
    return (2,) if cfg.data.is_points else (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)


@pytest.mark.parametrize("loss", options("loss"))
@pytest.mark.parametrize("data", options("data"))
@pytest.mark.parametrize("model", options("model"))
def test_every_combination_shrinks_to_one_training_step(model, data, loss):
    """Compose the real config, shrink it, then one D and G update on random data of its shape."""
    cfg = compose(f"model={model}", f"data={data}", f"loss={loss}")
    if model == "dcgan" and cfg.data.is_points:
        with pytest.raises(ConfigError, match=f"model=dcgan: data={data} is not images"):
            build_models(cfg, _sample_shape(cfg))
        return
    small = {"ngf": 4, "ndf": 4, "z_dim": 4} if model == "dcgan" else {"hidden": 8, "depth": 1, "z_dim": 4}
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **small))
    torch.manual_seed(0)
    g, d = build_models(cfg, _sample_shape(cfg))
    real = torch.rand(4, *_sample_shape(cfg)) * 2 - 1
    # model.conditional=auto: conditional exactly on the data with classes.
    assert cfg.model.conditional == (data in ("mnist", "mnist5k", "fashion_mnist", "cifar10"))
    cond = conditioning(torch.tensor([0, 1, 2, 9]) if cfg.model.conditional else None)
    fake = g(torch.randn(4, 4), *cond)
    assert fake.shape == real.shape
    gan_loss = LOSSES[cfg.loss.name]
    loss_d = gan_loss.d(d(real, *cond), d(fake.detach(), *cond))
    if cfg.loss.name == "wgan_gp":
        loss_d = loss_d + cfg.loss.gp_weight * gradient_penalty(d, real, fake.detach(), *cond)
    loss_d.backward()
    gan_loss.g(d(fake, *cond)).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())


def test_defaults():
    cfg = compose()
    assert (cfg.model.name, cfg.data.name, cfg.loss.name) == ("dcgan", "mnist5k", "bce")
    # The default run's recipe (README): DCGAN's own optimizer settings, 32 px, conditional.
    assert (cfg.lr, cfg.lr_g, cfg.lr_d, cfg.batch_size, cfg.beta1, cfg.beta2) == (9.3e-4, 9.3e-4, 9.3e-4, 32, 0.57, 0.999)
    assert (cfg.steps, cfg.images, cfg.epochs, cfg.seed, cfg.lr_decay) == (None, None, 10.0, 0, LrDecay.none)
    assert (cfg.model.z_dim, cfg.model.ngf, cfg.model.ndf, cfg.model.conditional) == (100, 32, 32, True)
    assert (cfg.data.image_size, cfg.data.channels) == (32, 1)
    # The MLP keeps the schema's optimizer settings, and unlabelled data is unconditional.
    mlp = compose("model=mlp", "data=ring8")
    assert (mlp.lr, mlp.batch_size, mlp.beta1, mlp.model.conditional) == (2e-4, 64, 0.5, False)


def test_group_files_set_their_own_values():
    assert compose("loss=wgan_gp").loss == type(compose().loss)("wgan_gp", 10.0, 5)
    ring, grid = compose("data=ring8").data, compose("data=grid25").data
    assert (ring.radius, ring.std, ring.feature_net, ring.is_points) == (1.0, 0.01, "none", True)
    assert (grid.spacing, grid.std, grid.feature_net) == (2.0, 0.05, "none")
    cifar = compose("data=cifar10").data
    assert (cifar.image_size, cifar.channels, cifar.feature_net) == (32, 3, "inception")
    assert compose("data=stacked_mnist").data.channels == 3
    mlp = compose("model=mlp").model
    assert (mlp.z_dim, mlp.hidden, mlp.depth, mlp.activation.value) == (64, 256, 3, "relu")


def test_lr_g_and_lr_d_follow_lr_unless_set():
    cfg = compose("lr=1e-3")
    assert (cfg.lr_g, cfg.lr_d) == (1e-3, 1e-3)
    cfg = compose("lr=1e-3", "lr_d=4e-3")
    assert (cfg.lr_g, cfg.lr_d) == (1e-3, 4e-3)


@pytest.mark.parametrize(
    "override,message",
    [
        ("lr=nan", r"^lr=nan: must be a positive number"),
        ("lr_g=inf", r"^lr_g=inf: must be a positive number"),
        ("lr_d=0", r"^lr_d=0\.0: must be a positive number"),
        ("beta2=1", r"^beta2=1\.0: must be in \[0, 1\)"),
        ("steps=0", r"^steps=0: must be >= 1 or null"),
        ("images=-5", r"^images=-5: must be >= 1 or null"),
        ("epochs=0", r"^epochs=0\.0: must be > 0 or null"),
        ("log_every=0", r"^log_every=0: must be >= 1"),
        ("checkpoint_every=-1", r"^checkpoint_every=-1: must be >= 0"),
        ("threads=-1", r"^threads=-1: must be >= 0"),
        ("data.channels=2", r"^data\.channels=2: must be 1 or 3"),
        ("data.image_size=2", r"^data\.image_size=2: must be >= 4"),
        ("data.std=0", r"^data\.std=0\.0: must be > 0"),
        ("data.feature_net=vgg", r"^data\.feature_net=vgg: choose one of digit_cnn, inception, auto, none"),
        ("loss.n_critic=0", r"^loss\.n_critic=0: must be >= 1"),
        ("loss.gp_weight=-1", r"^loss\.gp_weight=-1\.0: must be >= 0"),
        ("eval.mode_threshold=0", r"^eval\.mode_threshold=0\.0: must be in \(0, 1\]"),
        ("model.z_dim=0", r"^model\.z_dim=0: must be >= 1"),
    ],
)
def test_range_checks_name_the_key_and_the_rule(override, message):
    with pytest.raises(ConfigError, match=message):
        compose(override)


def test_stacked_mnist_needs_three_channels():
    with pytest.raises(ConfigError, match=r"^data\.channels=1: stacked_mnist has 3 channels"):
        compose("data=stacked_mnist", "data.channels=1")


def test_wrong_types_and_unknown_keys_fail_while_composing():
    with pytest.raises(ConfigError, match=r"^batch_size=eight: Value 'eight' of type 'str' could not be converted to Integer"):
        compose("batch_size=eight")
    with pytest.raises(ConfigError, match=r"^data\.nope=1: no such config key \(gansweep train --cfg job lists every key\)$"):
        compose("data.nope=1")
    with pytest.raises(ConfigError, match=r"^\+data\.imagesize=16: no such config key; did you mean data\.image_size\? "):
        compose("+data.imagesize=16")
    with pytest.raises(ConfigError, match=r"^loss=focal: no such option; choose one of bce, hinge, lsgan, wgan_gp$"):
        compose("loss=focal")


def test_stored_config_round_trips(tmp_path):
    cfg = compose("model=mlp", "data=grid25", "loss=hinge", "lr=3e-4", "lr_g=1e-4", "steps=9", "lr_decay=cosine")
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    assert from_yaml_file(str(path)) == cfg
    assert "${" not in path.read_text()  # stored resolved: a resume never re-interprets it


def test_stored_config_with_an_unknown_key_is_a_config_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(compose()) + "surprise: 1\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: .*surprise"):
        from_yaml_file(str(path))


def test_override_variants_try_every_sweep_value_once():
    assert override_variants(["lr=1e-4,2e-4", "batch_size=8,16,32", "model=mlp"]) == [
        ["lr=0.0001", "batch_size=8", "model=mlp"],
        ["lr=0.0002", "batch_size=8", "model=mlp"],
        ["lr=0.0001", "batch_size=16", "model=mlp"],
        ["lr=0.0001", "batch_size=32", "model=mlp"],
    ]


def test_one_line_leads_with_the_key():
    exc = ValueError("Value 'x' could not be converted to Integer\n    full_key: batch_size\n    object_type=TrainConfig")
    assert one_line(exc) == "batch_size: Value 'x' could not be converted to Integer"
    assert one_line(ValueError("")) == "ValueError"
