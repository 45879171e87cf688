"""The standard FID Inception network (pytorch-fid's port of the 2015-12-05 TF graph).

Used for RGB data. The weights are read from $GANSWEEP_INCEPTION_WEIGHTS, or from torch
hub's checkpoints folder, where pytorch-fid itself caches them; when they are in neither
place they are downloaded there once (a short timeout, so an offline machine gets its
one-line error at once). The network code comes from the optional ``pytorch-fid`` package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch
from torch import nn

from gansweep.atomic import write_bytes_atomic
from gansweep.errors import CheckpointError, ConfigError

ENV_VAR = "GANSWEEP_INCEPTION_WEIGHTS"
WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_NAME}"
FEATURE_DIM = 2048
CHUNK = 250  # images per forward pass: about 1.5 GB of activations at 299 px, whatever a joint pass holds


def inception_available() -> bool:
    """True when Inception can score here without a download: pytorch-fid installed and
    the weights file at $GANSWEEP_INCEPTION_WEIGHTS or in torch hub's checkpoints."""
    env = os.environ.get(ENV_VAR)
    weights = Path(env) if env else Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME
    return weights.is_file() and importlib.util.find_spec("pytorch_fid") is not None


def find_inception_weights() -> Path:
    """The local FID Inception weights file, or CheckpointError naming where it looked."""
    env = os.environ.get(ENV_VAR)
    if env:
        if Path(env).is_file():
            return Path(env)
        raise CheckpointError(f"{ENV_VAR}={env}: no such file; point it at {WEIGHTS_NAME} ({WEIGHTS_URL})")
    hub = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME
    if hub.is_file():
        return hub
    try:
        _download(WEIGHTS_URL, hub)
    except OSError as exc:  # URLError, timeouts and refused connections are all OSErrors
        raise CheckpointError(
            f"FID Inception weights not found ({ENV_VAR} unset, not at {hub}) and not downloadable "
            f"({type(exc).__name__}); download {WEIGHTS_URL} and set {ENV_VAR} to its path, "
            "or train unscored with eval.enabled=false"
        ) from None
    return hub


def _download(url: str, path: Path, timeout_s: float = 10.0) -> None:
    """Fetch `url` into `path` atomically."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        write_bytes_atomic(path, response.read())


@dataclass
class InceptionNet:
    """Pool3 (2048-d) Inception features of images in [-1, 1], any size, 1 or 3 channels."""

    model: nn.Module
    sha256: str
    name: str = "inception"

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 2048) features; the network resizes to 299x299 itself, CHUNK images at a time."""
        x = (images.to(next(self.model.parameters()).device, torch.float32) + 1) / 2  # pytorch-fid expects [0, 1]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return torch.cat([self.model(part)[0].flatten(1) for part in x.split(CHUNK)])


def load_inception(device: torch.device) -> InceptionNet:
    """The FID Inception network in eval mode on ``device``, built from the local weights."""
    path = find_inception_weights()
    try:
        from pytorch_fid import inception as pfid
    except ImportError:
        raise ConfigError("feature_net=inception needs the pytorch-fid package: pip install pytorch-fid") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    # pytorch-fid always fetches its weights by URL; hand it the local file instead.
    with mock.patch.object(pfid, "load_state_dict_from_url", lambda *args, **kwargs: state):
        model = pfid.InceptionV3([pfid.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]], resize_input=True, normalize_input=True)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return InceptionNet(model.to(device).eval(), sha256)
