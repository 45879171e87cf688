"""Scores in a real run folder, and `gansweep eval` recomputing them from the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gansweep import member, population
from gansweep.cli import main
from gansweep.config import compose_config, to_train_config
from gansweep.health import not_working
from gansweep.rundir import SweepMembership
from gansweep.train import train

SCORES = ("fid", "precision", "recall", "density", "coverage", "modes_covered", "modes_total", "mode_kl", "confidence")
TINY_DCGAN = ["model.ngf=8", "model.ndf=8", "batch_size=16", "steps=8", "log_every=4", "eval.n_samples=300"]


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("eval") / "run"
    assert main(["train", f"hydra.run.dir={run}", *TINY_DCGAN]) == 0
    return run


@pytest.mark.slow
def test_a_short_dcgan_run_records_every_score_with_its_provenance(scored_run: Path) -> None:
    summary = json.loads((scored_run / "summary.json").read_text())
    scores, provenance = summary["scores"], summary["provenance"]
    for key in SCORES:
        assert scores[key] is not None, key
    assert scores["modes_total"] == 10
    assert provenance["n_fake"] == 300 and provenance["n_real"] == 300
    assert provenance["feature_net"] == "digit_cnn" and len(provenance["feature_net_sha256"]) == 64
    assert provenance["feature_domain"] == "digits"
    assert summary["best_fid"] <= scores["fid"]
    evals = [json.loads(line) for line in (scored_run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [e["step"] for e in evals] == [2, 4, 6, 8]
    assert all(e["eval_time_s"] > 0 for e in evals)
    assert min(e["fid"] for e in evals) == pytest.approx(summary["best_fid"])
    best = torch.load(scored_run / "checkpoints" / "best.pt", weights_only=False)
    assert best["score"] == "fid" == summary["best_of"]["score"]  # a digit run's objective
    assert best["step"] == summary["best_fid_step"] and best["fid"] == pytest.approx(summary["best_fid"])
    assert not {"fixed_z", "config"} & set(best)  # unread state; config.yaml and config_sha256 identify the run


@pytest.mark.slow
def test_digit_network_scores_of_non_digit_images_are_marked_in_the_summary(tmp_path: Path) -> None:
    """fashion_mnist offline (and any folder of images scored with digit_cnn) gets the
    digit network's FID; the summary says so, so nobody compares it with published FIDs."""
    from gansweep.scores import OFF_DOMAIN
    from train_helpers import write_images

    images = tmp_path / "images"
    write_images(images, [f"{i}.png" for i in range(40)], size=(28, 28), mode="L")
    run = tmp_path / "run"
    assert main(["train", f"hydra.run.dir={run}", *TINY_DCGAN, "data=folder", f"data.root={images}", "data.image_size=28",
                 "data.channels=1", "data.feature_net=digit_cnn", "eval.n_samples=40"]) == 0
    provenance = json.loads((run / "summary.json").read_text())["provenance"]
    assert provenance["feature_net"] == "digit_cnn" and provenance["feature_domain"] == OFF_DOMAIN


def test_gansweep_eval_reproduces_the_final_scores(scored_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = json.loads((scored_run / "summary.json").read_text())
    assert main(["eval", str(scored_run)]) == 0
    after = json.loads((scored_run / "summary.json").read_text())
    assert after["scores"] == before["scores"]  # the run's own scores stay; eval's are recorded beside them
    for key in SCORES:
        assert after["last_checkpoint_scores"][key] == pytest.approx(before["scores"][key], rel=1e-9), key
    assert after["last_checkpoint_scores"]["step"] == after["evaluated_step"] == 8
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("run folder:")


def test_gansweep_eval_with_another_sample_count_records_it(scored_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(scored_run, copy)
    before = json.loads((copy / "summary.json").read_text())
    assert main(["eval", str(copy), "--samples", "100"]) == 0
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["last_checkpoint_scores"]["n_fake"] == 100
    assert summary["provenance"] == before["provenance"] and summary["scores"] == before["scores"]  # the full count's


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_missing_or_damaged_checkpoint_is_one_clear_line(scored_run: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(scored_run, copy)
    ckpt = copy / "checkpoints" / "last.pt"
    if damage == "missing":
        ckpt.unlink()
    else:
        ckpt.write_bytes(b"not a checkpoint")
    summary_before = (copy / "summary.json").read_text()
    assert main(["eval", str(copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "last.pt" in err
    assert ("no checkpoint" if damage == "missing" else "damaged checkpoint") in err
    assert (copy / "summary.json").read_text() == summary_before


def test_eval_of_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_auto_feature_net_is_inception_only_where_it_can_run_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gansweep.metrics import inception
    from gansweep.scoring import resolve_feature_net

    weights = tmp_path / inception.WEIGHTS_NAME
    monkeypatch.setenv(inception.ENV_VAR, str(weights))
    assert resolve_feature_net("auto") == "digit_cnn"  # no weights file: no download attempted
    weights.write_bytes(b"weights")
    has_fid = inception.importlib.util.find_spec("pytorch_fid") is not None
    assert resolve_feature_net("auto") == ("inception" if has_fid else "digit_cnn")
    assert resolve_feature_net("digit_cnn") == "digit_cnn"


def test_live_curves_show_the_runs_evaluations(scored_run: Path) -> None:
    import numpy as np
    from PIL import Image

    path = scored_run / "curves.png"
    with Image.open(path) as img:
        assert img.size == (1300, 340)  # three panels: losses, D outputs, fid
        colours = len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0))
    assert colours > 50  # lines and text, not an empty canvas
    assert path.stat().st_mtime >= (scored_run / "checkpoints" / "best.pt").stat().st_mtime - 1


@pytest.mark.parametrize(("every_s", "drawn"), [(60.0, 1), (0.0, 5)])
def test_curves_are_redrawn_at_most_once_an_interval_and_at_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   every_s: float, drawn: int) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(member, "CURVES_EVERY_S", every_s)
    monkeypatch.setattr(member, "save_run_curves", lambda rows, path, objective, title: calls.append(path))
    run = tmp_path / "ring8"
    assert main(["train", f"hydra.run.dir={run}", "model=mlp", "data=ring8", "model.hidden=8", "steps=40", "eval_every=10",
                 "eval.mixture_samples=200"]) == 0
    # 4 evaluations: a run shorter than the interval draws once, at its end; with no interval,
    # at every evaluation and again at the end.
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [10, 20, 30, 40]
    assert calls == [run / "curves.png"] * drawn


def test_a_2d_run_keeps_its_best_generator_by_its_objective(tmp_path: Path) -> None:
    run = tmp_path / "ring8"
    assert main(["train", f"hydra.run.dir={run}", "model=mlp", "data=ring8", "model.hidden=16", "steps=40", "eval_every=10",
                 "eval.mixture_samples=500"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    # Working generators first, then lower is better; the first of equals kept.
    best_row = min(evals, key=lambda e: (not_working(e) is not None, e["mixture_tv"]))
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert summary["best_of"] == {"score": "mixture_tv", "value": best_row["mixture_tv"], "step": best_row["step"],
                                  "working": not_working(best_row) is None}
    assert best["score"] == "mixture_tv" and best["step"] == best_row["step"]
    assert main(["eval", str(run), "--checkpoint", "best"]) == 0


def test_a_trial_keeps_its_best_generator_by_the_sweeps_objective_in_its_direction(tmp_path: Path) -> None:
    """A sweep by modes_covered (higher is better) keeps best.pt where it first peaked: here step 30,
    where mixture_tv would keep step 40 and the wrong direction step 10."""
    cfg = to_train_config(compose_config(["model=mlp", "data=ring8", "data.std=0.5", "model.hidden=16", "steps=40",
                                          "eval_every=10", "eval.mixture_samples=500", "threads=1"]))
    run = tmp_path / "trial_0000"
    train(cfg, run, [], sweep=SweepMembership("modes", 0, {}, ["modes_covered"]), quiet=True)
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [e["modes_covered"] for e in evals] == [1, 1, 2, 2]  # measured: the runs near the modes cover more as they train
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_of"] == {"score": "modes_covered", "value": 2, "step": 30, "working": True}
    assert torch.load(run / "checkpoints" / "best.pt", weights_only=True)["step"] == 30


def test_best_pt_never_holds_a_generator_that_does_not_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spray that touches all 8 ring8 modes with 5% of its samples high quality has the
    best modes_covered of the run, but no working generator: best.pt keeps step 20's 6 modes."""
    scripted = iter([
        {"modes_covered": 8, "modes_total": 8, "hq_fraction": 0.05, "mixture_tv": 0.90},  # spray: not working
        {"modes_covered": 6, "modes_total": 8, "hq_fraction": 0.80, "mixture_tv": 0.30},
        {"modes_covered": 5, "modes_total": 8, "hq_fraction": 0.85, "mixture_tv": 0.35},
        {"modes_covered": 7, "modes_total": 8, "hq_fraction": 0.04, "mixture_tv": 0.88},  # spray again
    ])
    monkeypatch.setattr(population, "score_stack", lambda evaluators, *args, **kwargs: [dict(next(scripted)) for _ in evaluators])
    cfg = to_train_config(compose_config(["model=mlp", "data=ring8", "model.hidden=8", "steps=40", "eval_every=10",
                                          "eval.mixture_samples=200", "threads=1"]))
    run = tmp_path / "trial_0000"
    train(cfg, run, [], sweep=SweepMembership("modes", 0, {}, ["modes_covered"]), quiet=True)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_of"] == {"score": "modes_covered", "value": 6, "step": 20, "working": True}
    assert torch.load(run / "checkpoints" / "best.pt", weights_only=True)["step"] == 20
