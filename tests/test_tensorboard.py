"""tensorboard=true: every run also writes TensorBoard events into its own folder,
mirroring metrics.jsonl and the sample pictures; read back here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from train_helpers import TINY_MLP, train_cli


def read_events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("tb") / "run"
    args = [*TINY_MLP, "eval.enabled=true", "steps=8", "batch_size=16", "log_every=2", "eval_every=4",
            "sample_every=4", "threads=1", "tensorboard=true", f"hydra.run.dir={run}"]
    assert train_cli(*args) == 0
    return run


def test_every_metrics_row_is_a_scalar_at_its_step(logged_run):
    acc = read_events(logged_run)
    rows = [json.loads(line) for line in (logged_run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    eval_rows = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in train_rows] == [2, 4, 6, 8] and [r["step"] for r in eval_rows] == [4, 8]
    for kind, kind_rows in (("train", train_rows), ("eval", eval_rows)):
        for key in ("loss_d", "loss_g", "d_real", "grad_norm_g") if kind == "train" else ("mixture_tv", "hq_fraction", "modes_covered"):
            logged = [(e.step, e.value) for e in acc.Scalars(f"{kind}/{key}")]
            # TensorBoard stores float32: the same values to 7 significant digits.
            assert [s for s, _ in logged] == [r["step"] for r in kind_rows]
            assert [v for _, v in logged] == pytest.approx([r[key] for r in kind_rows], rel=1e-6)


def test_sample_pictures_are_images_at_their_steps(logged_run):
    images = read_events(logged_run).Images("samples")
    assert [i.step for i in images] == [4, 8]
    with Image.open(logged_run / "samples" / "step_0000008.png") as png:
        assert (images[-1].width, images[-1].height) == png.size


def test_without_the_package_it_is_one_line_before_any_folder_exists(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # its import now fails
    run = tmp_path / "run"
    assert train_cli(*TINY_MLP, "steps=2", "tensorboard=true", f"hydra.run.dir={run}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: tensorboard=true: the tensorboard package is not installed; "
                   "pip install 'gansweep[tensorboard]', or set tensorboard=false"]
    assert not run.exists()
