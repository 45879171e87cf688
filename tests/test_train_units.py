"""The pure pieces of training, checked against values worked out by hand."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal

import numpy as np
import pytest
import torch
from torch import nn
from train_helpers import png_size

from gansweep.config import DNorm, LrDecay, TrainConfig, to_train_config
from gansweep.errors import CheckpointError, ConfigError
from gansweep.losses import LOSSES, gradient_penalty
from gansweep.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    build_models,
    dcgan_base_size,
)
from gansweep.rundir import RunFolder, write_json_atomic
from gansweep.samples import save_image_grid, save_scatter
from gansweep.batches import StackedBatches
from gansweep.member import every, lr_factor, plan_steps
from gansweep.signals import stop_on_signal
from gansweep.config import compose_config

LN2 = math.log(2.0)


@pytest.fixture(scope="module")
def base() -> TrainConfig:
    return to_train_config(compose_config(["model.conditional=false"]))  # the plain G(z) and D(x)


def budget(base: TrainConfig, steps=None, images=None, epochs=None, batch_size=64, n_critic=1) -> TrainConfig:
    return dataclasses.replace(
        base, steps=steps, images=images, epochs=epochs, batch_size=batch_size,
        loss=dataclasses.replace(base.loss, n_critic=n_critic),
    )


# Budget, schedule, intervals ------------------------------------------------------------


def test_plan_steps_steps_win_over_images_and_epochs(base):
    assert plan_steps(budget(base, steps=7, images=10_000, epochs=3.0), n_train=5000) == 7


def test_plan_steps_images_win_over_epochs_and_count_per_batch_and_critic_step(base):
    assert plan_steps(budget(base, images=1000, epochs=3.0), n_train=5000) == 16  # ceil(1000 / 64)
    assert plan_steps(budget(base, images=1000, n_critic=5), n_train=5000) == 4  # ceil(1000 / 320)
    assert plan_steps(budget(base, images=640), n_train=5000) == 10


def test_plan_steps_epochs_are_images_of_the_training_set(base):
    assert plan_steps(budget(base, epochs=2.0), n_train=5000) == 157  # ceil(10000 / 64)
    assert plan_steps(budget(base, epochs=0.5, batch_size=100, n_critic=5), n_train=5000) == 5
    assert plan_steps(budget(base, epochs=1e-6), n_train=5000) == 1  # never zero steps


@pytest.mark.parametrize(
    "decay,expected",
    [
        (LrDecay.none, [1.0, 1.0, 1.0, 1.0]),
        (LrDecay.linear, [1.0, 0.75, 0.5, 0.0]),
        (LrDecay.cosine, [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.0]),
    ],
)
def test_lr_factor_endpoints_and_midpoints(decay, expected):
    got = [lr_factor(step, 100, decay) for step in (0, 25, 50, 100)]
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[0] == 1.0 and got[-1] == expected[-1]  # exact at both ends
    assert lr_factor(150, 100, decay) == expected[-1]  # past the end it stays there


def test_every_uses_the_setting_or_spreads_events_over_the_run():
    assert every(7, 1000, 10) == 7
    assert every(0, 1000, 10) == 100
    assert every(0, 95, 10) == 10  # ceil(9.5): never more than `times` events
    assert every(0, 3, 10) == 1
    assert every(0, 100, 4) == 25


# Batches and gradients ------------------------------------------------------------------


def test_batches_show_every_sample_once_per_epoch_in_each_members_own_order_and_resume_exactly():
    samples = torch.arange(12.0)
    batches = StackedBatches(samples, None, 4, torch.tensor([7, 8]))
    epoch = torch.cat([batches.next()[0] for _ in range(3)], dim=1)  # (members, 12)
    assert [sorted(row) for row in epoch.tolist()] == [samples.tolist()] * 2
    assert epoch[0].tolist() != epoch[1].tolist()  # two keys, two orders
    alone = StackedBatches(samples, None, 4, torch.tensor([8]))  # member 1 alone: the same order
    assert torch.equal(torch.cat([alone.next()[0] for _ in range(3)], dim=1)[0], epoch[1])
    state = batches.member(0)
    ahead = [batches.next()[0][0] for _ in range(5)]  # into the next epochs
    again = StackedBatches(samples, None, 4, torch.tensor([7]))
    again.load_member(0, state)
    assert all(torch.equal(a, b) for a, b in zip(ahead, [again.next()[0][0] for _ in range(5)]))


def test_batches_never_exceed_the_data_set():
    batches = StackedBatches(torch.arange(3.0), None, 16, torch.tensor([0]))
    samples, labels = batches.next()
    assert sorted(samples[0].tolist()) == [0.0, 1.0, 2.0] and labels is None


def test_stop_on_signal_turns_the_first_ctrl_c_into_a_flag_and_the_second_into_an_interrupt():
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signal() as caught:
        os.kill(os.getpid(), signal.SIGINT)
        assert caught == [signal.SIGINT]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


# Models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size,base", [(28, 7), (14, 7), (56, 7), (32, 4), (64, 4), (8, 4)])
def test_dcgan_base_size(size, base):
    assert dcgan_base_size(size) == base


@pytest.mark.parametrize("size", [7, 30, 48, 100])
def test_dcgan_refuses_sizes_it_cannot_reach(size):
    with pytest.raises(ConfigError, match=rf"^data\.image_size={size}: DCGAN needs 7\*2\^k or 4\*2\^k pixels"):
        dcgan_base_size(size)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32, 64])
def test_dcgan_shapes(size, channels):
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=5, ngf=4, channels=channels, image_size=size)
    d = DCGANDiscriminator(ndf=4, channels=channels, image_size=size, norm=DNorm.batch)
    images = g(torch.randn(3, 5))
    assert images.shape == (3, channels, size, size)
    assert images.abs().max() <= 1.0  # tanh
    assert d(images).shape == (3,)


def test_dcgan_on_28_px_data_generates_28_px(base):
    g, d = build_models(base, (1, 28, 28))
    assert g(torch.randn(2, base.model.z_dim)).shape == (2, 1, 28, 28)
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [64, 32, 1]  # ngf 32: 7 -> 14 -> 28, two upsamplings, not four


def test_dcgan_init_matches_radford(base):
    torch.manual_seed(0)
    g, d = build_models(dataclasses.replace(base, model=dataclasses.replace(base.model, ngf=64, ndf=64)), (3, 64, 64))
    for net in (g, d):
        weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
        assert weights.mean().abs() < 1e-3 and weights.std().item() == pytest.approx(0.02, rel=0.02)
    norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight for m in norms]).detach()
    assert scales.mean().item() == pytest.approx(1.0, abs=0.005) and scales.std().item() == pytest.approx(0.02, rel=0.2)
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in norms)


def _norm_layers(d: nn.Module) -> list[type]:
    return [type(m) for m in d.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.BatchNorm1d, nn.LayerNorm))]


@pytest.mark.parametrize("norm", [DNorm.batch, DNorm.layer, DNorm.none])
def test_dcgan_discriminator_has_no_norm_on_its_first_layer(norm):
    d = DCGANDiscriminator(ndf=4, channels=3, image_size=64, norm=norm)
    assert isinstance(d.net[0], nn.Conv2d) and isinstance(d.net[1], nn.LeakyReLU)
    assert [type(m) for m in d.net[2:5]][0] is nn.Conv2d
    expected = {DNorm.batch: [nn.BatchNorm2d] * 3, DNorm.layer: [nn.GroupNorm] * 3, DNorm.none: []}[norm]
    assert _norm_layers(d) == expected


@pytest.mark.parametrize(
    "model,loss,d_norm,expected",
    [
        ("dcgan", "bce", "auto", [nn.BatchNorm2d]),
        ("dcgan", "wgan_gp", "auto", []),  # the penalty is per sample: no batch statistics in D
        ("dcgan", "wgan_gp", "layer", [nn.GroupNorm]),
        ("mlp", "bce", "auto", []),
        ("mlp", "hinge", "batch", [nn.BatchNorm1d]),
        ("mlp", "lsgan", "layer", [nn.LayerNorm]),
    ],
)
def test_d_norm_resolution(model, loss, d_norm, expected):
    cfg = to_train_config(compose_config([f"model={model}", f"loss={loss}", f"model.d_norm={d_norm}", "model.ndf=4" if model == "dcgan" else "model.depth=1"]))
    _, d = build_models(cfg, (1, 28, 28))
    assert sorted(set(_norm_layers(d)), key=str) == expected


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_batch_norm_with_gradient_penalty_is_refused(model):
    cfg = to_train_config(compose_config([f"model={model}", "loss=wgan_gp", "model.d_norm=batch"]))
    with pytest.raises(ConfigError, match=r"^model\.d_norm=batch: batch norm breaks the per-sample gradient penalty"):
        build_models(cfg, (1, 28, 28))


def test_mlp_points_are_unbounded_and_images_are_in_range():
    torch.manual_seed(0)
    points = MLPGenerator(4, 8, 2, "relu", (2,))
    assert not isinstance(points.net[-1], nn.Tanh)
    assert points(torch.randn(5, 4)).shape == (5, 2)
    images = MLPGenerator(4, 8, 2, "elu", (1, 28, 28))
    out = images(torch.randn(5, 4) * 100)
    assert out.shape == (5, 1, 28, 28) and out.abs().max() <= 1.0
    d = MLPDiscriminator(8, 2, "leaky_relu", (1, 28, 28), DNorm.none)
    assert d(out).shape == (5,)
    assert sum(isinstance(m, nn.Linear) for m in d.modules()) == 3  # depth 2 hidden layers + output


# Losses ---------------------------------------------------------------------------------


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def test_bce_on_hand_computed_logits():
    bce = LOSSES["bce"]
    assert bce.d(t(0.0), t(0.0)).item() == pytest.approx(2 * LN2)
    assert bce.d(t(2.0), t(-1.0)).item() == pytest.approx(math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)))
    assert bce.g(t(0.0)).item() == pytest.approx(LN2)
    assert bce.d(t(1000.0), t(-1000.0)).item() == 0.0  # finite on huge logits
    assert bce.d(t(-1000.0), t(1000.0)).item() == 2000.0
    assert bce.probabilities


def test_bce_generator_loss_is_non_saturating():
    # When D confidently rejects a fake (logit -10), G's gradient stays ~1; the saturating
    # log(1 - D(G(z))) would give sigmoid(-10) = 4.5e-5.
    fake = t(-10.0)
    LOSSES["bce"].g(fake).backward()
    assert fake.grad.item() == pytest.approx(-1 / (1 + math.exp(-10)))


def test_lsgan_on_hand_computed_scores():
    lsgan = LOSSES["lsgan"]
    assert lsgan.d(t(1.0, 3.0), t(0.0, 2.0)).item() == 2.0  # 0.5 * (mean(0, 4) + mean(0, 4))
    assert lsgan.g(t(0.0, 2.0)).item() == 0.5  # 0.5 * mean(1, 1)
    assert lsgan.d(t(1.0), t(0.0)).item() == 0.0
    assert not lsgan.probabilities


def test_hinge_on_hand_computed_scores():
    hinge = LOSSES["hinge"]
    # relu(1 - real): 0.5, 0 -> 0.25; relu(1 + fake): 0, 1.5 -> 0.75
    assert hinge.d(t(0.5, 2.0), t(-2.0, 0.5)).item() == 1.0
    assert hinge.d(t(5.0), t(-5.0)).item() == 0.0  # beyond the margin: nothing to learn
    assert hinge.g(t(-2.0, 0.5)).item() == 0.75


def test_wasserstein_on_hand_computed_scores():
    wgan = LOSSES["wgan_gp"]
    assert wgan.d(t(1.0, 3.0), t(0.0, 2.0)).item() == -1.0
    assert wgan.g(t(0.0, 2.0)).item() == -1.0
    assert not wgan.probabilities


def test_gradient_penalty_of_a_linear_critic_is_known_exactly():
    # D(x) = w.x + b has gradient w everywhere: the penalty is (|w| - 1)^2 = (5 - 1)^2.
    critic = nn.Linear(2, 1).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    real, fake = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx(16.0, abs=1e-12)
    penalty.backward()  # create_graph: the penalty trains D, d/dw = 2 (|w| - 1) w / |w|
    assert critic.weight.grad.flatten().tolist() == pytest.approx([4.8, 6.4], abs=1e-12)

    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.8]]))
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_penalty_is_per_sample_on_images():
    # A critic summing all 2*3*3 pixels with weight c has gradient norm c*sqrt(18) per sample.
    critic = nn.Sequential(nn.Flatten(), nn.Linear(18, 1, bias=False)).double()
    with torch.no_grad():
        critic[1].weight.fill_(0.5)
    real, fake = torch.randn(4, 2, 3, 3, dtype=torch.float64), torch.randn(4, 2, 3, 3, dtype=torch.float64)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((0.5 * math.sqrt(18) - 1) ** 2, abs=1e-12)


# The run folder -------------------------------------------------------------------------


def test_write_json_atomic_replaces_the_file_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"status": "running"})
    write_json_atomic(path, {"status": "diverged", "loss_g": float("nan"), "rows": [float("inf"), 1.5]})
    assert json.loads(path.read_text()) == {"status": "diverged", "loss_g": None, "rows": [None, 1.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temp_files(tmp_path):
    run = RunFolder(tmp_path)
    run.save_checkpoint({"step": 1})
    with pytest.raises(Exception):
        run.save_checkpoint({"step": 2, "unpicklable": lambda: None})
    assert run.load_checkpoint()["step"] == 1
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.pt"]


def test_read_metrics_ignores_a_torn_last_line(tmp_path):
    run = RunFolder(tmp_path)
    run.append_metrics([{"kind": "train", "step": 1, "loss_d": 1.0}, {"kind": "train", "step": 2, "loss_d": float("nan")}])
    with open(run.metrics_path, "a") as fh:
        fh.write('{"kind": "train", "step": 3, "lo')  # kill -9 in the middle of a write
    assert run.read_metrics() == [{"kind": "train", "step": 1, "loss_d": 1.0}, {"kind": "train", "step": 2, "loss_d": None}]
    run.truncate_metrics(after_step=1)
    assert run.metrics_path.read_text() == '{"kind": "train", "step": 1, "loss_d": 1.0}\n'


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"last\.pt: no checkpoint"):
        RunFolder(tmp_path).load_checkpoint()


# Sample pictures ------------------------------------------------------------------------


def test_image_grid_maps_minus_one_to_black_and_one_to_white(tmp_path):
    from PIL import Image

    images = torch.stack([torch.ones(3, 8, 8), -torch.ones(3, 8, 8)])
    path = tmp_path / "samples" / "grid.png"
    save_image_grid(images, path)
    assert png_size(path) == (12, 22)  # one column (round(sqrt(2)) = 1), 2 px padding
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB"))
    assert pixels[6, 6].tolist() == [255, 255, 255] and pixels[16, 6].tolist() == [0, 0, 0]
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]


def test_image_grid_is_about_square(tmp_path):
    save_image_grid(torch.rand(64, 1, 28, 28) * 2 - 1, tmp_path / "grid.png")
    assert png_size(tmp_path / "grid.png") == (242, 242)  # 8 x 8 tiles of 28 + 2 px


def test_scatter_is_a_png_of_sensible_size(tmp_path):
    from PIL import Image

    path = tmp_path / "scatter.png"
    save_scatter(torch.randn(500, 2), path, torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), "ring8, step 3")
    width, height = png_size(path)
    assert 250 <= width <= 600 and 250 <= height <= 600
    with Image.open(path) as img:
        colours = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 10  # points, modes, axes: not a blank canvas
    assert [p.name for p in tmp_path.iterdir()] == ["scatter.png"]
