"""The run folder: the one place that knows its layout (see docs/run-folder.md).

Everything that matters is written atomically (gansweep.atomic), so a killed process
leaves either the previous version or the new one, never half a file. torch is
imported only where checkpoints are read or written, so readers stay light.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterable

import yaml

from gansweep.atomic import (
    atomic_write,
    json_safe,
    write_json_atomic,
    write_text_atomic,
)
from gansweep.errors import CheckpointError

SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
OVERRIDES = "overrides.yaml"


def now_iso() -> str:
    """Current UTC time as ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


class RunFolder:
    """Reads and writes one run's files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def last_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    def sample_path(self, step: int) -> Path:
        """Where the sample grid (or scatter) of a step goes."""
        return self.path / "samples" / f"step_{step:07d}.png"

    def create(self, config_yaml: str, overrides: Iterable[str]) -> None:
        """Make the folder and store the config that produced it."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.summary_path.unlink(missing_ok=True)  # a fresh run: no keys left from an earlier run here
        write_text_atomic(self.config_path, config_yaml)
        write_text_atomic(self.path / OVERRIDES, yaml.safe_dump(list(overrides)))

    def read_summary(self) -> dict[str, Any]:
        """The summary, or {} when there is none yet."""
        if not self.summary_path.exists():
            return {}
        try:
            return json.loads(self.summary_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{self.summary_path}: unreadable ({exc}); delete it to start the summary anew") from None

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into summary.json (atomically) and return the result."""
        summary = self.read_summary()
        summary.update(fields)
        summary["updated_at"] = now_iso()
        write_json_atomic(self.summary_path, summary)
        return summary

    def append_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows to metrics.jsonl (one JSON object per line)."""
        lines = "".join(json.dumps(json_safe(row)) + "\n" for row in rows)
        if lines:
            with open(self.metrics_path, "a") as fh:
                fh.write(lines)

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete lines of metrics.jsonl; a torn last line (kill -9) is ignored."""
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate_metrics(self, after_step: int) -> None:
        """Drop lines logged after `after_step`, so a resumed run logs them again once."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    def save_checkpoint(self, state: dict[str, Any], path: Path | None = None) -> None:
        """torch.save `state` atomically (last.pt unless a path is given)."""
        import torch

        atomic_write(path or self.last_checkpoint, lambda fh: torch.save(state, fh))

    def load_checkpoint(self, path: Path | None = None) -> dict[str, Any]:
        """Load a checkpoint onto the CPU (raises CheckpointError when missing or damaged)."""
        import torch

        path = path or self.last_checkpoint
        if not path.exists():
            raise CheckpointError(f"{path}: no checkpoint; the run stopped before its first one, start it anew")
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}); start the run anew") from None
