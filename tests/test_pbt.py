"""Population-based training (gansweep.pbt, `gansweep pbt`): exploit copies a better
member's rows, explore stays in the space, a generator that does not work is never
copied, and the best member's history replays from scratch and confirms."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
import yaml
from optuna.distributions import FloatDistribution

from gansweep.config import compose_config, to_train_config
from gansweep.errors import CheckpointError
from gansweep.rundir import RunFolder
from gansweep.opcount import population_of
from gansweep.lineage import History
from gansweep.pbt import PERTURB, PbtRules, explore, pbt_round, rank_score

from train_helpers import gansweep_process, subprocess_env

SPACE = {"lr_g": FloatDistribution(1e-5, 3e-3, log=True), "beta1": FloatDistribution(0.0, 0.9)}
# Wide modes (std 0.5): samples reach them within a few hundred steps, so members work.
TINY = ["model=mlp", "data=ring8", "data.std=0.5", "model.hidden=32", "eval.mixture_samples=500", "threads=1"]
VALUES = {"lr_g": 1e-3, "lr_d": 2e-3, "beta1": 0.5, "beta2": 0.999}


def test_explore_scales_by_its_factors_or_resamples_and_stays_in_bounds() -> None:
    rng = np.random.default_rng(0)
    scaled = [explore(VALUES, PbtRules(10, 0.25, 0.0, SPACE), rng) for _ in range(200)]
    assert {round(v["lr_g"] / VALUES["lr_g"], 9) for v in scaled} == set(PERTURB)
    assert all(v["lr_d"] == VALUES["lr_d"] and v["beta2"] == VALUES["beta2"] for v in scaled)  # not searched: kept
    top = explore({**VALUES, "lr_g": 3e-3, "beta1": 0.9}, PbtRules(10, 0.25, 0.0, SPACE), rng)
    assert top["lr_g"] <= 3e-3 and top["beta1"] <= 0.9  # 1.25x clipped to the space
    drawn = [explore(VALUES, PbtRules(10, 0.25, 1.0, SPACE), rng)["beta1"] for _ in range(200)]
    assert 0.0 <= min(drawn) and max(drawn) <= 0.9 and len(set(drawn)) == 200
    both = explore(VALUES, PbtRules(10, 0.25, 0.0, {"lr": FloatDistribution(1e-5, 1e-2, log=True)}), rng)
    assert both["lr_g"] / VALUES["lr_g"] == pytest.approx(both["lr_d"] / VALUES["lr_d"])  # lr moves both


def test_a_generator_that_does_not_work_never_ranks() -> None:
    working = {"mixture_tv": 0.4, "modes_covered": 6, "modes_total": 8, "hq_fraction": 0.9}
    noise = {"mixture_tv": 0.35, "modes_covered": 0, "modes_total": 8, "hq_fraction": 0.01}  # better tv, no mode
    assert rank_score(working, "mixture_tv") == 0.4
    assert rank_score(noise, "mixture_tv") is None
    assert rank_score({"coverage": 0.8}, "coverage") == -0.8  # higher is better: ranked by its negative


def test_history_schedule_lists_only_the_changes() -> None:
    h = History([(0, VALUES), (100, {**VALUES, "lr_g": 5e-4}), (200, {**VALUES, "lr_g": 5e-4, "beta1": 0.0})])
    assert h.schedule() == (VALUES, [{"step": 100, "lr_g": 5e-4}, {"step": 200, "beta1": 0.0}])


def test_a_round_copies_the_best_rows_into_the_worst_and_sets_its_new_values(tmp_path: Path) -> None:
    cfgs = [to_train_config(compose_config([*TINY, "steps=100", f"seed={i}", f"lr={lr}"])) for i, lr in enumerate((1e-3, 2e-4, 5e-4))]
    pop = population_of(cfgs, tmp_path)
    pop.advance(20)
    for m, tv in zip(pop.members, (0.3, 0.9, 0.5)):  # member 0 best, member 1 worst
        m.summary.scores = {"mixture_tv": tv, "modes_covered": 8, "modes_total": 8, "hq_fraction": 0.9}
    histories = [History([(0, dict(m.hparams))]) for m in pop.members]
    lines = pbt_round(pop, [0, 1, 2], histories, PbtRules(20, 0.34, 0.0, SPACE), "mixture_tv", np.random.default_rng(0),
                      [m.summary.scores for m in pop.members])
    assert len(lines) == 1 and lines[0].startswith("step 20: member 1 (mixture_tv 0.9) copies member 0 (0.3)")
    s = pop.stack
    for rows in (s.g.flat, s.d.flat, s.adam_g.exp_avg, s.adam_d.exp_avg_sq, s.ema_flat):
        assert torch.equal(rows[1], rows[0]) and not torch.equal(rows[2], rows[0])
    new = pop.members[1].hparams
    assert any(new["lr_g"] / 1e-3 == pytest.approx(f) for f in PERTURB) and new["lr_d"] == 1e-3  # the donor's values, explored
    assert s.knobs.lr[1].tolist() == pytest.approx([new["lr_g"], new["lr_d"]]) and s.knobs.betas_host[1] == (new["beta1"], new["beta2"])
    assert histories[1].steps == [(0, histories[0].steps[0][1]), (20, new)]  # the donor's start, then its own
    assert histories[1].copies == [{"step": 20, "from": 0, "mixture_tv": 0.9, "donor_mixture_tv": 0.3}]


@pytest.fixture(scope="module")
def pbt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pbt")
    proc = gansweep_process("pbt", "--members", "4", "--ready", "0.2", "--dir", str(out), "--name", "p", *TINY, "steps=300", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "copies member" in proc.stdout and "replay it from scratch: gansweep train --config-dir" in proc.stdout
    return out / "p"


@pytest.mark.slow
def test_pbt_leaves_a_study_a_folder_per_member_with_its_lineage_and_a_replay_config(pbt_dir: Path) -> None:
    study = optuna.load_study(study_name="p", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(pbt_dir / "study.journal"))))
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    trials = pd.read_csv(pbt_dir / "trials.csv")
    assert sorted(trials["trial"]) == [0, 1, 2, 3]
    lineages = {t.number: json.loads((pbt_dir / f"trial_{t.number:04d}" / "pbt.json").read_text()) for t in study.trials}
    assert any(lineage["copies"] for lineage in lineages.values())
    assert (pbt_dir / "lineage.png").stat().st_size > 10_000
    best = yaml.safe_load((pbt_dir / "best.yaml").read_text())
    (number,) = [t.number for t in study.trials if t.user_attrs["config"]["seed"] == best["seed"]]
    assert (pbt_dir / "best.yaml").read_text().startswith(f"# Best member of PBT run {pbt_dir.name}: member {number} (")
    assert best["schedule"] == lineages[number]["schedule"] == study.trials[number].user_attrs["schedule"]
    assert {k: best[k] for k in ("lr_g", "lr_d", "beta1", "beta2")} == pytest.approx(lineages[number]["start"])


@pytest.mark.slow
def test_a_member_that_never_copied_replays_to_its_own_numbers(pbt_dir: Path, tmp_path: Path) -> None:
    """The replay path end to end: a member that kept its weights has an empty schedule, and
    `gansweep train` on its replay config trains what it trained (float32, stacked vs solo)."""
    study = optuna.load_study(study_name="p", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(pbt_dir / "study.journal"))))
    kept = next(t for t in study.trials if not t.user_attrs["copies"])
    assert kept.user_attrs["schedule"] == []
    (tmp_path / "replay.yaml").write_text(yaml.safe_dump({"defaults": ["config", {"override /model": "mlp"}, {"override /data": "ring8"}, "_self_"],
                                                          **{k: v for k, v in kept.user_attrs["config"].items() if k not in ("resume", "threads")}}))
    proc = gansweep_process("train", "--config-dir", str(tmp_path), "--config-name", "replay", f"hydra.run.dir={tmp_path / 'run'}", "threads=1")
    assert proc.returncode == 0, proc.stderr
    mine = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (pbt_dir / f"trial_{kept.number:04d}" / "metrics.jsonl").read_text().splitlines()]
    losses = lambda rows: [r["loss_d"] for r in rows if r["kind"] == "train"]  # noqa: E731
    assert losses(mine) == pytest.approx(losses(theirs), rel=1e-4)


@pytest.mark.slow
def test_a_pbt_member_refuses_a_plain_resume(pbt_dir: Path, tmp_path: Path) -> None:
    """A member stopped mid-run (here: a copy marked interrupted) cannot be continued as a
    plain run: its config.yaml no longer says what its weights went through."""
    member = tmp_path / "member"
    shutil.copytree(pbt_dir / "trial_0000", member)
    summary = json.loads((member / "summary.json").read_text())
    (member / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    proc = gansweep_process("train", f"resume={member}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {member}: a member of population-based training, whose weights and hyperparameters changed "
        "mid-run as pbt.json records; replay its history from scratch with the PBT folder's best.yaml"]


@pytest.mark.parametrize("args, message", [
    (["--members", "1"], "error: --members 1: must be >= 2 (one member has no one to copy)"),
    (["--ready", "0.7"], "error: --ready 0.7: must be in (0, 0.5]"),
    (["--space", "default.yaml"], "error: sweeps/default.yaml: batch_size: PBT changes only lr, lr_g, lr_d, beta1, beta2 mid-run; "
                                  "fix batch_size with an override instead"),
])
@pytest.mark.slow
def test_bad_pbt_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = gansweep_process("pbt", *args, "--dir", str(tmp_path), *TINY, "steps=20")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [message]
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_a_finished_pbt_folder_is_never_reused(pbt_dir: Path) -> None:
    proc = gansweep_process("pbt", "--dir", str(pbt_dir.parent), "--name", "p", *TINY, "steps=20")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: --name p: {pbt_dir} holds a finished PBT run; its results stay there, give a new --name"


def test_a_member_continues_from_the_checkpoint_of_the_recorded_round(tmp_path: Path) -> None:
    """Killed while the members wrote the next round's checkpoints, a member whose last.pt is
    already past the round continues from previous.pt, which becomes last.pt again."""
    run = RunFolder(tmp_path)
    for step in (200, 400):
        run.save_checkpoint({"step": step})
    assert run.load_checkpoint_of_step(400)["step"] == 400
    assert run.load_checkpoint_of_step(200)["step"] == 200
    assert torch.load(run.last_checkpoint)["step"] == 200 and not run.previous_checkpoint.exists()
    with pytest.raises(CheckpointError, match=r"no checkpoint of step 600 to continue from \(last.pt: step 200; previous.pt: none\)"):
        run.load_checkpoint_of_step(600)


def _rows(member: Path) -> list[dict]:
    """metrics.jsonl without its clock readings."""
    clock = ("time_s", "images_per_s", "eval_time_s")
    return [{k: v for k, v in json.loads(line).items() if k not in clock} for line in (member / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_pbt_run_killed_mid_run_continues_bit_for_bit(tmp_path: Path) -> None:
    """kill -9 after a few rounds, then the same command: every member's log, lineage and
    final score, the study and best.yaml equal those of a run never stopped."""
    args = ["--members", "4", "--ready", "0.1", "--dir", str(tmp_path), *TINY, "steps=1500"]
    whole = gansweep_process("pbt", *args, "--name", "whole", timeout=600)
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen([sys.executable, "-m", "gansweep", "pbt", *args, "--name", "cut"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=subprocess_env())
    state = tmp_path / "cut" / "pbt_state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["step"] >= 450:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed mid-run"
    proc.kill()
    proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert 450 <= killed_at < 1500
    again = gansweep_process("pbt", *args, "--name", "cut", timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"continuing from step {killed_at} (the last round recorded)" in again.stdout
    for member in range(4):
        mine, theirs = (tmp_path / run / f"trial_{member:04d}" for run in ("cut", "whole"))
        assert _rows(mine) == _rows(theirs)
        assert json.loads((mine / "pbt.json").read_text()) == json.loads((theirs / "pbt.json").read_text())
    assert yaml.safe_load((tmp_path / "cut" / "best.yaml").read_text()) == yaml.safe_load((tmp_path / "whole" / "best.yaml").read_text())
    values = [pd.read_csv(tmp_path / run / "trials.csv")["mixture_tv"].tolist() for run in ("cut", "whole")]
    assert values[0] == values[1]
    assert gansweep_process("pbt", *args, "--name", "cut").stderr.strip().endswith("holds a finished PBT run; its results stay there, give a new --name")


@pytest.mark.slow
def test_the_report_draws_the_lineage_beside_the_members(pbt_dir: Path, tmp_path: Path) -> None:
    proc = gansweep_process("report", str(pbt_dir), "--html", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "r.html").read_text()
    assert 'id="plot-lineage_p"' in page and "each member&#x27;s hyperparameters by step, coloured by mixture_tv" in page
    assert page.count("trial_000") >= 4  # every member a row
