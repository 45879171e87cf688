"""One set of rules that judge a run's health, read by the sweep's early stopper and by
the report's diagnosis, so both use the same thresholds and the same words.

Each rule is a pure function of scores or of logged training values. A sweep stops a
trial with ``STOP`` (a stricter bar: a stop cannot be undone), the report describes a
run with ``DESCRIBE``. Both are ``Thresholds``; there is no second copy of a rule.

What the words mean (docs/metrics.md, "Diagnosis"):

* collapse: samples that are realistic (2D: at least ``hq_min`` of them high quality;
  images: precision at least ``precision_min``) concentrated on fewer than
  ``mode_fraction_min`` of the modes. Unrealistic samples on few modes are not collapse:
  the digit classifier puts noise into one class with confidence 1.0.
* spread between modes (2D): fewer than ``hq_min`` of the samples high quality, some
  of them on a mode.
* collapse between modes (2D): fewer than ``hq_min`` high quality and not one mode
  covered: the samples sit together off every mode (a spray over the plane lands a few
  on most modes). Not the collapse a sweep stops for, which is realistic samples on few modes.
* not yet realistic (images): precision below ``precision_min``.
* discriminator overpowering: D tells real from fake with certainty (mean D(x) above
  ``d_real_high`` and D(G(z)) below ``d_fake_low``, losses with probability outputs
  only) or G's gradient norm fell below ``g_grad_vanish``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping, Optional

from gansweep.scores import SCORES, is_finite_number


@dataclass(frozen=True)
class Thresholds:
    """The bars of every health rule."""

    mode_fraction_min: float = 0.5
    """Covering fewer than this share of the known modes is few modes."""
    hq_min: float = 0.5
    """2D mixtures: a smaller share of high-quality samples is spread, not a working GAN."""
    precision_min: float = 0.05
    """Images: precision below this means the samples are not yet realistic."""
    d_real_high: float = 0.95
    """Mean D(x) above this: D is sure every real sample is real."""
    d_fake_low: float = 0.05
    """Mean D(G(z)) below this: D is sure every fake is fake."""
    g_grad_vanish: float = 1e-2
    """Generator gradient L2 norm below this: G has stopped learning."""


DESCRIBE = Thresholds()
# A stop cannot be undone: stop only clear cases (one mode in ten, D certain to 1%).
STOP = Thresholds(mode_fraction_min=0.2, d_real_high=0.99, d_fake_low=0.01, g_grad_vanish=1e-6)
# The working-generator gate (not_working): noise, not a weak generator. Uniform noise
# over a 2D mixture's square puts about 2% of its samples near a mode (grid25; ring8 far
# fewer), a blob between modes none; image noise has precision 0.
GATE = Thresholds(hq_min=0.1)
# Log lines in a row a trial must be overpowered before the stopper ends it.
OVERPOWER_PATIENCE = 20
# Train lines the report averages: one noisy log line is not a trend.
TAIL_LINES = 5


class Quality(str, Enum):
    """What one evaluation's scores say about the samples."""

    good = "good"
    collapsed = "collapsed"  # realistic samples on few modes
    spread = "spread"  # 2D: most samples between the modes
    collapsed_between = "collapsed_between"  # 2D: every sample off every mode, together
    unrealistic = "unrealistic"  # images: not yet realistic
    unknown = "unknown"  # nothing to judge on (no scores, or no modes and no precision)


@dataclass(frozen=True)
class Judgement:
    quality: Quality
    words: str  # the diagnosis in words, e.g. "spread between modes: 2% high quality"


def _num(scores: Mapping[str, Any], key: str) -> Optional[float]:
    value = scores.get(key)
    return float(value) if is_finite_number(value) else None


def judge_scores(scores: Mapping[str, Any], th: Thresholds = DESCRIBE) -> Judgement:
    """Judge one evaluation's scores: collapse, spread, not yet realistic, or good.

    Realism comes first: few modes with unrealistic samples is "not yet realistic" (or
    "spread" in 2D), never collapse.
    """
    covered, total = _num(scores, "modes_covered"), _num(scores, "modes_total")
    hq, precision = _num(scores, "hq_fraction"), _num(scores, "precision")
    few = covered is not None and total is not None and total > 1 and covered / total < th.mode_fraction_min
    modes = f"modes covered {covered:g}/{total:g}" if covered is not None and total is not None else ""
    if hq is not None:
        low = None
        if hq < th.hq_min:
            on_none = covered == 0 and total is not None
            low = (Judgement(Quality.collapsed_between, f"collapse between modes (0/{total:g} modes covered)") if on_none
                   else Judgement(Quality.spread, f"spread between modes: {hq:.0%} high quality"))
        realism = f"{hq:.0%} high quality"
    elif precision is not None:
        low = Judgement(Quality.unrealistic, f"not yet realistic (precision {precision:.3f})") if precision < th.precision_min else None
        realism = f"precision {precision:.2f}"
    else:
        return Judgement(Quality.unknown, "")
    if low is not None:
        return low
    if few:
        return Judgement(Quality.collapsed, f"mode collapse ({modes}, {realism})")
    return Judgement(Quality.good, "healthy")


def not_working(scores: Mapping[str, Any], th: Thresholds = GATE) -> Optional[str]:
    """Why these final scores show no working generator, or None when they do.

    A generator works when its samples are realistic: 2D samples on the modes, image
    samples inside the real manifold. Noise (and a 2D blob or spray that covers no mode)
    is not yet a GAN, whatever its objective value: FID ranks grey noise above half-formed
    digits at small budgets, and mixture_tv ties every generator that misses all modes.
    Such a run is never a sweep's best, never written to best.yaml, never confirmed, and
    the report ranks it below every working run. Scores with nothing to judge pass.
    """
    judgement = judge_scores(scores, th)
    return judgement.words if judgement.quality in (Quality.spread, Quality.collapsed_between, Quality.unrealistic) else None


def d_overpowers(d_real: Optional[float], d_fake: Optional[float], grad_g: Optional[float],
                 probabilities: bool, th: Thresholds = DESCRIBE) -> bool:
    """D wins outright: certain on both real and fake (probability outputs only), or G's gradient vanished."""
    certain = probabilities and d_real is not None and d_fake is not None and d_real > th.d_real_high and d_fake < th.d_fake_low
    vanished = grad_g is not None and grad_g < th.g_grad_vanish
    return certain or vanished


def overpowering_words(d_real: Optional[float], d_fake: Optional[float], grad_g: Optional[float]) -> str:
    """The values behind a D-overpowering verdict, in words."""
    def fmt(v: Optional[float], spec: str) -> str:
        return "-" if v is None else format(v, spec)

    return f"D(x)={fmt(d_real, '.3f')}, D(G(z))={fmt(d_fake, '.3f')}, |grad G|={fmt(grad_g, '.2g')}"


def collapse_stop(evals: list[Mapping[str, Any]], objective: str, th: Thresholds = STOP) -> Optional[str]:
    """Why a trial should stop as collapsed after its latest evaluation, or None.

    ``evals`` are the trial's evaluations so far, oldest first. It stops only what is
    lost: the latest samples are collapsed under ``th`` and the objective is not a new
    best, better than at every earlier evaluation (a first evaluation is never enough).
    """
    if len(evals) < 2:
        return None
    latest = judge_scores(evals[-1], th)
    if latest.quality is not Quality.collapsed:
        return None
    now = _num(evals[-1], objective)
    earlier = [v for v in (_num(e, objective) for e in evals[:-1]) if v is not None]
    if objective in SCORES and now is not None and all(SCORES[objective].better_than(now, v) for v in earlier):
        return None  # a new best: still improving
    return latest.words
