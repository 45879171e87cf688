"""Would the sweep's early-stopping rules have stopped trials that turned out well?

    python benchmarks/replay_stopping.py SWEEP_DIR [SWEEP_DIR ...] [--write-md BENCHMARKS.md]

Give it sweeps run with ``--no-early-stop --pruner none``, so that every trial ran its
whole budget. Each trial's logged train lines and evaluations are replayed, in order,
through the same ``HealthWatch`` the sweep uses (gansweep/sweep/stopping.py, with the
STOP thresholds of gansweep/health.py). For each sweep it counts the trials the rules
would have stopped, and among them those whose final objective beat the sweep's median
(the goal is none), plus the share of the sweep's steps the stops would have saved.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from md_section import write_section

from gansweep.losses import LOSSES
from gansweep.rundir import RunFolder, RunSummary, Status, StopReason, find_run_dirs
from gansweep.scores import format_score, is_better
from gansweep.sweep.stopping import HealthWatch

MD_BEGIN, MD_END = "<!-- replay_stopping:begin -->", "<!-- replay_stopping:end -->"


@dataclass
class Replayed:
    folder: Path
    summary: RunSummary
    stop: Optional[StopReason]  # where the rules would have stopped it, or None
    old_stop: Optional[int]  # where the previous collapse rule would have stopped it


def previous_rule(evals: list[dict], total: int) -> Optional[int]:
    """The collapse rule gansweep used before health.py, for comparison: one mode covered
    (of more) after an evaluation that found more, or in the second half of the budget,
    whatever the samples looked like."""
    most = 0
    for row in evals:
        modes, modes_total, step = row.get("modes_covered"), row.get("modes_total"), row["step"]
        if modes is not None and modes_total and modes_total > 1 and step < total:
            if modes == 1 and (most > 1 or 2 * step >= total):
                return step
            most = max(most, modes)
    return None


def replay(folder: Path) -> Replayed:
    """Run the trial's logged history through the sweep's health rules."""
    run = RunFolder(folder)
    summary = run.read_summary()
    sweep = summary.sweep
    watch = HealthWatch(sweep.objectives[0], LOSSES[summary.loss].probabilities, sweep.base_config)
    rows = run.read_metrics()
    old = previous_rule([r for r in rows if r.get("kind") == "eval"], summary.total_steps)
    for row in rows:
        if row.get("step", 0) >= summary.total_steps:
            break  # the sweep never stops a trial at its last evaluation
        reason = watch.log(row) if row.get("kind") == "train" else watch.evaluate(row["step"], row)
        if reason is not None:
            return Replayed(folder, summary, reason, old)
    return Replayed(folder, summary, None, old)


def sweep_report(sweep_dir: Path) -> dict[str, object]:
    trials = [replay(f) for f in find_run_dirs(sweep_dir) if f.name.startswith("trial_")]
    trials = [t for t in trials if t.summary.status is Status.completed]
    objective = trials[0].summary.sweep.objectives[0]
    finals = [float(t.summary.scores[objective]) for t in trials]
    median = statistics.median(finals)
    stopped = [t for t in trials if t.stop is not None]
    wrong = [t for t in stopped if is_better(float(t.summary.scores[objective]), median, objective)]
    saved = sum(t.summary.total_steps - t.stop.step for t in stopped) / sum(t.summary.total_steps for t in trials)
    old = [t for t in trials if t.old_stop is not None]
    old_wrong = [t for t in old if is_better(float(t.summary.scores[objective]), median, objective)]
    return {
        "sweep": sweep_dir.name, "objective": objective, "trials": len(trials), "median": format_score(objective, median),
        "stopped": len(stopped), "stopped but better than the median": len(wrong), "steps saved": f"{saved:.0%}",
        "previous rule: stopped": len(old), "previous rule: stopped but better than the median": len(old_wrong),
        "stops": "; ".join(f"{t.folder.name}: {t.stop} (final {format_score(objective, t.summary.scores[objective])})"
                           for t in stopped) or "none",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--write-md", type=Path, default=None)
    args = parser.parse_args()
    rows = [sweep_report(d) for d in args.sweeps]
    keys = list(rows[0])
    lines = [MD_BEGIN, "| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    lines.append(MD_END)
    text = "\n".join(lines)
    print(text)
    if args.write_md:
        write_section(args.write_md, MD_BEGIN, MD_END, "Early stopping, replayed on sweeps that ran to the end", text)


if __name__ == "__main__":
    main()
