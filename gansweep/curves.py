"""A run's live curves: losses, D's outputs and its objective over the steps, redrawn
into the run folder at evaluations (at most once a minute) and at the end, so a glance at
one PNG shows how training goes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from gansweep.atomic import write_bytes_atomic
from gansweep.scores import higher_is_better


def save_run_curves(rows: list[dict[str, Any]], path: Path, objective: str, title: str) -> None:
    """Three panels from metrics.jsonl rows: D and G losses, mean D(x) and D(G(z)), and
    ``objective`` at each evaluation (with its better direction in the label)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval" and r.get(objective) is not None]
    fig = Figure(figsize=(13, 3.4), dpi=100)
    axes = fig.subplots(1, 3)
    steps = [r["step"] for r in train]
    for ax, keys, name in ((axes[0], ("loss_d", "loss_g"), "loss"), (axes[1], ("d_real", "d_fake"), "D output")):
        for key in keys:
            ax.plot(steps, [r.get(key) if r.get(key) is not None else float("nan") for r in train], linewidth=1, label=key)
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    better = "higher is better" if higher_is_better(objective) else "lower is better"
    axes[2].plot([r["step"] for r in evals], [r[objective] for r in evals], marker="o", color="tab:red")
    axes[2].set_xlabel("step")
    axes[2].set_ylabel(f"{objective} ({better})")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    # Fixed margins, not tight_layout: measuring every label first doubled the drawing time,
    # and a population redraws one picture per member.
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.15, top=0.88, wspace=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    write_bytes_atomic(path, buf.getvalue())
