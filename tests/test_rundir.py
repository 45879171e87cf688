"""The run folder's typed records and their readers: round trips, torn lines, damage."""

from __future__ import annotations

import json

import pytest

from gansweep.errors import RunFolderError
from gansweep.rundir import RunFolder, RunSummary, Status, StopKind, StopReason, SweepMembership


def _summary(**changes) -> RunSummary:
    fields = dict(
        status=Status.running, run_dir="r", model="mlp", data="ring8", loss="bce", lr=2e-4, lr_g=2e-4,
        lr_d=2e-4, batch_size=64, beta1=0.5, beta2=0.999, seed=0, total_steps=100,
    )
    return RunSummary(**{**fields, **changes})


def test_a_summary_survives_the_round_trip_through_summary_json(tmp_path):
    run = RunFolder(tmp_path)
    assert run.read_summary() is None
    summary = _summary(sweep=SweepMembership("s", 3, {"lr": 1e-3}, ["mixture_tv"], base_config=True))
    summary.set_scores({"mixture_tv": 0.25, "modes_covered": 8, "modes_total": 8, "n_fake": 2500, "feature_net": "none"})
    summary.stop(StopReason(StopKind.mode_collapse, 40, "mode collapse (modes covered 1/8)"))
    run.write_summary(summary)

    back = run.read_summary()
    assert back == summary
    assert back.status is Status.collapsed and back.stop_reason.step == 40
    assert back.scores == {"mixture_tv": 0.25, "modes_covered": 8, "modes_total": 8}
    assert back.provenance == {"n_fake": 2500, "feature_net": "none"}
    on_disk = json.loads(run.summary_path.read_text())
    assert on_disk["stop_reason"] == {"kind": "mode_collapse", "step": 40, "detail": "mode collapse (modes covered 1/8)"}


@pytest.mark.parametrize(
    ("kind", "status", "trial_state", "final"),
    [
        (None, Status.completed, "COMPLETE", True),
        (StopKind.diverged, Status.diverged, "PRUNED", True),
        (StopKind.mode_collapse, Status.collapsed, "PRUNED", True),
        (StopKind.d_overpowering, Status.overpowered, "PRUNED", True),
        (StopKind.pruned, Status.pruned, "PRUNED", True),
        (StopKind.interrupted, Status.interrupted, "FAIL", False),
        (StopKind.failed, Status.failed, "FAIL", True),
    ],
)
def test_each_stop_kind_sets_one_status_with_one_trial_state(kind, status, trial_state, final):
    summary = _summary()
    summary.stop(StopReason(kind, 5) if kind else None)
    assert summary.status is status
    assert (status.trial_state, status.final, status.has_objective) == (trial_state, final, trial_state == "COMPLETE")


def test_a_damaged_summary_is_a_run_folder_error_naming_the_file(tmp_path):
    run = RunFolder(tmp_path)
    run.summary_path.write_text('{"status": "runn')
    with pytest.raises(RunFolderError, match=r"summary\.json: not valid JSON"):
        run.read_summary()
    run.summary_path.write_text('{"status": "sleeping"}')
    with pytest.raises(RunFolderError, match=r"summary\.json: not a gansweep summary"):
        run.read_summary()


def test_only_a_torn_last_metrics_line_is_dropped(tmp_path):
    run = RunFolder(tmp_path)
    run.append_metrics([{"kind": "train", "step": 1}, {"kind": "train", "step": 2}])
    with open(run.metrics_path, "a") as fh:
        fh.write('{"kind": "train", "step": 3, "lo')  # kill -9 in the middle of a write
    assert [r["step"] for r in run.read_metrics()] == [1, 2]

    run.metrics_path.write_text('{"kind": "train", "step": 1}\nnot json\n{"kind": "train", "step": 3}\n')
    with pytest.raises(RunFolderError, match=r"metrics\.jsonl: line 2 is not a JSON object"):
        run.read_metrics()
    with pytest.raises(RunFolderError, match="line 2"):
        run.truncate_metrics(after_step=3)  # damage in the middle is never silently dropped
    assert "not json" in run.metrics_path.read_text()


def test_a_summary_of_the_earlier_flat_layout_is_read_into_the_records(tmp_path):
    flat = {  # as gansweep's trainer wrote summary.json before the typed records
        "status": "collapsed", "stop_reason": "mode collapse at step 118: modes covered 1/10", "run_dir": str(tmp_path),
        "total_steps": 235, "steps": 118, "epochs": 1.5, "images_seen": 7552, "wall_time_s": 20.0, "images_per_s": 377.6,
        "device": "cpu", "torch_version": "2.5.1", "data_used": "mnist5k", "model": "dcgan", "data": "mnist5k", "loss": "bce",
        "lr": 2e-4, "lr_g": 2e-4, "lr_d": 2e-4, "batch_size": 64, "beta1": 0.5, "beta2": 0.999, "seed": 0,
        "loss_d": 0.9, "loss_g": 1.6, "d_real": 0.62, "d_fake": 0.35, "grad_norm_d": 2.1, "grad_norm_g": 1.4,
        "fid": 486.0, "precision": 0.0, "modes_covered": 1, "modes_total": 10, "n_fake": 10000, "feature_net": "digit_cnn",
        "sweep": "default-dcgan-mnist5k", "trial": 0, "params": {"lr": 2e-4}, "objectives": ["fid"],
    }
    (tmp_path / "summary.json").write_text(json.dumps(flat))
    summary = RunFolder(tmp_path).read_summary()
    assert summary.status is Status.collapsed
    assert summary.stop_reason == StopReason(StopKind.mode_collapse, 118, "mode collapse at step 118: modes covered 1/10")
    assert summary.scores == {"fid": 486.0, "precision": 0.0, "modes_covered": 1, "modes_total": 10}
    assert summary.provenance == {"n_fake": 10000, "feature_net": "digit_cnn"}
    assert summary.last_train["grad_norm_g"] == 1.4
    assert summary.sweep == SweepMembership("default-dcgan-mnist5k", 0, {"lr": 2e-4}, ["fid"])
