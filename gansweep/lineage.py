"""A PBT member's lineage: its hyperparameters by step and its copies (pbt.json), and
lineage.png, every member's hyperparameters against step, coloured by its final score,
with a dot where it copied another member. No torch: the report reads these too."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Optional

from gansweep.config import SCHEDULED
from gansweep.scores import higher_is_better, is_finite_number

PBT_LINEAGE = "pbt.json"  # in each PBT member's run folder
PBT_STATE = "pbt_state.json"  # in the PBT folder: the last round, which a stopped run continues from


@dataclass
class History:
    """A member's hyperparameters by step (what its weights went through) and its copies."""

    steps: list[tuple[int, dict[str, float]]]  # (from step, lr_g, lr_d, beta1, beta2); the first from 0
    copies: list[dict[str, Any]] = field(default_factory=list)  # step, from (member), scores

    @staticmethod
    def from_record(record: dict[str, Any]) -> "History":
        """The history a member's pbt.json records (its start, schedule and copies)."""
        now, steps = dict(record["start"]), [(0, dict(record["start"]))]
        for entry in record["schedule"]:
            now = {**now, **{k: v for k, v in entry.items() if k != "step"}}
            steps.append((entry["step"], now))
        return History(steps, list(record["copies"]))

    def record(self, member: int) -> dict[str, Any]:
        """What a member's pbt.json holds."""
        start, entries = self.schedule()
        return {"member": member, "start": start, "schedule": entries, "copies": self.copies}

    def schedule(self) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """The values at step 0 and the `schedule:` entries after it (changed keys only)."""
        start, entries, now = dict(self.steps[0][1]), [], dict(self.steps[0][1])
        for step, values in self.steps[1:]:
            changed = {k: v for k, v in values.items() if v != now[k]}
            if changed:
                entries.append({"step": step, **changed})
            now = dict(values)
        return start, entries


def lineage_png(histories: dict[int, History], scores: dict[int, Optional[float]], objective: str, total: int, title: str) -> bytes:
    """One panel per key of SCHEDULED; the best member's line is drawn thickest. Members
    without a final score are grey."""
    from matplotlib import cm, colormaps, colors
    from matplotlib.figure import Figure

    finite = [v for v in scores.values() if is_finite_number(v)]
    norm = colors.Normalize(min(finite), max(finite)) if finite else colors.Normalize(0, 1)
    cmap = colormaps["viridis" if higher_is_better(objective) else "viridis_r"]  # bright = better
    best = (max if higher_is_better(objective) else min)(
        (m for m in scores if is_finite_number(scores[m])), key=lambda m: scores[m], default=None)  # type: ignore[arg-type]
    fig = Figure(figsize=(4.2 * len(SCHEDULED), 3.6), dpi=100)
    axes = fig.subplots(1, len(SCHEDULED))
    for ax, key in zip(axes, SCHEDULED):
        for member, history in sorted(histories.items(), key=lambda kv: kv[0] == best):
            score = scores.get(member)
            colour = cmap(norm(score)) if is_finite_number(score) else (0.6, 0.6, 0.6, 1.0)
            xs = [step for step, _ in history.steps] + [total]
            ys = [values[key] for _, values in history.steps]
            ax.step(xs, ys + ys[-1:], where="post", color=colour, linewidth=2.5 if member == best else 1.0,
                    label=f"member {member} (best)" if member == best else None)
            copied = {c["step"] for c in history.copies}
            ax.plot([s for s, _ in history.steps if s in copied], [v[key] for s, v in history.steps if s in copied],
                    "o", color=colour, markersize=4)
        if key.startswith("lr"):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    if best is not None:
        axes[0].legend(fontsize=8, loc="upper right")
    fig.subplots_adjust(left=0.05, right=0.9, bottom=0.14, top=0.88, wspace=0.4)
    bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), fraction=0.02)
    bar.set_label(f"final {objective}")
    fig.suptitle(f"{title}: hyperparameters by step (dots: copied a better member)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
