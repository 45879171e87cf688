"""A plain-words diagnosis of one run from the diagnostics it logged.

The first rule that applies wins, in this order:

1. ``diverged at step N``: status ``diverged``, or a non-finite loss in the last train
   lines (NaN/inf, or null: the run folder writes non-finite numbers as null) or in
   summary.json. N is the step of the first such train line, else the summary's ``steps``.
2. ``mode collapse (modes covered k/n)``: fewer than ``MODE_FRACTION_MIN`` of the
   known modes covered, or status ``collapsed`` for any reason but the next one.
3. ``discriminator overpowering``: mean D(x) > ``D_REAL_HIGH`` and mean D(G(z)) <
   ``D_FAKE_LOW`` while the generator's gradient norm < ``G_GRAD_VANISH``, averaged over
   the last ``TAIL_LINES`` train lines (or the summary's last values). Only judged for
   losses whose D outputs are probabilities (not ``CRITIC_LOSSES``). A trial the sweep's
   early stopper ended for this (status ``collapsed``, stop_reason "discriminator
   overpowering at step N: ...") gets it too.
4. ``failed (<stop_reason>)`` for a run that crashed; ``no training logged`` when
   there is nothing to judge.
5. ``healthy``.
"""

from __future__ import annotations

import math
import re
from typing import Any

# Train lines averaged for the "overpowering" test: one noisy log line is not a trend.
TAIL_LINES = 5
# D(x) above this counts as "near 1" (D is sure every real image is real).
D_REAL_HIGH = 0.95
# D(G(z)) below this counts as "near 0" (D is sure every fake is fake).
D_FAKE_LOW = 0.05
# Generator gradient L2 norm below this counts as vanished: G has stopped learning.
G_GRAD_VANISH = 1e-2
# Covering fewer than this fraction of the known modes is mode collapse.
MODE_FRACTION_MIN = 0.5
# How gansweep.sweep.stopping words the stop_reason of a trial it stopped for this.
OVERPOWERING_REASON = "discriminator overpowering"
# Losses whose d_real/d_fake are raw critic scores, not probabilities (docs/run-folder.md).
CRITIC_LOSSES = frozenset({"lsgan", "hinge", "wgan_gp", "wgan"})

HEALTHY = "healthy"


def diagnose(summary: dict[str, Any], train_tail: list[dict[str, Any]]) -> str:
    """Return the diagnosis of one run from its summary and its last train lines."""
    status = summary.get("status")
    bad_lines = [r for r in train_tail if _nonfinite_train_line(r)]
    if status == "diverged" or bad_lines or _nonfinite_losses(summary):
        # The training loop names the exact step in its stop reason; a log line may come later.
        exact = re.search(r"at step (\d+)", str(summary.get("stop_reason") or ""))
        step = int(exact.group(1)) if exact else (bad_lines[0].get("step") if bad_lines else None)
        step = summary.get("steps") if step is None else step
        return f"diverged at step {step}" if step is not None else "diverged"

    # The sweep's early stopper marks both failure modes "collapsed"; its reason tells which.
    stopped_overpowered = status == "collapsed" and OVERPOWERING_REASON in str(summary.get("stop_reason") or "")
    covered, total = summary.get("modes_covered"), summary.get("modes_total")
    has_modes = _finite(covered) and _finite(total) and total > 0
    few_modes = has_modes and covered / total < MODE_FRACTION_MIN
    if few_modes or (status == "collapsed" and not stopped_overpowered):
        return f"mode collapse (modes covered {covered:g}/{total:g})" if has_modes else "mode collapse"

    d_real, d_fake, grad_g = (_recent(summary, train_tail, key) for key in ("d_real", "d_fake", "grad_norm_g"))
    judged = summary.get("loss") not in CRITIC_LOSSES and None not in (d_real, d_fake, grad_g)
    if stopped_overpowered or (judged and d_real > D_REAL_HIGH and d_fake < D_FAKE_LOW and grad_g < G_GRAD_VANISH):
        return "discriminator overpowering"

    if status == "failed":
        return f"failed ({summary.get('stop_reason') or 'no reason logged'})"
    if not train_tail and summary.get("loss_d") is None and summary.get("loss_g") is None:
        return "no training logged"
    return HEALTHY


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _nonfinite(value: Any) -> bool:
    """True for NaN/inf numbers and their string spellings; None is "not logged", not bad."""
    if isinstance(value, str):
        return value.strip().lower() in {"nan", "inf", "-inf", "infinity", "-infinity"}
    return isinstance(value, (int, float)) and not math.isfinite(value)


def _nonfinite_losses(record: dict[str, Any]) -> bool:
    return _nonfinite(record.get("loss_d")) or _nonfinite(record.get("loss_g"))


def _nonfinite_train_line(record: dict[str, Any]) -> bool:
    """A train line always logs both losses; the run folder writes NaN/inf as null."""
    losses = [record[k] for k in ("loss_d", "loss_g") if k in record]
    return any(v is None or _nonfinite(v) for v in losses)


def _recent(summary: dict[str, Any], train_tail: list[dict[str, Any]], key: str) -> float | None:
    """Mean of ``key`` over the train tail, else the summary's last value, else None."""
    values = [r[key] for r in train_tail if _finite(r.get(key))]
    if values:
        return sum(values) / len(values)
    value = summary.get(key)
    return float(value) if _finite(value) else None
