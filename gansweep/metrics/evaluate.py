"""Score a generator against real data: the one entry point the training loop calls.

    evaluator = Evaluator(real, EvalSettings(), device)   # real statistics, cached on disk
    scores = evaluator(lambda n: G(torch.randn(n, z_dim, device=device)))

Images are scored in a feature network's space (FID, precision/recall,
density/coverage) and, for digits, by classifier modes. Stacked MNIST concatenates
the digit features of its three channels (3 x 128 = 384-d) for FID/PRDC, so both the
quality of each digit and how the three are combined count. 2D mixtures get only the
mode metrics. Nothing here reseeds or draws from the global RNG.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from gansweep.atomic import atomic_write
from gansweep.scores import OFF_DOMAIN, DataKind
from gansweep.errors import ConfigError, DivergedError
from gansweep.metrics.features import FEATURE_NETS, DigitNet, FeatureNet, load_digit_net
from gansweep.metrics.fid import feature_stats, frechet_distance
from gansweep.metrics.modes import (
    class_histogram,
    class_modes,
    inception_score,
    mixture_modes,
    stacked_modes,
)
from gansweep.metrics.prdc import prdc, real_radii

KINDS = ("image", "stacked", "mixture")
CACHE_VERSION = 2  # bump when the recipe of the cached real statistics changes
SUBSET_SEED = 0  # picks the n_real real samples, from a private generator


@dataclass
class EvalSettings:
    n_samples: int = 10_000
    """Generated samples scored; also caps the real samples used (n_real)."""
    feature_net: str = "digit_cnn"
    """A name in FEATURE_NETS, or "none"; ignored for 2D mixtures, which use no features."""
    pr_k: int = 3
    """Neighbours defining the balls of improved precision/recall."""
    dc_k: int = 5
    """Neighbours defining the balls of density/coverage."""
    mode_threshold: float = 0.25
    """A digit class counts as covered with at least this share of uniform (0.25 / 10 = 2.5%)."""
    mixture_min_count: int = 10
    """HQ samples a mixture mode needs for modes_covered_min (10 of 2,500 is 10% of a grid25 mode's fair share)."""
    batch_size: int = 250
    """Samples of each generator drawn at a time (the noise stream's chunks); one batch of all
    generators scored together is featurised in one call of the feature net, which splits
    it into the pieces it runs best on."""
    cache_dir: Path = Path("~/.cache/gansweep").expanduser()
    """Where real-data statistics are cached, one file per (data, feature net, n_real)."""

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir).expanduser()
        if self.feature_net != "none" and self.feature_net not in FEATURE_NETS:
            raise ConfigError(f"data.feature_net={self.feature_net}: choose one of {', '.join([*FEATURE_NETS, 'none'])}")
        for name in ("n_samples", "pr_k", "dc_k", "mixture_min_count", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"eval.{name}={getattr(self, name)}: must be >= 1")
        if self.n_samples <= max(self.pr_k, self.dc_k):
            raise ConfigError(f"eval.n_samples={self.n_samples}: must exceed pr_k and dc_k ({self.pr_k}, {self.dc_k})")
        if not 0 < self.mode_threshold <= 1:
            raise ConfigError(f"eval.mode_threshold={self.mode_threshold}: must be in (0, 1]")


def scored_kinds(kind: str, feature_net: str, digit_classes: bool, conditional: bool = False) -> frozenset[DataKind]:
    """The registry's data kinds (``scores.DataKind``) an Evaluator scores: the one rule the
    Evaluator itself follows and the sweep checks an objective against.

    Every image is scored in its feature network's space; digit classes (modes,
    Inception score) need the digit network, which stacked MNIST always loads and plain
    digits get only as their feature net; class_agreement needs a conditional model too.
    """
    if kind == "mixture":
        return frozenset({DataKind.mixture})
    digits = kind == "stacked" or (feature_net == "digit_cnn" and digit_classes)
    if not digits:
        return frozenset({DataKind.image})
    return frozenset({DataKind.image, DataKind.digits} | ({DataKind.conditional} if conditional and kind == "image" else set()))


@dataclass
class RealData:
    kind: str
    """"image", "stacked" (3 digits as 3 channels) or "mixture" (2D points)."""
    samples: torch.Tensor
    """Images (N, C, H, W) in [-1, 1], or points (N, 2)."""
    key: str
    """Describes the data set options; part of the cache key of its statistics."""
    labels: torch.Tensor | None = None
    """Digit classes of 1-channel images when known (else the classifier's predictions are used)."""
    centers: torch.Tensor | None = None
    """Mixture mode centers (M, 2)."""
    std: float | None = None
    """Mixture standard deviation."""
    digit_classes: bool = True
    """The images are digits, so the digit classifier's classes are the modes (not for Fashion-MNIST)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"real data kind={self.kind}: choose one of {', '.join(KINDS)}")
        if self.kind == "mixture" and (self.centers is None or self.std is None):
            raise ConfigError(f"real data {self.key}: a mixture needs centers and std")
        if self.kind == "stacked" and (self.samples.dim() != 4 or self.samples.shape[1] != 3):
            raise ConfigError(f"real data {self.key}: stacked MNIST must be (N, 3, H, W), got {tuple(self.samples.shape)}")


class Evaluator:
    """Holds the real statistics and scores any number of generators against them."""

    def __init__(self, real: RealData, settings: EvalSettings, device: torch.device) -> None:
        self.real = real
        self.settings = settings
        self.device = torch.device(device)
        self.n_real = min(len(real.samples), settings.n_samples)
        if real.kind == "mixture":
            return

        if settings.feature_net == "none":
            raise ConfigError(f"data.feature_net=none: image data ({real.key}) needs a feature net")
        self.net: FeatureNet = FEATURE_NETS[settings.feature_net](self.device)
        channels = real.samples.shape[1]
        if isinstance(self.net, DigitNet) and real.kind == "image" and channels != 1:
            raise ConfigError(f"data.feature_net=digit_cnn scores 1-channel digits; {real.key} has {channels} channels (use inception)")
        # Class modes need the digit classifier (scored_kinds says when).
        self.digits: DigitNet | None = None
        if DataKind.digits in scored_kinds(real.kind, settings.feature_net, real.digit_classes):
            self.digits = self.net if isinstance(self.net, DigitNet) else load_digit_net(self.device)

        self.stats = self._real_stats()
        self.radii = real_radii(self.stats["features"].to(self.device), settings.pr_k, settings.dc_k, settings.batch_size)

    def count(self, n: int | None) -> int:
        """The samples an evaluation asked for n scores (settings.n_samples when None, never more)."""
        n = self.settings.n_samples if n is None else min(n, self.settings.n_samples)
        if n <= max(self.settings.pr_k, self.settings.dc_k):
            raise ConfigError(f"{n} samples: an evaluation needs more than pr_k and dc_k ({self.settings.pr_k}, {self.settings.dc_k})")
        return n

    def pass_key(self, n: int | None) -> tuple:
        """What evaluators must share to score their generators in one pass (score_together):
        the sample count, the noise stream's chunks, the sample shape and the networks that
        describe the samples. Their real statistics and score settings may differ."""
        shape = (self.count(n), self.settings.batch_size, self.real.kind, tuple(self.real.samples.shape[1:]))
        if self.real.kind == "mixture":
            return shape
        return (*shape, self.net.name, self.net.sha256, self.digits is not None, str(self.device))

    def __call__(
        self, generate: Callable[[int], torch.Tensor], n: int | None = None, classes: int = 0,
    ) -> dict[str, float | int | str]:
        """Draw n samples (settings.n_samples when None, never more) from ``generate(n)`` in
        batches and score them (flat dict; n_fake records the count).

        classes > 0: a conditional generator was asked for sample i in class i mod classes;
        on digits, class_agreement is the share the digit classifier puts in that class.
        """
        scores = score_together([self], lambda b: generate(b).unsqueeze(0), n, classes)[0]
        if isinstance(scores, BaseException):
            raise scores
        return scores

    def _score_images(self, fake: torch.Tensor, probs: torch.Tensor | None, classes: int) -> dict[str, float | int | str]:
        """Scores of one generator's sample features (and class probabilities) against the real ones."""
        mu, sigma = feature_stats(fake)
        s = self.settings
        quality = prdc(self.stats["features"].to(self.device), fake.to(self.device), s.pr_k, s.dc_k, s.batch_size, self.radii)
        scores: dict[str, float | int | str] = {
            "fid": frechet_distance(self.stats["mu"].numpy(), self.stats["sigma"].numpy(), mu, sigma),
            "precision": quality.precision,
            "recall": quality.recall,
            "density": quality.density,
            "coverage": quality.coverage,
        }
        if self.digits is not None:
            scores.update(self._score_modes(probs))
            if classes and DataKind.conditional in scored_kinds(self.real.kind, s.feature_net, self.real.digit_classes, True):
                asked = torch.arange(len(fake)) % classes
                scores["class_agreement"] = (probs.argmax(dim=1) == asked).double().mean().item()
        # A digit network's FID on non-digit images (fashion_mnist) is not comparable with
        # published FIDs; the flag travels with the scores into the summary and the report.
        off_domain = isinstance(self.net, DigitNet) and not self.real.digit_classes
        scores.update(n_fake=len(fake), n_real=self.n_real, feature_net=self.net.name, feature_net_sha256=self.net.sha256,
                      feature_domain=OFF_DOMAIN if off_domain else ("digits" if isinstance(self.net, DigitNet) else "imagenet"))
        return scores

    # Real statistics ------------------------------------------------------------------

    def _real_stats(self) -> dict[str, torch.Tensor]:
        """Features, mean, covariance (and class histogram) of n_real real samples, via the disk cache."""
        path = self.settings.cache_dir / f"real-{self._cache_digest()}.pt"
        if path.is_file():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # a damaged cache file is recomputed and overwritten
                pass

        # Compute: a fixed random subset, so sorted data sets are not cut by class.
        g = torch.Generator().manual_seed(SUBSET_SEED)
        subset = torch.randperm(len(self.real.samples), generator=g)[: self.n_real]
        samples = self.real.samples[subset]
        features, probs = [], []
        for start in range(0, len(samples), self.settings.batch_size):
            f, p = self._describe(samples[start : start + self.settings.batch_size])
            features.append(f)
            probs.append(p)
        feats = torch.cat(features)
        mu, sigma = feature_stats(feats)
        stats = {"features": feats, "mu": torch.from_numpy(mu), "sigma": torch.from_numpy(sigma)}
        if self.real.kind == "image" and self.digits is not None:
            labels = self.real.labels[subset] if self.real.labels is not None else torch.cat(probs).argmax(dim=1)
            stats["class_hist"] = torch.from_numpy(class_histogram(labels, torch.cat(probs).shape[1]))

        # Atomically, so a crash or a parallel sweep never leaves half a file.
        atomic_write(path, lambda fh: torch.save(stats, fh))
        return stats

    def _cache_digest(self) -> str:
        labels = "labels" if self.real.labels is not None and self.real.kind == "image" else "predicted"
        parts = (CACHE_VERSION, self.real.kind, self.real.key, tuple(self.real.samples.shape[1:]),
                 self.net.name, self.net.sha256, self.n_real, labels)
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]

    # Generated samples ----------------------------------------------------------------

    def _batches(self, generate: Callable[[int], torch.Tensor], total: int, k: int):
        """Yield `total` samples of each of k generators, batch by batch, as (k, b, ...), checked."""
        shape = tuple(self.real.samples.shape[1:])
        for start in range(0, total, self.settings.batch_size):
            n = min(self.settings.batch_size, total - start)
            with torch.inference_mode():
                batch = generate(n)
            if tuple(batch.shape) != (k, n, *shape):
                raise ConfigError(f"generator returned shape {tuple(batch.shape[1:])} for n={n}; the data needs {(n, *shape)}")
            yield batch

    def _describe(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """CPU float32 features of a batch and, when modes are scored, class probabilities.

        Probabilities are (N, 10) for plain digits and (N, 3, 10) for stacked MNIST.
        """
        images = images.to(self.device)
        if self.real.kind == "stacked":
            channels = [images[:, c : c + 1] for c in range(3)]
            described = [self.digits.features_and_probs(x) for x in channels]
            probs = torch.stack([p for _, p in described], dim=1)
            if self.net is self.digits:
                feats = torch.cat([f for f, _ in described], dim=1)
            else:
                feats = self.net.features(images)
            return feats.float().cpu(), probs.cpu()
        if self.digits is not None:
            feats, probs = self.digits.features_and_probs(images)
            return feats.float().cpu(), probs.cpu()
        return self.net.features(images).float().cpu(), None

    def _score_modes(self, probs: torch.Tensor) -> dict[str, float | int]:
        if self.real.kind == "stacked":
            modes = stacked_modes(probs.argmax(dim=2))
            confidence = probs.max(dim=2).values.double().mean().item()
            return {"modes_covered": modes.modes_covered, "modes_total": modes.modes_total, "mode_kl": modes.mode_kl,
                    "confidence": confidence, "inception_score": inception_score(probs)}
        modes = class_modes(probs, self.stats["class_hist"].numpy(), self.settings.mode_threshold)
        return {"modes_covered": modes.modes_covered, "modes_total": modes.modes_total, "mode_kl": modes.mode_kl,
                "confidence": modes.confidence, "inception_score": inception_score(probs)}

    def _score_mixture(self, points: torch.Tensor) -> dict[str, float | int | str]:
        modes = mixture_modes(points, self.real.centers, self.real.std, self.settings.mixture_min_count)
        return {
            "modes_covered": modes.modes_covered,
            "modes_covered_min": modes.modes_covered_min,
            "modes_total": modes.modes_total,
            "hq_fraction": modes.hq_fraction,
            "mode_kl": modes.mode_kl,
            "mixture_tv": modes.mixture_tv,
            "n_fake": len(points),
            "feature_net": "none",
        }


def score_together(
    evaluators: list[Evaluator], generate: Callable[[int], torch.Tensor], n: int | None = None, classes: int = 0,
) -> list[dict[str, float | int | str] | BaseException]:
    """Score K generators in one pass: ``generate(b)`` returns (K, b, ...), b samples of each,
    and generator k is scored by evaluators[k] (which must share a ``pass_key``). Each batch
    of all K generators' samples is featurised in one call of the first evaluator's
    networks; each generator is then scored against its own evaluator's real statistics.

    A generator whose samples are not finite gets a DivergedError in place of its scores, and
    one whose scoring fails gets that error: neither changes the others' numbers.
    """
    first, k = evaluators[0], len(evaluators)
    if len({e.pass_key(n) for e in evaluators}) > 1:
        raise ValueError("score_together: the evaluators do not share one pass (Evaluator.pass_key)")
    failed: list[BaseException | None] = [None] * k
    drawn: list[tuple[torch.Tensor, torch.Tensor | None]] = []  # per batch: (K, b, D) features or points, (K, b, ...) probs
    for batch in first._batches(generate, first.count(n), k):
        finite = torch.isfinite(batch).flatten(1).all(dim=1)
        for i, ok in enumerate(finite.tolist()):
            if not ok and failed[i] is None:
                failed[i] = DivergedError("generator produced non-finite samples during evaluation")
        if all(f is not None for f in failed):
            break
        if not all(f is None for f in failed):  # a bad member's samples are zeros from here on, never NaN beside the others'
            bad = torch.tensor([f is not None for f in failed], device=batch.device)
            batch = batch.masked_fill(bad.view(k, *[1] * (batch.dim() - 1)), 0.0)
        if first.real.kind == "mixture":
            drawn.append((batch.detach().cpu(), None))
            continue
        feats, probs = first._describe(batch.flatten(0, 1))
        b = batch.shape[1]
        drawn.append((feats.view(k, b, -1), None if probs is None else probs.view(k, b, *probs.shape[1:])))
    results: list[dict[str, float | int | str] | BaseException] = []
    for i, e in enumerate(evaluators):
        if failed[i] is not None:
            results.append(failed[i])
            continue
        mine = torch.cat([f[i] for f, _ in drawn])
        try:
            if e.real.kind == "mixture":
                results.append(e._score_mixture(mine))
            else:
                probs = None if drawn[0][1] is None else torch.cat([p[i] for _, p in drawn])
                results.append(e._score_images(mine, probs, classes))
        except Exception as exc:  # noqa: BLE001  # this generator's scores only; the caller raises it for its run
            results.append(exc)
    return results
