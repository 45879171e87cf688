"""Time `gansweep report` on 1,000 synthetic run folders: loading, the table, the HTML page.

    python benchmarks/bench_report.py [--runs 1000] [--sweeps 4]

The folders follow docs/run-folder.md (tests/report_fixtures.py writes them with the run
folder's own writers): each has summary.json, config.yaml, a metrics.jsonl of 200 train
and 4 eval lines and a sample grid. ``--sweeps`` of them are grouped into sweeps of equal size, the rest are single runs.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from report_fixtures import image_scores, train_config, train_rows, write_run  # noqa: E402

from gansweep.report.html import Page, render_page  # noqa: E402
from gansweep.report.load import load_runs  # noqa: E402
from gansweep.report.plots import make_plots  # noqa: E402
from gansweep.report.provenance import flag_mixed_scoring  # noqa: E402
from gansweep.report.sweeps import collect_sweeps  # noqa: E402
from gansweep.report.table import (  # noqa: E402
    compact_columns,
    default_sort_key,
    primary_scores,
    runs_table,
    sort_runs,
)
from gansweep.rundir import SweepMembership  # noqa: E402


def make_runs(root: Path, n_runs: int, n_sweeps: int, seed: int = 0) -> None:
    """Write ``n_runs`` run folders under ``root``; half of them in ``n_sweeps`` sweeps."""
    rng = random.Random(seed)
    swept = n_runs // 2 if n_sweeps else 0
    for i in range(n_runs):
        lr = 10 ** rng.uniform(-5, -2.5)
        fid = 25 + 40 * abs(math.log10(lr) + 3.7) + rng.uniform(0, 15)
        ngf = rng.choice([32, 64, 128])
        sweep = None
        if i < swept:
            name, trial = f"sweep{i % n_sweeps}", i // n_sweeps
            sweep = SweepMembership(name, trial, {"lr": lr, "model.ngf": ngf}, ["fid"])
            folder = root / "sweeps" / name / f"trial_{trial:04d}"
        else:
            folder = root / "runs" / f"2025-01-01_{i:05d}"
        cfg = train_config(lr=lr, seed=i, batch_size=rng.choice([32, 64, 128]), steps=2000, model_keys={"ngf": ngf})
        write_run(folder, cfg, image_scores(fid=round(fid, 2)), train=train_rows(2000, every=10, batch_size=cfg.batch_size),
                  sweep=sweep, sample_steps=(2000,), sample_seed=i)


def main() -> None:
    """Generate the folders, then time each stage of the report and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--sweeps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        make_runs(root, args.runs, args.sweeps)
        print(f"generated {args.runs} run folders in {time.perf_counter() - start:.1f}s (not timed below)")

        start = time.perf_counter()
        result = load_runs([root])
        load_s = time.perf_counter() - start

        start = time.perf_counter()
        runs, warnings = flag_mixed_scoring(result.runs)
        sort_key = default_sort_key(runs)
        runs = sort_runs(runs, sort_key)
        columns = compact_columns(runs, result.config_columns, primary_scores(runs, sort_key, ["fid"]))
        console = Console(file=io.StringIO(), width=400)
        console.print(runs_table(runs, columns, sort_key))
        table_s = time.perf_counter() - start

        start = time.perf_counter()
        plots = make_plots(runs, collect_sweeps(runs, result.sweeps, sort_key), result.config_columns, sort_key)
        plots_s = time.perf_counter() - start
        start = time.perf_counter()
        page = render_page(Page(runs, columns, sort_key, [str(root)], result.found, len(result.skipped),
                                result.warnings + warnings, None, plots))
        html_s = time.perf_counter() - start

    print(f"load  {len(result.runs)} runs: {load_s:6.2f}s")
    print(f"table (sort + rich render): {table_s:6.2f}s")
    print(f"plots ({len(plots)} figures):        {plots_s:6.2f}s")
    print(f"html  ({len(page) / 1e6:.1f} MB page):      {html_s:6.2f}s")
    print(f"total:                      {load_s + table_s + plots_s + html_s:6.2f}s")


if __name__ == "__main__":
    main()
