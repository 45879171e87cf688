"""The run folder: its layout, its typed records and their readers and writers
(see docs/run-folder.md). Everything else reads and writes runs only through here.

Everything that matters is written atomically (gansweep.atomic), so a killed process
leaves either the previous version or the new one, never half a file. torch is
imported only where checkpoints are read or written, so readers stay light.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import io
import json
import os
import pickle
import shutil
import socket
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterable, Optional

import yaml

from gansweep.atomic import json_safe, write_bytes_atomic, write_json_atomic, write_text_atomic
from gansweep.errors import CheckpointError, RunFolderError
from gansweep.scores import SCORES

if TYPE_CHECKING:
    from gansweep.events import EventWriter

SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
OVERRIDES = "overrides.yaml"
# Made with O_EXCL when a run starts in a folder: two runs can never share one. The process
# writing the folder holds an flock on it, which the kernel drops when that process dies
# (even by kill -9), so a resume can tell a dead claim from a live one without trusting pids.
CLAIM = ".gansweep-run"
CLAIM_WAIT_S = 1.0  # how long a take-over waits out another process's momentary look at the claim
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
CURVES = "curves.png"  # losses, D's outputs and the objective, redrawn at every evaluation
# Folders inside a run that never hold other runs; not walking them keeps discovery fast.
INNER_DIRS = frozenset({SAMPLES, CHECKPOINTS, ".hydra", "__pycache__", ".git"})
# Claims this process made before its run starts in the folder (RunFolder.reserve), by path.
_RESERVED: dict[Path, IO[str]] = {}
# Enough bytes of metrics.jsonl to hold the last few dozen train lines (~300 bytes each).
TAIL_BYTES = 32 * 1024


def pid_alive(pid: int) -> bool:
    """True when a process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _try_lock(fh: IO[str]) -> Optional[bool]:
    """Take the exclusive flock of an open claim file without waiting: True when taken,
    False when another process holds it, None where the file system has no locks."""
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _claim_holder(fh: IO[str]) -> tuple[str, Optional[int]]:
    """(host, pid) written in an open claim file; '?' and None where it names none."""
    try:
        fh.seek(0)
        claim = json.loads(fh.read())
        return str(claim["host"]), int(claim["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return "?", None


def now_iso() -> str:
    """Current UTC time as ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


class Status(str, Enum):
    """A run's status, with what it means to a sweep and how it is shown.

    ``trial_state`` is the name of the Optuna TrialState a sweep trial with this status
    ends in (one mapping, read by the sweep, its live view, its outputs and the report);
    only COMPLETE trials carry objective values. ``final`` is the one definition of a
    finished run: its outcome will not change (interrupted and running runs continue).
    """

    running = "running"
    completed = "completed"
    diverged = "diverged"
    collapsed = "collapsed"
    overpowered = "overpowered"
    pruned = "pruned"
    interrupted = "interrupted"
    failed = "failed"

    @property
    def trial_state(self) -> str:
        return _STATUS_INFO[self][0]

    @property
    def final(self) -> bool:
        return _STATUS_INFO[self][1]

    @property
    def style(self) -> str:
        """rich style of the status in tables."""
        return _STATUS_INFO[self][2]

    @property
    def has_objective(self) -> bool:
        """The run's final scores are objective values (it ran its whole budget)."""
        return self.trial_state == "COMPLETE"


_STATUS_INFO = {  # status: (Optuna trial state, final, style)
    Status.running: ("RUNNING", False, "cyan"),
    Status.completed: ("COMPLETE", True, "green"),
    Status.diverged: ("PRUNED", True, "bold red"),
    Status.collapsed: ("PRUNED", True, "magenta"),
    Status.overpowered: ("PRUNED", True, "magenta"),
    Status.pruned: ("PRUNED", True, "dim"),
    Status.interrupted: ("FAIL", False, "yellow"),
    Status.failed: ("FAIL", True, "red"),
}


class StopKind(str, Enum):
    """Why a run ended before its budget; each kind implies the run's status."""

    diverged = "diverged"
    mode_collapse = "mode_collapse"
    d_overpowering = "d_overpowering"
    pruned = "pruned"
    interrupted = "interrupted"
    failed = "failed"

    @property
    def status(self) -> Status:
        return _STOP_STATUS[self]


_STOP_STATUS = {
    StopKind.diverged: Status.diverged,
    StopKind.mode_collapse: Status.collapsed,
    StopKind.d_overpowering: Status.overpowered,
    StopKind.pruned: Status.pruned,
    StopKind.interrupted: Status.interrupted,
    StopKind.failed: Status.failed,
}


@dataclass(frozen=True)
class StopReason:
    """A structured stop reason: what, at which step, and the details in words."""

    kind: StopKind
    step: Optional[int]
    detail: str = ""

    def __str__(self) -> str:
        where = f" at step {self.step}" if self.step is not None else ""
        return f"{self.kind.value.replace('_', ' ')}{where}" + (f": {self.detail}" if self.detail else "")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "step": self.step, "detail": self.detail}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "StopReason":
        return cls(StopKind(obj["kind"]), obj.get("step"), obj.get("detail") or "")


@dataclass
class SweepMembership:
    """What a sweep trial's summary says about its sweep."""

    name: str
    trial: int
    params: dict[str, Any] = field(default_factory=dict)
    objectives: list[str] = field(default_factory=list)
    retry_of: Optional[int] = None
    base_config: bool = False  # the sweep's starting point, never stopped as collapsed
    confirm_of: Optional[int] = None  # a confirmation run: retrains trial confirm_of with a new seed


@dataclass
class RunSummary:
    """summary.json: one run's state, hyperparameters, progress and scores."""

    status: Status
    run_dir: str
    model: str
    data: str
    loss: str
    lr: float
    lr_g: float
    lr_d: float
    batch_size: int
    beta1: float
    beta2: float
    seed: int
    total_steps: int
    device: str = "cpu"
    torch_version: str = ""
    threads: Optional[int] = None  # CPU threads, fixed for the session (None: a GPU run)
    stack_max: Optional[int] = None  # the most runs it stepped with in one stack, itself included (1: alone)
    stop_reason: Optional[StopReason] = None
    steps: int = 0
    images_seen: int = 0
    epochs: float = 0.0
    wall_time_s: float = 0.0
    images_per_s: Optional[float] = None
    started_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    finished_at: Optional[str] = None
    scores: dict[str, float] = field(default_factory=dict)
    """The last evaluation's scores, names from the score registry."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """How the scores were computed: n_fake, n_real, feature_net, feature_net_sha256, feature_domain."""
    best_fid: Optional[float] = None
    best_fid_step: Optional[int] = None
    last_train: dict[str, float] = field(default_factory=dict)
    """The last logged training values: loss_d, loss_g, d_real, d_fake, grad_norm_d, grad_norm_g."""
    sweep: Optional[SweepMembership] = None
    best_checkpoint_scores: Optional[dict[str, Any]] = None
    best_of: Optional[dict[str, Any]] = None
    """What best.pt was kept for: the run's objective ("score"), its "value" and "step"."""
    last_checkpoint_scores: Optional[dict[str, Any]] = None
    """`gansweep eval`'s scores of last.pt, beside the run's own (which it leaves as they are)."""
    evaluated_step: Optional[int] = None

    def set_scores(self, scores: dict[str, Any]) -> None:
        """Split an evaluator's output into registered scores and their provenance."""
        self.scores = {k: v for k, v in scores.items() if k in SCORES or k == "modes_total"}
        self.provenance = {k: v for k, v in scores.items() if k not in self.scores}

    def stop(self, reason: Optional[StopReason]) -> None:
        """Record how the run ended: completed without a reason, else the reason's status."""
        self.stop_reason = reason
        self.status = Status.completed if reason is None else reason.kind.status

    def to_json(self) -> dict[str, Any]:
        obj = dataclasses.asdict(self)
        obj["status"] = self.status.value
        obj["stop_reason"] = self.stop_reason.to_json() if self.stop_reason else None
        return obj

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "RunSummary":
        """Parse summary.json (also the flat layout of gansweep before 0.2); raises
        ValueError/KeyError/TypeError on a malformed one."""
        if "scores" not in obj:
            obj = _from_flat_layout(obj)
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in obj.items() if k in known}
        kwargs["status"] = Status(obj["status"])
        if obj.get("stop_reason") is not None:
            kwargs["stop_reason"] = StopReason.from_json(obj["stop_reason"])
        if obj.get("sweep") is not None:
            kwargs["sweep"] = SweepMembership(**obj["sweep"])
        return cls(**kwargs)


# The provenance keys and the training values of the flat layout.
_FLAT_PROVENANCE = ("n_fake", "n_real", "feature_net", "feature_net_sha256")
_FLAT_TRAIN = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
# What a flat summary's status says about why it stopped (its reason was prose).
_FLAT_STOP = {Status.diverged: StopKind.diverged, Status.collapsed: StopKind.mode_collapse, Status.pruned: StopKind.pruned,
              Status.interrupted: StopKind.interrupted, Status.failed: StopKind.failed}


def _from_flat_layout(obj: dict[str, Any]) -> dict[str, Any]:
    """A summary.json of the earlier flat layout (scores, provenance, training values and
    sweep keys at the top, the stop reason in words) in today's nested one."""
    new = {k: v for k, v in obj.items() if k not in ("scores", "sweep", "stop_reason")}
    new.setdefault("run_dir", "")
    new["scores"] = {k: obj[k] for k in (*SCORES, "modes_total") if obj.get(k) is not None}
    new["provenance"] = {k: obj[k] for k in _FLAT_PROVENANCE if k in obj}
    new["last_train"] = {k: obj[k] for k in _FLAT_TRAIN if k in obj}
    kind = _FLAT_STOP.get(Status(obj["status"]))
    if kind is not None:
        new["stop_reason"] = {"kind": kind.value, "step": obj.get("steps"), "detail": str(obj.get("stop_reason") or "")}
    if isinstance(obj.get("sweep"), str):
        new["sweep"] = {"name": obj["sweep"], "trial": int(obj.get("trial", 0)), "params": obj.get("params") or {},
                        "objectives": list(obj.get("objectives") or []), "retry_of": obj.get("retry_of")}
    return new


def parse_jsonl(text: str, source: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL text. A torn last line (a kill mid-write) is dropped; a damaged
    line before it is a RunFolderError, since it means the file was changed by hand."""
    lines = text.splitlines()
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
        except ValueError:
            if i == len(lines) - 1 and not text.endswith("\n"):
                break
            raise RunFolderError(f"{source}: line {i + 1} is not a JSON object; repair or delete that line") from None
        rows.append(row)
    return rows


class RunFolder:
    """Reads and writes one run's files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.events: Optional[EventWriter] = None  # TensorBoard mirror, opened by the trainer (tensorboard=true)
        self._claim: Optional[IO[str]] = None  # the claim file, held locked while this process writes the run

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
        return self.path / CHECKPOINTS / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / CHECKPOINTS / "best.pt"

    @property
    def curves_path(self) -> Path:
        return self.path / CURVES

    def sample_path(self, step: int) -> Path:
        """Where the sample grid (or scatter) of a step goes."""
        return self.path / SAMPLES / f"step_{step:07d}.png"

    def latest_sample(self) -> Optional[Path]:
        """The sample grid of the highest step, or None."""
        steps = [(int(p.stem[5:]), p) for p in (self.path / SAMPLES).glob("step_*.png") if p.stem[5:].isdigit()]
        return max(steps)[1] if steps else None

    def holds_run(self) -> bool:
        """True when a run has started in this folder: its claim, or an older run's summary."""
        return (self.path / CLAIM).exists() or self.summary_path.exists()

    def running_elsewhere(self) -> Optional[str]:
        """'host pid N' (as the claim names it) while another process holds this folder's
        claim, else None. Where the file system has no locks, the claim's pid is looked up
        on this host instead."""
        if self._claim is not None:
            return None
        try:
            fh = open(self.path / CLAIM)
        except OSError:
            return None
        with fh:
            if self._lock_claim(fh, wait_s=0):
                return None
            host, pid = _claim_holder(fh)
        return None if (host, pid) == (socket.gethostname(), os.getpid()) else f"{host} pid {pid}"

    def _lock_claim(self, fh: IO[str], wait_s: float) -> bool:
        """Take the claim's lock, waiting up to wait_s for another process's momentary look
        at it; False while its writer lives (by its pid, where there are no locks)."""
        deadline = time.monotonic() + wait_s
        while (held := _try_lock(fh)) is False and time.monotonic() < deadline:
            time.sleep(0.05)
        if held is None:
            host, pid = _claim_holder(fh)
            return not (host == socket.gethostname() and pid not in (None, os.getpid()) and pid_alive(pid))
        return held

    def _hold_claim(self, fh: IO[str]) -> None:
        """Keep the locked claim file open for this process, naming it as the writer."""
        # Rewritten in place: replacing the file would leave the lock on the old one.
        fh.seek(0)
        fh.truncate()
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "started_at": now_iso()}, fh)
        fh.flush()
        self._claim = fh

    def take_over(self) -> None:
        """Claim a stopped run's folder for this process before continuing it (resume).

        Raises RunFolderError while another process still writes the folder, so that two
        resumes, or a resume and a run started after a kill -9, never share it.
        """
        fh = open(self.path / CLAIM, "a+")  # made anew for a folder whose claim was lost
        if not self._lock_claim(fh, CLAIM_WAIT_S):
            host, pid = _claim_holder(fh)
            fh.close()
            raise RunFolderError(f"{self.path}: the run is still training ({host} pid {pid}); "
                                 "two processes must not write one folder")
        self._hold_claim(fh)

    def release(self) -> None:
        """Let go of this folder's claim (the run stopped writing it)."""
        if self._claim is not None:
            self._claim.close()
            self._claim = None

    def clear(self) -> None:
        """Delete this run's own files (overwrite=true); anything else in the folder stays."""
        for name in (CLAIM, SUMMARY, METRICS, CONFIG, OVERRIDES, CURVES):
            (self.path / name).unlink(missing_ok=True)
        for name in (SAMPLES, CHECKPOINTS, ".hydra"):
            shutil.rmtree(self.path / name, ignore_errors=True)

    def reserve(self) -> None:
        """Claim the folder for the run this process is about to start in it, before
        anything else (Hydra's .hydra/) is written there; create() then takes the claim
        over. Raises RunFolderError when another run holds it."""
        self._claim_new()
        assert self._claim is not None
        _RESERVED[self.path.resolve()] = self._claim
        self._claim = None

    def unreserve(self) -> None:
        """Give up a reserve() whose run never started (create() did not take it over),
        deleting the claim."""
        fh = _RESERVED.pop(self.path.resolve(), None)
        if fh is not None:
            (self.path / CLAIM).unlink(missing_ok=True)
            fh.close()

    def _claim_new(self) -> None:
        """Claim a folder no run holds (exclusive create); RunFolderError when one does."""
        self.path.mkdir(parents=True, exist_ok=True)
        taken = RunFolderError(
            f"{self.path}: already holds another run; continue it with gansweep train resume={self.path}, "
            "replace it with overwrite=true, or choose another hydra.run.dir"
        )
        if (self.path / SUMMARY).exists() or self.config_path.exists():
            raise taken
        try:
            fd = os.open(self.path / CLAIM, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            raise taken from None
        fh = os.fdopen(fd, "r+")
        self._lock_claim(fh, CLAIM_WAIT_S)  # made just now: only a momentary look can hold it
        self._hold_claim(fh)

    def create(self, config_yaml: str, overrides: Iterable[str]) -> None:
        """Claim the folder for a new run (or take over this process's reserve()) and
        store the config that produced it.

        Raises RunFolderError when another run already holds it, so that nothing of that
        run is overwritten, however close together the two started.
        """
        reserved = _RESERVED.pop(self.path.resolve(), None)
        if reserved is not None:
            self._claim = reserved
        else:
            self._claim_new()
        write_text_atomic(self.config_path, config_yaml)
        write_text_atomic(self.path / OVERRIDES, yaml.safe_dump(list(overrides)))
        write_text_atomic(self.metrics_path, "")

    def read_config(self) -> dict[str, Any]:
        """config.yaml as a mapping ({} when absent); RunFolderError when damaged."""
        if not self.config_path.is_file():
            return {}
        try:
            config = yaml.load(self.config_path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise RunFolderError(f"{self.config_path}: not valid YAML ({type(exc).__name__})") from None
        if not isinstance(config, dict):
            raise RunFolderError(f"{self.config_path}: not a YAML mapping")
        return config

    def read_summary(self) -> Optional[RunSummary]:
        """The summary, or None when there is none yet; RunFolderError when damaged."""
        if not self.summary_path.exists():
            return None
        text = self.summary_path.read_text(encoding="utf-8")
        try:
            return RunSummary.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            problem = "empty file" if not text.strip() else f"not valid JSON ({exc.msg} at line {exc.lineno})"
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problem = f"not a gansweep summary ({type(exc).__name__}: {exc})"
        raise RunFolderError(f"{self.summary_path}: {problem}; it is left as it is (a new run goes in another folder)")

    def write_summary(self, summary: RunSummary) -> RunSummary:
        """Write summary.json atomically (stamping updated_at) and return it."""
        summary.updated_at = now_iso()
        write_json_atomic(self.summary_path, summary.to_json())
        return summary

    def append_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows to metrics.jsonl (one JSON object per line), and to the TensorBoard
        events when the run writes them."""
        rows = list(rows)
        lines = "".join(json.dumps(json_safe(row)) + "\n" for row in rows)
        if lines:
            with open(self.metrics_path, "a") as fh:
                fh.write(lines)
        if self.events is not None:
            self.events.rows(rows)

    def sample_written(self, step: int) -> None:
        """The sample picture of `step` is on disk: mirror it to the TensorBoard events."""
        if self.events is not None:
            self.events.picture(self.sample_path(step), step)

    def close_events(self) -> None:
        """Flush and close the TensorBoard events, if any."""
        if self.events is not None:
            self.events.close()
            self.events = None

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every row of metrics.jsonl; a torn last line is ignored, any other damage raised."""
        if not self.metrics_path.exists():
            return []
        return parse_jsonl(self.metrics_path.read_text(encoding="utf-8"), self.metrics_path)

    def read_train_tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` train rows of metrics.jsonl (oldest first), reading only its end."""
        try:
            with open(self.metrics_path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - TAIL_BYTES))
                chunk = f.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        if size > TAIL_BYTES:
            chunk = chunk.split("\n", 1)[-1]  # the chunk starts inside a line
        # Parse only as many of the last lines as it takes (eval rows sit between train rows):
        # the report reads the tail of every run, and parsing is most of its load time.
        lines = chunk.splitlines(keepends=True)
        take = 2 * n
        while True:
            try:
                rows = [r for r in parse_jsonl("".join(lines[-take:]), self.metrics_path) if r.get("kind") == "train"]
            except RunFolderError:  # its line number counts from the window, not the file
                raise RunFolderError(f"{self.metrics_path}: a line near its end is not a JSON object; repair or delete it") from None
            if len(rows) >= n or take >= len(lines):
                return rows[len(rows) - min(n, len(rows)):]
            take *= 2

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows logged after `after_step`, so a resumed run logs them again once."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    @property
    def previous_checkpoint(self) -> Path:
        """The last.pt before the current one, kept in case the current one is damaged."""
        return self.path / CHECKPOINTS / "previous.pt"

    def save_checkpoint(self, state: dict[str, Any], path: Path | None = None) -> None:
        """torch.save `state` atomically (last.pt unless a path is given); the last.pt it
        replaces stays as previous.pt until the new one is complete."""
        import torch

        path = path or self.last_checkpoint
        # Serialized in memory first: on a full disk torch's zip writer fails with a bare
        # RuntimeError, a plain write with the OSError (ENOSPC) that says what happened.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        if path == self.last_checkpoint and path.exists():
            keep = path.with_name(".previous.pt.tmp")
            keep.unlink(missing_ok=True)
            os.link(path, keep)  # a second name, no copy: costs no space on a full disk
            os.replace(keep, self.previous_checkpoint)
        write_bytes_atomic(path, buffer.getvalue())

    def load_checkpoint(self, path: Path | None = None) -> dict[str, Any]:
        """Load a checkpoint onto the CPU (raises CheckpointError when missing or damaged).
        Without a path: last.pt, or previous.pt where last.pt is damaged (the run then
        continues from the step before, and logs the steps after it again)."""
        if path is not None or not self.previous_checkpoint.exists():
            return _load_checkpoint(path or self.last_checkpoint)
        try:
            return _load_checkpoint(self.last_checkpoint)
        except CheckpointError as exc:
            if not str(exc).startswith(f"{self.last_checkpoint}: damaged"):
                raise
            return _load_checkpoint(self.previous_checkpoint)

    def load_checkpoint_of_step(self, step: int) -> dict[str, Any]:
        """The checkpoint of `step`: last.pt, else previous.pt (the run wrote one more
        since), which then becomes last.pt: the later one is of steps the run trains again,
        and the next checkpoint must leave this one as previous.pt. CheckpointError when
        neither holds that step."""
        found = []
        for path in (self.last_checkpoint, self.previous_checkpoint):
            try:
                ckpt = _load_checkpoint(path)
            except CheckpointError:
                found.append("damaged" if path.exists() else "none")
                continue
            if ckpt.get("step") == step:
                if path == self.previous_checkpoint:
                    os.replace(path, self.last_checkpoint)
                return ckpt
            found.append(f"step {ckpt.get('step')}")
        raise CheckpointError(f"{self.path}: no checkpoint of step {step} to continue from (last.pt: {found[0]}; previous.pt: {found[1]})")


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint; the run stopped before its first one, start it anew")
    try:
        # Tensors and plain values only: a checkpoint from a shared folder cannot run code.
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" in str(exc).lower():  # a class outside torch's allowlist, not damage
            raise CheckpointError(f"{path}: refused: it holds code (more than tensors and plain values); "
                                  "use checkpoints written by gansweep") from None
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}); start the run anew") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}); start the run anew") from None


def find_run_dirs(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself included) holding a summary.json; runs do not nest."""
    found: list[Path] = []
    for current, dirs, files in os.walk(root):
        if SUMMARY in files:
            found.append(Path(current))
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if d not in INNER_DIRS)
    return found
