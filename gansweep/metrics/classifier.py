"""A small CNN that classifies 28x28 grayscale digits; its weights ship in the package.

Its penultimate layer is the feature space for FID/precision/recall on digit data, and
its softmax gives the class histogram behind the mode-collapse metrics.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources

import numpy as np
import torch
from torch import nn

from gansweep.errors import CheckpointError

FEATURE_DIM = 128
WEIGHTS_FILE = "digit_cnn.pt"
INFO_FILE = "digit_cnn.json"


class DigitCNN(nn.Module):
    """Three conv blocks and two linear layers; input (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, num_classes: int = 10, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(1, 32),  # 28 -> 14
            _conv_block(32, 64),  # 14 -> 7
            _conv_block(64, 64),  # 7 -> 3
            nn.Flatten(),
            nn.Linear(64 * 3 * 3, feature_dim),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations, (N, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, (N, num_classes)."""
        return self.head(self.dropout(self.body(x)))


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


def weights_resource():
    """The packaged weights file as an importlib.resources Traversable."""
    return resources.files("gansweep.metrics").joinpath("weights", WEIGHTS_FILE)


def info_resource():
    """The packaged JSON that records how the weights were trained."""
    return resources.files("gansweep.metrics").joinpath("weights", INFO_FILE)


def load_digit_classifier(device: torch.device) -> tuple[DigitCNN, str]:
    """The shipped classifier in eval mode on ``device``, and the sha256 of its weights."""
    resource = weights_resource()
    if not resource.is_file():
        raise CheckpointError(
            f"digit classifier weights missing ({WEIGHTS_FILE} in gansweep/metrics/weights); "
            "reinstall gansweep or run scripts/train_classifier.py"
        )
    blob = resource.read_bytes()
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    model = DigitCNN()
    model.load_state_dict(state)
    return model.to(device).eval(), hashlib.sha256(blob).hexdigest()


def heldout_split(labels: np.ndarray, n_test: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train_idx, test_idx) of ``labels``: n_test / num_classes per class.

    The split is a pure function of the labels and seed so the training script and the
    accuracy test agree on which images were held out.
    """
    classes = np.unique(labels)
    per_class = n_test // len(classes)
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes])
    test = np.sort(test)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test
