"""PBT against TPE on unconditional digits, at equal generator updates, each best confirmed.

    python benchmarks/pbt_digits.py [--out outputs/pbt] [--members 8] [--write-md BENCHMARKS.md]

The default DCGAN on mnist5k with `model.conditional=false` (10 epochs, batch 32: 1,563
updates per member or trial), two ways:
- `gansweep pbt --members K`: K DCGANs trained as one stack in one process, ranked by FID
  every 10% of the budget, the bottom quarter copying the top quarter and perturbing
  lr_g, lr_d, beta1, beta2 (sweeps/pbt.yaml);
- `gansweep sweep --trials K --pruner none` over the same space: TPE, K trials with no
  pruner, so it spends at most K x 1,563 updates (the health rules still stop a trial
  whose D overpowers G; the table counts the updates each side trained).
Then each one's best retrained from scratch with seeds 1000-1002 (`gansweep confirm --top 1
--seeds 3`): for PBT its schedule replayed, for TPE its fixed values. The PBT process and
the sweep's one worker run side by side on one thread each; the retrainings two at a time.
Both continue where they stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from md_section import write_section  # noqa: E402  (a script's own folder is on its path)
from search_2d import core_hours, mean_std, summaries  # noqa: E402

from gansweep.confirm import CONFIRM_DIR  # noqa: E402
from gansweep.lineage import PBT_STATE  # noqa: E402
from gansweep.rundir import RunSummary, Status  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MD_BEGIN, MD_END = "<!-- pbt_digits:begin -->", "<!-- pbt_digits:end -->"
BASE = ("data=mnist5k", "model=dcgan", "model.conditional=false", "threads=1")
SPACE = ROOT / "sweeps" / "pbt.yaml"
SEEDS = 3


def gansweep(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gansweep", *args], check=True, cwd=ROOT)


def run_pbt(out: Path, members: int) -> None:
    state = out / "digits-pbt" / PBT_STATE
    if not (state.exists() and json.loads(state.read_text()).get("finished")):
        gansweep("pbt", "--members", str(members), "--name", "digits-pbt", "--dir", str(out), *BASE)


def run_tpe(out: Path, members: int) -> None:
    gansweep("sweep", "--trials", str(members), "--pruner", "none", "--space", str(SPACE), "--name", "digits-tpe",
             "--dir", str(out), *BASE)


def run(out: Path, members: int) -> None:
    """PBT and the TPE sweep side by side, then each one's best confirmed on new seeds."""
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(run_pbt, out, members), pool.submit(run_tpe, out, members)]:
            done.result()
    for name in ("digits-pbt", "digits-tpe"):
        gansweep("confirm", str(out / name), "--top", "1", "--seeds", str(SEEDS), "--workers", "2")


def searched(folder: Path) -> list[RunSummary]:
    return [s for s in summaries(folder) if s.sweep and s.sweep.confirm_of is None]


def rows(out: Path, name: str, how: str) -> tuple[str, str]:
    """The search (budget, compute, its best in the run) and its best retrained on new seeds."""
    runs = searched(out / name)
    confirms = [s for s in summaries(out / name / CONFIRM_DIR) if s.status is Status.completed]
    best = min((r for r in runs if r.status.has_objective), key=lambda r: r.scores["fid"])
    updates = sum(r.steps for r in runs)
    hours = max(r.wall_time_s for r in runs) / 3600 if name == "digits-pbt" else core_hours(runs)
    search = (f"| {name} | {how} | {len(runs)} x {runs[0].total_steps:,} | {updates:,} | {hours:.2f} + {core_hours(confirms):.2f} "
              f"| {best.scores['fid']:.2f} |")
    score = {k: [r.scores[k] for r in confirms] for k in ("fid", "modes_covered", "mode_kl", "precision", "recall")}
    confirmed = (f"| {name}, best retrained | {len(confirms)} | {mean_std(score['fid'], '.2f')} (worst {max(score['fid']):.2f}) "
                 f"| {mean_std(score['modes_covered'], '.1f')} / 10 | {mean_std(score['mode_kl'], '.3f')} "
                 f"| {mean_std(score['precision'], '.3f')} | {mean_std(score['recall'], '.3f')} |")
    return search, confirmed


def markdown(out: Path) -> str:
    pbt = rows(out, "digits-pbt", "PBT: one stack, ranked by FID every 10%, lr_g, lr_d, beta1, beta2 perturbed")
    tpe = rows(out, "digits-tpe", "TPE over the same space, no pruner (`--pruner none`; the health rules still stop a trial whose D overpowers G)")
    return "\n".join([
        MD_BEGIN,
        "`python benchmarks/pbt_digits.py --write-md BENCHMARKS.md`",
        "",
        "| search | how | members or trials x steps | generator updates | core-hours (search + retrainings) | best FID in the search |",
        "| --- | --- | --- | --- | --- | --- |",
        pbt[0],
        tpe[0],
        "",
        f"Each search's best retrained from scratch with seeds 1000-{1000 + SEEDS - 1} (`gansweep confirm --top 1 --seeds {SEEDS}`):",
        "",
        "| configuration | seeds | FID | digits covered | mode KL | precision | recall |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        pbt[1],
        tpe[1],
        MD_END,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "pbt")
    parser.add_argument("--members", type=int, default=8, help="PBT members, and TPE trials")
    parser.add_argument("--write-md", type=Path, default=None, help="replace the pbt_digits section of this markdown file")
    args = parser.parse_args()
    run(args.out, args.members)
    text = markdown(args.out)
    print(text)
    if args.write_md:
        write_section(args.write_md, MD_BEGIN, MD_END, "PBT against TPE on unconditional digits", text)


if __name__ == "__main__":
    main()
