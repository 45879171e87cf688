"""CPU threads shared between trainings on one machine (gansweep/threads.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from gansweep.threads import ThreadShare, available_cores, fair_share, set_threads


@pytest.mark.parametrize(("requested", "others", "cores", "expected"), [
    (0, [], 2, 2),          # alone: every core
    (0, [0], 2, 1),         # two trainings asking for a share: one core each
    (0, [0, 0, 0], 2, 1),   # never fewer than one
    (0, [1], 16, 15),       # one pinned to a thread: the rest
    (0, [4, 0], 16, 6),     # 16 - 4 pinned, split between two
    (3, [0, 0], 2, 3),      # threads=N is honoured as given
])
def test_fair_share(requested, others, cores, expected):
    assert fair_share(requested, others, cores) == expected


def test_the_registry_counts_live_trainings_and_forgets_dead_ones(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f"{sleeper.pid}.json").write_text(json.dumps({"threads": 0}))
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        (tmp_path / f"{dead.stdout.strip()}.json").write_text(json.dumps({"threads": 0}))
        with ThreadShare(0, registry=tmp_path) as share:
            assert (tmp_path / share.entry.name).exists()
            assert share.others() == [0]  # the live one; the dead one's entry is gone
            assert not (tmp_path / f"{dead.stdout.strip()}.json").exists()
            expected = fair_share(0, [0], available_cores())
            before = torch.get_num_threads()
            try:
                threads, note = set_threads(0, share)  # fixed for the whole run: a run computes the same bits throughout
                assert threads == expected == torch.get_num_threads()
                assert note == (f"note: 2 gansweep trainings share the {available_cores()} cores here: "
                                f"this one uses {expected} thread{'s' if expected > 1 else ''} for the whole run (threads=N sets it)")
            finally:
                torch.set_num_threads(before)
        assert not (tmp_path / share.entry.name).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_explicit_thread_count_is_taken_as_given(tmp_path):
    before = torch.get_num_threads()
    try:
        with ThreadShare(3, registry=tmp_path) as share:
            assert set_threads(3, share) == (3, None)
    finally:
        torch.set_num_threads(before)


def test_a_run_with_threads_0_records_the_count_it_trained_with(tmp_path):
    run = tmp_path / "run"
    script = ("import torch, sys; from gansweep.cli import main; "
              f"code = main(['train', 'hydra.run.dir={run}', 'model=mlp', 'data=ring8', 'model.hidden=8', 'steps=5', "
              "'eval.enabled=false', 'threads=0']); print(torch.get_num_threads()); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    used = int(done.stdout.split()[-1])
    assert json.loads((run / "summary.json").read_text())["threads"] == used >= 1
    assert "threads: 0" in (run / "config.yaml").read_text()  # the request stays as given; the summary says what it became
