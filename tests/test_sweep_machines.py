"""Sweeps across machines: two `gansweep sweep` processes with their own --dir sharing one
study on a real PostgreSQL server, started at the same instant."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
import yaml

from gansweep.rundir import Status
from gansweep.sweep.driver import _Trials, next_trial
from gansweep.sweep.outputs import best_trial
from gansweep.sweep.study import HEARTBEAT_S, StudySpec, make_pruner, open_study, with_driver

from dashboard_client import dashboard_studies
from postgres_server import postgres_cluster, restart
from train_helpers import subprocess_env

# With WORKING, samples reach the modes in 40 steps, so a sweep has a best trial (one whose
# samples land on no mode never is).
WORKING = ["data.std=0.5"]
TINY = ["model=mlp", "data=ring8", "data.std=0.1", "steps=40", "model.hidden=32", "eval.mixture_samples=300", "log_every=10"]


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_cluster() as url:
        yield url


# No pruner and no early stop: with random lrs, which trial is cut is luck, and these tests
# count completed trials.
def _machine(url: str, out: Path, trials: int, name: str = "shared", extra: tuple[str, ...] | list[str] = ()) -> subprocess.Popen:
    args = ["sweep", "--trials", str(trials), "--name", name, "--storage", url, "--dir", str(out),
            "--sampler", "random", "--pruner", "none", "--no-early-stop", *TINY, "threads=1", *extra]
    return subprocess.Popen([sys.executable, "-m", "gansweep", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=subprocess_env())


@pytest.mark.slow
def test_two_machines_started_at_once_finish_the_trial_count_once(tmp_path: Path, postgres_url: str) -> None:
    procs = [_machine(postgres_url, tmp_path / name, 6, extra=WORKING) for name in ("a", "b")]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=with_driver(postgres_url))
    finished = [t for t in study.trials if t.state.is_finished()]
    # Each machine checks the count before it asks, so together they overshoot by at most one trial each.
    assert 6 <= len(finished) <= 8
    assert sorted(t.number for t in study.trials) == list(range(len(study.trials)))  # no trial counted twice
    folders = {name: {p.name for p in (tmp_path / name / "shared").glob("trial_*")} for name in ("a", "b")}
    assert folders["a"] and folders["b"] and not folders["a"] & folders["b"]  # both worked, never on one trial
    assert folders["a"] | folders["b"] == {f"trial_{t.number:04d}" for t in study.trials}
    # Both machines write best.yaml from the study, though a best trial's folder may be on
    # the other machine: each the best when it ended, so the one that ended last has the best of all.
    paths = sorted((tmp_path / name / "shared" / "best.yaml" for name in ("a", "b")), key=lambda p: p.stat().st_mtime)
    lrs = [yaml.safe_load(p.read_text())["lr"] for p in paths]
    completed = [t.params["lr"] for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(any(lr == pytest.approx(c) for c in completed) for lr in lrs)
    assert lrs[-1] == pytest.approx(best_trial(study, ["mixture_tv"]).params["lr"])  # the best working trial


@pytest.mark.slow
def test_a_trial_killed_on_one_machine_is_retried_on_the_other_and_its_folder_settled(tmp_path: Path, postgres_url: str) -> None:
    long = ["steps=600", *WORKING]  # long enough to be killed mid-trial, after its first checkpoint (step 60)
    first = _machine(postgres_url, tmp_path / "a", 2, "killed", long)
    checkpoint = tmp_path / "a" / "killed" / "trial_0000" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), first.communicate()[1]
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    # Machine b sees trial 0's worker gone (same host, dead pid), fails it and retries it.
    # Its folder is on machine a, so the retry starts from scratch and says why.
    second = _machine(postgres_url, tmp_path / "b", 2, "killed", long)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    study = optuna.load_study(study_name="killed", storage=with_driver(postgres_url))
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "FAIL", 1: "COMPLETE", 2: "COMPLETE"}  # exactly 2 finished, none twice
    retry = pd.read_csv(tmp_path / "b" / "killed" / "trials.csv").set_index("trial").loc[1]
    assert retry["retry_of"] == 0
    assert retry["retry_from"] == f"scratch: trial 0's folder is not under {tmp_path / 'b' / 'killed'} (a --dir shared by all machines resumes it)"
    assert (tmp_path / "b" / "killed" / "best.yaml").is_file()
    # Machine a comes back: its abandoned folder is marked failed, and it writes best.yaml too.
    third = _machine(postgres_url, tmp_path / "a", 2, "killed", long)
    out, err = third.communicate(timeout=600)
    assert third.returncode == 0, err
    summary = json.loads((tmp_path / "a" / "killed" / "trial_0000" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["stop_reason"]["detail"] == "worker stopped mid-trial; retried as trial 1"
    assert (tmp_path / "a" / "killed" / "best.yaml").is_file()
    # The report over both machines' folders: no ghost running trial.
    report = subprocess.run([sys.executable, "-m", "gansweep", "report", str(tmp_path / "a"), str(tmp_path / "b"), "--csv", str(tmp_path / "r.csv")],
                            capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert report.returncode == 0, report.stderr
    assert sorted(pd.read_csv(tmp_path / "r.csv")["status"]) == ["completed", "completed", "failed"]


@pytest.mark.slow
def test_the_dashboard_lists_the_shared_study_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    # The study exists, whichever test ran first; its base overrides are the first test's.
    assert _machine(postgres_url, tmp_path / "c", 1, extra=WORKING).wait(timeout=600) == 0
    count = len(optuna.load_study(study_name="shared", storage=with_driver(postgres_url)).trials)
    # The URL with its driver, as README shows it for optuna-dashboard.
    assert dashboard_studies(with_driver(postgres_url))["shared"] == count  # other tests' studies share the server


def test_a_study_half_created_by_another_machine_is_joined_not_refused(tmp_path: Path) -> None:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log")))
    spec = StudySpec("s", ["mixture_tv"], "params: {lr: 'interval(1e-4, 1e-3)'}\n", ["model=mlp"])
    # The other machine has created the study and written only its first key so far.
    other = optuna.create_study(study_name="s", storage=storage, direction="minimize")
    other.set_user_attr("objectives", ["mixture_tv"])
    study = open_study(spec, storage, optuna.samplers.RandomSampler(), make_pruner("none"))
    assert study.user_attrs == {"objectives": ["mixture_tv"], "space": spec.space_text, "base_overrides": ["model=mlp"]}
    with pytest.raises(Exception, match="started with other space"):
        open_study(StudySpec("s", ["mixture_tv"], "params: {}\n", ["model=mlp"]), storage,
                   optuna.samplers.RandomSampler(), make_pruner("none"))


@pytest.mark.slow
def test_two_sweeps_on_one_host_never_sample_the_same_parameters(tmp_path: Path, postgres_url: str) -> None:
    """Two processes on one node (SLURM jobs that land together) with the same --seed: the
    sampler seed differs by process, so no parameter set is drawn twice."""
    procs = [_machine(postgres_url, tmp_path / name, 12, "one_host") for name in ("a", "b")]
    for p in procs:
        assert p.communicate(timeout=600) and p.returncode == 0
    study = optuna.load_study(study_name="one_host", storage=with_driver(postgres_url))
    drawn = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(drawn) >= 12 and len(set(drawn)) == len(drawn)


@pytest.mark.slow
def test_a_database_restart_mid_trial_loses_nothing(tmp_path: Path, postgres_url: str) -> None:
    """pg_ctl restart while a trial trains: its heartbeat beats on (else another machine
    fails the live trial as stale 60 s later and trains it again), and the trial's end is
    recorded as it happened."""
    # 20k steps: on a quiet machine 5k took 10 s, and ended before a heartbeat after the restart could be seen.
    sweep = _machine(postgres_url, tmp_path / "a", 1, "blip", ["steps=20000", "log_every=100"])
    checkpoint = tmp_path / "a" / "blip" / "trial_0000" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and sweep.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), sweep.communicate()[1]
    restart(postgres_url)
    restarted = time.time()

    study = optuna.load_study(study_name="blip", storage=with_driver(postgres_url))
    deadline = time.monotonic() + 3 * HEARTBEAT_S
    while study.trials[0].user_attrs["heartbeat"] < restarted and time.monotonic() < deadline and sweep.poll() is None:
        time.sleep(1.0)
    assert study.trials[0].user_attrs["heartbeat"] > restarted, f"sweep ended ({sweep.poll()}) before a heartbeat after the restart"

    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err
    trial = optuna.load_study(study_name="blip", storage=with_driver(postgres_url)).trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.user_attrs["status"] == "completed"
    assert json.loads((tmp_path / "a" / "blip" / "trial_0000" / "summary.json").read_text())["status"] == "completed"


def _blipping(study: optuna.Study, names: tuple[str, ...]) -> list[str]:
    """Make each named method of ``study`` fail once as a dropped connection does; returns the calls that failed."""
    failed: list[str] = []
    for name in names:
        method = getattr(study, name)

        def once(*args, _method=method, _name=name, **kwargs):
            if _name not in failed:
                failed.append(_name)
                raise optuna.exceptions.StorageInternalError(f"{_name}: server closed the connection unexpectedly")
            return _method(*args, **kwargs)
        setattr(study, name, once)
    return failed


def test_a_database_blip_at_a_trials_start_or_end_is_waited_out(tmp_path: Path) -> None:
    """The worker's own calls (ask, the trial counts, tell, the retry's enqueue) retry a
    dropped connection, as the heartbeat does: a restart that lands between trials must not
    crash the worker with a traceback and have the trial trained again."""
    study = optuna.create_study(direction="minimize")
    spec = SimpleNamespace(plan=SimpleNamespace(sweep_dir=tmp_path), n_trials=2,
                           space=SimpleNamespace(params={"lr": optuna.distributions.FloatDistribution(1e-4, 1e-3)}))
    failed = _blipping(study, ("ask", "get_trials", "tell", "enqueue_trial"))
    trial = next_trial(spec, study)
    trials = _Trials(spec, study, None)
    trials.tell(SimpleNamespace(state=optuna.trial.TrialState.COMPLETE, values=[1.0], status=Status.completed, params={}), trial)
    second = next_trial(spec, study)
    trials.tell(SimpleNamespace(state=optuna.trial.TrialState.FAIL, values=None, status=Status.interrupted,
                                params=second.params), second)
    assert sorted(failed) == ["ask", "enqueue_trial", "get_trials", "tell"]
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "WAITING"]  # the interrupted one waits for the rerun
