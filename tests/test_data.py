"""Training data: the 2D mixtures, mnist5k and its stacks, image folders, and their errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from train_helpers import write_images

from gansweep.config import DataConfig
from gansweep.data import (
    dataset_key,
    grid25_centers,
    load_dataset,
    mnist5k_arrays,
    ring8_centers,
    sample_mixture,
)
from gansweep.errors import DataError

# 2D mixtures ----------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_ring8_has_eight_distinct_modes_evenly_round_the_circle(radius):
    centers = ring8_centers(radius).double()
    assert centers.shape == (8, 2) and centers.dtype == torch.float64
    assert torch.linalg.vector_norm(centers, dim=1).tolist() == pytest.approx([radius] * 8, abs=1e-6)
    angles = torch.atan2(centers[:, 1], centers[:, 0]).remainder(2 * math.pi)
    assert angles.tolist() == pytest.approx([2 * math.pi * k / 8 for k in range(8)], abs=1e-6)
    gaps = torch.cdist(centers, centers) + torch.eye(8) * 99
    assert gaps.min().item() == pytest.approx(2 * radius * math.sin(math.pi / 8), abs=1e-6)  # no repeated mode


def test_grid25_modes_are_the_five_by_five_grid():
    centers = grid25_centers(2.0)
    assert centers.shape == (25, 2)
    assert {tuple(c) for c in centers.tolist()} == {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(c) for c in grid25_centers(1.0).tolist()} == {(x, y) for x in range(-2, 3) for y in range(-2, 3)}


def test_mixture_samples_sit_at_their_modes_with_the_given_std():
    centers = ring8_centers(1.0)
    points, modes = sample_mixture(centers, 0.05, 40_000, torch.Generator().manual_seed(0))
    assert points.shape == (40_000, 2) and modes.shape == (40_000,)
    offsets = points - centers[modes]
    assert offsets.std().item() == pytest.approx(0.05, rel=0.02)
    assert offsets.mean(dim=0).abs().max().item() < 0.002
    counts = torch.bincount(modes, minlength=8)
    assert counts.min().item() > 4500  # each of the 8 modes gets about 5000


@pytest.mark.parametrize("name,n_modes", [("ring8", 8), ("grid25", 25)])
def test_mixture_data_sets_are_fixed_by_the_seed(name, n_modes):
    cfg = DataConfig(name=name, n_samples=1000, std=0.01)
    a, b, c = load_dataset(cfg, 0), load_dataset(cfg, 0), load_dataset(cfg, 1)
    assert a.name == name and a.is_points and len(a) == 1000
    assert a.samples.shape == (1000, 2) and a.samples.dtype == torch.float32
    assert a.centers.shape == (n_modes, 2) and a.std == 0.01
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    nearest = torch.cdist(a.samples, a.centers).argmin(dim=1)
    assert torch.equal(nearest, a.labels)  # std 0.01: every point is nearest its own mode


# mnist5k --------------------------------------------------------------------------------


def test_mnist5k_is_28_px_in_model_range_without_resampling():
    x, y = mnist5k_arrays()
    data = load_dataset(DataConfig(name="mnist5k"))
    assert data.samples.shape == (5000, 1, 28, 28) and data.samples.dtype == torch.float32
    assert data.samples.min().item() == -1.0 and data.samples.max().item() == 1.0
    expected = torch.from_numpy(x).float().div(127.5).sub(1.0).unsqueeze(1)
    assert torch.equal(data.samples, expected)  # bit for bit: no resize happened
    assert torch.bincount(data.labels).tolist() == [500] * 10
    assert not data.is_points


def test_mnist5k_arrays_are_copies():
    x, _ = mnist5k_arrays()
    x[:] = 0
    assert mnist5k_arrays()[0].max() == 255


def test_mnist5k_resized_and_coloured():
    data = load_dataset(DataConfig(name="mnist5k", image_size=32, channels=3))
    assert data.samples.shape == (5000, 3, 32, 32)
    assert data.samples.min() >= -1.0 and data.samples.max() <= 1.0
    assert torch.equal(data.samples[:, 0], data.samples[:, 2])  # grey digits in all three channels


def test_stacked_mnist_channels_are_digits_and_labels_their_three_digit_code():
    data = load_dataset(DataConfig(name="stacked_mnist", channels=3, n_samples=20), seed=3)
    assert data.samples.shape == (20, 3, 28, 28)
    x, y = mnist5k_arrays()
    flat = torch.from_numpy(x).float().div(127.5).sub(1.0).flatten(1)
    for image, code in zip(data.samples[:3], data.labels[:3].tolist()):
        digits = []
        for channel in image:
            match = (flat == channel.flatten()).all(dim=1).nonzero().flatten()
            assert len(match) >= 1, "a channel is not an mnist5k digit"
            digits.append(int(y[match[0]]))
        assert code == 100 * digits[0] + 10 * digits[1] + digits[2]
    assert torch.equal(load_dataset(DataConfig(name="stacked_mnist", channels=3, n_samples=20), seed=3).labels, data.labels)


def test_torchvision_set_offline_says_how_to_train_offline(tmp_path):
    with pytest.raises(DataError, match=rf"^data=mnist: not found in data\.root={tmp_path} .*train offline with data=mnist5k or data=folder data\.root=DIR$"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path), download=False))
    with pytest.raises(DataError, match=r"data=mnist5k or data=folder data\.root=DIR$"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path), download=False, channels=3, image_size=32))


# Image folders --------------------------------------------------------------------------


def folder_cfg(root, **kw) -> DataConfig:
    return DataConfig(**{"name": "folder", "root": str(root), "image_size": 16, "channels": 3, **kw})


def test_flat_folder_loads_every_image_and_skips_other_files(tmp_path):
    write_images(tmp_path, ["a.png", "b.jpg", "c.PNG", "d.bmp"])
    (tmp_path / "notes.txt").write_text("hello")
    data = load_dataset(folder_cfg(tmp_path))
    assert data.name == "folder" and data.samples.shape == (4, 3, 16, 16)
    assert data.samples.min() >= -1.0 and data.samples.max() <= 1.0 and data.labels is None


def test_imagefolder_tree_loads_images_of_any_mode_and_size(tmp_path):
    write_images(tmp_path / "cats", ["1.png", "2.png"], size=(30, 20))
    write_images(tmp_path / "dogs", ["3.png"], size=(20, 30), mode="L")
    write_images(tmp_path / "dogs" / "old", ["4.png"], size=(64, 64), mode="RGBA")
    assert load_dataset(folder_cfg(tmp_path)).samples.shape == (4, 3, 16, 16)
    grey = load_dataset(folder_cfg(tmp_path, channels=1, image_size=8))
    assert grey.samples.shape == (4, 1, 8, 8)


def test_folder_images_are_center_cropped_not_squashed(tmp_path):
    from PIL import Image

    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # a white square in the middle of a black strip
    Image.fromarray(wide).save(tmp_path / "wide.png")
    data = load_dataset(folder_cfg(tmp_path, image_size=8))
    assert torch.equal(data.samples, torch.ones(1, 3, 8, 8))


def test_folder_errors_say_what_to_fix(tmp_path):
    with pytest.raises(DataError, match=r"^data\.root=.*/nowhere: no such folder; point data\.root at a folder of images$"):
        load_dataset(folder_cfg(tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"^data\.root=.*: no images \(\.png, \.jpg"):
        load_dataset(folder_cfg(tmp_path))
    write_images(tmp_path, ["good.png"])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(DataError, match=r"^.*/sub/bad\.jpg: unreadable image \(\w+\); remove or replace it$"):
        load_dataset(folder_cfg(tmp_path))


def test_dataset_key_changes_with_what_the_statistics_depend_on(tmp_path):
    write_images(tmp_path / "a", ["1.png"])
    write_images(tmp_path / "b", ["1.png"])
    keys = {
        dataset_key(cfg, load_dataset(cfg), 0)
        for cfg in (folder_cfg(tmp_path / "a"), folder_cfg(tmp_path / "b"), folder_cfg(tmp_path / "a", image_size=8))
    }
    assert len(keys) == 3
    ring = DataConfig(name="ring8", n_samples=100)
    assert dataset_key(ring, load_dataset(ring), 0) == dataset_key(ring, load_dataset(ring), 1) == "ring8:n=100:r=1.0:s=2.0:std=0.01"


@pytest.mark.slow
def test_stacked_mnist_statistics_are_cached_per_seed_that_draws_the_set():
    cfg = DataConfig(name="stacked_mnist", channels=3)
    keys = [dataset_key(cfg, load_dataset(cfg, seed), seed) for seed in (0, 1)]
    assert keys[0] != keys[1] and keys[0].endswith(":seed=0")
