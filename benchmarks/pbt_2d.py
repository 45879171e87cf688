"""Population-based training on PacGAN's 2D benchmarks: each PBT run's best member replayed
from scratch on five new seeds (`gansweep confirm`), beside PacGAN's published rows.

    python benchmarks/pbt_2d.py [--out outputs/pbt] [--workers 2] [--write-md BENCHMARKS.md]

For each case below, `gansweep pbt --members 16` (one process, one thread) and then
`gansweep confirm --top 1 --seeds 5`. A finished PBT folder is read, not rerun, and
confirm reuses finished retrainings, so a rerun only writes the tables. Scores follow
PacGAN's protocol (2,500 samples, HQ within 3 std of the nearest mode, a mode covered by
one HQ sample); "modes, 10+ HQ" counts modes holding at least 10 HQ samples
(`modes_covered_min`). Compute is the PBT process's wall time (one core) plus the
retrainings' (one core each).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from md_section import write_section  # noqa: E402  (a script's own folder is on its path)
from paper_2d import LABELS, PAPER  # noqa: E402
from search_2d import MODES, core_hours, mean_std, summaries  # noqa: E402

from gansweep.confirm import CONFIRM_DIR  # noqa: E402
from gansweep.lineage import PBT_STATE  # noqa: E402
from gansweep.rundir import Status  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MD_BEGIN, MD_END = "<!-- pbt_2d:begin -->", "<!-- pbt_2d:end -->"
MEMBERS = 16


@dataclass(frozen=True)
class Case:
    name: str
    data: str
    overrides: tuple[str, ...]
    about: str


CASES = (
    Case("grid25-pbt", "grid25", ("+experiment=grid25_best", "steps=25000"),
         "grid25_best's net and loss; PBT moves lr_g, lr_d, beta1, beta2"),
    Case("grid25-pbt-pack2", "grid25", ("+experiment=grid25_best", "model.pack=2", "steps=25000"),
         "the same, D packed over 2 samples (PacGAN2)"),
    Case("ring8-pbt", "ring8", ("model=mlp", "data=ring8", "steps=5000", "lr=1e-3", "batch_size=256", "lr_decay=linear"),
         "the ring8 sweep's base trial (mlp_ring8.yaml); PBT moves lr_g, lr_d, beta1, beta2"),
    Case("ring8-pbt-arch", "ring8", ("+experiment=ring8_best",),
         "ring8_best's net and loss; PBT moves lr_g, lr_d, beta1, beta2"),
)


def gansweep(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gansweep", *args], check=True, cwd=ROOT)


def run_case(case: Case, out: Path, workers: int) -> None:
    """PBT (unless its folder holds a finished run), then the best member's replay on five new seeds."""
    state = out / case.name / PBT_STATE
    if not (state.exists() and json.loads(state.read_text()).get("finished")):
        gansweep("pbt", "--members", str(MEMBERS), "--name", case.name, "--dir", str(out), *case.overrides, "threads=1")
    gansweep("confirm", str(out / case.name), "--top", "1", "--seeds", "5", "--workers", str(workers))


def case_rows(case: Case, out: Path) -> tuple[str, str]:
    """The PBT run (budget, compute, its best member in the run) and the replay over its new seeds."""
    folder = out / case.name
    members = [s for s in summaries(folder) if s.sweep and s.sweep.confirm_of is None]
    confirms = [s for s in summaries(folder / CONFIRM_DIR) if s.status is Status.completed]
    best = min((m for m in members if m.status.has_objective), key=lambda m: m.scores["mixture_tv"])
    updates = sum(m.steps for m in members)
    images = sum(m.images_seen for m in members)
    process_hours = max(m.wall_time_s for m in members) / 3600  # one process trains them all
    run = (f"| {case.name} | {case.about} | {len(members)} x {members[0].total_steps:,} | {updates:,} ({images / 1e6:.1f}M images) "
           f"| {process_hours:.2f} + {core_hours(confirms):.2f} | {best.scores['mixture_tv']:.3f} |")
    modes = [r.scores["modes_covered"] for r in confirms]
    solid = [r.scores["modes_covered_min"] for r in confirms]
    hq = [100 * r.scores["hq_fraction"] for r in confirms]
    kl = [r.scores["mode_kl"] for r in confirms]
    tv = [r.scores["mixture_tv"] for r in confirms]
    total = MODES[case.data]
    replay = (f"| {case.name}, best member replayed | {len(confirms)} | {mean_std(modes, '.1f')} / {total} (worst {min(modes)}) "
              f"| {mean_std(solid, '.1f')} (worst {min(solid)}) | {mean_std(hq, '.1f')}% (worst {min(hq):.1f}%) "
              f"| {mean_std(kl, '.2f')} | {mean_std(tv, '.3f')} (worst {max(tv):.3f}) |")
    return run, replay


def markdown(out: Path, cases: list[Case]) -> str:
    rows = {case.name: case_rows(case, out) for case in cases}
    runs = ["| PBT run | starting point | members x steps | generator updates | core-hours (PBT + replays) | best member's mixture_tv in the run |",
            "| --- | --- | --- | --- | --- | --- |", *(rows[c.name][0] for c in cases)]
    blocks = [MD_BEGIN + "\n`python benchmarks/pbt_2d.py --write-md BENCHMARKS.md`", "\n".join(runs),
              "Each run's best member, its schedule replayed from scratch with seeds 1000-1004 (`gansweep confirm --top 1`):"]
    for data in ("grid25", "ring8"):
        blocks.append("\n".join([
            "| configuration | seeds | modes | modes, 10+ HQ | HQ | KL | mixture_tv |", "| --- | --- | --- | --- | --- | --- | --- |",
            *(rows[c.name][1] for c in cases if c.data == data),
            *(f"| PacGAN paper: {LABELS[m]} ({data}) | 10 | {PAPER[(data, m)][0]} / {MODES[data]} | – "
              f"| {PAPER[(data, m)][1]}% | {PAPER[(data, m)][2]} | – |" for m in ("pacgan", "pacgan2", "pacgan4"))]))
    return "\n\n".join(blocks) + "\n" + MD_END


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "pbt")
    parser.add_argument("--workers", type=int, default=2, help="retrainings at once, one thread each")
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES], help="run only this case (repeatable)")
    parser.add_argument("--write-md", type=Path, default=None, help="replace the pbt_2d section of this markdown file")
    args = parser.parse_args()
    if args.case and args.write_md:  # the section holds every case: one case alone would drop the others' rows
        parser.error("--write-md writes every case's rows; run it without --case")
    cases = [c for c in CASES if not args.case or c.name in args.case]
    for case in cases:
        run_case(case, args.out, args.workers)
    text = markdown(args.out, cases)
    print(text)
    if args.write_md:
        write_section(args.write_md, MD_BEGIN, MD_END, "Population-based training on the 2D benchmarks", text)


if __name__ == "__main__":
    main()
