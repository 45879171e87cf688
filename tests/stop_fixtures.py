"""Evaluation histories to replay through the sweep's early stopper, as metrics.jsonl
writes its eval rows (one dict per evaluation, oldest first).

RECOVERING_DIGITS is the default DCGAN on digits: its first evaluations put every
sample in one class with no precision (noise the digit classifier reads as one digit
with high confidence), and then it learns all classes. Stopping it as collapsed would
be wrong. These are the real evaluations of `gansweep train` with the default config
(DCGAN on mnist5k, 782 steps, seed 0), recorded before the default run changes.
"""

RECOVERING_DIGITS = [  # recorded 2026-12-03: the eval rows of metrics.jsonl, scores only
    {"kind": "eval", "step": 196, "fid": 503.85929331138647, "precision": 0.0, "recall": 0.0, "density": 2e-05, "coverage": 0.0002, "modes_covered": 1, "modes_total": 10, "mode_kl": 2.3025850713707796, "confidence": 0.9997312933623791},
    {"kind": "eval", "step": 392, "fid": 374.3821617607398, "precision": 0.0045, "recall": 0.0, "density": 0.00172, "coverage": 0.0002, "modes_covered": 1, "modes_total": 10, "mode_kl": 2.3025850713707796, "confidence": 0.9967156150400639},
    {"kind": "eval", "step": 588, "fid": 78.1563446891318, "precision": 0.364, "recall": 0.0548, "density": 0.14788, "coverage": 0.0526, "modes_covered": 4, "modes_total": 10, "mode_kl": 1.0662921452427265, "confidence": 0.6335215862661601},
    {"kind": "eval", "step": 782, "fid": 41.213780527327344, "precision": 0.324, "recall": 0.4054, "density": 0.15464, "coverage": 0.0914, "modes_covered": 9, "modes_total": 10, "mode_kl": 0.3283310032950015, "confidence": 0.5594252248629927},
]

# An MLP on ring8 that found one mode and stays there: nearly every sample is high
# quality, all on one of eight modes, and mixture_tv does not improve.
COLLAPSED_RING = [
    {"kind": "eval", "step": 500, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8,
     "hq_fraction": 0.95, "mode_kl": 2.079, "mixture_tv": 0.875},
    {"kind": "eval", "step": 1000, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8,
     "hq_fraction": 0.95, "mode_kl": 2.079, "mixture_tv": 0.880},
]


# A real collapse, recorded 2026-12-03 (Metz et al.'s unrolled-GAN setting, where the
# standard GAN collapses): gansweep train model=mlp data=ring8 model.hidden=128
# model.depth=2 model.z_dim=256 lr_g=1e-4 lr_d=1e-3 batch_size=512 data.std=0.02
# data.radius=2 steps=4000 eval_every=500. Every sample ends on one mode (the last
# scatter shows a single dot), ever more of them high quality; mixture_tv never moves.
REAL_COLLAPSE_RING = [
    {"kind": "eval", "step": 500, "modes_covered": 3, "modes_covered_min": 0, "modes_total": 8, "hq_fraction": 0.0052, "mode_kl": 1.021536, "mixture_tv": 0.983691},
    {"kind": "eval", "step": 1000, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8, "hq_fraction": 0.3264, "mode_kl": 2.079442, "mixture_tv": 0.86528},
    {"kind": "eval", "step": 1500, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8, "hq_fraction": 0.3952, "mode_kl": 2.079442, "mixture_tv": 0.86528},
    {"kind": "eval", "step": 2000, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8, "hq_fraction": 0.4984, "mode_kl": 2.079442, "mixture_tv": 0.86528},
    {"kind": "eval", "step": 2500, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8, "hq_fraction": 0.6076, "mode_kl": 2.079442, "mixture_tv": 0.86528},
    {"kind": "eval", "step": 3000, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8, "hq_fraction": 0.7268, "mode_kl": 2.079442, "mixture_tv": 0.86528},
    {"kind": "eval", "step": 3500, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8, "hq_fraction": 0.8472, "mode_kl": 2.079442, "mixture_tv": 0.86528},
    {"kind": "eval", "step": 4000, "modes_covered": 1, "modes_covered_min": 1, "modes_total": 8, "hq_fraction": 0.9368, "mode_kl": 2.079442, "mixture_tv": 0.86528},
]


def train_row(step: int, d_real: float, d_fake: float, grad_norm_g: float) -> dict:
    """A metrics.jsonl train row with the values the overpowering rule reads."""
    return {"kind": "train", "step": step, "loss_d": 0.01, "loss_g": 6.0, "d_real": d_real, "d_fake": d_fake,
            "grad_norm_d": 0.1, "grad_norm_g": grad_norm_g}
