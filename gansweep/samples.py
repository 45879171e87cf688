"""Pictures of generated samples: image grids, and scatter plots for 2D points."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gansweep.atomic import write_bytes_atomic


def save_image_grid(images: torch.Tensor, path: Path, columns: Optional[int] = None) -> None:
    """Save images in [-1, 1] as one PNG grid, `columns` wide (None: about square)."""
    from torchvision.utils import make_grid, save_image  # torchvision's import takes seconds; 2D runs never need it

    nrow = columns or max(1, int(round(images.shape[0] ** 0.5)))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    buf = io.BytesIO()
    save_image(grid, buf, format="png")
    write_bytes_atomic(path, buf.getvalue())


# The scatter is drawn with numpy and Pillow, not matplotlib: a population writes one per
# member ten times a run, and matplotlib took 0.13-0.23 s a picture on this CPU (this: ~10 ms).
SCATTER_PX = 480  # the plot's side
TITLE_PX = 40  # the two text lines above it
BLUE, RED, GRID, AXES = (31, 119, 180), (214, 39, 40), (232, 232, 232), (170, 170, 170)
POINT_ALPHA = 0.4  # one point's opacity; overlapping points darken towards BLUE
PNG_LEVEL = 1  # zlib's fastest: a third of the default level's time, for files about a tenth larger


def save_scatter(points: torch.Tensor, path: Path, centers: Optional[torch.Tensor], title: str) -> None:
    """Scatter generated 2D points (blue, darker where they pile up) over the real mixture's
    modes (red crosses, under the points), on a grid of unit squares; the title says how many points fell
    outside the frame, so a picture never hides where samples went."""
    from PIL import Image, ImageDraw, ImageFont

    pts = points.detach().float().cpu().numpy()
    pts = pts[np.isfinite(pts).all(axis=1)]
    c = centers.cpu().numpy() if centers is not None else None
    reach = float(np.abs(c).max()) if c is not None else (float(np.quantile(np.abs(pts), 0.99)) if len(pts) else 1.0)
    span = reach * 1.5 + 0.5
    side = SCATTER_PX - 1

    def to_px(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (xy[:, 0] + span) / (2 * span) * side, (span - xy[:, 1]) / (2 * span) * side

    col, row = to_px(pts)
    inside = (col >= 0) & (col <= side) & (row >= 0) & (row <= side)
    flat = row[inside].astype(np.int64) * (SCATTER_PX + 1) + col[inside].astype(np.int64)
    counts = np.bincount(flat, minlength=(SCATTER_PX + 1) ** 2).reshape(SCATTER_PX + 1, SCATTER_PX + 1)
    counts = counts[:-1, :-1] + counts[1:, :-1] + counts[:-1, 1:] + counts[1:, 1:]  # each point 2 x 2 px
    canvas = Image.new("RGB", (SCATTER_PX, SCATTER_PX), "white")
    draw = ImageDraw.Draw(canvas)
    if span <= 20:  # unit grid lines, the axes darker
        for v in range(-int(span), int(span) + 1):
            (x, _), (_, y) = (to_px(np.array([[v, 0.0]]))[0], 0), (0, to_px(np.array([[0.0, v]]))[1])
            colour = AXES if v == 0 else GRID
            draw.line([(float(x[0]), 0), (float(x[0]), side)], fill=colour)
            draw.line([(0, float(y[0])), (side, float(y[0]))], fill=colour)
    if c is not None:  # under the points: a mode they cover turns blue, a missed one stays a red cross
        for x, y in zip(*to_px(c)):
            draw.line([(x - 6, y - 6), (x + 6, y + 6)], fill=RED, width=2)
            draw.line([(x - 6, y + 6), (x + 6, y - 6)], fill=RED, width=2)
    draw.rectangle([0, 0, side, side], outline=AXES)
    plot = np.array(canvas)
    hit = counts > 0  # blended only where points fell: most of the plot is blank
    opacity = (1 - (1 - POINT_ALPHA) ** counts[hit])[:, None]
    plot[hit] = (plot[hit] * (1 - opacity) + np.array(BLUE) * opacity).round().astype(np.uint8)
    canvas = Image.fromarray(plot)

    picture = Image.new("RGB", (SCATTER_PX, SCATTER_PX + TITLE_PX), "white")
    picture.paste(canvas, (0, TITLE_PX))
    text = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=13)
    outside = len(pts) - int(inside.sum())
    legend = f"blue: {len(pts)} generated" + (f" ({outside} outside the frame)" if outside else "") + ("; red x: modes, drawn under the points" if c is not None else "")
    text.text((6, 3), title, fill="black", font=font)
    text.text((6, 21), legend, fill=(90, 90, 90), font=font)
    buf = io.BytesIO()
    picture.save(buf, format="png", compress_level=PNG_LEVEL)
    write_bytes_atomic(path, buf.getvalue())
