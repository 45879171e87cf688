"""Shared pieces of the `gansweep train` tests: tiny configs, CLI runners, run-folder checks."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from gansweep.cli import main
from gansweep.config import TrainConfig, from_yaml_file
from gansweep.data import load_dataset
from gansweep.models import build_models

# Small enough for a step in milliseconds on one CPU core; eval is tested elsewhere.
# The unconditional 28-px DCGAN; the default run's conditional one is tested in test_conditional.py.
TINY_DCGAN = ["model=dcgan", "data=mnist5k", "data.image_size=28", "model.conditional=false", "model.ngf=8", "model.ndf=8",
              "model.z_dim=8", "eval.enabled=false"]
TINY_MLP = ["model=mlp", "data=ring8", "model.hidden=16", "model.z_dim=4", "eval.enabled=false"]

SUMMARY_KEYS = (
    "status", "steps", "epochs", "wall_time_s", "images_per_s", "device", "torch_version", "seed",
    "model", "data", "loss", "lr", "lr_g", "lr_d", "batch_size", "beta1", "beta2",
)
METRICS_KEYS = (
    "step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "lr", "images_per_s",
)
LOSS_KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def train_cli(*args: str) -> int:
    """`gansweep train ARGS` in this process; the exit code."""
    return main(["train", *args])


def gansweep_process(*args: str, timeout: float = 120, **popen: Any) -> subprocess.CompletedProcess:
    """`python -m gansweep ARGS` in a fresh process (a real exit code, real stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "gansweep", *args], capture_output=True, text=True, timeout=timeout,
        env=subprocess_env(), **popen,
    )


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def train_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The training lines of metrics.jsonl (every line must parse)."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row["kind"] == "train"]


def losses(run_dir: Path) -> list[tuple]:
    """(step, loss_d, loss_g, d_real, d_fake, grad_norm_d, grad_norm_g) per training line."""
    return [(r["step"], *(r[k] for k in LOSS_KEYS)) for r in train_rows(run_dir)]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails unless the file is a PNG."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def assert_complete_run(run_dir: Path, *, steps: int, model: str, data: str, loss: str) -> dict[str, Any]:
    """Every file of the run folder contract is there and agrees with the run; the summary."""
    run_dir = Path(run_dir)

    cfg = from_yaml_file(str(run_dir / "config.yaml"))
    assert isinstance(cfg, TrainConfig)
    assert (cfg.model.name, cfg.data.name, cfg.loss.name) == (model, data, loss)
    overrides = yaml.safe_load((run_dir / "overrides.yaml").read_text())
    assert isinstance(overrides, list) and f"model={model}" in overrides
    assert not any(o.startswith("hydra.") for o in overrides)

    s = summary(run_dir)
    missing = [k for k in SUMMARY_KEYS if k not in s]
    assert not missing, f"summary.json lacks {missing}"
    assert s["status"] == "completed" and s["stop_reason"] is None
    assert s["steps"] == s["total_steps"] == steps
    assert (s["model"], s["data"], s["loss"]) == (model, data, loss)
    assert (s["lr"], s["lr_g"], s["lr_d"], s["batch_size"], s["beta1"], s["beta2"], s["seed"]) == (
        cfg.lr, cfg.lr_g, cfg.lr_d, cfg.batch_size, cfg.beta1, cfg.beta2, cfg.seed,
    )
    assert s["device"] == "cpu" and s["torch_version"] == torch.__version__
    images_per_step = min(cfg.batch_size, _n_train(cfg)) * cfg.loss.n_critic
    assert s["images_seen"] == steps * images_per_step
    assert math.isclose(s["epochs"], s["images_seen"] / _n_train(cfg))
    assert s["wall_time_s"] > 0 and s["images_per_s"] > 0

    rows = train_rows(run_dir)
    assert rows, "no training lines in metrics.jsonl"
    for row in rows:
        assert not [k for k in METRICS_KEYS if k not in row], row
        assert all(math.isfinite(row[k]) for k in METRICS_KEYS), row
    row_steps = [r["step"] for r in rows]
    assert row_steps == sorted(set(row_steps)) and row_steps[-1] == steps
    assert s["last_train"] == {k: rows[-1][k] for k in LOSS_KEYS}

    pngs = sorted((run_dir / "samples").glob("*.png"))
    assert pngs and pngs[-1].name == f"step_{steps:07d}.png"
    for png in pngs:
        png_size(png)

    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["step"] == steps and ckpt["images_seen"] == s["images_seen"]
    assert ckpt["batches"]["perm"].shape == (_n_train(cfg),)  # the data order; the noise is keyed by seed and step
    g, d = build_models(cfg, tuple(_sample_shape(cfg)))
    g.load_state_dict(ckpt["g"])  # strict: every weight of G and D is there, in the right shape
    d.load_state_dict(ckpt["d"])
    for opt, net in (("adam_g", g), ("adam_d", d)):
        n_params = sum(p.numel() for p in net.parameters())
        assert ckpt[opt]["exp_avg"].shape == ckpt[opt]["exp_avg_sq"].shape == (n_params,), f"{opt}: not one moment per weight"
        assert ckpt[opt]["step"] == steps * (cfg.loss.n_critic if opt == "adam_d" else 1)
        assert ckpt[opt]["exp_avg_sq"].abs().sum() > 0, f"{opt} holds no Adam moments"
    assert not list(run_dir.rglob("*.tmp")), "temp files left behind"
    return s


def _n_train(cfg: TrainConfig) -> int:
    return len(load_dataset(cfg.data, cfg.seed))


def _sample_shape(cfg: TrainConfig) -> tuple[int, ...]:
    if cfg.data.is_points:
        return (2,)
    return (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (40, 48), mode: str = "RGB", seed: int = 0) -> None:
    """Random-noise images at folder/NAME (sub-folders are made), as PNG by default."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in names:
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(path)
