"""`gansweep sweep`: check the base config and the space, run the workers, write the results."""

from __future__ import annotations

import argparse
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf

from gansweep.arguments import ArgumentParser
from gansweep.config import TrainConfig, compose_config, to_train_config
from gansweep.data import load_dataset
from gansweep.errors import EXIT_INTERRUPTED, ConfigError, SweepError
from gansweep.health import OVERPOWER_PATIENCE
from gansweep.progress import console
from gansweep.scores import format_score, parse_objectives
from gansweep.scoring import run_kinds
from gansweep.sweep.driver import WorkerSpec, connect, run_worker, worker_process
from gansweep.devices import gpu_for_worker, visible_gpus
from gansweep.sweep.launcher import JOBS_DIR, LAUNCHERS, JobResources, require_launcher, submit_workers, wait_for_jobs
from gansweep.sweep.live import LiveView
from gansweep.sweep.outputs import write_outputs
from gansweep.sweep.space import (
    CONFIG_GROUPS,
    SearchSpace,
    build_space,
    parse_space,
    space_file,
)
from gansweep.sweep.study import PRUNERS, SAMPLERS, StudySpec
from gansweep.sweep.trial import NOT_WORKING, TrialPlan

EPILOG = f"""\
Pruning: with one objective, Optuna's pruner (median or hyperband) judges each trial at
every evaluation (steps are percent of the trial's image budget). With several
objectives Optuna cannot prune; a trial stops when its first objective is worse than
the median of the finished trials at the same share of the budget (after 5 of them).
In both modes a trial stops at once when it diverges, when D overpowers G for {OVERPOWER_PATIENCE} log
lines in a row, or when an evaluation finds realistic samples on few modes and the first
objective is not a new best (gansweep/health.py has the bars). The base configuration
(trial 0) is never stopped as collapsed. --no-early-stop keeps only divergence.

A trial that completes with noise, or with samples on no mode (gansweep/health.py,
not_working), keeps its values in the study but is never the best, never in best.yaml
and never confirmed; when no trial passes, the sweep says so and writes no best.yaml.

Examples:
  gansweep sweep --trials 50
  gansweep sweep --trials 50 model=mlp data=grid25
  gansweep sweep --trials 40 --objective fid,coverage --space sweeps/dcgan_mnist.yaml --name dcgan-lr
  gansweep sweep --trials 50 --workers 2
  gansweep sweep --trials 32 --population 16 model=mlp data=grid25
  gansweep sweep --trials 100 --workers 8 --launcher slurm --partition gpu --gpus-per-job 1 --storage postgresql://...
"""


def build_parser() -> argparse.ArgumentParser:
    """The sweep's flags; everything else on the line is a Hydra override of the base config."""
    p = ArgumentParser(
        prog="gansweep sweep",
        description="Search GAN hyperparameters with Optuna. Trailing KEY=VALUE arguments are Hydra overrides that fix the base config.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trials", type=int, default=20, help="finished trials to reach (a rerun continues up to this count; default 20)")
    p.add_argument("--space", default=None, help="search space YAML (default: sweeps/default.yaml, shipped with gansweep)")
    p.add_argument("--name", default=None, help="sweep name; the same name resumes the same study (default: SPACE-MODEL-DATA)")
    p.add_argument("--objective", default=None, help="score(s) to optimize, comma-separated: fid (default for images), mixture_tv (default for 2D), coverage, ...")
    p.add_argument("--workers", type=int, default=1, help="trial processes on this machine sharing the study (CPU threads are split between them)")
    p.add_argument("--population", type=int, default=1,
                   help="trials each worker trains at once, those of one shape (e.g. batch size) as one batched model; default 1")
    p.add_argument("--storage", default=None, help="Optuna storage URL, e.g. postgresql://user@host/db (default: a journal file in the sweep folder)")
    p.add_argument("--sampler", default="tpe", choices=SAMPLERS, help="tpe (default), random, grid (choice/range spaces), nsga2, qmc")
    p.add_argument("--pruner", default="median", choices=PRUNERS, help="median (default), hyperband, none")
    p.add_argument("--no-early-stop", action="store_true", help="let collapsed and D-overpowered trials run to the end (divergence still stops them)")
    p.add_argument("--timeout", type=float, default=None, help="seconds after which no new trial starts")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--dir", default="outputs/sweeps", help="where sweep folders go (default outputs/sweeps)")
    jobs = p.add_argument_group("cluster jobs (--launcher slurm, or local to try it on this machine; needs the [slurm] extra)")
    jobs.add_argument("--launcher", default="processes", choices=LAUNCHERS,
                      help="processes (default): --workers processes here; slurm: --workers SLURM jobs via submitit; local: the same jobs as local processes")
    jobs.add_argument("--partition", default=None, help="SLURM partition of each job")
    jobs.add_argument("--time-min", type=int, default=JobResources.time_min, help="time limit of each job in minutes (default 240)")
    jobs.add_argument("--gpus-per-job", type=int, default=JobResources.gpus, help="GPUs of each job (default 0)")
    jobs.add_argument("--cpus-per-job", type=int, default=JobResources.cpus, help="CPU cores of each job (default 4)")
    jobs.add_argument("--mem-gb", type=float, default=JobResources.mem_gb, help="memory of each job in GB (default 16)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the base config, e.g. model=mlp data=grid25 epochs=20")
    return p


# Keys besides the config groups that change which scores a trial's evaluator writes.
SCORER_KEYS = ("data.feature_net", "model.conditional")


def _budget_overrides(cfg: TrainConfig) -> list[str]:
    # A step budget would give big batches more data; count it in images instead.
    if cfg.steps is None:
        return []
    return ["steps=null", f"images={cfg.steps * cfg.batch_size * cfg.loss.n_critic}"]


def _base_params(space: SearchSpace, cfg: Any) -> dict[str, Any]:
    """The base config's own values of the searched keys, where the space contains them."""
    params = {}
    for key, dist in space.params.items():
        value = OmegaConf.select(cfg, f"{key}.name" if key in CONFIG_GROUPS else key)
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            if value in dist.choices:
                params[key] = value
        elif value is not None and dist.low <= value <= dist.high:
            params[key] = value
    return params


def run_sweep(argv: list[str]) -> int:
    """Run `gansweep sweep ARGV`; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: must be >= 1")
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be >= 1")
    if args.population < 1:
        raise ConfigError(f"--population {args.population}: must be >= 1")
    if args.timeout is not None and args.timeout <= 0:
        raise ConfigError(f"--timeout {args.timeout}: must be a number of seconds > 0")
    resources = JobResources(args.partition, args.time_min, args.gpus_per_job, args.cpus_per_job, args.mem_gb)
    resources.check()
    require_launcher(args.launcher)

    # Check the base config, the data and the space before any trial.
    source, space_text = space_file(args.space)
    exprs, space_base = parse_space(source, space_text)
    base_overrides = space_base + list(args.overrides)
    base_dict = compose_config(base_overrides)
    base_cfg = to_train_config(base_dict)
    load_dataset(base_cfg.data, base_cfg.seed)
    space = build_space(source, exprs, base_dict)
    objectives = parse_objectives(args.objective, run_kinds(base_cfg))
    # Every option of a searched group or scorer-changing key composes, and scores the objective.
    for key, dist in space.params.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution) and (key in CONFIG_GROUPS or key in SCORER_KEYS):
            for option in dist.choices:
                cfg = to_train_config(compose_config(base_overrides + [f"{key}={option}"]))
                try:
                    parse_objectives(",".join(objectives), run_kinds(cfg))
                except ConfigError as exc:
                    raise ConfigError(f"{key}={option} (searched): {exc}") from None
    if not base_cfg.eval.enabled:
        raise ConfigError("eval.enabled=false: a sweep needs the scores; drop that override")

    name = args.name or f"{Path(source).stem}-{base_cfg.model.name}-{base_cfg.data.name}"
    sweep_dir = Path(args.dir) / name
    # Workers share the CPU cores through gansweep.threads, like any trainings on one machine.
    trial_overrides = base_overrides + _budget_overrides(base_cfg)
    base_params = _base_params(space, base_dict)
    plan = TrialPlan(name, sweep_dir, trial_overrides, objectives, prune=args.pruner != "none", early_stop=not args.no_early_stop)
    spec = WorkerSpec(
        plan=plan,
        # Every sweep measures its starting point first (grid samplers only take full grid points).
        study=StudySpec(name, objectives, space_text, base_overrides,
                        first_params=base_params if args.sampler != "grid" or len(base_params) == len(space.params) else None),
        space=space,
        storage_url=args.storage,
        sampler=args.sampler,
        pruner=args.pruner,
        seed=args.seed,
        n_trials=args.trials,
        deadline=time.time() + args.timeout if args.timeout is not None else None,
        population=args.population,
    )
    study = connect(spec)

    console.print(f"sweep {name}: {args.trials} trials of {base_cfg.model.name} on {base_cfg.data.name}, "
                  f"objective {','.join(objectives)}, {args.workers} worker(s)"
                  f"{f' of {args.population} trials at once' if args.population > 1 else ''}; folder {sweep_dir}")
    started = time.monotonic()
    stop = "done"
    with LiveView(study, objectives, args.trials, sweep_dir) as live:
        live.refresh()
        try:
            if args.launcher != "processes":
                jobs = submit_workers(spec, args.workers, args.launcher, resources)
                console.print(f"submitted {len(jobs)} {args.launcher} job(s): {', '.join(str(j.job_id) for j in jobs)}; "
                              f"logs in {sweep_dir / JOBS_DIR}")
                stop = wait_for_jobs(jobs, live.refresh, sweep_dir / JOBS_DIR)
            elif args.workers == 1:
                stop = run_worker(spec, on_outcome=lambda outcome: live.refresh())
            else:
                stop = _run_processes(spec, args.workers, live)
        except KeyboardInterrupt:
            stop = "interrupted"
        live.refresh()

    facts = write_outputs(study, sweep_dir, name, objectives)
    _print_summary(facts, objectives, sweep_dir, time.monotonic() - started, stop)
    return EXIT_INTERRUPTED if stop == "interrupted" else 0


def _run_processes(spec: WorkerSpec, workers: int, live: LiveView) -> str:
    ctx = multiprocessing.get_context("spawn")
    gpus = visible_gpus()  # round robin: worker i on GPU i mod G
    procs = [ctx.Process(target=worker_process, args=(replace(spec, worker_index=i, gpu=gpu_for_worker(i, gpus)),)) for i in range(workers)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            live.refresh()
            time.sleep(2.0)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()  # SIGTERM: each worker checkpoints its trial and leaves it for a retry
        for p in procs:
            p.join()
        return "interrupted"
    failed = [p.exitcode for p in procs if p.exitcode not in (0, EXIT_INTERRUPTED)]
    if failed:
        raise SweepError(f"{len(failed)} of {workers} worker processes failed (exit codes {failed}; their errors are above); "
                         "rerun the same command to continue the sweep")
    return "interrupted" if any(p.exitcode == EXIT_INTERRUPTED for p in procs) else "done"


def _print_summary(facts: dict[str, Any], objectives: list[str], sweep_dir: Path, seconds: float, stop: str) -> None:
    best = facts["best"]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(facts["statuses"].items()))
    console.print(f"\nsweep {stop}: {sum(facts['statuses'].values())} finished trials ({counts or 'none'}) in {seconds:.0f}s")
    if best is not None:
        values = ", ".join(f"{o}={format_score(o, v)}" for o, v in zip(objectives, best.values))
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        console.print(f"best: trial {best.number}  {values}  {params}", markup=False)
        # The best of many trials is an optimistic estimate (Lucic et al. 2018).
        console.print(f"confirm it with new seeds: gansweep confirm {sweep_dir}", markup=False)
        if facts["not_working"]:
            numbers = ", ".join(str(t.number) for t in facts["not_working"])
            console.print(f"not ranked: trial(s) {numbers}, completed without a working generator (noise, or no mode covered)", markup=False)
    elif facts["not_working"]:
        first = facts["not_working"][0]
        console.print(f"best: none; no working generator in {facts['completed']} completed trials "
                      f"(trial {first.number}: {first.user_attrs[NOT_WORKING]}); give them a longer budget "
                      "(steps=, images= or epochs=) and rerun", markup=False)
    else:
        console.print("best: no trial completed")
    for note in facts["notes"]:
        console.print(f"note: {note}", markup=False)
    console.print(f"results: {sweep_dir}/{', '.join(facts['results'])}", markup=False)
    console.print(f"sweep folder: {sweep_dir}")
