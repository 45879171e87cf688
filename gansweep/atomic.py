"""Atomic file writes: a temp file in the same folder, fsync, then os.replace.

A reader (or a process killed mid-write) sees the old file or the new one, never half
of one. Kept free of torch so that light commands (report) import it cheaply.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call write(fh) on a temp file beside `path`, then move it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give the mode open() would
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write (ENOSPC) names no file: name the one being written
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step."""
    atomic_write(path, lambda fh: fh.write(data))


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step."""
    write_bytes_atomic(path, text.encode())


def json_safe(value: Any) -> Any:
    """NaN/inf become null: they are not JSON, and a diverged run's last losses are exactly those."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace `path` with `obj` as indented JSON in one step."""
    write_text_atomic(path, json.dumps(json_safe(obj), indent=2) + "\n")
