"""The bridge from a run's config and data to the metrics package's Evaluator."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gansweep.config import DataConfig, TrainConfig
from gansweep.data import Dataset, dataset_key
from gansweep.models import ConditionalGenerator
from gansweep.scores import DataKind


def default_cache_dir() -> Path:
    """$GANSWEEP_CACHE, else ~/.cache/gansweep."""
    return Path(os.environ.get("GANSWEEP_CACHE") or Path.home() / ".cache" / "gansweep")


def resolve_feature_net(name: str) -> str:
    """auto -> inception where it can run offline, else digit_cnn (the scores then carry
    feature_domain "digits, not this data" and the report flags them)."""
    if name != "auto":
        return name
    from gansweep.metrics.inception import inception_available

    return "inception" if inception_available() else "digit_cnn"


def resolve_auto(cfg: TrainConfig) -> TrainConfig:
    """cfg with data.feature_net=auto replaced by the network it means on this machine."""
    if cfg.data.feature_net != "auto":
        return cfg
    return replace(cfg, data=replace(cfg.data, feature_net=resolve_feature_net("auto")))


def evaluator_kind(data: DataConfig) -> str:
    """What the Evaluator scores this data as: mixture, stacked or image."""
    return "mixture" if data.is_points else ("stacked" if data.name == "stacked_mnist" else "image")


def run_kinds(cfg: TrainConfig) -> frozenset[DataKind]:
    """The score kinds this run's evaluator computes (metrics.evaluate.scored_kinds), with
    data.feature_net=auto resolved as training will resolve it."""
    from gansweep.metrics.evaluate import scored_kinds

    return scored_kinds(evaluator_kind(cfg.data), resolve_feature_net(cfg.data.feature_net),
                        cfg.data.has_digit_classes, bool(cfg.model.conditional))


def build_evaluator(cfg: TrainConfig, data: Dataset, device: torch.device):
    """An Evaluator for this run's data; it scores `generate(n) -> samples` callables."""
    from gansweep.metrics.evaluate import EvalSettings, Evaluator, RealData

    e = cfg.eval
    kind = evaluator_kind(cfg.data)
    settings = EvalSettings(
        n_samples=cfg.data.eval_samples or (e.mixture_samples if data.is_points else e.n_samples),
        feature_net=resolve_feature_net(cfg.data.feature_net),
        pr_k=e.pr_k,
        dc_k=e.dc_k,
        mode_threshold=e.mode_threshold,
        mixture_min_count=e.mixture_min_count,
        batch_size=e.batch_size,
        cache_dir=Path(e.cache_dir) if e.cache_dir else default_cache_dir(),
    )
    digits = cfg.data.has_digit_classes
    digit_labels = data.labels if digits else None
    real = RealData(
        kind=kind,
        samples=data.samples,
        key=dataset_key(cfg.data, data, cfg.seed),
        labels=digit_labels,
        centers=data.centers,
        std=data.std,
        digit_classes=digits,
    )
    return Evaluator(real, settings, device)


def score_stack(
    evaluators: list, generate: Callable[..., torch.Tensor], z_dim: int, seeds: list[int], device: torch.device,
    n: int | None = None, classes: int = 0,
) -> list[dict[str, Any] | BaseException]:
    """Scores of K generators on n samples each (the evaluators' full count when None), all
    drawn and featurised in one pass (metrics.evaluate.score_together).
    ``generate(z, [labels])`` maps (K, b, z_dim) latents, and (K, b) classes for a
    conditional G (classes > 0), to (K, b, ...) samples; the caller puts G in eval mode.

    Member k's latents come from a stream fixed by seeds[k]: every evaluation of a run, as a
    population member or alone, and `gansweep eval` later, sees the same latent vectors, an
    interim evaluation the first n of them. A conditional G is asked for sample i in class
    i mod classes: balanced classes, which the evaluator checks against what the digit
    classifier sees (class_agreement). Member k's entry is its scores, or what stopped them.
    """
    from gansweep.metrics.evaluate import score_together

    streams = [torch.Generator().manual_seed(seed + 2) for seed in seeds]
    drawn = 0

    def draw(b: int) -> torch.Tensor:
        nonlocal drawn
        z = torch.stack([torch.randn(b, z_dim, generator=stream) for stream in streams]).to(device)
        if not classes:
            return generate(z)
        labels = (torch.arange(drawn, drawn + b) % classes).to(device).expand(len(streams), b)
        drawn += b
        return generate(z, labels)

    with torch.no_grad():
        return score_together(evaluators, draw, n, classes)


def score_generator(
    evaluator: Callable, g: nn.Module, z_dim: int, seed: int, device: torch.device, n: int | None = None,
) -> dict[str, Any]:
    """Scores of one G on n samples (the evaluator's full count when None), as score_stack
    draws and scores them for a stack of one."""
    classes = g.num_classes if isinstance(g, ConditionalGenerator) else 0
    g.eval()
    try:
        scores = score_stack([evaluator], lambda z, *y: g(z[0], *(c[0] for c in y)).unsqueeze(0), z_dim, [seed], device, n, classes)[0]
    finally:
        g.train()
    if isinstance(scores, BaseException):
        raise scores
    return scores
