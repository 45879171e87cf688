"""TensorBoard event files beside metrics.jsonl, for `tensorboard --logdir outputs/`.

With `tensorboard=true` (and the `[tensorboard]` extra installed) a run writes its events
into its own folder, so TensorBoard names each run and sweep trial by its folder. They
mirror what the run writes anyway: every metrics.jsonl row as scalars (train rows under
train/, evaluations under eval/, at the row's step) and every sample picture as an
image. metrics.jsonl stays the source of truth; the events are a view of it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Optional

from gansweep.errors import ConfigError

FLUSH_SECS = 10  # how stale TensorBoard's view of a live run may be
NOT_SCALARS = ("kind", "step")  # row keys that say what the row is, not what it measured


def require_tensorboard() -> None:
    """Raise ConfigError, before any work, where TensorBoard's writer cannot be imported."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(
            "tensorboard=true: the tensorboard package is not installed; "
            "pip install 'gansweep[tensorboard]', or set tensorboard=false"
        ) from None


class EventWriter:
    """Writes a run's metrics rows and sample pictures as TensorBoard events in `folder`."""

    def __init__(self, folder: Path, purge_step: Optional[int] = None):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run drops the events its killed session wrote past the
        # checkpoint, as metrics.jsonl drops those lines.
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step, flush_secs=FLUSH_SECS)

    def rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Each numeric value of each row as a scalar `<kind>/<key>` at the row's step."""
        for row in rows:
            kind, step = row.get("kind", "train"), row["step"]
            for key, value in row.items():
                if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if math.isfinite(value):  # a diverged row logs null in metrics.jsonl; no point here
                    self.writer.add_scalar(f"{kind}/{key}", value, step)

    def picture(self, png: Path, step: int) -> None:
        """A saved sample grid or scatter, as the image `samples` at `step`."""
        import numpy as np
        from PIL import Image

        with Image.open(png) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image("samples", pixels, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()
