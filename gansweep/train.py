"""The training loop: one GAN run from a TrainConfig into a run folder.

Reads top to bottom: plan the budget, set up data/models/optimizers (or restore them
from a checkpoint), then one loop that updates D, updates G, and every so often logs,
evaluates, draws samples and checkpoints. Callers (the CLI, the sweep) pass hooks that
may stop the run early by raising ``StopTraining``.
"""

from __future__ import annotations

import math
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from gansweep.config import Device, LrDecay, TrainConfig, to_yaml
from gansweep.data import Dataset, load_dataset
from gansweep.errors import ConfigError, DivergedError
from gansweep.losses import LOSSES, gradient_penalty
from gansweep.models import build_models
from gansweep.progress import ProgressDisplay
from gansweep.rundir import RunFolder, now_iso
from gansweep.samples import save_image_grid, save_scatter
from gansweep.scoring import build_evaluator, score_generator

GRID_SAMPLES = 64  # images in a sample grid
SCATTER_SAMPLES = 2_000  # points in a 2D scatter


class StopTraining(Exception):
    """Raised by a hook to end the run early with a status (pruned, collapsed...)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class TrainHooks:
    """Callbacks a caller may pass; each may raise StopTraining."""

    on_log: Optional[Callable[[dict[str, Any]], None]] = None  # every metrics.jsonl train row
    on_eval: Optional[Callable[[int, int, dict[str, Any]], None]] = None  # (step, total_steps, scores)


@dataclass
class TrainResult:
    status: str  # completed, diverged, interrupted, or a hook's status
    run_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)


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
    """Shuffled minibatches of a device-resident tensor, epoch by epoch."""

    def __init__(self, samples: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.samples = samples
        self.batch_size = min(batch_size, len(samples))
        self.generator = generator
        self.perm = torch.randperm(len(samples), generator=generator, device=generator.device)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(len(self.samples), generator=self.generator, device=self.generator.device)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.samples[idx]

    def state(self) -> dict[str, Any]:
        return {"perm": self.perm.cpu(), "pos": self.pos, "rng": self.generator.get_state()}

    def load(self, state: dict[str, Any]) -> None:
        self.perm = state["perm"].to(self.samples.device)
        self.pos = state["pos"]
        self.generator.set_state(state["rng"])


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


# The run -----------------------------------------------------------------------------


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


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    hooks: TrainHooks | None = None,
    extra_summary: dict[str, Any] | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> TrainResult:
    """Train one GAN into `run_dir`; with resume=True continue from its last checkpoint.

    quiet=True shows no progress (a sweep shows its own table).

    Raises DivergedError (after recording it) when a loss becomes non-finite.
    """
    hooks = hooks or TrainHooks()
    run = RunFolder(run_dir)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)

    # Load data onto the device.
    data = load_dataset(cfg.data, cfg.seed)
    samples = data.samples.to(device)
    total = plan_steps(cfg, len(data))
    log_every = min(cfg.log_every, total)
    eval_every = every(cfg.eval_every, total, 4)
    sample_every = every(cfg.sample_every, total, 10)
    ckpt_every = every(cfg.checkpoint_every, total, 10)

    # Build models, losses and optimizers.
    g, d = build_models(cfg, tuple(samples.shape[1:]))
    g, d = g.to(device), d.to(device)
    gan_loss = LOSSES[cfg.loss.name]
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    decay = lambda s: lr_factor(s, total, cfg.lr_decay)  # noqa: E731
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, decay)
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, decay)
    batches = Batches(samples, cfg.batch_size, torch.Generator(device=device).manual_seed(cfg.seed))
    z_dim = cfg.model.z_dim
    n_fixed = SCATTER_SAMPLES if data.is_points else GRID_SAMPLES
    fixed_z = torch.randn(n_fixed, z_dim, generator=torch.Generator().manual_seed(cfg.seed + 1)).to(device)
    evaluator = build_evaluator(cfg, data, device) if cfg.eval.enabled else None

    step, images_seen, wall_before, best = 0, 0, 0.0, {"best_fid": None, "best_fid_step": None}
    window: list[torch.Tensor] = []  # per-step [loss_d, loss_g, D(x), D(G(z))] since the last log line
    window_start = 0
    if resume:
        ckpt = run.load_checkpoint()
        g.load_state_dict(ckpt["g"])
        d.load_state_dict(ckpt["d"])
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        sched_g.load_state_dict(ckpt["sched_g"])
        sched_d.load_state_dict(ckpt["sched_d"])
        batches.load(ckpt["batches"])
        torch.set_rng_state(ckpt["rng_cpu"])
        if device.type == "cuda" and ckpt.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng_cuda"])
        step, images_seen, wall_before = ckpt["step"], ckpt["images_seen"], ckpt["wall_time_s"]
        best = ckpt["best"]
        window, window_start = [row.to(device) for row in ckpt["window"]], ckpt["window_start"]
        run.truncate_metrics(after_step=step)
    else:
        run.create(to_yaml(cfg), overrides)
        run.metrics_path.write_text("")

    def checkpoint_state() -> dict[str, Any]:
        return {
            "g": g.state_dict(), "d": d.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict(),
            "batches": batches.state(), "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "step": step, "images_seen": images_seen, "wall_time_s": wall_before + (time.monotonic() - t0),
            "best": best, "fixed_z": fixed_z.cpu(), "config": to_yaml(cfg),
            "window": [row.cpu() for row in window], "window_start": window_start,
        }

    summary = run.update_summary(
        status="running", stop_reason=None, run_dir=str(run.path), total_steps=total,
        steps=step, images_seen=images_seen, epochs=images_seen / len(data),
        device=str(device), torch_version=torch.__version__, data_used=data.name,
        started_at=run.read_summary().get("started_at", now_iso()),
        **flat_hparams(cfg), **(extra_summary or {}),
    )

    to_p = torch.sigmoid if gan_loss.probabilities else (lambda t: t)
    t0 = time.monotonic()
    window_t = time.monotonic()
    last_row: dict[str, Any] = {}
    progress = ProgressDisplay(total, step, f"{cfg.model.name} on {data.name}", quiet=quiet)
    status, reason = "completed", None
    try:
        with stop_on_signal() as caught:
            while step < total:
                if caught:
                    raise KeyboardInterrupt
                log_now = (step + 1) % log_every == 0 or step + 1 == total

                # (1) Update D: minimise the D loss on a real and a fake batch, n_critic times.
                for _ in range(cfg.loss.n_critic):
                    real = batches.next()
                    z = torch.randn(real.shape[0], z_dim, device=device)
                    fake = g(z)
                    out_real, out_fake = d(real), d(fake.detach())
                    loss_d = gan_loss.d(out_real, out_fake)
                    if cfg.loss.name == "wgan_gp":
                        loss_d = loss_d + cfg.loss.gp_weight * gradient_penalty(d, real, fake.detach())
                    opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    gn_d = grad_norm(d) if log_now else None
                    opt_d.step()
                    images_seen += real.shape[0]

                # (2) Update G: make D score the fakes as real.
                loss_g = gan_loss.g(d(fake))
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                gn_g = grad_norm(g) if log_now else None
                opt_g.step()
                sched_g.step()
                sched_d.step()
                step += 1

                with torch.no_grad():
                    window.append(torch.stack([loss_d.detach(), loss_g.detach(), to_p(out_real).mean(), to_p(out_fake).mean()]))

                # Log the window: one host sync per log_every steps.
                if log_now:
                    stats = torch.stack(window).cpu()
                    now = time.monotonic()
                    mean = stats.mean(dim=0).tolist()
                    last_row = {
                        "kind": "train", "step": step, "epoch": images_seen / len(data), "images_seen": images_seen,
                        "loss_d": mean[0], "loss_g": mean[1], "d_real": mean[2], "d_fake": mean[3],
                        "grad_norm_d": float(gn_d), "grad_norm_g": float(gn_g),
                        "lr": cfg.lr * decay(step), "lr_g": sched_g.get_last_lr()[0], "lr_d": sched_d.get_last_lr()[0],
                        "images_per_s": len(window) * batches.batch_size * cfg.loss.n_critic / max(now - window_t, 1e-9),
                        "time_s": wall_before + now - t0,
                    }
                    run.append_metrics([last_row])
                    _raise_if_nonfinite(stats, window_start)
                    if not all(math.isfinite(last_row[k]) for k in ("grad_norm_d", "grad_norm_g")):
                        raise DivergedError(f"diverged: non-finite gradient at step {step} (try a lower lr)")
                    window, window_start, window_t = [], step, now
                    progress.update(step, last_row)
                    if hooks.on_log:
                        hooks.on_log(last_row)

                sample_now = step % sample_every == 0 or step == total
                eval_now = evaluator is not None and (step % eval_every == 0 or step == total)
                ckpt_now = step % ckpt_every == 0 or step == total

                # Never sample, score or checkpoint a diverged model (a check between log lines costs one sync).
                if (sample_now or eval_now or ckpt_now) and window:
                    _raise_if_nonfinite(torch.stack(window).cpu(), window_start)

                # Draw samples from the fixed noise.
                if sample_now:
                    _save_samples(g, fixed_z, data, run.sample_path(step), f"step {step}")

                # Evaluate metrics.
                if eval_now:
                    scores = _evaluate(evaluator, g, cfg, device, run, step, images_seen, len(data), progress)
                    if scores.get("fid") is not None and (best["best_fid"] is None or scores["fid"] < best["best_fid"]):
                        best = {"best_fid": scores["fid"], "best_fid_step": step}
                        run.save_checkpoint({"g": g.state_dict(), "step": step, "fid": scores["fid"], "config": to_yaml(cfg)}, run.best_checkpoint)
                    summary = run.update_summary(**scores, **best)
                    if hooks.on_eval:
                        hooks.on_eval(step, total, scores)

                # Checkpoint.
                if ckpt_now:
                    run.save_checkpoint(checkpoint_state())
                    summary = run.update_summary(**_progress_fields(step, images_seen, len(data), wall_before + time.monotonic() - t0, last_row))
    except DivergedError as exc:
        status, reason = "diverged", str(exc)
    except StopTraining as exc:
        status, reason = exc.status, exc.reason
        run.save_checkpoint(checkpoint_state())
    except KeyboardInterrupt:
        status, reason = "interrupted", f"interrupted at step {step}; continue with: gansweep train resume={run.path}"
        run.save_checkpoint(checkpoint_state())
    except BaseException as exc:
        progress.close()
        run.update_summary(status="failed", stop_reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    finally:
        progress.close()

    wall = wall_before + time.monotonic() - t0
    summary = run.update_summary(
        status=status, stop_reason=reason, finished_at=now_iso(),
        **_progress_fields(step, images_seen, len(data), wall, last_row),
    )
    if status == "diverged":
        raise DivergedError(f"{reason}; run folder: {run.path}")
    return TrainResult(status, run.path, summary)


def _raise_if_nonfinite(stats: torch.Tensor, window_start: int) -> None:
    """DivergedError naming the first step of the window whose losses are not finite."""
    finite = torch.isfinite(stats).all(dim=1)
    if not bool(finite.all()):
        bad = window_start + int((~finite).nonzero()[0]) + 1
        raise DivergedError(f"diverged: non-finite loss at step {bad} (try a lower lr)")


def _progress_fields(step: int, images_seen: int, n_train: int, wall: float, row: dict[str, Any]) -> dict[str, Any]:
    fields = {
        "steps": step, "images_seen": images_seen, "epochs": images_seen / n_train,
        "wall_time_s": wall, "images_per_s": images_seen / wall if wall > 0 else None,
    }
    fields.update({k: row[k] for k in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g") if k in row})
    return fields


@torch.no_grad()
def _save_samples(g: nn.Module, fixed_z: torch.Tensor, data: Dataset, path: Path, title: str) -> None:
    g.eval()
    try:
        out = g(fixed_z)
    finally:
        g.train()
    if data.is_points:
        save_scatter(out, path, data.centers, f"{data.name}, {title}")
    else:
        save_image_grid(out, path)


def _evaluate(
    evaluator: Callable, g: nn.Module, cfg: TrainConfig, device: torch.device, run: RunFolder,
    step: int, images_seen: int, n_train: int, progress: ProgressDisplay,
) -> dict[str, Any]:
    """Score G now and log an eval row."""
    t = time.monotonic()
    scores = score_generator(evaluator, g, cfg.model.z_dim, cfg.seed, device)
    eval_time = time.monotonic() - t
    row = {"kind": "eval", "step": step, "epoch": images_seen / n_train, "images_seen": images_seen, "eval_time_s": eval_time}
    run.append_metrics([{**row, **scores}])
    shown = ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in scores.items()
        if isinstance(v, (int, float)) and not k.startswith("n_")
    )
    progress.note(f"eval @ step {step}: {shown} ({eval_time:.1f}s)")
    return scores
