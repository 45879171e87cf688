"""PacGAN's 2D benchmarks (Lin et al. 2018, Table 1) reproduced with gansweep, side by side
with the paper's numbers, plus a curve of modes and high-quality samples against updates.

    python benchmarks/paper_2d.py [--seeds 3] [--steps 10000] [--eval-every 1000] [--jobs 2]
                                  [--out outputs/bench/paper_2d] [--write-md BENCHMARKS.md]

Runs +experiment=pacgan, pacgan2 and pacgan4 on ring8 and grid25 (the paper's nets and
optimizer; gansweep alternates D and G updates where the paper's code updates both from
one batch) for every seed, each an ordinary run folder under --out. A finished run is
not trained again and an interrupted one resumes, so work spread over several sittings
adds up. Scores follow the paper's protocol: 2,500 samples from fixed noise, HQ within 3
std of the nearest mode, a mode covered by at least one HQ sample, KL of the HQ mode
histogram against uniform (our `mode_kl`); `mixture_tv` is gansweep's default objective.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from md_section import write_section  # noqa: E402  (a script's own folder is on its path)

from gansweep.rundir import RunFolder, Status  # noqa: E402

MODELS = ("pacgan", "pacgan2", "pacgan4")
DATA = ("ring8", "grid25")
LABELS = {"pacgan": "GAN", "pacgan2": "PacGAN2", "pacgan4": "PacGAN4"}
# Table 1 of the paper: mean of 10 runs of (modes, HQ %, KL).
PAPER = {
    ("ring8", "pacgan"): (6.3, 98.2, 0.45), ("ring8", "pacgan2"): (7.9, 95.6, 0.07), ("ring8", "pacgan4"): (7.8, 95.9, 0.07),
    ("grid25", "pacgan"): (17.3, 94.8, 0.70), ("grid25", "pacgan2"): (23.8, 91.3, 0.13), ("grid25", "pacgan4"): (24.8, 93.6, 0.04),
}
MD_BEGIN, MD_END = "<!-- paper_2d:begin -->", "<!-- paper_2d:end -->"


def run_dir(out: Path, data: str, model: str, seed: int) -> Path:
    return out / f"{data}_{model}_seed{seed}"


def train_one(out: Path, data: str, model: str, seed: int, steps: int, eval_every: int) -> Path:
    """Train (or resume, or skip) one run in its own process with one thread."""
    folder = run_dir(out, data, model, seed)
    summary = RunFolder(folder).read_summary() if (folder / "summary.json").exists() else None
    if summary is not None and summary.status is Status.completed:
        return folder
    if summary is not None and RunFolder(folder).last_checkpoint.exists():
        args = [f"resume={folder}"]
    else:
        args = [f"+experiment={model}", f"data={data}", f"seed={seed}", f"steps={steps}", f"eval_every={eval_every}",
                "sample_every=0", "log_every=100", "threads=1", f"hydra.run.dir={folder}"]
        if summary is not None:  # started, but killed before its first checkpoint
            args.append("overwrite=true")
    subprocess.run([sys.executable, "-m", "gansweep", "train", *args], check=True, stdout=subprocess.DEVNULL)
    return folder


def curves(folders: list[Path]) -> dict[int, tuple[float, float]]:
    """step -> (mean modes covered, mean HQ share) over the runs' evaluations."""
    by_step: dict[int, list[tuple[float, float]]] = {}
    for folder in folders:
        for row in RunFolder(folder).read_metrics():
            if row.get("kind") == "eval":
                by_step.setdefault(row["step"], []).append((row["modes_covered"], row["hq_fraction"]))
    return {step: (statistics.fmean(v[0] for v in vals), statistics.fmean(v[1] for v in vals)) for step, vals in sorted(by_step.items())}


def table_rows(out: Path, seeds: list[int]) -> list[str]:
    """Markdown rows: ours (mean ± std over the finished seeds) next to the paper's."""
    rows = []
    for data in DATA:
        for model in MODELS:
            done = [s for s in (RunFolder(run_dir(out, data, model, seed)).read_summary() for seed in seeds
                                if (run_dir(out, data, model, seed) / "summary.json").exists())
                    if s is not None and s.status is Status.completed]
            p_modes, p_hq, p_kl = PAPER[(data, model)]
            if not done:
                rows.append(f"| {data} | {LABELS[model]} | 0 | – | – | – | {p_modes} | {p_hq}% | {p_kl} | – |")
                continue

            def stat(key: str, scale: float = 1.0, spec: str = ".1f") -> str:
                values = [scale * s.scores[key] for s in done]
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                return f"{format(statistics.fmean(values), spec)} ± {format(std, spec)}"

            total = done[0].scores["modes_total"]
            rows.append(
                f"| {data} | {LABELS[model]} | {len(done)} | {stat('modes_covered')} / {total} | {stat('hq_fraction', 100)}% "
                f"| {stat('mode_kl', 1, '.2f')} | {p_modes} | {p_hq}% | {p_kl} | {stat('mixture_tv', 1, '.3f')} |"
            )
    return rows


def plot_curves(out: Path, seeds: list[int], path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for col, data in enumerate(DATA):
        for model in MODELS:
            folders = [run_dir(out, data, model, s) for s in seeds if (run_dir(out, data, model, s) / "metrics.jsonl").exists()]
            curve = curves(folders)
            if not curve:
                continue
            steps = list(curve)
            axes[0, col].plot(steps, [curve[s][0] for s in steps], marker="o", label=LABELS[model])
            axes[1, col].plot(steps, [100 * curve[s][1] for s in steps], marker="o", label=LABELS[model])
        axes[0, col].set_title(f"{data}: modes covered (mean over seeds)")
        axes[1, col].set_title(f"{data}: high-quality samples, %")
        axes[1, col].set_xlabel("generator updates")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(out: Path, seeds: list[int], steps: int, curve_png: str) -> str:
    head = ("| data | model | seeds | modes (ours) | HQ (ours) | KL (ours) | modes (paper) | HQ (paper) | KL (paper) | mixture_tv (ours) |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    return "\n".join([
        MD_BEGIN,
        f"`python benchmarks/paper_2d.py --seeds {len(seeds)} --steps {steps}`: {steps:,} generator updates per run "
        f"(the paper trains 400k), seeds {seeds[0]}..{seeds[-1]}, mean ± std over seeds; paper: mean of 10 runs.",
        "",
        head,
        *table_rows(out, seeds),
        "",
        f"![modes and HQ against updates]({curve_png})",
        MD_END,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10_000, help="generator updates per run")
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (never more than the cores)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/paper_2d"))
    parser.add_argument("--curve", type=Path, default=Path("docs/paper_2d_curve.png"))
    parser.add_argument("--write-md", type=Path, default=None, help="replace the paper_2d section of this markdown file")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    jobs = [(data, model, seed) for seed in seeds for data in DATA for model in MODELS]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for folder in pool.map(lambda job: train_one(args.out, *job, args.steps, args.eval_every), jobs):
            print(f"done: {folder}", flush=True)
    plot_curves(args.out, seeds, args.curve)
    text = markdown(args.out, seeds, args.steps, args.curve.as_posix())
    print(text)
    if args.write_md:
        write_section(args.write_md, MD_BEGIN, MD_END, "PacGAN's 2D benchmarks, reproduced", text)


if __name__ == "__main__":
    main()
