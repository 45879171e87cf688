"""`gansweep confirm SWEEP_DIR`: retrain a sweep's best trials with new seeds.

The best trial of a sweep is an optimistic estimate: it won partly by the luck of its
seed (Lucic et al. 2018, "Are GANs created equal?"). This retrains the top ``k``
completed trials, ranked by the sweep's first objective, with ``n`` new seeds each and
reports every score as mean ± std and its worst seed. Each retraining is an ordinary
run folder under ``SWEEP_DIR/confirm/`` whose summary names the trial it confirms, so
``gansweep report`` reads it like any other run; a rerun skips the runs already
finished and resumes interrupted ones, so confirmation spread over sittings adds up.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import shutil
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import optuna
import pandas as pd
import yaml
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from gansweep.arguments import ArgumentParser
from gansweep.atomic import write_text_atomic
from gansweep.config import from_yaml_file
from gansweep.errors import ConfigError, DivergedError, RunFolderError
from gansweep.health import not_working
from gansweep.progress import console
from gansweep.rundir import RunFolder, RunSummary, SweepMembership
from gansweep.scores import SCORES, format_score, higher_is_better, is_finite_number
from gansweep.sweep.outputs import reproducing_yaml, working_trials
from gansweep.sweep.study import make_storage
from gansweep.sweep.trial import NOT_WORKING
from gansweep.train import train

CONFIRM_DIR = "confirm"
CONFIRM_CSV = "confirm.csv"
NOT_WORKING_SEEDS = "not_working"  # confirm.csv: completed seeds whose generator does not work
CONFIRMED_BEST = "confirmed_best"  # .yaml: the best trial over the new seeds, as best.yaml is over the sweep's
SEED_BASE = 1000  # confirmation seeds are 1000, 1001, ...: never a sweep trial's seed (0 unless set)


@dataclass
class Candidate:
    """A completed sweep trial to confirm, as the sweep's study records it (its folder may
    be on another machine)."""

    number: int
    value: float  # the sweep's first objective
    config: dict  # the trial's full config
    membership: SweepMembership  # the sweep, the trial, its params and objectives


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="gansweep confirm",
        description="Retrain a sweep's top trials with new seeds; report mean ± std and the worst seed of every score.",
    )
    p.add_argument("sweep_dir", help="a sweep folder (as printed at the end of gansweep sweep)")
    p.add_argument("--top", type=int, default=3, help="how many of the best completed trials to retrain (default 3)")
    p.add_argument("--seeds", type=int, default=5, help="new seeds per trial (default 5)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="the sweep's --storage, where it used a database (default: the journal in the sweep folder)")
    p.add_argument("--workers", type=int, default=1,
                   help="retrainings at once on this machine, each a process (CPU threads are split between them)")
    return p


def open_sweep_study(sweep_dir: Path, storage: Optional[str]) -> optuna.Study:
    """The sweep's study (named as its folder): in the folder's journal, or at --storage."""
    if storage is None and not (sweep_dir / "study.journal").is_file():
        raise ConfigError(f"{sweep_dir}: no sweep study here (no study.journal); give the folder gansweep sweep "
                          "printed, and its --storage where it used a database")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        return optuna.load_study(study_name=sweep_dir.name, storage=make_storage(storage, sweep_dir))
    except KeyError:
        raise ConfigError(f"{sweep_dir}: its storage holds no sweep named {sweep_dir.name!r}") from None


def top_trials(study: optuna.Study, k: int) -> tuple[list[Candidate], str]:
    """The k best completed trials of a sweep's study by its first objective, best first,
    and that objective: every machine's trials, whichever folder they are in. A trial whose
    generator does not work (health.not_working) is never one."""
    where = study.study_name
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        raise ConfigError(f"sweep {where}: no completed trials to confirm; run gansweep sweep first")
    objectives = study.user_attrs.get("objectives") or []
    objective = objectives[0]
    working = working_trials(study)
    if not working:
        first = completed[0]
        raise ConfigError(f"sweep {where}: none of the {len(completed)} completed trials draws a working generator "
                          f"(trial {first.number}: {first.user_attrs.get(NOT_WORKING)}); nothing to confirm")
    sign = -1.0 if higher_is_better(objective) else 1.0
    working.sort(key=lambda t: (sign * t.values[0], t.number))
    return [_candidate(study.study_name, t, objectives) for t in working[:k]], objective


def _candidate(sweep: str, trial: FrozenTrial, objectives: list[str]) -> Candidate:
    config = trial.user_attrs.get("config")
    if not config:
        raise ConfigError(f"sweep {sweep}: trial {trial.number} has no config in the study (a sweep from before "
                          "gansweep stored it); retrain it with gansweep train --config-dir on its folder")
    membership = SweepMembership(sweep, trial.number, dict(trial.params), list(objectives), confirm_of=trial.number)
    return Candidate(trial.number, float(trial.values[0]), config, membership)


def confirmation_seeds(n: int) -> list[int]:
    return [SEED_BASE + i for i in range(n)]


def run_confirmation(candidate: Candidate, seed: int, out_dir: Path) -> RunSummary:
    """Train the trial's stored config with another seed into out_dir (or reuse/resume what is there)."""
    run = RunFolder(out_dir)
    existing = run.read_summary()
    if existing is not None and existing.status.final:
        return existing
    if existing is not None:
        run.take_over()  # refused while another gansweep confirm trains it
    # The trial's config as the study holds it, kept beside the retrainings as their record.
    stored = out_dir.parent / f"trial_{candidate.number:04d}.yaml"
    write_text_atomic(stored, yaml.safe_dump(candidate.config, sort_keys=False))
    cfg = dataclasses.replace(from_yaml_file(str(stored)), seed=seed)
    membership = candidate.membership
    resume = existing is not None and run.last_checkpoint.exists()
    if existing is not None and not resume:
        shutil.rmtree(out_dir)  # our own retraining, stopped before its first checkpoint: nothing to keep
    try:
        return train(cfg, out_dir, [f"seed={seed}"], sweep=membership, resume=resume, quiet=True).summary
    except DivergedError:
        return run.read_summary()
    finally:
        run.release()


def summarize(runs: dict[int, list[RunSummary]], objective: str, sweep_values: dict[int, Optional[float]]) -> pd.DataFrame:
    """One row per confirmed trial: each score's mean, std and worst seed, over the seeds
    that completed (a diverged or stopped seed counts in ``completed`` only), and how many
    of those drew no working generator (``not_working``: noise, or no mode covered).

    Trials whose every completed seed works rank first, by the objective's mean: a mean
    over seeds that drew noise is not a recipe's score."""
    rows = []
    for number, all_seeds in runs.items():
        summaries = [s for s in all_seeds if s.status.has_objective]
        row: dict[str, object] = {"trial": number, "seeds": len(all_seeds), f"sweep_{objective}": sweep_values[number]}
        row["completed"] = len(summaries)
        row[NOT_WORKING_SEEDS] = sum(not_working(s.scores) is not None for s in summaries)
        names = [n for n in SCORES if any(n in s.scores for s in summaries)]
        for name in names:
            values = [float(s.scores[name]) for s in summaries if is_finite_number(s.scores.get(name))]
            if not values:
                continue
            worst = min(values) if higher_is_better(name) else max(values)
            row[f"{name}_mean"] = statistics.fmean(values)
            row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            row[f"{name}_worst"] = worst
        params = summaries[0].sweep.params if summaries and summaries[0].sweep else {}
        row.update({f"params.{k}": v for k, v in params.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    key = f"{objective}_mean"
    if key in frame:
        frame = frame.sort_values([NOT_WORKING_SEEDS, key], ascending=[True, not higher_is_better(objective)], kind="stable")
    return frame.reset_index(drop=True)


def confirmed(best: pd.Series, objective: str) -> bool:
    """Whether the top row of ``summarize`` is a confirmed recipe: scored on new seeds, each of them a working generator."""
    return pd.notna(best.get(f"{objective}_mean")) and best[NOT_WORKING_SEEDS] == 0


def _run_all(jobs: list[tuple[Candidate, int, Path]], workers: int) -> Iterator[RunSummary]:
    """The summaries of the jobs' retrainings, in the jobs' order: here one by one, or in
    ``workers`` spawned processes (a fresh torch each, like sweep workers)."""
    if workers == 1:
        yield from (run_confirmation(*job) for job in jobs)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(run_confirmation, *zip(*jobs))


def run_confirm(argv: list[str]) -> int:
    """Run `gansweep confirm ARGV`; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.top < 1 or args.seeds < 1 or args.workers < 1:
        raise ConfigError(f"--top {args.top} --seeds {args.seeds} --workers {args.workers}: each must be >= 1")
    sweep_dir = Path(args.sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir}: no such sweep folder")
    candidates, objective = top_trials(open_sweep_study(sweep_dir, args.storage), args.top)
    seeds = confirmation_seeds(args.seeds)
    console.print(f"confirming trials {', '.join(str(c.number) for c in candidates)} by {objective} with seeds {seeds[0]}..{seeds[-1]}")

    jobs = [(c, seed, sweep_dir / CONFIRM_DIR / f"trial_{c.number:04d}_seed_{seed}") for c in candidates for seed in seeds]
    runs: dict[int, list[RunSummary]] = {}
    for (candidate, seed, out), summary in zip(jobs, _run_all(jobs, args.workers)):
        if summary is None:
            raise RunFolderError(f"{out}: the run left no summary")
        runs.setdefault(candidate.number, []).append(summary)
        shown = format_score(objective, summary.scores.get(objective))
        console.print(f"trial {candidate.number} seed {seed}: {summary.status.value}, {objective} {shown}", markup=False)

    frame = summarize(runs, objective, {c.number: c.value for c in candidates})
    write_text_atomic(sweep_dir / CONFIRM_CSV, frame.to_csv(index=False))
    console.print(confirm_table(frame, objective))
    if not confirmed(frame.iloc[0], objective):
        console.print(f"confirmation: {sweep_dir / CONFIRM_CSV}; no {CONFIRMED_BEST}.yaml: no trial drew a working generator "
                      f"on every new seed (noise or no mode covered); retrain with a longer budget or confirm more trials (--top)",
                      markup=False)
        return 0
    write_text_atomic(sweep_dir / f"{CONFIRMED_BEST}.yaml", confirmed_best_yaml(frame.iloc[0], candidates, objective, sweep_dir))
    console.print(f"confirmation: {sweep_dir / CONFIRM_CSV}, {CONFIRMED_BEST}.yaml")
    return 0


def confirmed_best_yaml(best: pd.Series, candidates: list[Candidate], objective: str, sweep_dir: Path) -> str:
    """The config of the trial best on average over the new seeds, as a `gansweep train` config."""
    number = int(best["trial"])
    config = next(c.config for c in candidates if c.number == number)
    title = (f"Best confirmed trial of sweep {sweep_dir.name}: trial {number}, {objective} "
             f"{best[f'{objective}_mean']:.4g} ± {best[f'{objective}_std']:.2g} over {int(best['completed'])} new seeds "
             f"(worst {best[f'{objective}_worst']:.4g}); the sweep's own best was trial {candidates[0].number}.")
    return reproducing_yaml(config, title, sweep_dir, CONFIRMED_BEST)


def confirm_table(frame: pd.DataFrame, objective: str) -> Table:
    """The confirmed trials as mean ± std (worst) of the objective and the 2D/digit key scores."""
    shown = [n for n in SCORES if f"{n}_mean" in frame and SCORES[n].objective][:4]
    if objective in shown:
        shown.remove(objective)
    shown = [objective, *shown][:4]
    table = Table(title=f"confirmation over {int(frame['seeds'].max())} seeds (mean ± std, worst)")
    for column in ("trial", f"sweep {objective}", "working seeds", *shown):
        table.add_column(column, justify="right")
    for _, row in frame.iterrows():
        working = f"{int(row['completed'] - row[NOT_WORKING_SEEDS])}/{int(row['seeds'])}"
        cells = [str(int(row["trial"])), format_score(objective, row[f"sweep_{objective}"]), working]
        for name in shown:
            mean, std, worst = row.get(f"{name}_mean"), row.get(f"{name}_std"), row.get(f"{name}_worst")
            cells.append("-" if mean is None or pd.isna(mean) else f"{mean:.4g} ± {std:.2g} ({worst:.4g})")
        table.add_row(*cells)
    return table
