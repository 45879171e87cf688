"""`gansweep eval RUN_DIR`: score a run's generator again from its checkpoint."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from gansweep.arguments import ArgumentParser
from gansweep.config import from_yaml_file
from gansweep.data import load_dataset
from gansweep.errors import CheckpointError, ConfigError, RunFolderError
from gansweep.models import build_models, memory_layout
from gansweep.progress import console
from gansweep.rundir import RunFolder, now_iso
from gansweep.scoring import build_evaluator, score_generator
from gansweep.devices import pick_device


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="gansweep eval", description="Recompute a run's scores from its checkpoint and update summary.json.")
    p.add_argument("run_dir", help="a run folder (as printed at the end of gansweep train)")
    p.add_argument("--samples", type=int, default=None, help="generated samples to score (default: the run's eval.n_samples)")
    p.add_argument("--checkpoint", choices=("last", "best"), default="last", help="which generator to score (default last)")
    return p


def run_eval(argv: list[str]) -> int:
    """Run `gansweep eval ARGV`; returns the exit code."""
    args = build_parser().parse_args(argv)
    run = RunFolder(args.run_dir)
    if not run.config_path.is_file():
        raise CheckpointError(f"{args.run_dir}: not a run folder (no config.yaml)")
    cfg = from_yaml_file(str(run.config_path))
    summary = run.read_summary()
    if summary is None:
        raise RunFolderError(f"{run.summary_path}: missing; only a run that started can be evaluated")
    if args.samples is not None:
        if args.samples < 2:
            raise ConfigError(f"--samples {args.samples}: must be >= 2")
        field = "mixture_samples" if cfg.data.is_points else "n_samples"
        cfg = replace(cfg, eval=replace(cfg.eval, **{field: args.samples}), data=replace(cfg.data, eval_samples=None))
    ckpt_path = run.best_checkpoint if args.checkpoint == "best" else run.last_checkpoint
    ckpt = run.load_checkpoint(ckpt_path)

    device = pick_device(cfg.device)
    data = load_dataset(cfg.data, cfg.seed)
    shape = tuple(data.samples.shape[1:])
    g, _ = build_models(cfg, shape)
    try:
        g.load_state_dict(ckpt.get("g_ema", ckpt["g"]))  # with stabilize.ema, the average is what the run scored
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{ckpt_path}: does not fit this run's model ({type(exc).__name__})") from None
    g.to(device, memory_format=memory_layout(shape))

    started = time.monotonic()
    scores = score_generator(build_evaluator(cfg, data, device), g, cfg.model.z_dim, cfg.seed, device)
    seconds = time.monotonic() - started
    record = {**scores, "step": ckpt.get("step"), "evaluated_at": now_iso()}
    if args.checkpoint == "best":  # the summary's scores stay the run's own, at the sample count it trained with
        summary.best_checkpoint_scores = record
    elif summary.scores:
        summary.last_checkpoint_scores = record
    else:  # a run trained without evaluation: these are its only scores
        summary.set_scores(scores)
        summary.evaluated_step = ckpt.get("step")
    run.write_summary(summary)
    shown = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in scores.items())
    console.print(f"{args.checkpoint} checkpoint (step {ckpt.get('step')}): {shown}  ({seconds:.1f}s)", markup=False)
    console.print(f"run folder: {run.path}")
    return 0
