"""Write realistic run folders (docs/run-folder.md) for the report tests and benchmark.

The trainer writes the real ones; these follow the same contract so the report can be
tested without training anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

FEATURE_NET = "inception-v3-pool3"
FEATURE_NET_SHA256 = "a" * 64


def summary_for(**overrides: Any) -> dict[str, Any]:
    """A completed DCGAN run's summary.json content; keyword arguments replace keys."""
    summary: dict[str, Any] = {
        "status": "completed", "stop_reason": None, "steps": 1000, "total_steps": 1000,
        "epochs": 2.1, "images_seen": 64000, "wall_time_s": 93.5, "images_per_s": 684.5,
        "device": "cpu", "torch_version": "2.5.1", "seed": 0,
        "model": "dcgan", "data": "mnist", "data_used": "mnist", "loss": "bce",
        "lr": 2e-4, "batch_size": 64, "beta1": 0.5, "beta2": 0.999,
        "loss_d": 0.9, "loss_g": 1.6, "d_real": 0.62, "d_fake": 0.35,
        "grad_norm_d": 2.1, "grad_norm_g": 1.4,
        "started_at": "2025-01-01T10:00:00Z", "updated_at": "2025-01-01T10:01:33Z",
        "fid": 30.0, "precision": 0.7, "recall": 0.5, "density": 0.9, "coverage": 0.6,
        "n_fake": 5000, "n_real": 10000, "feature_net": FEATURE_NET, "feature_net_sha256": FEATURE_NET_SHA256,
        "best_fid": 29.0, "best_fid_step": 900,
    }
    summary.update(overrides)
    # One learning rate for G and D unless the test sets them apart.
    summary.setdefault("lr_g", summary["lr"])
    summary.setdefault("lr_d", summary["lr"])
    return summary


def config_for(summary: dict[str, Any], **model: Any) -> dict[str, Any]:
    """The nested config.yaml matching ``summary``; ``model`` adds keys to the model group."""
    return {
        "seed": summary["seed"], "steps": summary["total_steps"], "epochs": None,
        "lr": summary["lr"], "batch_size": summary["batch_size"],
        "beta1": summary["beta1"], "beta2": summary["beta2"], "log_every": 50, "eval_every": 500,
        "model": {"name": summary["model"], "ngf": 64, "ndf": 64, "nz": 100, **model},
        "data": {"name": summary["data"], "image_size": 32},
        "loss": {"name": summary["loss"]},
    }


def train_lines(steps: int, every: int = 50, *, d_real: float = 0.6, d_fake: float = 0.35,
                grad_norm_g: float = 1.4, nan_from: int | None = None) -> list[dict[str, Any]]:
    """metrics.jsonl train lines up to ``steps``; losses are null (how the run folder writes NaN) from step ``nan_from``."""
    lines = []
    for step in range(every, steps + 1, every):
        bad = nan_from is not None and step >= nan_from
        lines.append({
            "kind": "train", "step": step, "epoch": step / 500, "images_seen": step * 64,
            "loss_d": None if bad else 1.3 * math.exp(-step / 800) + 0.6,
            "loss_g": None if bad else 0.8 + 0.8 * (1 - math.exp(-step / 400)),
            "d_real": d_real, "d_fake": d_fake, "grad_norm_d": 2.0, "grad_norm_g": grad_norm_g,
            "lr": 2e-4, "lr_g": 2e-4, "lr_d": 2e-4, "images_per_s": 680.0, "time_s": step * 0.09,
        })
    return lines


def eval_lines(steps: int, every: int = 250, final_fid: float = 30.0) -> list[dict[str, Any]]:
    """metrics.jsonl eval lines whose FID falls towards ``final_fid``."""
    return [
        {"kind": "eval", "step": step, "epoch": step / 500, "images_seen": step * 64, "eval_time_s": 4.0,
         "fid": final_fid + 200.0 * math.exp(-4 * step / steps) - 200.0 * math.exp(-4), "coverage": 0.6}
        for step in range(every, steps + 1, every)
    ]


def write_run(path: Path, summary: dict[str, Any] | None = None, *,
              config: dict[str, Any] | None = None,
              metrics: list[dict[str, Any]] | None = None,
              sample_steps: tuple[int, ...] = (500, 1000), sample_seed: int = 0) -> Path:
    """Create a run folder at ``path``: summary.json, config.yaml, metrics.jsonl, samples/.

    Defaults: a healthy completed run, its matching config, train and eval lines, and
    two small sample grids.
    """
    summary = summary_for() if summary is None else summary
    path.mkdir(parents=True, exist_ok=True)
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    (path / "config.yaml").write_text(yaml.safe_dump(config or config_for(summary), sort_keys=False))
    if metrics is None:
        metrics = train_lines(summary["steps"]) + eval_lines(summary["steps"], final_fid=summary.get("fid") or 30.0)
        metrics.sort(key=lambda r: r["step"])
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    for step in sample_steps:
        write_sample_grid(path / "samples" / f"step_{step:07d}.png", seed=sample_seed + step)
    return path


def write_sample_grid(path: Path, seed: int = 0, tiles: int = 4, tile: int = 16) -> None:
    """A small RGB PNG of ``tiles`` x ``tiles`` blurry random blobs, like a sample grid."""
    rng = np.random.default_rng(seed)
    size = tiles * (tile + 2) + 2
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    yy, xx = np.mgrid[0:tile, 0:tile]
    for row in range(tiles):
        for col in range(tiles):
            cy, cx = rng.uniform(4, tile - 4, 2)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(6, 20))
            colour = rng.uniform(60, 255, 3)
            top, left = 2 + row * (tile + 2), 2 + col * (tile + 2)
            image[top:top + tile, left:left + tile] = (blob[..., None] * colour).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def write_sweep(root: Path, name: str, lrs: list[float], fids: list[float | None], *,
                statuses: list[str] | None = None, objectives: tuple[str, ...] = ()) -> Path:
    """A sweep folder ``root/name`` with one trial per (lr, fid); trials.csv and best.yaml too.

    ``objectives`` names the scores the sweep optimized (summary key ``objectives``).
    """
    sweep_dir = root / name
    statuses = statuses or ["completed"] * len(lrs)
    for trial, (lr, fid, status) in enumerate(zip(lrs, fids, statuses)):
        coverage = round(0.9 - abs(math.log10(lr) + 3.7) * 0.3, 4)
        summary = summary_for(
            status=status, lr=lr, fid=fid, coverage=coverage, best_fid=fid,
            sweep=name, trial=trial, params={"lr": lr, "model.ngf": 32 * (1 + trial % 2)},
            seed=trial,
        )
        if objectives:
            summary["objectives"] = list(objectives)
        config = config_for(summary, ngf=32 * (1 + trial % 2))
        write_run(sweep_dir / f"trial_{trial:04d}", summary, config=config, sample_steps=(1000,), sample_seed=trial)
    (sweep_dir / "trials.csv").write_text("number,value\n")
    (sweep_dir / "best.yaml").write_text("lr: 0.0002\n")
    return sweep_dir
