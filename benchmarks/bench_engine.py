"""The stacked engine on the CPU: ops per step, host overhead, and trials per hour.

    python benchmarks/bench_engine.py [--quick] [--old REV] [--part N ...]

1. ATen ops of one training step (gansweep.opcount) for K = 1, 4, 16 and 64 members:
   grid25 MLP and DCGAN on mnist5k at 32 px, default sizes.
2. Host overhead, the CPU's stand-in for a launch-bound GPU: the time of one step of
   tiny nets (MLP hidden 8; DCGAN ngf = ndf = 4) at K = 16 against K = 1, and against
   one net whose batch holds the sixteen members' images (the same arithmetic, no
   stacking): what the step would cost if only arithmetic counted.
3. The solo step against the engine before this one (--old, a git revision, checked out
   in a temporary worktree): images per second of the same `gansweep train` in both.
4. Side work: the share of a 16-member population's wall time at 1,500 steps spent
   outside the step (log lines, sample pictures, evaluations, curves, checkpoints).
5. Whole sweeps, side work included, one trial at a time against one population: 16
   tiny-MLP ring8 trials of 1,000 steps, 8 tiny-DCGAN mnist5k trials of 200 steps, 16
   grid25 MLP trials of 1,500 steps, 16 DCGAN mnist5k trials of one epoch. Beside each,
   what the population gains on its steps alone: K steps of one member against one step
   of K (side work, start-up and evaluation left out, which each way pays differently).
6. One evaluation pass for 16 members (their samples drawn and featurised together)
   against the same 16 members scored one by one, an interim and a final evaluation of
   tiny DCGANs (digit CNN features) and of tiny ring8 MLPs.

Prints markdown; every ratio is against a reference measured in the same run, one
thread, nothing else running. --quick shrinks parts 4 and 5 to a smoke run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gansweep.config import compose_config, to_train_config
from gansweep.opcount import population_of, step_ops

MLP = ["model=mlp", "data=grid25"]
DCGAN = ["model=dcgan", "data=mnist5k", "model.conditional=false"]
TINY_MLP = ["model=mlp", "model.hidden=8"]
TINY_DCGAN = [*DCGAN, "model.ngf=4", "model.ndf=4"]
SPACE = "params:\n  lr: tag(log, interval(1e-4, 2e-3))\n  beta1: interval(0.0, 0.9)\n"


def configs(model: list[str], k: int):
    return [to_train_config(compose_config([*model, "eval.enabled=false", "steps=100000", "threads=1", f"seed={i}",
                                            f"lr={1e-4 * (1 + i % 7)}"])) for i in range(k)]


def ops_table(root: Path) -> list[str]:
    lines = ["| model | K = 1 | K = 4 | K = 16 | K = 64 |", "|---|---|---|---|---|"]
    for label, model in (("grid25 MLP (3x256)", MLP), ("DCGAN mnist5k 32 px", DCGAN)):
        counts = [step_ops(population_of(configs(model, k), root / f"ops_{label[:4]}_{k}", stacked=True)).total for k in (1, 4, 16, 64)]
        lines.append(f"| {label} | " + " | ".join(f"{c:,}" for c in counts) + " |")
    return lines


def step_ms(root: Path, model: list[str], k: int, steps: int = 200) -> float:
    pop = population_of(configs(model, k), Path(tempfile.mkdtemp(dir=root, prefix=f"t_{k}_")))
    pop.advance(20)
    started = time.perf_counter()
    pop.advance(steps)
    return (time.perf_counter() - started) / steps * 1000


def overhead_table(root: Path) -> list[str]:
    lines = ["| tiny net | step, K = 1 | step, K = 16 | ratio | one net, batch 16 x B | K = 16 against it | "
             "the steps alone, 16 x K = 1 / K = 16 |", "|---|---|---|---|---|---|---|"]
    for label, model in (("MLP hidden 8, grid25", [*TINY_MLP, "data=grid25"]), ("DCGAN ngf = ndf = 4, mnist5k 32 px", TINY_DCGAN)):
        batch = configs(model, 1)[0].batch_size
        one, sixteen = step_ms(root, model, 1), step_ms(root, model, 16)
        wide = step_ms(root, [*model, f"batch_size={16 * batch}"], 1)
        lines.append(f"| {label} | {one:.2f} ms | {sixteen:.2f} ms | {sixteen / one:.2f}x | {wide:.2f} ms (B = {batch}) | "
                     f"{sixteen / wide:.2f}x | {16 * one / sixteen:.2f}x |")
    return lines


def train_images_per_s(python: str, cwd: Path, overrides: list[str], run_dir: Path) -> float:
    subprocess.run([python, "-m", "gansweep", "train", *overrides, "threads=1", "eval.enabled=false", f"hydra.run.dir={run_dir}"],
                   cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((run_dir / "summary.json").read_text())["images_per_s"]


def solo_table(root: Path, old: str) -> list[str]:
    """The same solo runs with this engine and with revision `old`, alternated three times."""
    worktree = root / "old"
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), old], check=True, capture_output=True)
    try:
        for link, target in (("conf", "../conf"), ("sweeps", "../sweeps")):  # the installed layout, without installing
            (worktree / "gansweep" / link).symlink_to(target)
        lines = ["| solo run (threads=1) | this engine | before | ratio |", "|---|---|---|---|"]
        for label, overrides in (("default DCGAN, 300 steps", ["steps=300"]), ("grid25 MLP 3x256, 1,500 steps", [*MLP, "steps=1500"]),
                                 ("tiny MLP ring8, 3,000 steps", [*TINY_MLP, "data=ring8", "steps=3000"])):
            new, before = [], []
            for i in range(3):
                new.append(train_images_per_s(sys.executable, Path.cwd(), overrides, root / f"new_{label[:5]}_{i}"))
                before.append(train_images_per_s(sys.executable, worktree, overrides, root / f"old_{label[:5]}_{i}"))
            n, b = sorted(new)[1], sorted(before)[1]  # the median of three
            lines.append(f"| {label} | {n:,.0f} img/s | {b:,.0f} img/s | {n / b:.3f} |")
        return lines
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], check=True)


SIDE_WORK = ("write_log_line", "save_samples", "evaluate", "draw_curves", "save_checkpoint")


def side_work_table(root: Path, quick: bool) -> list[str]:
    """Wall time of a population of 16 as training runs it (every member's side work on
    its own schedule), split into the steps and each kind of side work; "evaluate" is the
    population's evaluation passes (all members due scored in one), the rest each member's."""
    lines = ["| population of 16, 1,500 steps | wall | steps | side work | share | " + " / ".join(SIDE_WORK) + " |",
             "|---|---|---|---|---|---|"]
    steps = 60 if quick else 1500
    cases = (("tiny MLP ring8", [*TINY_MLP, "data=ring8"]), ("grid25 MLP 3x256", MLP), ("tiny DCGAN mnist5k 32 px", TINY_DCGAN))
    for case, (label, model) in enumerate(cases):
        cfgs = [to_train_config(compose_config([*model, f"steps={steps}", "threads=1", f"seed={i}", f"lr={1e-4 * (1 + i % 7)}"]))
                for i in range(16)]
        pop = population_of(cfgs, root / f"side_{case}")
        spent = dict.fromkeys(SIDE_WORK, 0.0)
        for m in pop.members:
            for name in SIDE_WORK:
                if name != "evaluate":
                    setattr(m, name, _timed(getattr(m, name), name, spent))
        pop.evaluate = _timed(pop.evaluate, "evaluate", spent)
        in_steps = in_side = 0.0
        for _ in range(steps):
            t0 = time.perf_counter()
            pop.step()
            t1 = time.perf_counter()
            pop.periodic()
            in_steps, in_side = in_steps + t1 - t0, in_side + time.perf_counter() - t1
        wall = in_steps + in_side
        parts = " / ".join(f"{spent[n]:.1f}" for n in SIDE_WORK)
        lines.append(f"| {label} | {wall:.1f} s | {in_steps:.1f} s | {in_side:.1f} s | {in_side / wall:.0%} | {parts} s |")
    return lines


def _timed(fn, name: str, spent: dict[str, float]):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t
    return wrapper


def sweep_s(root: Path, name: str, model: list[str], trials: int, flags: list[str]) -> float:
    space = root / "space.yaml"
    space.write_text(SPACE)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "gansweep", "sweep", "--trials", str(trials), "--sampler", "random", "--pruner", "none",
                    "--no-early-stop", "--space", str(space), "--dir", str(root), "--name", name, *flags, *model, "threads=1"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def sweeps_table(root: Path, quick: bool) -> list[str]:
    lines = ["| trials | one at a time | one population | trials per hour | the steps alone |", "|---|---|---|---|---|"]
    cases = [("16 tiny-MLP ring8, 1,000 steps", [*TINY_MLP, "data=ring8", "steps=1000"], 16),
             ("8 tiny-DCGAN mnist5k, 200 steps", [*TINY_DCGAN, "steps=200"], 8),
             ("16 grid25 MLP 3x256, 1,500 steps", [*MLP, "steps=1500"], 16),
             ("16 DCGAN mnist5k, 1 epoch", [*DCGAN, "epochs=1"], 16)]
    if quick:
        cases = [(label, [*model, "steps=20"], 2) for label, model, _ in cases[:2]]
    for i, (label, model, n) in enumerate(cases):
        alone = sweep_s(root, f"alone{i}", model, n, [])
        together = sweep_s(root, f"pop{i}", model, n, ["--population", str(n)])
        bound = n * step_ms(root, model, 1, 50) / step_ms(root, model, n, 50)
        lines.append(f"| {label} | {alone:.0f} s | {together:.0f} s | {alone / together:.2f}x | {bound:.2f}x |")
    return lines


def eval_pass_table(root: Path, quick: bool) -> list[str]:
    """Seconds of one evaluation pass over 16 members against 16 passes of one, the faster
    of two rounds each, after 3 steps (the generators draw noise: the cost, not the scores)."""
    lines = ["| 16 members | evaluation | samples each | one pass | one by one | ratio |", "|---|---|---|---|---|---|"]
    for case, (label, model) in enumerate((("tiny DCGAN mnist5k 32 px", TINY_DCGAN), ("tiny MLP ring8", [*TINY_MLP, "data=ring8"]))):
        extra = ["eval.n_samples=600", "eval.interim_samples=300"] if quick else []
        cfgs = [to_train_config(compose_config([*model, *extra, "steps=1500", "log_every=1", "threads=1", f"seed={i}"])) for i in range(16)]
        pop = population_of(cfgs, root / f"eval_{case}")
        pop.advance(3)
        members = list(range(16))
        for kind in ("interim", "final"):
            if kind == "final":
                for m in pop.members:
                    m.at.step = m.total
            together, alone = [], []
            for _ in range(2):
                t = time.perf_counter()
                pop.evaluate(members)
                together.append(time.perf_counter() - t)
                t = time.perf_counter()
                for k in members:
                    pop.evaluate([k])
                alone.append(time.perf_counter() - t)
            n = pop.members[0].evaluator.count(pop.members[0].eval_samples())
            lines.append(f"| {label} | {kind} | {n:,} | {min(together):.2f} s | {min(alone):.2f} s | {min(alone) / min(together):.2f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sweeps, no comparison with --old")
    parser.add_argument("--old", default="5d332c2", help="the revision whose solo step is the reference (default: the engine before)")
    parser.add_argument("--part", type=int, action="append", choices=range(1, 7), help="run only this part (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sections = {1: ("ATen ops per training step", ops_table), 2: ("Host overhead: tiny nets, one thread", overhead_table),
                3: (f"Solo runs against {args.old}", lambda r: solo_table(r, args.old)),
                4: ("Side work of a population", lambda r: side_work_table(r, args.quick)),
                5: ("Whole sweeps, side work included", lambda r: sweeps_table(r, args.quick)),
                6: ("One evaluation pass against member by member", lambda r: eval_pass_table(r, args.quick))}
    chosen = args.part or [p for p in sections if not (args.quick and p == 3)]
    with tempfile.TemporaryDirectory() as tmp:
        for p in chosen:
            title, part = sections[p]
            print(f"\n**{title}**\n", flush=True)
            print("\n".join(part(Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
