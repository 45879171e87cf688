"""A plain-words diagnosis of one run, from its summary and its last train lines.

The thresholds, rules and words are ``gansweep.health``'s (``DESCRIBE``), the same the
sweep's early stopper uses with its stricter ``STOP`` bar. The first rule that applies wins:

1. ``diverged at step N``: the run diverged; N is its stop reason's step.
2. ``failed (detail)``: the run crashed.
3. ``discriminator overpowering``: the run was stopped for it (``at step N``), or the
   mean of its last ``TAIL_LINES`` train lines shows it (``health.d_overpowers``).
4. What ``health.judge_scores`` says of the last evaluation's scores when it is not good:
   ``mode collapse (...)``, ``spread between modes: 2% high quality`` or ``collapse
   between modes (...)`` (2D data), or ``not yet realistic (precision 0.012)`` (images).
5. ``mode collapse at step N``: stopped as collapsed, though the last scores no longer show it.
6. ``no training logged``, ``not scored (yet)``: nothing to judge.
7. ``healthy``: scores judged good.
"""

from __future__ import annotations

from typing import Any, Optional

from gansweep.health import DESCRIBE, Quality, d_overpowers, judge_scores
from gansweep.rundir import RunSummary, Status
from gansweep.scores import is_finite_number

# Losses whose logged D(x) and D(G(z)) are probabilities (gansweep.losses.LOSSES with
# probabilities=True); the others log raw critic scores. Listed here because importing
# the losses imports torch, which the report does without; a test keeps the two equal.
PROBABILITY_LOSSES = frozenset({"bce"})

HEALTHY = "healthy"


def diagnose(summary: RunSummary, train_tail: list[dict[str, Any]]) -> str:
    """The diagnosis of one run from its summary and its last train lines (oldest first)."""
    reason = summary.stop_reason
    step = reason.step if reason is not None and reason.step is not None else summary.steps
    if summary.status is Status.diverged:
        return f"diverged at step {step}"
    if summary.status is Status.failed:
        return f"failed ({reason.detail if reason and reason.detail else 'no reason logged'})"
    if summary.status is Status.overpowered:
        return f"discriminator overpowering at step {step}"
    d_real, d_fake, grad_g = (_recent(summary, train_tail, key) for key in ("d_real", "d_fake", "grad_norm_g"))
    if d_overpowers(d_real, d_fake, grad_g, summary.loss in PROBABILITY_LOSSES, DESCRIBE):
        return "discriminator overpowering"
    judgement = judge_scores(summary.scores, DESCRIBE)
    if judgement.quality not in (Quality.good, Quality.unknown):
        return judgement.words
    if summary.status is Status.collapsed:
        return f"mode collapse at step {step}"
    if judgement.quality is Quality.unknown:
        if not train_tail and not summary.last_train:
            return "no training logged"
        return "not scored" if summary.status.final else "not scored yet"
    return HEALTHY


def _recent(summary: RunSummary, train_tail: list[dict[str, Any]], key: str) -> Optional[float]:
    """Mean of ``key`` over the train tail, else the summary's last value, else None."""
    values = [r[key] for r in train_tail if is_finite_number(r.get(key))]
    if values:
        return sum(values) / len(values)
    value = summary.last_train.get(key)
    return float(value) if is_finite_number(value) else None
