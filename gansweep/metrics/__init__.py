"""Scores for generated samples: FID, precision/recall, density/coverage, mode collapse.

The training loop needs only ``Evaluator``; the pure functions are exported for tests
and notebooks.
"""

from gansweep.metrics.classifier import DigitCNN, load_digit_classifier
from gansweep.metrics.evaluate import EvalSettings, Evaluator, RealData
from gansweep.metrics.features import FEATURE_NETS
from gansweep.metrics.fid import feature_stats, frechet_distance
from gansweep.metrics.modes import class_modes, mixture_modes, stacked_modes
from gansweep.metrics.prdc import PRDC, knn_radii, prdc

__all__ = [
    "DigitCNN",
    "EvalSettings",
    "Evaluator",
    "FEATURE_NETS",
    "PRDC",
    "RealData",
    "class_modes",
    "feature_stats",
    "frechet_distance",
    "knn_radii",
    "load_digit_classifier",
    "mixture_modes",
    "prdc",
    "stacked_modes",
]
