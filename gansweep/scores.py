"""The score registry: every score a run can get, its better direction, the data that
gets it and how it is shown.

Objectives, summaries, the report's columns and sort order, plots, stopping rules and
docs/metrics.md all read this table; adding a score is one line here (and the metric
that computes it).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from enum import Enum

from gansweep.errors import ConfigError


class Direction(str, Enum):
    minimize = "minimize"
    maximize = "maximize"


class DataKind(str, Enum):
    """What a score is computed on."""

    mixture = "mixture"  # 2D Gaussian mixtures (ring8, grid25)
    image = "image"  # any image data, in a feature network's space
    digits = "digits"  # digit data, whose modes are the digit classifier's classes
    conditional = "conditional"  # a class-conditional GAN on digit data


@dataclass(frozen=True)
class Score:
    name: str
    better: Direction
    kinds: frozenset[DataKind]
    fmt: str = ".4g"  # format spec of one value
    meaning: str = ""  # one line, for docs and help
    objective: bool = True  # a sweep may optimize it

    def better_than(self, a: float, b: float) -> bool:
        """True when value a beats value b."""
        return a < b if self.better is Direction.minimize else a > b


_MIX, _IMG, _DIG = frozenset({DataKind.mixture}), frozenset({DataKind.image}), frozenset({DataKind.digits})
_COND = frozenset({DataKind.conditional})

SCORES: dict[str, Score] = {
    s.name: s
    for s in (
        Score("mixture_tv", Direction.minimize, _MIX, ".3f",
              "total variation between the generated and real mode histograms, off-mode samples in their own bin: the share of samples in the wrong place"),
        Score("fid", Direction.minimize, _IMG, ".4g", "Frechet distance between Gaussians fitted to real and generated features"),
        Score("precision", Direction.maximize, _IMG, ".3f", "improved precision (k=3): share of samples inside the real manifold"),
        Score("recall", Direction.maximize, _IMG, ".3f", "improved recall (k=3): share of real data inside the generated manifold"),
        Score("density", Direction.maximize, _IMG, ".3f", "Naeem et al. density (k=5); about 1 when matching"),
        Score("coverage", Direction.maximize, _IMG, ".3f", "Naeem et al. coverage (k=5): share of real neighbourhoods holding a sample"),
        Score("modes_covered", Direction.maximize, _MIX | _DIG, "d", "modes (classes) the samples cover"),
        Score("modes_covered_min", Direction.maximize, _MIX, "d", "2D modes with at least eval.mixture_min_count HQ samples"),
        Score("hq_fraction", Direction.maximize, _MIX, ".3f", "share of samples within 3 std of their nearest mode"),
        Score("mode_kl", Direction.minimize, _MIX | _DIG, ".3f", "KL of the generated mode histogram against the real one (2D: HQ samples only)"),
        Score("inception_score", Direction.maximize, _DIG, ".2f",
              "Inception score (Salimans et al. 2016) from the digit classifier's probabilities: 1 to 10 (1000 for stacked MNIST); collapse scores low, noise too"),
        Score("class_agreement", Direction.maximize, _COND, ".3f",
              "conditional GAN: share of samples the digit classifier puts in the class G was asked for; 0.1 is chance"),
        Score("confidence", Direction.maximize, _DIG, ".3f", "mean max softmax of the digit classifier; noise scores high too", objective=False),
    )
}

# provenance["feature_domain"] of scores the digit network computed on other images
# (fashion_mnist): not comparable with published FIDs; the report flags them.
OFF_DOMAIN = "digits, not this data"

# What a sweep optimizes unless told otherwise. mode_kl alone is gamed on mixtures by a
# generator that sprays points over the plane (few HQ samples, all modes touched).
DEFAULT_OBJECTIVE = {DataKind.mixture: "mixture_tv", DataKind.image: "fid"}

# The scores the report shows right after the objective, by what they are computed on:
# where the samples land on 2D mixtures; quality and modes on images.
KEY_SCORES = {DataKind.mixture: ("modes_covered", "hq_fraction"), DataKind.image: ("fid", "precision", "modes_covered")}


def scores_for(kinds: frozenset[DataKind]) -> list[str]:
    """Names of the scores a run whose evaluator scores these kinds gets, in registry order.
    ``gansweep.metrics.evaluate.scored_kinds`` says which kinds an evaluator scores."""
    return [s.name for s in SCORES.values() if s.kinds & kinds]


def default_objective(is_points: bool) -> list[str]:
    """The default objective for this data (mixture_tv for 2D mixtures, fid for images)."""
    return [DEFAULT_OBJECTIVE[DataKind.mixture if is_points else DataKind.image]]


def parse_objectives(text: str | None, kinds: frozenset[DataKind]) -> list[str]:
    """`fid,coverage` -> ["fid", "coverage"], each a registered objective that a run whose
    evaluator scores ``kinds`` gets (digit scores need the digit network, class_agreement
    a conditional model); anything else is refused before a sweep starts."""
    if not text:
        return default_objective(DataKind.mixture in kinds)
    names = [n.strip() for n in text.split(",") if n.strip()]
    available = [n for n in scores_for(kinds) if SCORES[n].objective]
    for name in names:
        if name not in SCORES or not SCORES[name].objective:
            choices = ", ".join(n for n, s in SCORES.items() if s.objective)
            raise ConfigError(f"--objective {name}: unknown score; choose from {choices}")
        if name not in available:
            raise ConfigError(f"--objective {name}: this run's evaluator does not compute it; choose from {', '.join(available)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"--objective {text}: a score is named twice")
    return names


def direction(name: str) -> Direction:
    """The better direction of a registered score."""
    return SCORES[name].better


def higher_is_better(name: str) -> bool:
    """True for registered scores that are maximized; False for everything else."""
    score = SCORES.get(name)
    return score is not None and score.better is Direction.maximize


def is_better(a: float, b: float, name: str) -> bool:
    """True when value a beats value b for score `name`."""
    return SCORES[name].better_than(a, b)


def is_finite_number(value: object) -> bool:
    """True for an int or float score that is neither NaN nor infinite (bools are not scores)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_score(name: str, value: float | int | None) -> str:
    """One value in the score's own format; '-' when missing."""
    if value is None:
        return "-"
    score = SCORES.get(name)
    spec = score.fmt if score else ".4g"
    return format(int(value), spec) if spec == "d" else format(float(value), spec)
