"""`gansweep train` end to end: tiny real runs into tmp_path, checked through their files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from train_helpers import (
    TINY_DCGAN,
    TINY_MLP,
    assert_complete_run,
    gansweep_process,
    losses,
    png_size,
    subprocess_env,
    summary,
    train_cli,
    train_rows,
    write_images,
)

from gansweep.config import from_yaml_file
from gansweep.errors import RunFolderError
from gansweep.rundir import RunFolder

CONF = Path(__file__).resolve().parents[1] / "conf"
LOSSES = ("bce", "lsgan", "hinge", "wgan_gp")


# Every model with every loss ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model,data,tiny", [("dcgan", "mnist5k", TINY_DCGAN), ("mlp", "ring8", TINY_MLP)])
def test_each_model_and_loss_writes_a_complete_run_folder(tmp_path, model, data, tiny, loss):
    run = tmp_path / "run"
    assert train_cli(*tiny, f"loss={loss}", "steps=4", "batch_size=16", "log_every=2", f"hydra.run.dir={run}") == 0
    s = assert_complete_run(run, steps=4, model=model, data=data, loss=loss)
    assert [r["step"] for r in train_rows(run)] == [2, 4]
    if loss == "bce":  # d_real/d_fake are probabilities for bce only
        assert 0 < s["last_train"]["d_real"] < 1 and 0 < s["last_train"]["d_fake"] < 1
    assert (run / ".hydra" / "config.yaml").is_file()


def test_sample_pictures_are_real_pngs_of_sensible_size(tmp_path):
    grid_run, scatter_run = tmp_path / "grid", tmp_path / "scatter"
    assert train_cli(*TINY_DCGAN, "steps=2", "batch_size=8", f"hydra.run.dir={grid_run}") == 0
    assert train_cli(*TINY_MLP, "steps=2", "batch_size=8", f"hydra.run.dir={scatter_run}") == 0

    # 64 images of 28 px, 8 per row, 2 px padding: 8 * 30 + 2 = 242 px square.
    grid = grid_run / "samples" / "step_0000002.png"
    assert png_size(grid) == (242, 242)
    from PIL import Image

    with Image.open(grid) as img:
        pixels = np.asarray(img.convert("L"), dtype=np.float32)
    assert pixels.std() > 1.0, "the grid is one flat colour"

    width, height = png_size(scatter_run / "samples" / "step_0000002.png")
    assert 250 <= width <= 600 and 250 <= height <= 600  # a 5x5 inch figure at 100 dpi, trimmed


def test_budget_images_counts_batches_times_n_critic(tmp_path):
    run = tmp_path / "run"
    # wgan_gp shows D 5 batches of 16 per G step: 320 images are 4 steps.
    assert train_cli(*TINY_MLP, "loss=wgan_gp", "images=320", "batch_size=16", f"hydra.run.dir={run}") == 0
    s = summary(run)
    assert (s["total_steps"], s["steps"], s["images_seen"]) == (4, 4, 320)


def test_budget_steps_win_over_images_and_epochs(tmp_path):
    run = tmp_path / "run"
    assert train_cli(*TINY_MLP, "steps=3", "images=100000", "epochs=9", "batch_size=16", f"hydra.run.dir={run}") == 0
    assert summary(run)["steps"] == 3


def test_epochs_budget_holds_when_the_data_set_is_smaller_than_a_batch(tmp_path):
    images = tmp_path / "images"
    write_images(images, [f"{i}.png" for i in range(4)])
    run = tmp_path / "run"
    assert train_cli(
        *TINY_DCGAN, "data=folder", f"data.root={images}", "data.image_size=16", "data.channels=3",
        "epochs=5", "batch_size=16", f"hydra.run.dir={run}",
    ) == 0
    assert summary(run)["epochs"] == 5.0


# Image folders ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["flat", "imagefolder"])
def test_folder_of_images_trains(tmp_path, layout):
    images = tmp_path / "images"
    names = [f"{i}.png" for i in range(5)] if layout == "flat" else ["cats/a.png", "cats/b.jpg", "dogs/c.png", "dogs/d.png"]
    write_images(images, names)
    (images / "README.txt").write_text("not an image")
    run = tmp_path / "run"
    assert train_cli(
        *TINY_DCGAN, "data=folder", f"data.root={images}", "data.image_size=32", "data.channels=3",
        "steps=2", "batch_size=4", f"hydra.run.dir={run}",
    ) == 0
    s = assert_complete_run(run, steps=2, model="dcgan", data="folder", loss="bce")
    assert s["epochs"] == 2 * 4 / len(names)
    assert png_size(run / "samples" / "step_0000002.png") == (8 * 34 + 2, 8 * 34 + 2)  # 64 RGB images of 32 px


# Hydra's own flags --------------------------------------------------------------------


def test_cfg_job_prints_the_composed_config_and_trains_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train_cli("--cfg", "job", "model=mlp", "data=grid25", "lr=1e-3", "loss=wgan_gp") == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["model"]["name"] == "mlp" and cfg["model"]["hidden"] == 256
    assert cfg["data"]["name"] == "grid25" and cfg["data"]["std"] == 0.05
    assert cfg["loss"] == {"name": "wgan_gp", "gp_weight": 10.0, "n_critic": 5}
    assert cfg["lr"] == 1e-3 and cfg["batch_size"] == 64
    assert list(tmp_path.iterdir()) == []


def test_help_lists_every_config_group_option(capsys):
    assert train_cli("--help") == 0
    out = capsys.readouterr().out
    groups = {}
    for line in out.split("== Configuration groups ==")[1].split("== Config ==")[0].splitlines():
        if ": " in line:
            group, options = line.split(": ", 1)
            groups[group.strip()] = set(options.split(", "))
    for group in ("model", "data", "loss"):
        assert {p.stem for p in (CONF / group).glob("*.yaml")} <= groups[group]


def test_multirun_makes_one_complete_folder_per_value(tmp_path):
    sweep = tmp_path / "sweep"
    assert train_cli("-m", *TINY_MLP, "lr=1e-4,2e-4", "steps=3", "batch_size=8", f"hydra.sweep.dir={sweep}") == 0
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in runs] == ["0_mlp_ring8", "1_mlp_ring8"]
    for run, lr in zip(runs, (1e-4, 2e-4)):
        s = assert_complete_run(run, steps=3, model="mlp", data="ring8", loss="bce")
        assert s["lr"] == s["lr_g"] == s["lr_d"] == lr
        assert f"lr={lr}" in yaml.safe_load((run / "overrides.yaml").read_text())
    assert losses(runs[0]) != losses(runs[1])


# Bad values ---------------------------------------------------------------------------


def _broken_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "broken"
    write_images(folder, ["good.png"])
    (folder / "broken.png").write_bytes(b"this is not a png")
    return folder


BAD_VALUES = {
    "negative lr": (["lr=-1"], r"^lr=-1\.0: must be a positive number"),
    "zero batch": (["batch_size=0"], r"^batch_size=0: must be an integer >= 1"),
    "beta1 too big": (["beta1=1.5"], r"^beta1=1\.5: must be in \[0, 1\)"),
    "no such model": (["model=foo"], r"^model=foo: no such option; choose one of dcgan, mlp$"),
    "epochs not a number": (["epochs=abc"], r"^epochs=abc: .*could not be converted to Float"),
    "unknown key": (["foo=1"], r"^foo=1: no such config key \(gansweep train --cfg job lists every key\)$"),
    "unknown key added": (["+foo=1"], r"^\+foo=1: no such config key \(gansweep train --cfg job lists every key\)$"),
    "misspelt stabilizer added": (["+stabilize.emaa=0.99"], r"^\+stabilize\.emaa=0\.99: no such config key; did you mean stabilize\.ema\?"),
    "stabilizer without its group": (["+ema=0.99"], r"^\+ema=0\.99: no such config key; did you mean stabilize\.ema\?"),
    "unknown model key": (["model.width=3"], r"^model\.width=3: no such config key"),
    "misspelt model key added": (["+model.ngff=3"], r"^\+model\.ngff=3: no such config key; did you mean model\.ngf\?"),
    "zero model width": (["model.ngf=0"], r"^model\.ngf=0: must be >= 1"),
    "no budget": (["steps=null", "epochs=null"], r"set a budget: steps, images or epochs"),
    "bad device": (["device=tpu"], r"^device=tpu: Invalid value 'tpu'"),
    "missing folder": (["data=folder", "data.root={tmp}/missing"], r"^data\.root=.*/missing: no such folder"),
    "empty folder": (["data=folder", "data.root={tmp}"], r"^data\.root=.*: no images"),
    "unreadable image": (["data=folder", "data.root={broken}"], r"broken\.png: unreadable image \(UnidentifiedImageError\)"),
    "odd image size": (["data=folder", "data.root={images}", "data.image_size=30"], r"^data\.image_size=30: DCGAN needs 7\*2\^k"),
    "points into dcgan": (["model=dcgan", "data=ring8"], r"^model=dcgan: data=ring8 is not images; use model=mlp"),
    "batch norm with gp": (["loss=wgan_gp", "model.d_norm=batch"], r"^model\.d_norm=batch: batch norm breaks"),
    "bad value in a sweep": (["-m", "lr=1e-4,-1"], r"^lr=-1\.0: must be a positive number"),
}


@pytest.mark.parametrize("overrides,message", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_value_fails_in_one_line_with_exit_2_and_leaves_no_folder(tmp_path, monkeypatch, capsys, overrides, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    images = tmp_path / "images"
    write_images(images, ["a.png", "b.png"])
    fill = {"tmp": empty, "broken": _broken_folder(tmp_path), "images": images}
    overrides = [o.format(**fill) for o in overrides]
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    out = tmp_path / "out"

    flags = [o for o in overrides if o.startswith("-")]  # Hydra takes -m only before the overrides
    overrides = [o for o in overrides if not o.startswith("-")]
    code = train_cli(*flags, "steps=2", "model.z_dim=4", *overrides, f"hydra.run.dir={out}/run", f"hydra.sweep.dir={out}/sweep")

    assert code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert_matches(lines[0][len("error: "):], message)
    assert set(tmp_path.iterdir()) == before, "a run folder (or outputs/) was left behind"


def assert_matches(text: str, pattern: str) -> None:
    import re

    assert re.search(pattern, text), f"{text!r} does not match {pattern!r}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_fails_with_exit_2(tmp_path, capsys):
    assert train_cli(*TINY_MLP, "device=cuda", "steps=1", f"hydra.run.dir={tmp_path}/out/run") == 2
    assert "device=cuda: no CUDA device here; use device=auto or device=cpu" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["validation", "inside the run"])
def test_bad_value_in_a_real_process_exits_2_without_traceback(tmp_path, where):
    bad = ["lr=-1"] if where == "validation" else ["data=folder", f"data.root={tmp_path}/missing"]
    proc = gansweep_process("train", *bad, "steps=1", f"hydra.run.dir={tmp_path}/out/run", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_failed_run_never_deletes_a_folder_that_existed_before(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert train_cli(*TINY_MLP, "data=folder", f"data.root={tmp_path}/missing", f"hydra.run.dir={mine}") == 2
    assert (mine / "notes.txt").read_text() == "keep me"


def test_main_returns_the_exit_code_of_an_error_inside_the_run(tmp_path):
    from gansweep.cli import main

    assert main(["train", *TINY_MLP, "data=folder", f"data.root={tmp_path}/missing", f"hydra.run.dir={tmp_path}/run"]) == 2


# Divergence ---------------------------------------------------------------------------

DIVERGED_AT_1 = "diverged at step 1: non-finite loss or gradient (try a lower lr)"


@pytest.mark.slow
def test_divergence_is_recorded_with_its_step_and_exits_3(tmp_path):
    run = tmp_path / "run"
    # lsgan with lr=1e6 sends the first G loss to inf (found by trying lr=1e4..1e10 on every loss).
    proc = gansweep_process(
        "train", *TINY_MLP, "loss=lsgan", "lr=1e6", "steps=20", "log_every=1", f"hydra.run.dir={run}", cwd=tmp_path,
    )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip() == f"error: {DIVERGED_AT_1}; run folder: {run}"
    s = summary(run)
    assert s["status"] == "diverged"
    assert s["stop_reason"] == {"kind": "diverged", "step": 1, "detail": "non-finite loss or gradient (try a lower lr)"}
    assert s["steps"] == 1 and s["total_steps"] == 20
    assert s["last_train"]["loss_g"] is None  # the diverged window is logged, its NaN losses as null
    (line,) = (run / "metrics.jsonl").read_text().splitlines()  # the window that diverged, NaN as null
    row = json.loads(line)
    assert row["step"] == s["steps"] and None in (row["loss_d"], row["loss_g"])
    assert not (run / "checkpoints").exists()
    # Still a readable run folder: the report and resume read it the usual way.
    assert RunFolder(run).read_summary().to_json() == s and RunFolder(run).read_metrics() == [row]
    assert from_yaml_file(str(run / "config.yaml")).lr == 1e6


def test_divergence_names_the_step_inside_a_log_window(tmp_path):
    run = tmp_path / "run"
    assert train_cli(*TINY_MLP, "loss=lsgan", "lr=1e6", "steps=20", "log_every=10", f"hydra.run.dir={run}") == 3
    s = summary(run)
    assert s["status"] == "diverged" and s["stop_reason"]["step"] == 1
    # Found at step 2, the first sample grid (every 2 steps for 20): a diverged model is never
    # sampled, scored or checkpointed, even between log lines.
    assert s["steps"] == 2
    assert not (run / "samples").exists() and not (run / "checkpoints").exists()


# Reproducibility ----------------------------------------------------------------------


@pytest.mark.parametrize("tiny", [TINY_MLP, TINY_DCGAN], ids=["mlp", "dcgan"])
def test_same_seed_gives_identical_losses_and_another_seed_does_not(tmp_path, tiny):
    args = [*tiny, "steps=4", "batch_size=16", "log_every=2"]
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert train_cli(*args, f"seed={seed}", f"hydra.run.dir={tmp_path / name}") == 0
    a, b, c = (losses(tmp_path / name) for name in "abc")
    assert len(a) == 2 and a == b
    assert [row[0] for row in c] == [2, 4]
    assert all(x[1:] != y[1:] for x, y in zip(a, c))
    g_a, g_b = (torch.load(tmp_path / n / "checkpoints" / "last.pt", weights_only=False)["g"] for n in "ab")
    assert all(torch.equal(g_a[k], g_b[k]) for k in g_a)


def test_a_used_folder_is_refused_and_kept_unless_overwrite_is_given(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli(*TINY_MLP, "steps=2", "batch_size=8", f"hydra.run.dir={run}") == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()

    assert train_cli(*TINY_MLP, "steps=3", "batch_size=8", f"hydra.run.dir={run}") == 2
    assert capsys.readouterr().err.strip() == (
        f"error: hydra.run.dir={run}: already holds a run; continue it with resume={run}, "
        "replace it with overwrite=true, or choose another folder"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # not one byte touched, .hydra/ included

    assert train_cli(*TINY_MLP, "steps=3", "batch_size=8", "overwrite=true", f"hydra.run.dir={run}") == 0
    s = summary(run)
    assert s["steps"] == 3 and [r["step"] for r in train_rows(run)] == [3]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000001.png", "step_0000002.png", "step_0000003.png"]


@pytest.mark.slow
def test_two_runs_never_share_a_folder(tmp_path):
    """Started in the same second (the default folder names are unique to the microsecond),
    and, should two still meet, the second is refused by the folder's claim."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "gansweep", "train", *TINY_MLP, "steps=2", "batch_size=8", "threads=1"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    folders = {out.strip().splitlines()[-1].removeprefix("run folder: ") for out, _ in outs}
    assert len(folders) == 2
    for folder in folders:
        assert [r["step"] for r in train_rows(tmp_path / folder)] == [2]  # one run's lines only

    claimed = tmp_path / "claimed"
    RunFolder(claimed).create("model: {}\n", [])
    with pytest.raises(RunFolderError, match="already holds another run"):
        RunFolder(claimed).create("model: {}\n", [])


@pytest.mark.slow
def test_runs_racing_for_one_hydra_run_dir_leave_the_winners_config_whole(tmp_path):
    """Three runs started on one hydra.run.dir at once: one trains, the others are refused
    in one line before Hydra writes anything, so .hydra/config.yaml is the winner's too."""
    run = tmp_path / "same"
    seeds = (1, 2, 3)
    procs = [
        subprocess.Popen([sys.executable, "-m", "gansweep", "train", *TINY_MLP, "steps=30", "batch_size=8", "threads=1",
                          f"seed={seed}", f"hydra.run.dir={run}"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
        for seed in seeds
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 2, 2], outs
    for p, (_, err) in zip(procs, outs):
        if p.returncode == 2:
            assert len(err.strip().splitlines()) == 1 and "already holds" in err
    winner = next(seed for seed, p in zip(seeds, procs) if p.returncode == 0)
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == winner
    assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["seed"] == winner


@pytest.mark.slow
@pytest.mark.parametrize("seen", [".gansweep-run", ".hydra"])
def test_sigterm_during_start_up_leaves_no_half_written_folder(tmp_path, seen):
    """SIGTERM the moment a starting run claims its folder, or Hydra writes .hydra/ into it:
    one line, exit 130, and the folder is either gone or a run that resume= continues,
    never a bare claim or a .hydra/ without a config.yaml beside it."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "gansweep", "train", *TINY_MLP, "steps=2000", "threads=1",
                             f"hydra.run.dir={run}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=subprocess_env())
    deadline = time.monotonic() + 120
    while not (run / seen).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err and "interrupted" in out + err
    if run.exists():
        assert summary(run)["status"] == "interrupted", sorted(p.name for p in run.iterdir())
        assert (run / "config.yaml").is_file() and (run / ".hydra" / "config.yaml").is_file()


# Sends the process SIGTERM in the instant after the claim file is written and locked,
# before the claim is recorded for clean-up: the window a real kill hits only by luck.
SIGTERM_AT_CLAIM = """
import os, signal, sys
from gansweep import cli, rundir
hold = rundir.RunFolder._hold_claim
def hold_then_stop(self, fh):
    hold(self, fh)
    os.kill(os.getpid(), signal.SIGTERM)
rundir.RunFolder._hold_claim = hold_then_stop
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_in_the_instant_after_the_claim_leaves_nothing_behind(tmp_path):
    run = tmp_path / "outputs" / "run"
    proc = subprocess.run([sys.executable, "-c", SIGTERM_AT_CLAIM, "train", *TINY_MLP, "steps=5",
                           f"hydra.run.dir={run}"], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert proc.returncode == 130, (proc.stdout, proc.stderr)
    assert proc.stderr.strip() == "interrupted" and "Traceback" not in proc.stdout
    assert list(tmp_path.iterdir()) == []  # no claim, no .hydra/, no empty parents


# Folders that cannot be written ----------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["train", *TINY_MLP, "steps=2", "hydra.run.dir=/proc/gansweep-test/run"],
    ["sweep", "--dir", "/proc/gansweep-test", "--trials", "1", "model=mlp", "data=ring8", "steps=2"],
])
@pytest.mark.slow
def test_an_unwritable_output_folder_is_one_line_and_exit_2(tmp_path, command):
    proc = gansweep_process(*command, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "/proc/gansweep-test" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert list(tmp_path.iterdir()) == []  # nothing half-made in the working directory


def test_any_os_error_in_a_command_is_one_line_and_exit_2(monkeypatch, capsys):
    import gansweep.cli as cli

    def full_disk(argv):
        raise OSError(28, "No space left on device", "/data/run/summary.json")

    monkeypatch.setitem(cli.COMMANDS, "train", full_disk)
    assert cli.main(["train"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: /data/run/summary.json: No space left on device; check the path, its permissions and the free space"


def test_config_yaml_keeps_no_machine_path_so_a_copied_folder_still_works(tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert train_cli(*TINY_MLP, "steps=2", "batch_size=8", f"hydra.run.dir={run}") == 0
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["eval"]["cache_dir"] is None  # looked up where the run is scored, not where it was trained
    assert str(Path.home()) not in (run / "config.yaml").read_text()
