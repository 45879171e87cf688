"""One run beside the stack: its folder, summary, log, schedule, stop reason and side work.

A ``Member`` is what a run is apart from its tensors: it sets itself up from its config
exactly as a solo run starts (seeded initial weights, the run folder claimed or its
checkpoint restored), hands its state to the stack (gansweep.engine), and on its own
schedule writes log lines, sample pictures, evaluations and checkpoints in the solo
run-folder format, reading its rows of the stack when due. A solo run is one member.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from gansweep import noise
from gansweep.config import SCHEDULED, LrDecay, TrainConfig, to_yaml
from gansweep.curves import save_run_curves
from gansweep.data import Dataset, load_dataset
from gansweep.devices import device_label
from gansweep.engine import STATS, Stack
from gansweep.errors import CheckpointError, DataError, DivergedError
from gansweep.events import EventWriter, require_tensorboard
from gansweep.health import not_working
from gansweep.lineage import PBT_LINEAGE
from gansweep.models import build_models, conditioning, memory_layout
from gansweep.progress import ProgressDisplay
from gansweep.rundir import RunFolder, RunSummary, Status, StopKind, StopReason, SweepMembership, now_iso
from gansweep.samples import save_image_grid, save_scatter
from gansweep.scores import default_objective, is_better, is_finite_number
from gansweep.scoring import build_evaluator, resolve_auto

GRID_SAMPLES = 64  # images in a sample grid
GRID_COLUMNS = 8  # a conditional G's samples per class (grid row)
SCATTER_SAMPLES = 2_000  # points in a 2D scatter
DIVERGED_DETAIL = "non-finite loss or gradient (try a lower lr)"  # a diverged run's stop reason
# curves.png is redrawn at an evaluation at most this often, and when the run ends: one
# drawing takes 0.3-0.5 s on a small CPU, which a population of 16 would pay 16 times.
CURVES_EVERY_S = 60.0
CHECKPOINT_FORMAT = 2  # stacked engine: Adam moments as flat rows, keyed noise (no generator state)


@dataclass
class Evaluation:
    """A member's result of an evaluation pass: its scores, or what stopped them."""

    scores: dict[str, Any] | BaseException
    seconds: float  # its share of the pass: the pass's time over the members it scored


class StopTraining(Exception):
    """Raised by a hook to end the run early; the reason's kind sets the run's status."""

    def __init__(self, reason: StopReason):
        super().__init__(str(reason))
        self.reason = reason


@dataclass
class TrainHooks:
    """Callbacks a caller may pass; each may raise StopTraining."""

    on_log: Optional[Callable[[dict[str, Any]], None]] = None  # every metrics.jsonl train row
    on_eval: Optional[Callable[[int, int, dict[str, Any]], None]] = None  # (step, total_steps, scores)


@dataclass
class MemberSpec:
    """One run to train, alone or in a population."""

    cfg: TrainConfig
    run_dir: Path
    overrides: list[str] = field(default_factory=list)
    hooks: TrainHooks = field(default_factory=TrainHooks)
    sweep: Optional[SweepMembership] = None
    resume: bool = False
    resume_at: Optional[int] = None  # resume from the checkpoint of this step, as a PBT run does (see _open)
    continue_with: Optional[str] = None  # how to continue it once interrupted (default: gansweep train resume=)
    tag: Any = None  # the caller's handle, e.g. its Optuna trial


# Small pure helpers ------------------------------------------------------------------


def plan_steps(cfg: TrainConfig, n_train: int) -> int:
    """Generator updates in the budget: steps, else images, else epochs (in images)."""
    if cfg.steps is not None:
        return cfg.steps
    images = cfg.images if cfg.images is not None else math.ceil(cfg.epochs * n_train)
    batch = min(cfg.batch_size, n_train)  # a batch never holds more than the whole set
    return max(1, math.ceil(images / (batch * cfg.loss.n_critic)))


def every(setting: int, total: int, times: int) -> int:
    """An interval in steps: the setting, or `times` evenly spaced events when it is 0."""
    return setting if setting > 0 else max(1, math.ceil(total / times))


def lr_factor(step: int, total: int, decay: LrDecay) -> float:
    """Learning-rate multiplier after `step` of `total` steps."""
    progress = min(1.0, step / max(1, total))
    if decay is LrDecay.linear:
        return 1.0 - progress
    if decay is LrDecay.cosine:
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def config_sha256(config_yaml: str) -> str:
    """The fingerprint of a run's config that its checkpoints carry."""
    return hashlib.sha256(config_yaml.encode()).hexdigest()


def flat_hparams(cfg: TrainConfig) -> dict[str, Any]:
    """The hyperparameters every summary carries, flat."""
    return {
        "model": cfg.model.name, "data": cfg.data.name, "loss": cfg.loss.name, "lr": cfg.lr, "lr_g": cfg.lr_g,
        "lr_d": cfg.lr_d, "batch_size": cfg.batch_size, "beta1": cfg.beta1, "beta2": cfg.beta2, "seed": cfg.seed,
    }


@dataclass
class Schedule:
    """When the periodic work happens, in steps."""

    total: int
    log_every: int
    eval_every: int
    sample_every: int
    ckpt_every: int

    @staticmethod
    def of(cfg: TrainConfig, total: int) -> "Schedule":
        return Schedule(total, min(cfg.log_every, total), every(cfg.eval_every, total, 4), every(cfg.sample_every, total, 10),
                        every(cfg.checkpoint_every, total, 10))

    def due(self, step: int, every_steps: int) -> bool:
        return step % every_steps == 0 or step == self.total


@dataclass
class Progress:
    """What the member counts; saved in every checkpoint."""

    step: int = 0
    images_seen: int = 0
    wall_before: float = 0.0  # training seconds of earlier sessions (resume)
    best_fid: Optional[float] = None
    best_fid_step: Optional[int] = None
    best_value: Optional[float] = None  # of the run's objective: best.pt's
    best_step: Optional[int] = None
    best_works: bool = True  # best.pt's evaluation showed a working generator (health.not_working)
    window: Optional[np.ndarray] = None  # (steps, len(STATS)) since the last log line
    window_start: int = 0


# The member ------------------------------------------------------------------------


class Member:
    """One run: set up as a solo run starts, then fed its rows of the stack when due."""

    def __init__(self, spec: MemberSpec, device: torch.device, quiet: bool, threads: Optional[int] = None):
        self.spec, self.device, self.threads = spec, device, threads
        cfg = spec.cfg
        if cfg.tensorboard:
            require_tensorboard()  # one line before any work, not a half-made folder
        torch.manual_seed(cfg.seed)  # the initial weights
        self.cfg = cfg = resolve_auto(cfg)  # config.yaml names the feature net, so resume and eval use the same one
        self.data: Dataset = load_dataset(cfg.data, cfg.seed)
        if cfg.model.conditional and self.data.labels is None:
            raise DataError(f"model.conditional=true: data={self.data.name} was loaded without labels; use a labelled data set")
        self.layout = memory_layout(tuple(self.data.samples.shape[1:]))
        self.total = plan_steps(cfg, len(self.data))
        self.when = Schedule.of(cfg, self.total)
        shape = tuple(self.data.samples.shape[1:])
        self.g, self.d = (m.to(device, memory_format=self.layout) for m in build_models(cfg, shape))
        self.sampler: nn.Module = build_models(cfg, shape)[0].to(device, memory_format=self.layout)  # draws and is scored
        self.key = noise.seed_key(cfg.seed)
        self.fixed_y = torch.arange(cfg.data.num_classes, device=device).repeat_interleave(GRID_COLUMNS) if cfg.model.conditional else None
        n_fixed = SCATTER_SAMPLES if self.data.is_points else (GRID_SAMPLES if self.fixed_y is None else len(self.fixed_y))
        self.fixed_z = torch.randn(n_fixed, cfg.model.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 1)).to(device)
        self.evaluator = build_evaluator(cfg, self.data, device) if cfg.eval.enabled else None
        sweep = spec.sweep
        self.objective = sweep.objectives[0] if sweep and sweep.objectives else default_objective(self.data.is_points)[0]
        self.run = RunFolder(spec.run_dir)
        self.reason: Optional[StopReason] = None
        self.ended = False
        self.restored: Optional[dict[str, Any]] = None
        self.at, self.summary, self.config_sha = self._open()
        self.changes = {change.step for change in cfg.schedule}
        self.hparams = self.hparams_at(self.at.step)  # lr_g, lr_d, beta1, beta2 now
        self.joined = self.log_since = time.monotonic()
        # When curves.png was last drawn: the first interim picture waits a full interval, so a
        # short run (a population's 16 members, each a few seconds) draws it once, at the end.
        self.curves_at = self.joined
        self.progress = ProgressDisplay(self.total, self.at.step, f"{cfg.model.name} on {self.data.name}", quiet=quiet)
        if None not in (self.threads_before, self.threads) and self.threads_before != self.threads:
            # threads=0 is a fair share of the cores, which other trainings may have changed since.
            self.progress.note(f"note: this run trained with {self.threads_before} CPU thread(s) and continues with "
                               f"{self.threads}: its losses will differ in the last bits from a run that never stopped")

    # Opening and closing the folder.

    def _open(self) -> tuple[Progress, RunSummary, str]:
        """Claim a fresh folder, or read the last checkpoint of the one it resumes; mark the run running."""
        spec, cfg, run = self.spec, self.cfg, self.run
        config_yaml = run.config_path.read_text() if spec.resume else to_yaml(cfg)
        sha = config_sha256(config_yaml)
        if spec.resume and spec.resume_at is None and (run.path / PBT_LINEAGE).exists():
            raise CheckpointError(f"{run.path}: a member of population-based training, whose weights and hyperparameters changed "
                                  f"mid-run as {PBT_LINEAGE} records; replay its history from scratch with the PBT folder's best.yaml")
        if spec.resume:
            # config.yaml as gansweep wrote it reads back to the same text; a cut or hand-edited one does not
            as_written = config_yaml == to_yaml(cfg)
            # A PBT member continues from the round its population recorded last, which may be
            # previous.pt: the kill came while the members wrote the next round's checkpoints.
            ck = run.load_checkpoint() if spec.resume_at is None else run.load_checkpoint_of_step(spec.resume_at)
            self.restored = _check(ck, sha, run.last_checkpoint, run.config_path, as_written)
            at = Progress(step=self.restored["step"], images_seen=self.restored["images_seen"], wall_before=self.restored["wall_time_s"],
                          best_fid=self.restored["best"]["best_fid"], best_fid_step=self.restored["best"]["best_fid_step"],
                          best_value=self.restored["best"]["best_value"], best_step=self.restored["best"]["best_step"],
                          best_works=self.restored["best"].get("best_works", True),
                          window=None if self.restored["window"] is None else self.restored["window"].numpy(),
                          window_start=self.restored["window_start"])
            run.truncate_metrics(after_step=at.step)
            summary = run.read_summary() or self._new_summary()
        else:
            at = Progress()
            run.create(config_yaml, spec.overrides)
            summary = self._new_summary()
        summary.status, summary.stop_reason, summary.finished_at = Status.running, None, None
        self.threads_before = summary.threads if spec.resume else None
        summary.threads = self.threads  # the CPU threads of this session: with seed and device, what fixes its bits
        run.write_summary(summary)
        if cfg.tensorboard:
            run.events = EventWriter(run.path, purge_step=at.step if spec.resume else None)
        return at, summary, sha

    def _new_summary(self) -> RunSummary:
        return RunSummary(status=Status.running, run_dir=str(self.run.path), total_steps=self.total, device=device_label(self.device),
                          torch_version=torch.__version__, sweep=self.spec.sweep, **flat_hparams(self.cfg))

    def wall(self) -> float:
        return self.at.wall_before + time.monotonic() - self.joined

    def finish(self, reason: Optional[StopReason]) -> None:
        """Record how the run ended (reason None: it completed its budget)."""
        self.reason, self.ended = reason, True
        self.summary.stop(reason)
        self.summary.finished_at = now_iso() if self.summary.status.final else None
        self._record_progress()
        self.run.write_summary(self.summary)
        if self.evaluator is not None:
            self.draw_curves()
        self.run.close_events()
        self.progress.close()

    def _record_progress(self) -> None:
        s, at, wall = self.summary, self.at, self.wall()
        s.steps, s.images_seen, s.epochs = at.step, at.images_seen, at.images_seen / len(self.data)
        s.wall_time_s, s.images_per_s = wall, (at.images_seen / wall if wall > 0 else None)

    # What the step needs of the member.

    def knobs(self) -> dict[str, float]:
        st = self.cfg.stabilize
        return {**self.hparams, "clip_g": st.clip_g, "clip_d": st.clip_d, "ema": st.ema, "real_label": st.real_label}

    def hparams_at(self, step: int) -> dict[str, float]:
        """lr_g, lr_d (before decay), beta1 and beta2 at `step`: the config's, changed by its schedule."""
        cfg = self.cfg
        values = {key: float(getattr(cfg, key)) for key in SCHEDULED}
        for change in cfg.schedule:
            if change.step > step:
                break
            values.update({key: float(getattr(change, key)) for key in SCHEDULED if getattr(change, key) is not None})
        return values

    def host_lr(self) -> tuple[float, float]:
        """This step's lr_g and lr_d (with decay), as numbers (the CPU's per-member Adam)."""
        f = lr_factor(self.at.step, self.total, self.cfg.lr_decay)
        return self.hparams["lr_g"] * f, self.hparams["lr_d"] * f

    def load_into(self, stack: Stack, k: int) -> None:
        """A resumed member's checkpoint into row k of a stack that holds its fresh state."""
        ck = self.restored
        if ck is None:
            return
        try:
            stack.g.load_member(k, ck["g"])
            stack.d.load_member(k, ck["d"])
            stack.adam_g.load_member(k, ck["adam_g"])
            stack.adam_d.load_member(k, ck["adam_d"])
            stack.load_ema(k, ck.get("g_ema", ck["g"]))
            stack.ema_n[k, 0] = ck.get("ema_n", 0)
            stack.batches.load_member(k, ck["batches"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{self.run.last_checkpoint}: does not fit the model of config.yaml ({type(exc).__name__}); start anew") from None
        self.restored = None

    # The step's results.

    def after_step(self, images: int) -> bool:
        """Count the step; True when the hyperparameters change from the next step on (a schedule's step)."""
        self.at.step += 1
        self.at.images_seen += images
        if self.at.step not in self.changes:
            return False
        self.hparams = self.hparams_at(self.at.step)
        return True

    def log_due(self) -> bool:
        return self.when.due(self.at.step, self.when.log_every)

    def write_log_line(self, window: np.ndarray) -> dict[str, Any]:
        """Append the train row of the steps since the last line (`window`, on the CPU), keep
        it as the run's last, start the next window; raises DivergedError on a non-finite one."""
        at, cfg = self.at, self.cfg
        mean = window[:, :4].mean(axis=0).tolist()
        norms = window[-1, 4:].tolist()
        now = time.monotonic()
        f = lr_factor(at.step, self.total, cfg.lr_decay)
        lr_g, lr_d = self.hparams["lr_g"], self.hparams["lr_d"]
        row = {
            "kind": "train", "step": at.step, "epoch": at.images_seen / len(self.data), "images_seen": at.images_seen,
            **dict(zip(STATS[:4], mean)), "grad_norm_d": norms[0], "grad_norm_g": norms[1],
            "lr": (lr_g if lr_g == lr_d else cfg.lr) * f, "lr_g": lr_g * f, "lr_d": lr_d * f,
            "images_per_s": len(window) * self.batch_size * cfg.loss.n_critic / max(now - self.log_since, 1e-9),
            "time_s": self.wall(),
        }
        self.log_since = now
        self.run.append_metrics([row])
        self.summary.last_train = {k: row[k] for k in STATS}
        raise_if_nonfinite(window, at.window_start)
        at.window, at.window_start = None, at.step
        self.progress.update(at.step, row)
        if self.spec.hooks.on_log:
            self.spec.hooks.on_log(row)
        return row

    @property
    def batch_size(self) -> int:
        return min(self.cfg.batch_size, len(self.data))

    def side_work_due(self) -> bool:
        w, step = self.when, self.at.step
        return w.due(step, w.sample_every) or w.due(step, w.ckpt_every) or self.eval_due()

    def eval_due(self) -> bool:
        return self.evaluator is not None and self.when.due(self.at.step, self.when.eval_every)

    def eval_samples(self) -> Optional[int]:
        """The samples an evaluation now scores: interim ones score fewer images, the last one the full count (None)."""
        return self.cfg.eval.interim_samples if self.at.step < self.total and not self.data.is_points else None

    def side_work(self, stack: Stack, k: int, window: Optional[np.ndarray], evaluation: Optional[Evaluation] = None) -> None:
        """Samples, the evaluation's record and a checkpoint, each when due at this step; the
        population scores every member due an evaluation in one pass and hands its result
        here. Raises DivergedError rather than keep a diverged model, what stopped the
        evaluation, and whatever hooks.on_eval raises."""
        when, step = self.when, self.at.step
        if window is not None:
            raise_if_nonfinite(window, self.at.window_start)
        self.sampler.load_state_dict(stack.ema_state(k) if self.cfg.stabilize.ema > 0 else stack.g.member_state(k))
        if when.due(step, when.sample_every):
            self.save_samples()
        if evaluation is not None:
            scores = self.record_evaluation(evaluation)
            self.record_scores(scores)
            if time.monotonic() - self.curves_at >= CURVES_EVERY_S:
                self.draw_curves()
            if self.spec.hooks.on_eval:
                self.spec.hooks.on_eval(step, self.total, scores)
        if when.due(step, when.ckpt_every):
            self.save_checkpoint(stack, k, window)
            self._record_progress()
            self.run.write_summary(self.summary)

    @torch.no_grad()
    def save_samples(self) -> None:
        """The sampler's samples from the fixed noise as a grid (a conditional G: one row per class) or scatter."""
        g, step = self.sampler, self.at.step
        g.eval()
        try:
            out = g(self.fixed_z, *conditioning(self.fixed_y))
        finally:
            g.train()
        path = self.run.sample_path(step)
        if self.data.is_points:
            save_scatter(out, path, self.data.centers, f"{self.data.name}, step {step}")
        else:
            save_image_grid(out, path, GRID_COLUMNS if self.fixed_y is not None else None)
        self.run.sample_written(step)

    def record_evaluation(self, evaluation: Evaluation) -> dict[str, Any]:
        """Log an evaluation's eval row and show it; raises what stopped it instead."""
        if isinstance(evaluation.scores, BaseException):
            raise evaluation.scores
        scores, at = evaluation.scores, self.at
        row = {"kind": "eval", "step": at.step, "epoch": at.images_seen / len(self.data), "images_seen": at.images_seen,
               "eval_time_s": evaluation.seconds}
        self.run.append_metrics([{**row, **scores}])
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()
                          if isinstance(v, (int, float)) and not k.startswith("n_"))
        self.progress.note(f"eval @ step {at.step}: {shown} ({evaluation.seconds:.1f}s)")
        return scores

    def record_scores(self, scores: dict[str, Any]) -> None:
        """Put an evaluation in the summary; keep G as best.pt when it is the best yet by the
        run's objective (a sweep's, else FID for images and mixture_tv for 2D), in its direction.
        An evaluation that shows a working generator outranks every one that does not, as in
        the report: an early noise generator's FID can beat half-formed digits, and a spray
        over a 2D square can touch every mode."""
        at, fid, name = self.at, scores.get("fid"), self.objective
        if fid is not None and (at.best_fid is None or fid < at.best_fid):
            at.best_fid, at.best_fid_step = fid, at.step
        value, works = scores.get(name), not_working(scores) is None
        if is_finite_number(value) and (at.best_value is None or (works and not at.best_works)
                                        or (works == at.best_works and is_better(value, at.best_value, name))):
            at.best_value, at.best_step, at.best_works = value, at.step, works
            self.summary.best_of = {"score": name, "value": value, "step": at.step, "working": works}
            self.run.save_checkpoint({"g": self.sampler.state_dict(), "step": at.step, "score": name, name: value}, self.run.best_checkpoint)
        self.summary.set_scores(scores)
        self.summary.best_fid, self.summary.best_fid_step = at.best_fid, at.best_fid_step
        self.summary.evaluated_step = at.step
        self.run.write_summary(self.summary)

    def draw_curves(self) -> None:
        """Redraw curves.png; a picture that cannot be drawn never stops the training."""
        self.curves_at = time.monotonic()
        try:
            save_run_curves(self.run.read_metrics(), self.run.curves_path, self.objective,
                            f"{self.cfg.model.name} on {self.data.name}, {self.run.path.name}")
        except Exception as exc:  # matplotlib, a damaged metrics line, a full disk
            self.progress.note(f"note: {self.run.curves_path.name} not drawn ({type(exc).__name__}: {exc})".splitlines()[0])

    def save_checkpoint(self, stack: Stack, k: int, window: Optional[np.ndarray]) -> None:
        """Everything a resume needs to continue bit for bit, and the config it belongs to."""
        at = self.at
        state = {
            "format": CHECKPOINT_FORMAT, "config_sha256": self.config_sha,
            "g": stack.g.member_state(k), "d": stack.d.member_state(k),
            "adam_g": stack.adam_g.member(k), "adam_d": stack.adam_d.member(k),
            "batches": stack.batches.member(k), "step": at.step, "images_seen": at.images_seen, "wall_time_s": self.wall(),
            "best": {"best_fid": at.best_fid, "best_fid_step": at.best_fid_step, "best_value": at.best_value, "best_step": at.best_step,
                     "best_works": at.best_works},
            "window": None if window is None else torch.from_numpy(window), "window_start": at.window_start,
        }
        if self.cfg.stabilize.ema > 0:
            state |= {"g_ema": stack.ema_state(k), "ema_n": int(stack.ema_n[k, 0])}
        self.run.save_checkpoint(state)


def _check(ckpt: dict[str, Any], config_sha: str, path: Path, config_path: Path, as_written: bool) -> dict[str, Any]:
    """A checkpoint this run can continue from, or CheckpointError: one written by an older
    engine, or for another config than the folder's config.yaml, which is then either cut
    short or edited, or another run's (the folder mixes two runs)."""
    if "config_sha256" not in ckpt or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: written by an older gansweep, whose training it cannot continue; "
                              "start the run anew with overwrite=true")
    if ckpt["config_sha256"] != config_sha and not as_written:
        raise CheckpointError(f"{config_path}: cut short or edited since the run wrote it (the checkpoint is for the config "
                              "as written); put the original back, or start anew with overwrite=true")
    if ckpt["config_sha256"] != config_sha:
        raise CheckpointError(f"{path}: written by another config than this folder's config.yaml (the folder mixes two runs); "
                              "start anew with overwrite=true or in another folder")
    return ckpt


def raise_if_nonfinite(window: np.ndarray, window_start: int) -> None:
    """DivergedError naming the first step of the window whose losses or gradient norms are not finite."""
    finite = np.isfinite(window).all(axis=1)
    if not finite.all():
        bad = window_start + int(np.flatnonzero(~finite)[0]) + 1
        raise DivergedError(f"diverged: non-finite loss at step {bad} (try a lower lr)", step=bad)


def stop_reason_of(exc: BaseException, step: int, run_path: Path, continue_with: Optional[str] = None) -> StopReason:
    """How an exception out of a member's step or side work ends its run."""
    if isinstance(exc, DivergedError):
        return StopReason(StopKind.diverged, exc.step, DIVERGED_DETAIL)
    if isinstance(exc, StopTraining):
        return exc.reason
    if isinstance(exc, KeyboardInterrupt):
        return StopReason(StopKind.interrupted, step, f"continue with: {continue_with or f'gansweep train resume={run_path}'}")
    return StopReason(StopKind.failed, step, f"{type(exc).__name__}: {exc}".splitlines()[0])
