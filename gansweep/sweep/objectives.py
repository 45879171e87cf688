"""Which scores a sweep can optimize, and in which direction."""

from __future__ import annotations

from gansweep.errors import ConfigError

# Every score the metrics write, with its better direction.
DIRECTIONS = {
    "fid": "minimize",
    "mode_kl": "minimize",
    "precision": "maximize",
    "recall": "maximize",
    "density": "maximize",
    "coverage": "maximize",
    "modes_covered": "maximize",
    "modes_covered_min": "maximize",
    "hq_fraction": "maximize",
    "confidence": "maximize",
}


# What the metrics write for each kind of data (docs/metrics.md).
MIXTURE_SCORES = ("mode_kl", "modes_covered", "modes_covered_min", "hq_fraction")
IMAGE_SCORES = ("fid", "precision", "recall", "density", "coverage")
CLASS_SCORES = ("modes_covered", "mode_kl", "confidence")


def available_scores(is_points: bool, has_classes: bool) -> tuple[str, ...]:
    """The scores a run on this data gets: mixture scores, or image scores (+ class modes for digits)."""
    if is_points:
        return MIXTURE_SCORES
    return IMAGE_SCORES + (CLASS_SCORES if has_classes else ())


def default_objective(is_points: bool) -> list[str]:
    """FID for images; the mode-histogram KL for 2D mixtures (no feature network there)."""
    return ["mode_kl"] if is_points else ["fid"]


def parse_objectives(text: str | None, is_points: bool, has_classes: bool = True) -> list[str]:
    """`fid,coverage` -> ["fid", "coverage"], each a score this data gets."""
    if not text:
        return default_objective(is_points)
    names = [n.strip() for n in text.split(",") if n.strip()]
    available = available_scores(is_points, has_classes)
    for name in names:
        if name not in DIRECTIONS:
            raise ConfigError(f"--objective {name}: unknown score; choose from {', '.join(DIRECTIONS)}")
        if name not in available:
            raise ConfigError(f"--objective {name}: not scored on this data; choose from {', '.join(available)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"--objective {text}: a score is named twice")
    return names


def is_better(a: float, b: float, objective: str) -> bool:
    """True when value a beats value b for `objective`."""
    return a < b if DIRECTIONS[objective] == "minimize" else a > b
