"""Pruning audit: does the median pruner cut grid25 trials that would have won?

    python benchmarks/pruning_audit.py [--out outputs/bench] [--workers 2] [--write-md BENCHMARKS.md]

Runs the grid25-unpacked sweep of search_2d.py (30 trials of sweeps/mlp_grid25_unpacked.yaml,
two worker processes of one thread each) with `--pruner none`, so that every trial trains
its whole budget and records mixture_tv at 25, 50, 75 and 100% of it, then confirms the
top 3 with five new seeds. Both continue where they stopped.

Then replays the pruner a default sweep uses (`make_pruner("median")`: Optuna's
MedianPruner, 3 start-up trials, judging from 40% of the budget) over the recorded
evaluations, one trial after another in trial order, and lists what it would have cut
beside each trial's final score. Replayed in order, every earlier trial has finished
when a trial is judged; in a live sweep with two workers one may still be running, so the
live pruner saw a trial or two fewer.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402

from md_section import write_section  # noqa: E402  (a script's own folder is on its path)
from search_2d import Search, confirmed_rows, core_hours, paper_rows, summaries  # noqa: E402

from gansweep.confirm import CONFIRM_DIR  # noqa: E402
from gansweep.rundir import RunFolder, RunSummary, find_run_dirs  # noqa: E402
from gansweep.sweep.stopping import budget_percent  # noqa: E402
from gansweep.sweep.study import make_pruner  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MD_BEGIN, MD_END = "<!-- pruning_audit:begin -->", "<!-- pruning_audit:end -->"
SEARCH = Search("grid25-unpacked-nopruner", "mlp_grid25_unpacked.yaml", 30, "grid25")
SCORE = "mixture_tv"  # the sweep's objective, lower is better
SHOWN_PARAMS = ("lr", "batch_size", "loss", "model.z_dim", "model.hidden", "model.depth", "lr_decay")


@dataclass(frozen=True)
class Trial:
    number: int
    summary: RunSummary
    curve: dict[int, float]
    """mixture_tv at each evaluation before the last, by percent of the budget."""

    @property
    def final(self) -> Optional[float]:
        """mixture_tv at the end of the budget; None for a trial the health rules stopped."""
        return self.summary.scores[SCORE] if self.summary.status.has_objective else None


def gansweep(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gansweep", *args], check=True, cwd=ROOT)


def run(out: Path, workers: int) -> None:
    """The sweep without a pruner, then its top 3 confirmed with 5 seeds."""
    gansweep("sweep", "--trials", str(SEARCH.trials), "--workers", str(workers), "--pruner", "none",
             "--space", str(ROOT / "sweeps" / SEARCH.space), "--name", SEARCH.name, "--dir", str(out), "threads=1")
    gansweep("confirm", str(out / SEARCH.name), "--top", "3", "--seeds", "5", "--workers", str(workers))


def read_trials(folder: Path) -> list[Trial]:
    """The sweep's completed trials with their evaluations, in trial order."""
    trials = []
    for run in map(RunFolder, find_run_dirs(folder)):
        summary = run.read_summary()
        if summary is None or summary.sweep is None or summary.sweep.confirm_of is not None or not summary.status.final:
            continue
        total, every = summary.total_steps, run.read_config().get("eval_every", 0)
        evals = 4 if every == 0 else max(1, round(total / every))
        curve = {budget_percent(row["step"], total, evals): row[SCORE]
                 for row in run.read_metrics() if row.get("kind") == "eval" and row["step"] < total and SCORE in row}
        trials.append(Trial(summary.sweep.trial, summary, curve))
    return sorted(trials, key=lambda t: t.number)


def replay_median_pruner(trials: list[Trial]) -> dict[int, int]:
    """The percent of the budget at which the default pruner cuts each trial it cuts."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=make_pruner("median"))
    cut = {}
    for trial in trials:
        asked = study.ask()
        for pct, value in sorted(trial.curve.items()):
            asked.report(value, pct)
            if asked.should_prune():
                study.tell(asked, state=optuna.trial.TrialState.PRUNED)
                cut[trial.number] = pct
                break
        else:
            if trial.final is not None:
                study.tell(asked, trial.final)
            else:  # stopped by the health rules, as the live sweep tells Optuna
                study.tell(asked, state=optuna.trial.TrialState[trial.summary.status.trial_state])
    return cut


def ranked(trials: list[Trial]) -> list[Trial]:
    """The trials that ran their whole budget, best final first."""
    return sorted((t for t in trials if t.final is not None), key=lambda t: t.final)


def shown(value: object) -> str:
    return f"{value:.2g}" if isinstance(value, float) else str(value)


def trial_rows(trials: list[Trial], cut: dict[int, int]) -> list[str]:
    finished = ranked(trials)
    stopped = [t for t in trials if t.final is None]
    rows = []
    for rank, t in enumerate(finished + stopped, 1):
        curve = " / ".join(f"{t.curve[p]:.3f}" if p in t.curve else "–" for p in (25, 50, 75))
        verdict = f"cut at {cut[t.number]}%" if t.number in cut else "kept"
        params = ", ".join(f"{k.removeprefix('model.')} {shown(t.summary.sweep.params[k])}" for k in SHOWN_PARAMS
                           if k in t.summary.sweep.params)
        final = f"{t.final:.3f}" if t.final is not None else f"{t.summary.status.value} at step {t.summary.steps:,}"
        rows.append(f"| {rank if t.final is not None else '–'} | {t.number} | {final} | {curve} | {verdict} | {params} |")
    return rows


def plot_curves(trials: list[Trial], cut: dict[int, int], path: Path) -> None:
    """mixture_tv against the budget, one line per trial: kept trials solid, cut ones dashed
    from where the pruner would have stopped them; the three best finals labelled."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    best = {t.number: i for i, t in enumerate(ranked(trials)[:3])}  # label offsets: close finals get apart
    for t in trials:
        points = sorted({**t.curve, **({100: t.final} if t.final is not None else {})}.items())
        if not points:
            continue
        colour = "tab:grey" if t.final is None else "tab:red" if t.number in cut else "tab:blue"
        ax.plot(*zip(*points), color=colour, alpha=0.9 if t.number in best else 0.35,
                linestyle="--" if t.number in cut else "-", linewidth=2 if t.number in best else 1)
        if t.number in best:
            ax.annotate(f"trial {t.number}", (100, t.final), xytext=(4, 9 * best[t.number] - 9), textcoords="offset points",
                        fontsize=8, va="center")
    ax.plot([], [], color="tab:blue", label="kept by the median pruner")
    ax.plot([], [], color="tab:red", linestyle="--", label="cut by the median pruner (trained on here)")
    if any(t.final is None for t in trials):
        ax.plot([], [], color="tab:grey", label="stopped by the health rules")
    ax.set_xlabel("percent of the budget (10,000 updates at batch 256)")
    ax.set_ylabel("mixture_tv (lower is better)")
    ax.set_xlim(20, 112)
    ax.set_title(f"{SEARCH.name}: {len(trials)} trials, none pruned; bold: the 3 best finals", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(out: Path, png: str) -> str:
    folder = out / SEARCH.name
    trials = read_trials(folder)
    cut = replay_median_pruner(trials)
    confirms = summaries(folder / CONFIRM_DIR)
    winners = [t.number for t in ranked(trials)[:3]]
    lines = [
        MD_BEGIN,
        "`python benchmarks/pruning_audit.py --write-md BENCHMARKS.md`",
        "",
        f"{len(trials)} trials of `{SEARCH.space}` without a pruner (`--pruner none`): {len(ranked(trials))} trained "
        f"to the end, {len(trials) - len(ranked(trials))} stopped by the health rules; "
        f"{core_hours([t.summary for t in trials]):.2f} core-hours, plus {core_hours(confirms):.2f} for the confirmations. "
        f"Replayed over their evaluations, the default median pruner cuts {len(cut)} of {len(trials)}; "
        f"of the 3 best finals (trials {', '.join(map(str, winners))}) it cuts "
        f"{sum(w in cut for w in winners)}.",
        "",
        "| rank | trial | final mixture_tv | at 25 / 50 / 75% | median pruner | hyperparameters |",
        "| --- | --- | --- | --- | --- | --- |",
        *trial_rows(trials, cut),
        "",
        "Its top 3 retrained with seeds 1000-1004 (`gansweep confirm`):",
        "",
        "| configuration | seeds | modes | HQ | KL | mixture_tv |",
        "| --- | --- | --- | --- | --- | --- |",
        *confirmed_rows(SEARCH, out),
        *paper_rows("grid25")[:3],
        "",
        f"![every trial's mixture_tv against its budget, cut trials dashed]({png})",
        MD_END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="trainings at once, one thread each (never more than the cores)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "pruning_audit.png")
    parser.add_argument("--write-md", type=Path, default=None, help="replace the pruning_audit section of this markdown file")
    args = parser.parse_args()
    run(args.out, args.workers)
    trials = read_trials(args.out / SEARCH.name)
    plot_curves(trials, replay_median_pruner(trials), args.plot)
    text = markdown(args.out, args.plot.relative_to(ROOT).as_posix())
    print(text)
    if args.write_md:
        write_section(args.write_md, MD_BEGIN, MD_END, "Pruning audit: grid25 without a pruner", text)


if __name__ == "__main__":
    main()
