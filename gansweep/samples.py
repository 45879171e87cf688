"""Pictures of generated samples: image grids, and scatter plots for 2D points."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import torch
from torchvision.utils import make_grid, save_image

from gansweep.atomic import write_bytes_atomic


def save_image_grid(images: torch.Tensor, path: Path, columns: Optional[int] = None) -> None:
    """Save images in [-1, 1] as one PNG grid, `columns` wide (None: about square)."""
    nrow = columns or max(1, int(round(images.shape[0] ** 0.5)))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    buf = io.BytesIO()
    save_image(grid, buf, format="png")
    write_bytes_atomic(path, buf.getvalue())


def save_scatter(points: torch.Tensor, path: Path, centers: Optional[torch.Tensor], title: str) -> None:
    """Scatter generated 2D points over the real mixture's modes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = points.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.4, color="tab:blue", label="generated")
    if centers is not None:
        c = centers.cpu().numpy()
        ax.scatter(c[:, 0], c[:, 1], s=60, marker="x", color="tab:red", label="real modes")
        span = float(abs(c).max()) * 1.5 + 0.5
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
