"""The training loop: one GAN run from a TrainConfig into a run folder.

``train`` reads top to bottom: set up data, models and optimizers, restore them from
a checkpoint when resuming, then one loop whose body updates D, updates G and hands
the periodic work (logging, samples, evaluation, checkpoints) to small helpers, and
finally records how the run ended. Callers (the CLI, the sweep) pass hooks that may
stop the run early by raising ``StopTraining``.
"""

from __future__ import annotations

import hashlib
import math
import signal
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gansweep.config import Device, LrDecay, TrainConfig, to_yaml
from gansweep.data import Dataset, load_dataset
from gansweep.errors import CheckpointError, ConfigError, DataError, DivergedError
from gansweep.events import EventWriter, require_tensorboard
from gansweep.losses import LOSSES, GanLoss, gradient_penalty
from gansweep.models import build_models, conditioning, memory_layout
from gansweep.progress import ProgressDisplay
from gansweep.rundir import RunFolder, RunSummary, Status, StopKind, StopReason, SweepMembership, now_iso
from gansweep.curves import save_run_curves
from gansweep.samples import save_image_grid, save_scatter
from gansweep.scores import default_objective
from gansweep.scoring import build_evaluator, resolve_auto, score_generator
from gansweep.threads import ThreadShare, rebalance, set_threads

GRID_SAMPLES = 64  # images in a sample grid
GRID_COLUMNS = 8  # a conditional G's samples per class (grid row)
SCATTER_SAMPLES = 2_000  # points in a 2D scatter


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
class TrainResult:
    run_dir: Path
    summary: RunSummary

    @property
    def status(self) -> Status:
        return self.summary.status


# Small pure helpers ------------------------------------------------------------------


def pick_device(choice: Device) -> torch.device:
    """auto -> CUDA when present, else CPU; cuda without CUDA is a config error."""
    if choice is Device.cuda and not torch.cuda.is_available():
        raise ConfigError("device=cuda: no CUDA device here; use device=auto or device=cpu")
    if choice is Device.cpu or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def plan_steps(cfg: TrainConfig, n_train: int) -> int:
    """Generator updates in the budget: steps, else images, else epochs (in images)."""
    if cfg.steps is not None:
        return cfg.steps
    images = cfg.images if cfg.images is not None else math.ceil(cfg.epochs * n_train)
    batch = min(cfg.batch_size, n_train)  # Batches never draws more than the whole set
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


class Batches:
    """Shuffled minibatches of a device-resident tensor (and its labels, for a conditional
    GAN), epoch by epoch."""

    def __init__(self, samples: torch.Tensor, batch_size: int, generator: torch.Generator, labels: Optional[torch.Tensor] = None):
        self.samples = samples
        self.labels = labels
        self.batch_size = min(batch_size, len(samples))
        self.generator = generator
        self.perm = torch.randperm(len(samples), generator=generator, device=generator.device)
        self.pos = 0

    def next(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The next (samples, labels); labels is None unless the batches carry them."""
        if self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(len(self.samples), generator=self.generator, device=self.generator.device)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.samples[idx], (None if self.labels is None else self.labels[idx])

    def state(self) -> dict[str, Any]:
        return {"perm": self.perm.cpu(), "pos": self.pos, "rng": self.generator.get_state()}

    def load(self, state: dict[str, Any]) -> None:
        self.perm = state["perm"].to(self.samples.device)
        self.pos = state["pos"]
        self.generator.set_state(state["rng"])


def instance_noise_std(step: int, total: int, start: float) -> float:
    """Instance noise (Sønderby et al. 2016): `start` at step 0, linearly down to 0 at the end."""
    return start * max(0.0, 1.0 - step / max(1, total))


def add_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    """x plus N(0, std^2) noise; x itself (and no random draw) when std is 0."""
    return x + std * torch.randn_like(x) if std > 0 else x


def clip_gradients(module: nn.Module, max_norm: float) -> None:
    """Scale the module's gradients down to a total L2 norm of max_norm (0: leave them)."""
    if max_norm > 0:
        nn.utils.clip_grad_norm_(module.parameters(), max_norm)


def grad_norm(module: nn.Module) -> torch.Tensor:
    """Total L2 norm of a module's gradients (stays on the device)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


@contextmanager
def stop_on_signal() -> Iterator[list[int]]:
    """Turn the first SIGINT/SIGTERM into a flag the loop checks between steps.

    A second Ctrl-C raises KeyboardInterrupt as usual. Outside the main thread
    (no signal handlers possible) this is a no-op.
    """
    caught: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if caught and signum == signal.SIGINT:
            raise KeyboardInterrupt
        caught.append(signum)

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield caught
        return
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# The run's parts ---------------------------------------------------------------------


@dataclass
class Schedule:
    """When the periodic work happens, in steps."""

    total: int
    log_every: int
    eval_every: int
    sample_every: int
    ckpt_every: int

    def due(self, step: int, every_steps: int) -> bool:
        return step % every_steps == 0 or step == self.total


@dataclass
class Nets:
    """The models and what updates them; one checkpoint holds all of it."""

    g: nn.Module
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    ema: Optional[AveragedModel] = None  # exponential moving average of G (stabilize.ema)

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws samples, is scored and kept as best.pt: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.g


@dataclass
class Progress:
    """What the loop counts; saved in every checkpoint."""

    step: int = 0
    images_seen: int = 0
    wall_before: float = 0.0  # training seconds of earlier sessions (resume)
    best_fid: Optional[float] = None
    best_fid_step: Optional[int] = None
    window: list[torch.Tensor] = field(default_factory=list)  # per-step [loss_d, loss_g, D(x), D(G(z))] since the last log line
    window_start: int = 0


def flat_hparams(cfg: TrainConfig) -> dict[str, Any]:
    """The hyperparameters every summary carries, flat."""
    return {
        "model": cfg.model.name,
        "data": cfg.data.name,
        "loss": cfg.loss.name,
        "lr": cfg.lr,
        "lr_g": cfg.lr_g,
        "lr_d": cfg.lr_d,
        "batch_size": cfg.batch_size,
        "beta1": cfg.beta1,
        "beta2": cfg.beta2,
        "seed": cfg.seed,
    }


def build_nets(cfg: TrainConfig, sample_shape: tuple[int, ...], total: int, device: torch.device) -> Nets:
    """G, D, their Adam optimizers and lr schedules."""
    g, d = build_models(cfg, sample_shape)
    layout = memory_layout(sample_shape)
    g, d = g.to(device, memory_format=layout), d.to(device, memory_format=layout)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    decay = lambda s: lr_factor(s, total, cfg.lr_decay)  # noqa: E731
    ema = AveragedModel(g, multi_avg_fn=get_ema_multi_avg_fn(cfg.stabilize.ema), use_buffers=True) if cfg.stabilize.ema > 0 else None
    return Nets(g, d, opt_g, opt_d, torch.optim.lr_scheduler.LambdaLR(opt_g, decay), torch.optim.lr_scheduler.LambdaLR(opt_d, decay), ema)


@dataclass
class RunParts:
    """What a run sets up before its first step."""

    cfg: TrainConfig  # with data.feature_net=auto resolved
    data: Dataset
    total: int
    when: Schedule
    nets: Nets
    batches: Batches
    fixed_z: torch.Tensor  # the noise of every sample grid or scatter
    fixed_y: Optional[torch.Tensor]  # a conditional G's classes for it, one grid row each
    evaluator: Optional[Callable]
    objective: str  # drawn in the live curves
    gan_loss: GanLoss
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # with the run's real label


def prepare_run(cfg: TrainConfig, device: torch.device, sweep: SweepMembership | None) -> RunParts:
    """Seed torch with the run's seed, then load the data onto the device, plan the
    budget and build models, optimizers, batches and the evaluator, in that order: the
    initial weights and the noise that follows depend on it."""
    if cfg.tensorboard:
        require_tensorboard()  # one line before any work, not a half-made folder
    torch.manual_seed(cfg.seed)
    cfg = resolve_auto(cfg)  # config.yaml names the feature net, so resume and eval use the same one
    data = load_dataset(cfg.data, cfg.seed)
    samples = data.samples.to(device).contiguous(memory_format=memory_layout(tuple(data.samples.shape[1:])))
    total = plan_steps(cfg, len(data))
    when = Schedule(total, min(cfg.log_every, total), every(cfg.eval_every, total, 4), every(cfg.sample_every, total, 10), every(cfg.checkpoint_every, total, 10))
    nets = build_nets(cfg, tuple(samples.shape[1:]), total, device)
    gan_loss = LOSSES[cfg.loss.name]
    real_label = cfg.stabilize.real_label
    d_loss = partial(gan_loss.d, real_label=real_label) if real_label != 1.0 else gan_loss.d
    if cfg.model.conditional and data.labels is None:
        raise DataError(f"model.conditional=true: data={data.name} was loaded without labels; use a labelled data set")
    labels = data.labels.to(device) if cfg.model.conditional else None
    batches = Batches(samples, cfg.batch_size, torch.Generator(device=device).manual_seed(cfg.seed), labels)
    fixed_y = None
    if cfg.model.conditional:  # one row of the grid per class
        fixed_y = torch.arange(cfg.data.num_classes, device=device).repeat_interleave(GRID_COLUMNS)
    n_fixed = SCATTER_SAMPLES if data.is_points else (GRID_SAMPLES if fixed_y is None else len(fixed_y))
    fixed_z = torch.randn(n_fixed, cfg.model.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 1)).to(device)
    evaluator = build_evaluator(cfg, data, device) if cfg.eval.enabled else None
    objective = sweep.objectives[0] if sweep and sweep.objectives else default_objective(data.is_points)[0]
    return RunParts(cfg, data, total, when, nets, batches, fixed_z, fixed_y, evaluator, objective, gan_loss, d_loss)


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    hooks: TrainHooks | None = None,
    sweep: SweepMembership | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> TrainResult:
    """Train one GAN into `run_dir`; with resume=True continue from its last checkpoint.

    ``sweep`` marks a sweep trial in its summary. quiet=True shows no progress (a sweep
    shows its own table). Raises DivergedError (after recording it) when a loss
    becomes non-finite.
    """
    hooks = hooks or TrainHooks()
    run = RunFolder(run_dir)
    device = pick_device(cfg.device)
    # CPU threads: threads=N, or a fair share of the cores beside the other trainings here
    # (the share is registered for the loop below, and looked at again every log line).
    share = ThreadShare(cfg.threads) if device.type == "cpu" else None
    threads, threads_note = set_threads(cfg.threads, share)
    parts = prepare_run(cfg, device, sweep)
    cfg, data, total, when, nets, batches = parts.cfg, parts.data, parts.total, parts.when, parts.nets, parts.batches
    g, d, gan_loss, d_loss = nets.g, nets.d, parts.gan_loss, parts.d_loss
    stab, z_dim = cfg.stabilize, cfg.model.z_dim
    to_p = torch.sigmoid if gan_loss.probabilities else (lambda t: t)

    # Restore a checkpoint, or start a fresh folder.
    at, summary, config_yaml = open_run(cfg, run, nets, batches, device, total, overrides, sweep, resume)

    t0 = time.monotonic()
    log = LogWindow(t0, total)
    progress = ProgressDisplay(total, at.step, f"{cfg.model.name} on {data.name}", quiet=quiet)
    if threads_note:
        progress.note(threads_note)
    wall = lambda: at.wall_before + time.monotonic() - t0  # noqa: E731
    save = lambda: run.save_checkpoint(checkpoint_state(nets, batches, at, wall(), device, config_sha256(config_yaml)))  # noqa: E731
    reason: Optional[StopReason] = None
    try:
        with stop_on_signal() as caught, share if share is not None else nullcontext():
            try:
                while at.step < total:
                    if caught:
                        raise KeyboardInterrupt
                    log_now = when.due(at.step + 1, when.log_every)

                    sigma = instance_noise_std(at.step, total, stab.instance_noise)

                    # (1) Update D: minimise the D loss on a real and a fake batch, n_critic times.
                    for _ in range(cfg.loss.n_critic):
                        real, labels = batches.next()
                        cond = conditioning(labels)  # a conditional G draws the real batch's classes
                        fake = g(torch.randn(real.shape[0], z_dim, device=device), *cond)
                        out_real, out_fake = d(add_noise(real, sigma), *cond), d(add_noise(fake.detach(), sigma), *cond)
                        loss_d = d_loss(out_real, out_fake)
                        if cfg.loss.name == "wgan_gp":
                            loss_d = loss_d + cfg.loss.gp_weight * gradient_penalty(d, real, fake.detach(), *cond)
                        nets.opt_d.zero_grad(set_to_none=True)
                        loss_d.backward()
                        gn_d = grad_norm(d) if log_now else None  # before clipping: the diagnostic of exploding gradients
                        clip_gradients(d, stab.clip_d)
                        nets.opt_d.step()
                        at.images_seen += real.shape[0]

                    # (2) Update G: make D score the fakes as real; the EMA of G follows.
                    loss_g = gan_loss.g(d(add_noise(fake, sigma), *cond))
                    nets.opt_g.zero_grad(set_to_none=True)
                    loss_g.backward()
                    gn_g = grad_norm(g) if log_now else None
                    clip_gradients(g, stab.clip_g)
                    nets.opt_g.step()
                    if nets.ema is not None:
                        nets.ema.update_parameters(g)
                    nets.sched_g.step()
                    nets.sched_d.step()
                    at.step += 1
                    with torch.no_grad():
                        at.window.append(torch.stack([loss_d.detach(), loss_g.detach(), to_p(out_real).mean(), to_p(out_fake).mean()]))

                    # (3) Log, draw, score and checkpoint when due.
                    if log_now:
                        stats = torch.stack(at.window).cpu()  # the one host sync of this log line
                        row = write_log_line(run, summary, at, log, stats, cfg, len(data), batches.batch_size, gn_d, gn_g, wall())
                        progress.update(at.step, row)
                        threads, threads_note = rebalance(share, threads)
                        if threads_note:
                            progress.note(threads_note)
                        if hooks.on_log:
                            hooks.on_log(row)
                    periodic_work(parts, run, summary, at, hooks, progress, device, save, wall)
            except StopTraining as exc:
                reason = exc.reason
            except KeyboardInterrupt:
                reason = StopReason(StopKind.interrupted, at.step, f"continue with: gansweep train resume={run.path}")
        # Stopped early, not diverged: keep where it got, to resume or look at.
        if reason is not None and reason.kind is not StopKind.diverged:
            save()
    except DivergedError as exc:
        reason = StopReason(StopKind.diverged, exc.step, DIVERGED_DETAIL)
    except BaseException as exc:
        finish_run(run, summary, StopReason(StopKind.failed, at.step, f"{type(exc).__name__}: {exc}".splitlines()[0]), at, len(data), wall())
        raise
    finally:
        progress.close()

    # Record how the run ended.
    finish_run(run, summary, reason, at, len(data), wall())
    if summary.status is Status.diverged:
        raise DivergedError(f"{reason}; run folder: {run.path}", step=reason.step if reason else None)
    return TrainResult(run.path, summary)


# What the loop hands off -------------------------------------------------------------

# The training values a train line logs that the summary keeps as the run's last ones.
TRAIN_KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
DIVERGED_DETAIL = "non-finite loss or gradient (try a lower lr)"  # a diverged run's stop reason


def write_log_line(
    run: RunFolder, summary: RunSummary, at: Progress, log: "LogWindow", stats: torch.Tensor, cfg: TrainConfig,
    n_train: int, batch: int, gn_d: Optional[torch.Tensor], gn_g: Optional[torch.Tensor], wall: float,
) -> dict[str, Any]:
    """Append the train row of the steps since the last line (`stats`), keep it as the
    run's last, and start the next window. A diverged window is logged too, its NaNs as
    null, and then raises DivergedError."""
    row = log.row(at, stats, cfg, n_train, batch, gn_d, gn_g, wall)
    run.append_metrics([row])
    summary.last_train = {k: row[k] for k in TRAIN_KEYS}
    raise_if_nonfinite(stats, at.window_start, row)
    at.window, at.window_start = [], at.step
    return row


def periodic_work(
    parts: RunParts, run: RunFolder, summary: RunSummary, at: Progress, hooks: TrainHooks, progress: ProgressDisplay,
    device: torch.device, save: Callable[[], None], wall: Callable[[], float], before: Callable[[], None] = lambda: None,
) -> None:
    """Samples, an evaluation and a checkpoint, each when due at this step. Raises
    DivergedError rather than keep a diverged model, and whatever hooks.on_eval raises.
    `before` runs first when any is due (a population member brings its solo nets up to date)."""
    when, step = parts.when, at.step
    sample_now, ckpt_now = when.due(step, when.sample_every), when.due(step, when.ckpt_every)
    eval_now = parts.evaluator is not None and when.due(step, when.eval_every)
    if not (sample_now or eval_now or ckpt_now):
        return
    if at.window:
        raise_if_nonfinite(torch.stack(at.window).cpu(), at.window_start)
    before()
    nets, n_train = parts.nets, len(parts.data)
    if sample_now:
        save_samples(nets.sampler, parts.fixed_z, parts.data, run.sample_path(step), f"step {step}", parts.fixed_y)
        run.sample_written(step)
    if eval_now:
        # Interim evaluations score fewer images; the last one scores the full count.
        interim = parts.cfg.eval.interim_samples if step < parts.total and not parts.data.is_points else None
        scores = evaluate_now(parts.evaluator, nets.sampler, parts.cfg, device, run, at, n_train, progress, interim)
        record_scores(run, summary, nets, at, scores)
        draw_curves(run, parts.objective, f"{parts.cfg.model.name} on {parts.data.name}, {run.path.name}", progress)
        if hooks.on_eval:
            hooks.on_eval(step, parts.total, scores)
    if ckpt_now:
        save()
        record_progress(summary, at, n_train, wall())
        run.write_summary(summary)


def new_summary(cfg: TrainConfig, run: RunFolder, total: int, device: torch.device, sweep: SweepMembership | None) -> RunSummary:
    return RunSummary(
        status=Status.running, run_dir=str(run.path), total_steps=total, device=str(device),
        torch_version=torch.__version__, sweep=sweep, **flat_hparams(cfg),
    )


def open_run(
    cfg: TrainConfig, run: RunFolder, nets: Nets, batches: Batches, device: torch.device, total: int,
    overrides: list[str] | tuple[str, ...], sweep: SweepMembership | None, resume: bool,
) -> tuple[Progress, RunSummary, str]:
    """Restore the run's last checkpoint (resume) or claim a fresh folder; mark the run
    running. Returns the loop's counters, the summary and the stored config.yaml text.

    Checkpoints carry the fingerprint of the config.yaml they belong to: the stored
    bytes, as written when the run started.
    """
    config_yaml = run.config_path.read_text() if resume else to_yaml(cfg)
    if resume:
        at = restore(run.load_checkpoint(), nets, batches, device, config_sha256(config_yaml), run.last_checkpoint)
        run.truncate_metrics(after_step=at.step)
        summary = run.read_summary() or new_summary(cfg, run, total, device, sweep)
    else:
        at = Progress()
        run.create(config_yaml, overrides)
        summary = new_summary(cfg, run, total, device, sweep)
    summary.status, summary.stop_reason, summary.finished_at = Status.running, None, None
    run.write_summary(summary)
    if cfg.tensorboard:
        run.events = EventWriter(run.path, purge_step=at.step if resume else None)
    return at, summary, config_yaml


def finish_run(run: RunFolder, summary: RunSummary, reason: Optional[StopReason], at: Progress, n_train: int, wall: float) -> None:
    """Record how the run ended (reason None: it completed its budget)."""
    summary.stop(reason)
    summary.finished_at = now_iso() if summary.status.final else None
    record_progress(summary, at, n_train, wall)
    run.write_summary(summary)
    run.close_events()


def config_sha256(config_yaml: str) -> str:
    """The fingerprint of a run's config that its checkpoints carry."""
    return hashlib.sha256(config_yaml.encode()).hexdigest()


def checkpoint_state(
    nets: Nets, batches: Batches, at: Progress, wall: float, device: torch.device, config_sha: str,
    rng: Optional[torch.Generator] = None,
) -> dict[str, Any]:
    """Everything a resume needs to continue bit for bit, and the config it belongs to.

    `rng` is the generator the run draws its noise from, when not torch's default one
    (population members each have their own)."""
    rng_cpu = rng.get_state() if rng is not None and rng.device.type == "cpu" else torch.get_rng_state()
    rng_cuda = rng.get_state() if rng is not None and rng.device.type == "cuda" else (torch.cuda.get_rng_state() if device.type == "cuda" else None)
    return {
        "config_sha256": config_sha,
        "g": nets.g.state_dict(), "d": nets.d.state_dict(),
        "opt_g": nets.opt_g.state_dict(), "opt_d": nets.opt_d.state_dict(),
        "sched_g": nets.sched_g.state_dict(), "sched_d": nets.sched_d.state_dict(),
        "batches": batches.state(), "rng_cpu": rng_cpu, "rng_cuda": rng_cuda,
        "step": at.step, "images_seen": at.images_seen, "wall_time_s": wall,
        "best": {"best_fid": at.best_fid, "best_fid_step": at.best_fid_step},
        "window": [row.cpu() for row in at.window], "window_start": at.window_start,
        **({"g_ema": nets.ema.module.state_dict(), "ema_n": nets.ema.n_averaged} if nets.ema is not None else {}),
    }


def restore(ckpt: dict[str, Any], nets: Nets, batches: Batches, device: torch.device, config_sha: str, path: Path) -> Progress:
    """Load a checkpoint_state back into the nets and batches; return the loop's counters.

    Refuses (CheckpointError) a checkpoint written for another config than the run's
    config.yaml: the folder then mixes two runs, and continuing would make a hybrid.
    """
    if "config_sha256" not in ckpt:
        raise CheckpointError(f"{path}: written by an older gansweep (no config fingerprint), so it cannot be checked "
                              "against config.yaml; start the run anew with overwrite=true")
    if ckpt["config_sha256"] != config_sha:
        raise CheckpointError(f"{path}: written by another config than this folder's config.yaml (the folder mixes two runs); "
                              "start anew with overwrite=true or in another folder")
    try:
        for name in ("g", "d", "opt_g", "opt_d", "sched_g", "sched_d"):
            getattr(nets, name).load_state_dict(ckpt[name])
        if nets.ema is not None:
            nets.ema.module.load_state_dict(ckpt["g_ema"])
            nets.ema.n_averaged.copy_(ckpt["ema_n"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: does not fit the model of config.yaml ({type(exc).__name__}); start anew") from None
    batches.load(ckpt["batches"])
    torch.set_rng_state(ckpt["rng_cpu"])
    if device.type == "cuda" and ckpt.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(ckpt["rng_cuda"])
    return Progress(
        step=ckpt["step"], images_seen=ckpt["images_seen"], wall_before=ckpt["wall_time_s"],
        best_fid=ckpt["best"]["best_fid"], best_fid_step=ckpt["best"]["best_fid_step"],
        window=[row.to(device) for row in ckpt["window"]], window_start=ckpt["window_start"],
    )


class LogWindow:
    """Turns the steps since the last log line into one train row: one host sync per line."""

    def __init__(self, t0: float, total: int):
        self.since = t0
        self.total = total

    def row(self, at: Progress, stats: torch.Tensor, cfg: TrainConfig, n_train: int, batch: int,
            gn_d: Optional[torch.Tensor], gn_g: Optional[torch.Tensor], wall: float) -> dict[str, Any]:
        now = time.monotonic()
        mean = stats.mean(dim=0).tolist()
        lr = lr_factor(at.step, self.total, cfg.lr_decay)
        row = {
            "kind": "train", "step": at.step, "epoch": at.images_seen / n_train, "images_seen": at.images_seen,
            "loss_d": mean[0], "loss_g": mean[1], "d_real": mean[2], "d_fake": mean[3],
            "grad_norm_d": float(gn_d), "grad_norm_g": float(gn_g),
            "lr": cfg.lr * lr, "lr_g": cfg.lr_g * lr, "lr_d": cfg.lr_d * lr,
            "images_per_s": len(at.window) * batch * cfg.loss.n_critic / max(now - self.since, 1e-9),
            "time_s": wall,
        }
        self.since = now
        return row


def raise_if_nonfinite(stats: torch.Tensor, window_start: int, row: Optional[dict[str, Any]] = None) -> None:
    """DivergedError naming the first step of the window whose losses (or logged gradient norms) are not finite."""
    finite = torch.isfinite(stats).all(dim=1)
    if not bool(finite.all()):
        bad = window_start + int((~finite).nonzero()[0]) + 1
        raise DivergedError(f"diverged: non-finite loss at step {bad} (try a lower lr)", step=bad)
    if row is not None and not all(math.isfinite(row[k]) for k in ("grad_norm_d", "grad_norm_g")):
        raise DivergedError(f"diverged: non-finite gradient at step {row['step']} (try a lower lr)", step=row["step"])


def record_progress(summary: RunSummary, at: Progress, n_train: int, wall: float) -> None:
    summary.steps, summary.images_seen, summary.epochs = at.step, at.images_seen, at.images_seen / n_train
    summary.wall_time_s, summary.images_per_s = wall, (at.images_seen / wall if wall > 0 else None)


def record_scores(run: RunFolder, summary: RunSummary, nets: Nets, at: Progress, scores: dict[str, Any]) -> None:
    """Put an evaluation in the summary; keep G as best.pt when its FID is the best yet."""
    fid = scores.get("fid")
    if fid is not None and (at.best_fid is None or fid < at.best_fid):
        at.best_fid, at.best_fid_step = fid, at.step
        run.save_checkpoint({"g": nets.sampler.state_dict(), "step": at.step, "fid": fid}, run.best_checkpoint)
    summary.set_scores(scores)
    summary.best_fid, summary.best_fid_step = at.best_fid, at.best_fid_step
    summary.evaluated_step = at.step
    run.write_summary(summary)


def draw_curves(run: RunFolder, objective: str, title: str, progress: ProgressDisplay) -> None:
    """Redraw curves.png; a picture that cannot be drawn never stops the training."""
    try:
        save_run_curves(run.read_metrics(), run.curves_path, objective, title)
    except Exception as exc:  # matplotlib, a damaged metrics line, a full disk
        progress.note(f"note: {run.curves_path.name} not drawn ({type(exc).__name__}: {exc})".splitlines()[0])


@torch.no_grad()
def save_samples(
    g: nn.Module, fixed_z: torch.Tensor, data: Dataset, path: Path, title: str, fixed_y: Optional[torch.Tensor] = None,
) -> None:
    """G's samples from the fixed noise as a grid (a conditional G: one row per class) or scatter."""
    g.eval()
    try:
        out = g(fixed_z, *conditioning(fixed_y))
    finally:
        g.train()
    if data.is_points:
        save_scatter(out, path, data.centers, f"{data.name}, {title}")
    else:
        save_image_grid(out, path, GRID_COLUMNS if fixed_y is not None else None)


def evaluate_now(
    evaluator: Callable, g: nn.Module, cfg: TrainConfig, device: torch.device, run: RunFolder,
    at: Progress, n_train: int, progress: ProgressDisplay, n: int | None = None,
) -> dict[str, Any]:
    """Score G now on n samples (the full count when None) and log an eval row."""
    t = time.monotonic()
    scores = score_generator(evaluator, g, cfg.model.z_dim, cfg.seed, device, n)
    eval_time = time.monotonic() - t
    row = {"kind": "eval", "step": at.step, "epoch": at.images_seen / n_train, "images_seen": at.images_seen, "eval_time_s": eval_time}
    run.append_metrics([{**row, **scores}])
    shown = ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in scores.items()
        if isinstance(v, (int, float)) and not k.startswith("n_")
    )
    progress.note(f"eval @ step {at.step}: {shown} ({eval_time:.1f}s)")
    return scores
