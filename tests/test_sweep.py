"""gansweep sweep on tiny MLP-GANs: outputs, resume, crashes, divergence, pruning, workers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from gansweep.cli import main
from gansweep.config import compose_config, from_yaml_file, to_train_config

# data.std=0.1 lets 40 steps already put samples near the modes, so the scores differ.
TINY = ["model=mlp", "data=ring8", "data.std=0.1", "steps=40", "model.hidden=32", "eval.mixture_samples=300", "log_every=10"]


def sweep(tmp_path: Path, *args: str) -> int:
    return main(["sweep", "--dir", str(tmp_path / "sweeps"), *args])


def write_space(tmp_path: Path, text: str) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return str(path)


def trials(sweep_dir: Path) -> pd.DataFrame:
    return pd.read_csv(sweep_dir / "trials.csv")


@pytest.mark.slow
def test_six_trials_leave_csv_best_yaml_and_plots_and_a_rerun_adds_only_the_difference(tmp_path: Path) -> None:
    # data.std=0.5: 40 steps put samples near the modes, so some trial is a working generator with a best
    assert sweep(tmp_path, "--trials", "6", "--name", "ring", *TINY, "data.std=0.5") == 0
    sweep_dir = tmp_path / "sweeps" / "ring"
    frame = trials(sweep_dir)
    assert list(frame["trial"]) == [0, 1, 2, 3, 4, 5]
    assert {"params.lr", "params.batch_size", "params.beta1", "params.beta2", "mixture_tv", "status", "duration_s"} <= set(frame.columns)
    for png in ("optimization_history.png", "slices.png"):
        assert (sweep_dir / png).stat().st_size > 5_000
    assert not (sweep_dir / "param_importances.png").exists()  # six trials: too few for fANOVA

    # The base config is the first trial, and the only one marked so.
    first = json.loads((sweep_dir / "trial_0000" / "summary.json").read_text())
    assert first["sweep"]["params"] == {"lr": 2e-4, "batch_size": 64, "beta1": 0.5, "beta2": 0.999}
    assert (first["sweep"]["name"], first["sweep"]["trial"], first["sweep"]["base_config"]) == ("ring", 0, True)
    assert list(frame["base_config"]) == [True] + [False] * 5

    # Trials with other batch sizes see the same number of images.
    summaries = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("trial_*/summary.json"))]
    done = [s for s in summaries if s["status"] == "completed"]
    assert {s["images_seen"] for s in done} <= {40 * 64 + s["batch_size"] for s in done} | {40 * 64}

    # best.yaml is a config `gansweep train` runs: it composes to the best trial's config.
    best = yaml.safe_load((sweep_dir / "best.yaml").read_text().split("\n", 2)[2])
    assert best["defaults"][0] == "config"
    number = int(re.search(r": trial (\d+) \(", (sweep_dir / "best.yaml").read_text()).group(1))
    composed = to_train_config(compose_config([], "best", str(sweep_dir)))
    trial_cfg = from_yaml_file(str(sweep_dir / f"trial_{number:04d}" / "config.yaml"))
    assert (composed.lr, composed.batch_size, composed.beta1, composed.beta2) == (
        trial_cfg.lr, trial_cfg.batch_size, trial_cfg.beta1, trial_cfg.beta2
    )

    # Rerunning the same sweep with --trials 8 adds two trials, not eight, and new ones:
    # the rerun's sampler is seeded anew, so it does not repeat the first run's parameters.
    assert sweep(tmp_path, "--trials", "8", "--name", "ring", *TINY, "data.std=0.5") == 0
    frame = trials(sweep_dir)
    assert list(frame["trial"]) == list(range(8))
    params = [tuple(row) for row in frame[["params.lr", "params.batch_size", "params.beta1", "params.beta2"]].itertuples(index=False)]
    assert len(set(params)) == 8


@pytest.mark.slow
def test_divergent_region_gives_diverged_trials_and_the_sweep_completes(tmp_path: Path) -> None:
    space = write_space(tmp_path, "params:\n  lr: choice(1e-3, 1e4)\n")
    assert sweep(tmp_path, "--trials", "3", "--space", space, "--sampler", "grid", "--name", "div", *TINY) == 0
    frame = trials(tmp_path / "sweeps" / "div")
    assert len(frame) == 3
    diverged = frame[frame["status"] == "diverged"]
    assert len(diverged) >= 1 and set(diverged["params.lr"]) == {1e4}
    assert (diverged["stop_kind"] == "diverged").all() and (diverged["stop_step"] >= 1).all()
    assert diverged["reason"].str.startswith("diverged at step").all()
    assert set(frame[frame["params.lr"] == 1e-3]["status"]) <= {"completed", "collapsed", "overpowered"}


@pytest.mark.slow
def test_median_pruner_prunes_hopeless_trials_and_keeps_their_folders(tmp_path: Path, monkeypatch) -> None:
    # Real data with std 0.001 leaves no sample within 3 std of a mode: mixture_tv stays near 1,
    # far above the std-0.5 trials, so the median rule must prune those at its first chance (50%).
    # The grid's order follows the sampler seed, which mixes in the pid: fixed here, so the
    # order is the same in every process. Seed 3 draws four std-0.5 trials, then hopeless
    # ones; with the pid, a CI run drew hopeless trials first, whose ties with the finished
    # hopeless ones kept the median from ever pruning.
    monkeypatch.setattr("gansweep.sweep.driver.worker_seed", lambda *args, **kwargs: 3)
    space = write_space(tmp_path, "params:\n  data.std: choice(0.5, 0.001)\n  seed: range(0, 6)\n")
    assert sweep(tmp_path, "--trials", "12", "--space", space, "--sampler", "grid", "--name", "prune", *TINY) == 0
    sweep_dir = tmp_path / "sweeps" / "prune"
    frame = trials(sweep_dir)
    pruned = frame[frame["status"] == "pruned"]
    assert len(pruned) >= 1
    assert (pruned["state"] == "pruned").all()
    for number in pruned["trial"]:
        summary = json.loads((sweep_dir / f"trial_{number:04d}" / "summary.json").read_text())
        assert summary["status"] == "pruned"
        assert summary["steps"] < summary["total_steps"]
        assert summary["stop_reason"]["kind"] == "pruned"
        assert summary["stop_reason"]["detail"].startswith("50% of the budget, mixture_tv=")


@pytest.mark.slow
def test_two_objectives_give_a_pareto_front(tmp_path: Path) -> None:
    args = ["--trials", "4", "--objective", "mode_kl,hq_fraction", "--no-early-stop", "--name", "pareto", *TINY]
    assert sweep(tmp_path, *args) == 0
    sweep_dir = tmp_path / "sweeps" / "pareto"
    frame = trials(sweep_dir)
    assert {"mode_kl", "hq_fraction"} <= set(frame.columns)
    assert (sweep_dir / "pareto_front.png").stat().st_size > 5_000


@pytest.mark.slow
def test_fid_and_coverage_objectives_on_images(tmp_path: Path) -> None:
    tiny_dcgan = ["model=dcgan", "model.ngf=8", "model.ndf=8", "steps=6", "eval.n_samples=200", "batch_size=16", "log_every=3"]
    space = write_space(tmp_path, "params:\n  lr: tag(log, interval(1e-4, 1e-3))\n")
    args = ["--trials", "3", "--objective", "fid,coverage", "--space", space, "--pruner", "none", "--no-early-stop", "--name", "img", *tiny_dcgan]
    assert sweep(tmp_path, *args) == 0
    frame = trials(tmp_path / "sweeps" / "img")
    assert frame["fid"].notna().all() and frame["coverage"].between(0, 1).all()
    assert (tmp_path / "sweeps" / "img" / "pareto_front.png").exists()


@pytest.mark.slow
def test_two_workers_finish_every_trial_once(tmp_path: Path) -> None:
    assert sweep(tmp_path, "--trials", "4", "--workers", "2", "--name", "par", *TINY) == 0
    sweep_dir = tmp_path / "sweeps" / "par"
    frame = trials(sweep_dir)
    assert sorted(frame["trial"]) == [0, 1, 2, 3]
    assert (frame["state"] != "running").all()
    folders = sorted(p.name for p in sweep_dir.glob("trial_*"))
    assert folders == ["trial_0000", "trial_0001", "trial_0002", "trial_0003"]
    assert frame["worker"].nunique() == 2, "both worker processes ran trials"
    assert os.getpid() not in {int(w.rsplit(":", 1)[1]) for w in frame["worker"]}


@pytest.mark.slow
def test_killed_sweep_resumes_and_retries_the_interrupted_trial_from_its_checkpoint(tmp_path: Path) -> None:
    args = [
        sys.executable, "-m", "gansweep", "sweep", "--dir", str(tmp_path / "sweeps"), "--name", "kill", "--trials", "2",
        "model=mlp", "data=ring8", "steps=3000", "model.hidden=32", "eval.mixture_samples=300", "checkpoint_every=50",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = tmp_path / "sweeps" / "kill" / "trial_0000" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert ckpt.exists(), "the first trial never checkpointed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    sweep_dir = tmp_path / "sweeps" / "kill"
    frame = trials(sweep_dir)
    killed = frame[frame["trial"] == 0].iloc[0]
    assert killed["state"] == "fail"
    retry = frame[frame["retry_of"] == 0]
    assert len(retry) == 1
    finished = frame[(frame["state"] != "fail")]
    assert len(finished) == 2  # the requested count: nothing lost, nothing counted twice

    old = json.loads((sweep_dir / "trial_0000" / "summary.json").read_text())
    assert old["status"] == "failed" and old["stop_reason"]["kind"] == "failed"
    assert "retried as trial" in old["stop_reason"]["detail"]
    number = int(retry["trial"].iloc[0])
    new_dir = sweep_dir / f"trial_{number:04d}"
    new = json.loads((new_dir / "summary.json").read_text())
    assert (new["sweep"]["retry_of"], new["sweep"]["trial"], new["run_dir"]) == (0, number, str(new_dir))
    assert new["sweep"]["params"] == old["sweep"]["params"]
    assert new["sweep"]["base_config"], "the retry of the base trial is still the base trial"
    steps = [json.loads(line)["step"] for line in (new_dir / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert steps[0] == 10 and steps == sorted(set(steps)), "the retry continues the same series"


@pytest.mark.slow
def test_outputs_come_from_the_study_when_trial_folders_are_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # data.std=0.5: samples near the modes within 40 steps, so a trial is the best (a
    # generator with no sample on any mode never is).
    args = ["--trials", "2", "--name", "gone", "--pruner", "none", "--no-early-stop", *TINY, "data.std=0.5"]
    assert sweep(tmp_path, *args) == 0
    sweep_dir = tmp_path / "sweeps" / "gone"
    before = trials(sweep_dir)
    assert list(before["status"]) == ["completed", "completed"]
    for folder in sweep_dir.glob("trial_*"):
        shutil.rmtree(folder)
    best_before = (sweep_dir / "best.yaml").read_text()
    (sweep_dir / "best.yaml").unlink()
    capsys.readouterr()
    assert sweep(tmp_path, *args) == 0  # nothing left to run: the outputs only
    pd.testing.assert_frame_equal(trials(sweep_dir), before)
    # As a machine whose trials ran elsewhere would: best.yaml from the config the study keeps.
    assert (sweep_dir / "best.yaml").read_text() == best_before
    assert "best.yaml skipped" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("params:\n  lrr: interval(1e-5, 1e-2)\n", "lrr: no such config key"),
        ("params:\n  lr: interval(1e-2, 1e-5)\n", "lr: interval(1e-2, 1e-5) is empty"),
        ("params:\n  lr: interval(1e-5\n", "lr: malformed expression"),
        ("params:\n  batch_size: choice()\n", "batch_size"),
        ("params:\n  loss: choice(bce, wgan)\n", "loss=wgan: no such option"),
        ("params: {}\n", "needs a non-empty 'params:'"),
        ("params: [\n", "not valid YAML"),
    ],
)
def test_malformed_spaces_fail_before_any_trial(tmp_path: Path, space: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = sweep(tmp_path, "--trials", "2", "--space", write_space(tmp_path, space), "--name", "bad", *TINY)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sweeps" / "bad").exists()


def test_broken_base_config_stops_before_the_first_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep(tmp_path, "--trials", "2", "--name", "broken", "model=mlp", "data=ring8", "lr=-1") == 2
    assert "lr=-1.0: must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "sweeps" / "broken").exists()


@pytest.mark.slow
def test_a_rerun_with_another_space_under_the_same_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep(tmp_path, "--trials", "1", "--name", "same", *TINY) == 0
    other = write_space(tmp_path, "params:\n  lr: interval(1e-4, 1e-3)\n")
    assert sweep(tmp_path, "--trials", "2", "--space", other, "--name", "same", *TINY) == 2
    assert "started with other space" in capsys.readouterr().err


@pytest.mark.slow
def test_a_rerun_samples_new_parameters_in_the_random_startup_phase(tmp_path: Path) -> None:
    # With the sampler seeded the same on every run, trial 2 repeated trial 1 (both the first random draw).
    assert sweep(tmp_path, "--trials", "2", "--name", "r", *TINY) == 0
    assert sweep(tmp_path, "--trials", "3", "--name", "r", *TINY) == 0
    frame = trials(tmp_path / "sweeps" / "r")
    lrs = list(frame["params.lr"])
    assert len(lrs) == 3 and len(set(lrs)) == 3


def test_workers_reruns_and_machines_get_different_sampler_seeds():
    from gansweep.sweep.driver import worker_seed

    seeds = {worker_seed(0, w, n, host, pid) for w in (0, 1) for n in (0, 6) for host in ("a", "b") for pid in (7, 8)}
    assert len(seeds) == 16
    assert worker_seed(0, 1, 6, "a", 7) == worker_seed(0, 1, 6, "a", 7)  # reproducible


def test_a_storage_password_never_reaches_the_terminal(tmp_path, capsys):
    from gansweep.sweep.study import redact_url

    assert redact_url("postgresql+psycopg2://ann:s3cr:et@db:5432/g") == "postgresql+psycopg2://ann:***@db:5432/g"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"
    code = main(["sweep", "--trials", "1", "--dir", str(tmp_path), "--storage", "postgresql://ann:s3cret@127.0.0.1:1/g",
                 "model=mlp", "data=ring8", "steps=2"])
    captured = capsys.readouterr()
    assert code == 2 and "s3cret" not in captured.out + captured.err
    assert "postgresql://ann:***@127.0.0.1:1/g" in captured.err
    assert not any("s3cret" in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


def test_a_bare_postgresql_url_gets_the_installed_driver():
    from gansweep.sweep.study import with_driver

    url = "postgresql://ann@db/g"
    assert with_driver(url, {"psycopg2"}) == "postgresql+psycopg2://ann@db/g"
    assert with_driver(url, {"psycopg"}) == "postgresql+psycopg://ann@db/g"
    assert with_driver(url, {"psycopg", "psycopg2"}) == "postgresql+psycopg2://ann@db/g"  # the [postgres] extra's driver
    assert with_driver(url, set()) == url  # none installed: Optuna says which module is missing
    assert with_driver("postgresql+psycopg://ann@db/g", {"psycopg2"}) == "postgresql+psycopg://ann@db/g"
    assert with_driver("sqlite:///s.db", {"psycopg2"}) == "sqlite:///s.db"


def test_a_trial_whose_worker_died_before_marking_it_alive_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between study.ask() and storing its pid and heartbeat, a worker leaves a
    RUNNING trial with nothing to judge it by but when it was asked."""
    import optuna

    from gansweep.sweep import study as study_module

    study = optuna.create_study(storage=study_module.make_storage(None, tmp_path), study_name="orphan")
    orphan = study.ask({"lr": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)})
    monkeypatch.setattr(study_module, "GRACE_S", 0.0)  # as if its grace period had passed
    time.sleep(0.01)

    assert study_module.retry_stale_trials(study) == [orphan.number]
    retry = study.trials[-1]
    assert retry.state.name == "WAITING" and retry.user_attrs["retry_of"] == orphan.number


# A `gansweep sweep` worker that kill -9s itself between study.ask() and marking the trial
# alive (the milliseconds a real kill hits only by luck), or, with --grace, one that judges
# a heartbeat-less trial stale after that many seconds instead of a minute.
KILLED_AFTER_ASK = """
import os, signal, sys
from gansweep.sweep import driver, study
if sys.argv[1] == "--kill-after-ask":
    driver.mark_alive = lambda trial: os.kill(os.getpid(), signal.SIGKILL)
else:
    study.GRACE_S = float(sys.argv[2])
from gansweep.cli import main
sys.exit(main(["sweep", *sys.argv[3:]]))
"""


@pytest.mark.slow
def test_a_worker_killed_between_ask_and_heartbeat_leaves_no_trial_running_forever(tmp_path: Path) -> None:
    """Real processes: the killed worker's trial used to stay RUNNING, and every rerun of
    --trials 2 ended at 1 finished, exit 0."""
    from train_helpers import subprocess_env

    args = ["--dir", str(tmp_path), "--trials", "2", "--name", "orphan", *TINY]

    def worker(*how: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", KILLED_AFTER_ASK, *how, *args], capture_output=True, text=True,
                              env=subprocess_env(), timeout=300)

    assert worker("--kill-after-ask", "-").returncode == -signal.SIGKILL
    time.sleep(1.5)  # the grace period the rerun is given, passed
    rerun = worker("--grace", "1")
    assert rerun.returncode == 0, rerun.stderr
    frame = trials(tmp_path / "orphan").set_index("trial")
    assert frame.loc[0, "status"] == "failed" and frame["retry_of"].dropna().tolist() == [0]
    assert sorted(frame.drop(index=0)["status"]) == ["completed"] * 2


# A `gansweep sweep` whose every checkpoint write finds the disk full.
DISK_FULL = """
import errno, sys
from gansweep import rundir
def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
rundir.RunFolder.save_checkpoint = full
from gansweep.cli import main
sys.exit(main(["sweep", *sys.argv[1:]]))
"""


@pytest.mark.slow
def test_a_full_disk_stops_the_sweep_in_one_line_and_a_rerun_trains_the_trial(tmp_path: Path) -> None:
    """Trials failed for lack of space used to count as finished: the budget burnt in
    seconds, exit 0, and a rerun never redid them."""
    from train_helpers import gansweep_process, subprocess_env

    args = ["--dir", str(tmp_path), "--trials", "3", "--name", "full", *TINY]
    full = subprocess.run([sys.executable, "-c", DISK_FULL, *args], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert full.returncode == 2
    assert full.stderr.strip().splitlines() == ["error: No space left on device; check the path, its permissions and the free space"]

    rerun = gansweep_process("sweep", *args, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    frame = trials(tmp_path / "full").set_index("trial")
    assert frame["retry_of"].dropna().tolist() == [0]  # the trial the full disk stopped, trained again
    assert frame.loc[0, "status"] == "failed" and sorted(frame.drop(index=0)["status"]) == ["completed"] * 3


@pytest.mark.slow
def test_a_journal_record_torn_by_a_full_disk_is_dropped_and_the_sweep_goes_on(tmp_path: Path) -> None:
    assert sweep(tmp_path, "--trials", "1", "--name", "torn", *TINY) == 0
    journal = tmp_path / "sweeps" / "torn" / "study.journal"
    with open(journal, "ab") as fh:  # what a write cut short by ENOSPC leaves
        fh.write(b'{"op_code": 5, "worker_id": "x", "trial_id": 0, "user_attr')

    assert sweep(tmp_path, "--trials", "2", "--name", "torn", *TINY) == 0
    assert sweep(tmp_path, "--trials", "3", "--name", "torn", *TINY) == 0  # reads the journal the second run appended to
    assert sorted(trials(tmp_path / "sweeps" / "torn")["status"]) == ["completed"] * 3


@pytest.mark.slow
def test_sigterm_stops_a_two_worker_sweep_as_ctrl_c_does(tmp_path: Path) -> None:
    """SIGTERM (kill, a scheduler) used to end the parent silently, leaving no trials.csv."""
    from train_helpers import subprocess_env

    args = [sys.executable, "-m", "gansweep", "sweep", "--dir", str(tmp_path), "--name", "term", "--trials", "4",
            "--workers", "2", *TINY, "steps=3000", "checkpoint_every=50"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    deadline = time.time() + 120
    while not list((tmp_path / "term").glob("trial_*/checkpoints/last.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, err
    assert "sweep interrupted" in out and "Traceback" not in err
    frame = trials(tmp_path / "term")
    assert len(frame) >= 2 and "running" not in set(frame["state"])  # each worker's trial left to be retried
    # Nothing completed: no best.yaml, and the results line does not promise one.
    results = next(line for line in out.splitlines() if line.startswith("results:"))
    assert "trials.csv" in results and "best.yaml" not in results and not (tmp_path / "term" / "best.yaml").exists()


@pytest.mark.slow
def test_a_retried_trial_resumes_in_a_folder_only_its_worker_writes(tmp_path: Path) -> None:
    """The retry copies the stale trial's folder, claim included, which names the dead
    worker: the retrying worker takes the claim over, so a resume= beside it is refused."""
    import socket

    import optuna

    from gansweep.rundir import SweepMembership
    from gansweep.sweep.study import make_storage
    from gansweep.sweep.trial import TrialPlan, prepare_trial, trial_dir
    from gansweep.train import TrainHooks, train
    from train_helpers import gansweep_process

    def stop(row: dict) -> None:
        if row["step"] == 20:
            raise KeyboardInterrupt

    sweep_dir, overrides = tmp_path / "s", [*TINY, "checkpoint_every=10"]
    stale = trial_dir(sweep_dir, 0)
    train(to_train_config(compose_config(overrides)), stale, overrides, TrainHooks(on_log=stop),
          sweep=SweepMembership("s", 0, {}, ["mixture_tv"]))
    dead = subprocess.Popen(["true"])
    dead.wait()
    (stale / ".gansweep-run").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    study = optuna.create_study(storage=make_storage(None, sweep_dir), study_name="s")
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # trial 0, failed as stale
    study.enqueue_trial({}, user_attrs={"retry_of": 0})

    prepared = prepare_trial(TrialPlan("s", sweep_dir, overrides, ["mixture_tv"], prune=False), study, study.ask())
    assert prepared.resume
    beside = gansweep_process("train", f"resume={prepared.out_dir}")
    assert beside.returncode == 2 and f"still training ({socket.gethostname()} pid {os.getpid()})" in beside.stderr
