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
    "hq_fraction": "maximize",
    "confidence": "maximize",
}


def default_objective(is_points: bool) -> list[str]:
    """FID for images; the mode-histogram KL for 2D mixtures (no feature network there)."""
    return ["mode_kl"] if is_points else ["fid"]


def parse_objectives(text: str | None, is_points: bool) -> list[str]:
    """`fid,coverage` -> ["fid", "coverage"], each checked against DIRECTIONS."""
    if not text:
        return default_objective(is_points)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in DIRECTIONS:
            raise ConfigError(f"--objective {name}: unknown score; choose from {', '.join(DIRECTIONS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"--objective {text}: a score is named twice")
    return names


def is_better(a: float, b: float, objective: str) -> bool:
    """True when value a beats value b for `objective`."""
    return a < b if DIRECTIONS[objective] == "minimize" else a > b
