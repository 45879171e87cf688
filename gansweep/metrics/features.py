"""Feature networks by name: each turns images in [-1, 1] into (N, D) feature vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gansweep.metrics.classifier import DigitCNN, load_digit_classifier
from gansweep.metrics.inception import load_inception

DIGIT_SIZE = 28
CHUNK = 100  # images per forward pass of the digit CNN on a CPU
CHUNK_ACCELERATOR = 4_000  # elsewhere: big passes, few kernel launches (under 0.5 GB of activations)


class FeatureNet(Protocol):
    name: str
    sha256: str  # of the weights file: part of the cache key of real-data statistics

    def features(self, images: torch.Tensor) -> torch.Tensor: ...


@dataclass
class DigitNet:
    """The shipped digit classifier; takes (N, 1, H, W) in [-1, 1] and resizes to 28x28."""

    model: DigitCNN
    sha256: str
    name: str = "digit_cnn"

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 128) penultimate-layer features."""
        return self._features(images)

    @torch.no_grad()
    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 10) class probabilities."""
        return self.features_and_probs(images)[1]

    @torch.no_grad()
    def features_and_probs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both of the above from one forward pass (eval mode: dropout is off)."""
        feats = self._features(images)
        return feats, self.model.head(feats).softmax(dim=1)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        # In chunks: on CPU the convs run about twice as fast on 100 images as on 500.
        x = self._prepare(images)
        return torch.cat([self.model.features(part) for part in x.split(CHUNK if x.device.type == "cpu" else CHUNK_ACCELERATOR)])

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"digit_cnn takes (N, 1, H, W) images, got shape {tuple(images.shape)}")
        x = images.to(next(self.model.parameters()).device, torch.float32)
        if x.shape[-2:] != (DIGIT_SIZE, DIGIT_SIZE):
            x = F.interpolate(x, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear", antialias=True, align_corners=False)
        return x.contiguous(memory_format=torch.channels_last)


def for_inference(model: DigitCNN) -> DigitCNN:
    """The classifier with each BatchNorm folded into the conv before it, in channels-last
    layout: the same function to float rounding (~1e-6), and several times faster on CPU,
    where one evaluation featurises 10,000 images (BENCHMARKS.md)."""
    for block in model.body:
        if isinstance(block, nn.Sequential) and isinstance(block[1], nn.BatchNorm2d):
            block[0] = fuse_conv_bn_eval(block[0], block[1])
            block[1] = nn.Identity()
    return model.to(memory_format=torch.channels_last)


def load_digit_net(device: torch.device) -> DigitNet:
    """The shipped digit classifier, ready for inference, wrapped as a feature net."""
    model, sha256 = load_digit_classifier(device)
    return DigitNet(for_inference(model), sha256)


FEATURE_NETS: dict[str, Callable[[torch.device], FeatureNet]] = {
    "digit_cnn": load_digit_net,
    "inception": load_inception,
}
