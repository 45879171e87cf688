"""Sweeps that find a 2D GAN that works: the unpacked MLP on grid25 searched by gansweep,
the same with packing in the space, and ring8; each sweep's top trials confirmed with
five new seeds, side by side with PacGAN's and VEEGAN's published rows.

    python benchmarks/search_2d.py [--workers 2] [--budget 120000] [--budget-seeds 4]
                                   [--out outputs/bench] [--write-md BENCHMARKS.md]

Runs, for each sweep below, `gansweep sweep` (30 or 20 trials, two worker processes of one
thread each) and then `gansweep confirm --top 3 --seeds 5`. Both continue where they
stopped, so a rerun after a finished benchmark only reads the folders and writes the
tables. Scores follow PacGAN's protocol (2,500 samples from fixed noise, HQ within 3 std
of the nearest mode, a mode covered by one HQ sample, `mode_kl` the KL of the HQ mode
histogram against uniform); `mixture_tv` is the sweep's objective. Compute is the sum of
the runs' wall times, each on one core.

Then the budget curve: the confirmed best unpacked configuration, shipped as
`+experiment=grid25_best`, trained for --budget updates with seeds 1000.. and evaluated
every 10,000, which shows what more compute buys.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from md_section import write_section  # noqa: E402  (a script's own folder is on its path)
from paper_2d import LABELS, PAPER, train_one  # noqa: E402

from gansweep.confirm import CONFIRM_CSV, CONFIRM_DIR, SEED_BASE  # noqa: E402
from gansweep.rundir import RunFolder, RunSummary, Status, find_run_dirs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MD_BEGIN, MD_END = "<!-- search_2d:begin -->", "<!-- search_2d:end -->"
MODES = {"grid25": 25, "ring8": 8}
VEEGAN_GRID25 = {"GAN": (3.3, 0.5), "Unrolled GAN": (23.6, 16.0), "VEEGAN": (24.6, 40.0)}  # Srivastava et al. 2017: modes, HQ %


@dataclass(frozen=True)
class Search:
    name: str
    space: str
    trials: int
    data: str


SEARCHES = (
    Search("grid25-unpacked", "mlp_grid25_unpacked.yaml", 30, "grid25"),
    Search("grid25-packed", "mlp_grid25_packed.yaml", 30, "grid25"),
    Search("ring8-unpacked", "mlp_ring8.yaml", 20, "ring8"),
)


def gansweep(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gansweep", *args], check=True, cwd=ROOT)


def run_search(search: Search, out: Path, workers: int) -> None:
    """Sweep, then confirm its top 3 trials with 5 seeds (each continues where it stopped)."""
    gansweep("sweep", "--trials", str(search.trials), "--workers", str(workers), "--space", str(ROOT / "sweeps" / search.space),
             "--name", search.name, "--dir", str(out), "threads=1")
    gansweep("confirm", str(out / search.name), "--top", "3", "--seeds", "5", "--workers", str(workers))


def summaries(folder: Path) -> list[RunSummary]:
    return [s for s in (RunFolder(d).read_summary() for d in find_run_dirs(folder)) if s is not None]


def core_hours(runs: list[RunSummary]) -> float:
    return sum(r.wall_time_s for r in runs) / 3600


def mean_std(values: list[float], spec: str) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.fmean(values), spec)} ± {format(std, spec)}"


def search_row(search: Search, out: Path) -> str:
    """The sweep: trials by status, updates, compute and its best trial as the sweep saw it."""
    folder = out / search.name
    trials = [s for s in summaries(folder) if s.sweep and s.sweep.confirm_of is None]
    confirms = summaries(folder / CONFIRM_DIR)
    counts = pd.Series([t.status.value for t in trials]).value_counts()
    by_status = ", ".join(f"{n} {status}" for status, n in counts.items())
    best = min((t for t in trials if t.status.has_objective), key=lambda t: t.scores["mixture_tv"])
    images = trials[0].total_steps * trials[0].batch_size
    return (f"| {search.name} | `{search.space}` | {len(trials)}: {by_status} | {images:,} images "
            f"({images // 256:,} updates at batch 256) | {core_hours(trials):.2f} + {core_hours(confirms):.2f} "
            f"| {best.sweep.trial} | {best.scores['mixture_tv']:.3f} |")


def confirmed_rows(search: Search, out: Path) -> list[str]:
    """Each confirmed trial over its seeds: modes, HQ, KL, mixture_tv as mean ± std (worst)."""
    folder = out / search.name
    frame = pd.read_csv(folder / CONFIRM_CSV)
    confirms = [s for s in summaries(folder / CONFIRM_DIR) if s.status is Status.completed]
    rows = []
    for _, row in frame.iterrows():
        runs = [s for s in confirms if s.sweep.confirm_of == row["trial"]]
        modes = [r.scores["modes_covered"] for r in runs]
        hq = [100 * r.scores["hq_fraction"] for r in runs]
        kl = [r.scores["mode_kl"] for r in runs]
        tv = [r.scores["mixture_tv"] for r in runs]
        rows.append(
            f"| {search.name} trial {int(row['trial'])} | {len(runs)} | {mean_std(modes, '.1f')} / {MODES[search.data]} (worst {min(modes)}) "
            f"| {mean_std(hq, '.1f')}% (worst {min(hq):.1f}%) | {mean_std(kl, '.2f')} | {mean_std(tv, '.3f')} (worst {max(tv):.3f}) |"
        )
    return rows


def paper_rows(data: str) -> list[str]:
    rows = [f"| PacGAN paper: {LABELS[m]} ({data}) | 10 | {PAPER[(data, m)][0]} / {MODES[data]} | {PAPER[(data, m)][1]}% "
            f"| {PAPER[(data, m)][2]} | – |" for m in ("pacgan", "pacgan2", "pacgan4")]
    if data == "grid25":
        rows += [f"| VEEGAN paper: {name} (grid25) | – | {modes} / 25 | {hq}% | – | – |" for name, (modes, hq) in VEEGAN_GRID25.items()]
    return rows


def plot_samples(out: Path, path: Path) -> None:
    """The final samples of each sweep's best confirmed trial, one row per sweep, one panel per seed."""
    fig, axes = plt.subplots(len(SEARCHES), 5, figsize=(15, 3.2 * len(SEARCHES)))
    for row, search in zip(axes, SEARCHES):
        frame = pd.read_csv(out / search.name / CONFIRM_CSV)
        best = int(frame["trial"][0])
        runs = sorted((d for d in find_run_dirs(out / search.name / CONFIRM_DIR) if d.name.startswith(f"trial_{best:04d}_")))
        for ax, folder in zip(row, runs):
            summary = RunFolder(folder).read_summary()
            ax.imshow(plt.imread(RunFolder(folder).latest_sample()))
            ax.set_title(f"{search.name} trial {best} seed {summary.seed}\n{summary.scores['modes_covered']} modes, "
                         f"{100 * summary.scores['hq_fraction']:.0f}% HQ", fontsize=9)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def budget_folders(out: Path, seeds: list[int]) -> list[Path]:
    return [out / "grid25-best-budget" / f"grid25_grid25_best_seed{seed}" for seed in seeds]


def run_budget(out: Path, steps: int, seeds: list[int], workers: int) -> None:
    """Train +experiment=grid25_best for `steps` updates per seed, evaluated every 10,000
    (finished runs are kept). Its lr is constant, so the evaluation at step s is what a
    run with a budget of s updates ends with."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda seed: train_one(out / "grid25-best-budget", "grid25", "grid25_best", seed, steps, 10_000), seeds))


def budget_evals(out: Path, seeds: list[int]) -> dict[int, list[dict]]:
    """step -> the seeds' evaluation rows at that step."""
    by_step: dict[int, list[dict]] = {}
    for folder in budget_folders(out, seeds):
        for row in RunFolder(folder).read_metrics():
            if row.get("kind") == "eval":
                by_step.setdefault(row["step"], []).append(row)
    return dict(sorted(by_step.items()))


def budget_rows(out: Path, seeds: list[int], shown: list[int]) -> list[str]:
    evals = budget_evals(out, seeds)
    minutes = statistics.fmean(RunFolder(f).read_summary().wall_time_s for f in budget_folders(out, seeds)) / 60 / max(evals)
    rows = []
    for step in shown:
        runs = evals[step]
        modes, hq = [r["modes_covered"] for r in runs], [100 * r["hq_fraction"] for r in runs]
        rows.append(f"| {step:,} | {len(runs)} | {mean_std(modes, '.1f')} / 25 (worst {min(modes)}) "
                    f"| {mean_std(hq, '.1f')}% (worst {min(hq):.1f}%) | {mean_std([r['mode_kl'] for r in runs], '.2f')} "
                    f"| {mean_std([r['mixture_tv'] for r in runs], '.3f')} | {minutes * step:.1f} |")
    return rows


def plot_budget(out: Path, seeds: list[int], path: Path) -> None:
    """Modes and HQ of grid25_best against updates, every seed and the mean, with the target."""
    evals = budget_evals(out, seeds)
    steps = list(evals)
    fig, (modes_ax, hq_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, scale, target, label in ((modes_ax, "modes_covered", 1, 24, "modes covered (of 25)"),
                                          (hq_ax, "hq_fraction", 100, 90, "high-quality samples, %")):
        for i in range(len(seeds)):
            ax.plot(steps, [scale * evals[s][i][key] for s in steps], color="tab:blue", alpha=0.3, lw=1)
        ax.plot(steps, [statistics.fmean(scale * r[key] for r in evals[s]) for s in steps], marker="o", color="tab:blue",
                label=f"mean over {len(seeds)} seeds")
        ax.axhline(target, color="tab:red", linestyle="--", label=f"target (PacGAN4's level): {target}")
        ax.set_xlabel("generator updates")
        ax.set_title(f"grid25_best: {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(out: Path, png: str, budget: int, seeds: list[int], curve_png: str) -> str:
    search_head = ("| sweep | space | trials | budget per trial | compute, core-hours (sweep + confirmation) | best trial | its mixture_tv |\n"
                   "| --- | --- | --- | --- | --- | --- | --- |")
    confirm_head = ("| configuration | seeds | modes | HQ | KL | mixture_tv |\n"
                    "| --- | --- | --- | --- | --- | --- |")
    parts = [MD_BEGIN, "`python benchmarks/search_2d.py --write-md BENCHMARKS.md`", "", search_head,
             *(search_row(s, out) for s in SEARCHES), "",
             "Top 3 trials of each sweep retrained with seeds 1000-1004 (`gansweep confirm`), mean ± std and the worst seed, "
             "against the published means:", ""]
    for data in ("grid25", "ring8"):
        parts += [confirm_head, *(r for s in SEARCHES if s.data == data for r in confirmed_rows(s, out)), *paper_rows(data), ""]
    parts += [f"![the best confirmed trial of each sweep, five seeds]({png})"]
    if budget:
        shown = [s for s in budget_evals(out, seeds) if s % 20_000 == 0]
        parts += ["", f"`+experiment=grid25_best` (the best confirmed unpacked trial) trained for {budget:,} updates, "
                  f"seeds {seeds[0]}..{seeds[-1]}, evaluated every 10,000 (its lr is constant: the evaluation at a step is "
                  "what a run of that budget ends with):", "",
                  "| generator updates | seeds | modes | HQ | KL | mixture_tv | minutes per run (one core) |",
                  "| --- | --- | --- | --- | --- | --- | --- |", *budget_rows(out, seeds, shown), "",
                  f"![grid25_best against updates]({curve_png})"]
    return "\n".join([*parts, MD_END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="trainings at once, one thread each (never more than the cores)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    parser.add_argument("--budget", type=int, default=120_000, help="generator updates of the budget curve's runs (0 = none)")
    parser.add_argument("--budget-seeds", type=int, default=4)
    parser.add_argument("--samples", type=Path, default=ROOT / "docs" / "search_2d.png")
    parser.add_argument("--curve", type=Path, default=ROOT / "docs" / "grid25_best_budget.png")
    parser.add_argument("--write-md", type=Path, default=None, help="replace the search_2d section of this markdown file")
    args = parser.parse_args()
    for search in SEARCHES:
        run_search(search, args.out, args.workers)
    plot_samples(args.out, args.samples)
    seeds = [SEED_BASE + i for i in range(args.budget_seeds)]
    if args.budget:
        run_budget(args.out, args.budget, seeds, args.workers)
        plot_budget(args.out, seeds, args.curve)
    text = markdown(args.out, args.samples.relative_to(ROOT).as_posix(), args.budget, seeds, args.curve.relative_to(ROOT).as_posix())
    print(text)
    if args.write_md:
        write_section(args.write_md, MD_BEGIN, MD_END, "Sweeps that find a 2D GAN that works", text)


if __name__ == "__main__":
    main()
