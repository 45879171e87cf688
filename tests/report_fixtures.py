"""Run folders for the report tests and benchmark, written by the real writers.

config.yaml is the typed schema (``TrainConfig``, started from the conf/ group files as
``gansweep train`` composes it) through ``gansweep.config.to_yaml``; summary.json is a
``RunSummary`` filled as the training loop fills it (``set_scores``, ``stop``) and
written by ``RunFolder.write_summary``; metrics rows have the keys the loop logs and are
appended with ``RunFolder.append_metrics``. No model is trained, so the report tests
stay fast; tests/test_report_real_runs.py covers folders of real trainings.
"""

from __future__ import annotations

import importlib.resources
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml
from PIL import Image

from gansweep.config import DataConfig, DCGANConfig, LossConfig, MLPConfig, TrainConfig, to_yaml
from gansweep.rundir import RunFolder, RunSummary, Status, StopKind, StopReason, SweepMembership, now_iso

FEATURE_NET_SHA256 = "a" * 64
SCHEMAS = {"dcgan": DCGANConfig, "mlp": MLPConfig}
# What the training loop keeps in summary.last_train (gansweep.train.TRAIN_KEYS).
TRAIN_KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
EVALS = 4  # evaluations per run, as with eval_every=0


def _group(group: str, option: str) -> dict[str, Any]:
    """The settings of conf/<group>/<option>.yaml, without its defaults list."""
    text = (importlib.resources.files("gansweep.conf") / group / f"{option}.yaml").read_text()
    settings = yaml.safe_load(text) or {}
    if "# @package _global_" in text:  # a group file that also sets top-level keys (model=dcgan)
        settings = settings[group]
    return {k: v for k, v in settings.items() if k != "defaults"}


def train_config(model: str = "dcgan", data: str = "mnist", loss: str = "bce", *,
                 model_keys: Optional[dict[str, Any]] = None, data_keys: Optional[dict[str, Any]] = None,
                 **top: Any) -> TrainConfig:
    """The config ``gansweep train model=M data=D loss=L steps=1000 KEY=VALUE...`` composes."""
    top.setdefault("steps", 1000)
    lr = top.setdefault("lr", 2e-4)
    top.setdefault("lr_g", lr)
    top.setdefault("lr_d", lr)
    return TrainConfig(
        model=SCHEMAS[model](**{**_group("model", model), **(model_keys or {})}),
        data=DataConfig(**{**_group("data", data), **(data_keys or {})}),
        loss=LossConfig(**_group("loss", loss)),
        **top,
    )


def hyperparameters(cfg: TrainConfig) -> dict[str, Any]:
    """The summary's hyperparameter fields (gansweep.train.flat_hparams; a test keeps them equal)."""
    return {
        "model": cfg.model.name, "data": cfg.data.name, "loss": cfg.loss.name, "lr": cfg.lr, "lr_g": cfg.lr_g,
        "lr_d": cfg.lr_d, "batch_size": cfg.batch_size, "beta1": cfg.beta1, "beta2": cfg.beta2, "seed": cfg.seed,
    }


def image_scores(fid: float = 30.0, precision: float = 0.7, **more: Any) -> dict[str, Any]:
    """What the evaluator returns for MNIST: image scores, digit modes and provenance."""
    scores = {
        "fid": fid, "precision": precision, "recall": 0.5, "density": 0.9, "coverage": 0.6,
        "modes_covered": 10, "modes_total": 10, "mode_kl": 0.05, "confidence": 0.93,
        "n_fake": 5000, "n_real": 10000, "feature_net": "digit_cnn", "feature_net_sha256": FEATURE_NET_SHA256,
        "feature_domain": "digits",
    }
    return {**scores, **more}


def mixture_scores(hq_fraction: float = 0.9, modes_covered: int = 8, modes_total: int = 8, **more: Any) -> dict[str, Any]:
    """What the evaluator returns for a 2D mixture."""
    scores = {
        "modes_covered": modes_covered, "modes_covered_min": modes_covered, "modes_total": modes_total,
        "hq_fraction": hq_fraction, "mode_kl": 0.05, "mixture_tv": round(1 - hq_fraction * 0.9, 4),
        "n_fake": 2500, "feature_net": "none",
    }
    return {**scores, **more}


def train_rows(steps: int, every: int = 50, batch_size: int = 64, *, d_real: float = 0.6, d_fake: float = 0.35,
               grad_norm_g: float = 1.4) -> list[dict[str, Any]]:
    """metrics.jsonl train rows up to ``steps``, with the keys the training loop logs."""
    return [
        {
            "kind": "train", "step": step, "epoch": step * batch_size / 60000, "images_seen": step * batch_size,
            "loss_d": 1.3 * math.exp(-step / 800) + 0.6, "loss_g": 0.8 + 0.8 * (1 - math.exp(-step / 400)),
            "d_real": d_real, "d_fake": d_fake, "grad_norm_d": 2.0, "grad_norm_g": grad_norm_g,
            "lr": 2e-4, "lr_g": 2e-4, "lr_d": 2e-4, "images_per_s": 680.0, "time_s": step * 0.09,
        }
        for step in range(every, steps + 1, every)
    ]


def eval_rows(steps: int, scores: dict[str, Any], batch_size: int = 64) -> list[dict[str, Any]]:
    """EVALS eval rows up to ``steps``; fid and mixture_tv fall towards the final ``scores``."""
    rows = []
    for k in range(1, EVALS + 1):
        step = max(1, k * steps // EVALS)
        worse = 1 + 0.5 * (EVALS - k)
        at_step = {key: v * worse if key in ("fid", "mixture_tv") else v for key, v in scores.items()}
        rows.append({"kind": "eval", "step": step, "epoch": step * batch_size / 60000, "images_seen": step * batch_size,
                     "eval_time_s": 4.0, **at_step})
    return rows


def write_run(path: Path, cfg: Optional[TrainConfig] = None, scores: Optional[dict[str, Any]] = None, *,
              stop: Optional[StopReason] = None, running: bool = False,
              train: Optional[list[dict[str, Any]]] = None, sweep: Optional[SweepMembership] = None,
              sample_steps: tuple[int, ...] = (500, 1000), sample_seed: int = 0) -> Path:
    """A run folder at ``path`` as training leaves it: config, metrics, samples and summary.

    Defaults: a DCGAN on MNIST that completed 1000 steps with ``image_scores()``. ``stop``
    ends it early (at ``stop.step``); ``running`` leaves it running; ``scores=None`` with
    a cfg on 2D data scores it with ``mixture_scores()``; pass ``{}`` for no evaluation.
    """
    cfg = cfg or train_config()
    if scores is None:
        scores = mixture_scores() if cfg.data.is_points else image_scores()
    steps = stop.step if stop is not None and stop.step is not None else cfg.steps
    run = RunFolder(path)
    run.create(to_yaml(cfg), overrides=[])
    train = train_rows(steps, batch_size=cfg.batch_size) if train is None else train
    evals = eval_rows(steps, scores, cfg.batch_size) if scores and steps else []
    run.append_metrics(sorted(train + evals, key=lambda r: (r["step"], r["kind"])))
    for step in sample_steps:
        if step <= steps:
            write_sample_grid(run.sample_path(step), seed=sample_seed + step)

    summary = RunSummary(status=Status.running, run_dir=str(path), total_steps=cfg.steps, device="cpu",
                         torch_version="2.5.1", sweep=sweep, **hyperparameters(cfg))
    if scores:
        summary.set_scores(scores)
        summary.evaluated_step = steps
        fids = [r["fid"] for r in evals if "fid" in r]
        if fids:
            summary.best_fid = min(fids)
            summary.best_fid_step = next(r["step"] for r in evals if r.get("fid") == summary.best_fid)
    if train:
        summary.last_train = {k: train[-1][k] for k in TRAIN_KEYS}
    summary.steps, summary.images_seen = steps, steps * cfg.batch_size
    summary.epochs, summary.wall_time_s = summary.images_seen / 60000, steps * 0.09
    summary.images_per_s = summary.images_seen / summary.wall_time_s if summary.wall_time_s else None
    if not running:
        summary.stop(stop)
        summary.finished_at = now_iso() if summary.status.final else None
    run.write_summary(summary)
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


def write_sweep(root: Path, name: str, lrs: list[float], fids: list[Optional[float]], *,
                stops: Optional[list[Optional[StopKind]]] = None, objectives: tuple[str, ...] = ("fid",)) -> Path:
    """A sweep folder ``root/name`` of DCGAN trials, one per (lr, fid), sampling lr and model.ngf.

    ``stops`` ends trials early (at step 500) with that kind; a fid of None is a trial
    never evaluated. trials.csv and best.yaml are there too, as a sweep leaves them.
    """
    sweep_dir = root / name
    stops = stops or [None] * len(lrs)
    for trial, (lr, fid, kind) in enumerate(zip(lrs, fids, stops)):
        ngf = 64 * (1 + trial % 2)  # 64 or 128: never the default 32 of the other runs
        coverage = round(0.9 - abs(math.log10(lr) + 3.7) * 0.3, 4)
        params = {"lr": lr, "model.ngf": ngf}
        membership = SweepMembership(name, trial, params, list(objectives), base_config=trial == 0)
        write_run(
            sweep_dir / f"trial_{trial:04d}", train_config(lr=lr, seed=trial, model_keys={"ngf": ngf}),
            {} if fid is None else image_scores(fid=fid, coverage=coverage),
            stop=StopReason(kind, 500, "stopped by the sweep") if kind else None,
            sweep=membership, sample_steps=(500,), sample_seed=trial,
        )
    (sweep_dir / "trials.csv").write_text("trial,state\n")
    (sweep_dir / "best.yaml").write_text("lr: 0.0002\n")
    return sweep_dir
