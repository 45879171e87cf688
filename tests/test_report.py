"""`gansweep report` on run folders written by tests/report_fixtures.py."""

from __future__ import annotations

import argparse
import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import (
    FEATURE_NET_SHA256,
    summary_for,
    train_lines,
    write_run,
    write_sweep,
)

from gansweep.errors import ReportError
from gansweep.report import command, export
from gansweep.report.load import latest_sample, load_runs, read_train_tail
from gansweep.report.table import (
    default_sort_key,
    filter_runs,
    format_value,
    group_runs,
    sort_runs,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def report(*argv: str) -> int:
    """Run `gansweep report ARGV` the way the main CLI does."""
    parser = argparse.ArgumentParser(prog="gansweep report")
    command.add_arguments(parser)
    return command.run(parser.parse_args(list(argv)))


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """Five single runs (one running, one diverged) and a four-trial sweep."""
    root = tmp_path / "outputs"
    write_run(root / "runs" / "a", summary_for(fid=25.0, batch_size=128, wall_time_s=120.0))
    write_run(root / "runs" / "b", summary_for(fid=40.0, model="mlp", loss="hinge", lr=1e-3, coverage=0.3))
    write_run(root / "runs" / "c", summary_for(fid=32.5, batch_size=32, coverage=0.85))
    write_run(root / "runs" / "live", summary_for(status="running", fid=None, coverage=None, steps=200))
    write_run(root / "runs" / "nan", summary_for(status="diverged", fid=None, coverage=None, steps=300),
              metrics=train_lines(300, nan_from=300))
    write_sweep(root / "sweeps", "lr", [1e-4, 2e-4, 5e-4, 1e-3], [45.0, 30.0, 35.0, 60.0])
    return root


def test_one_row_per_run_with_contract_columns(outputs: Path) -> None:
    result = load_runs([outputs])
    runs = result.runs
    assert result.found == 9 and result.skipped == []
    assert sorted(runs["run"]) == [
        "runs/a", "runs/b", "runs/c", "runs/live", "runs/nan",
        "sweeps/lr/trial_0000", "sweeps/lr/trial_0001", "sweeps/lr/trial_0002", "sweeps/lr/trial_0003",
    ]
    for column in ("status", "model", "data", "data_used", "loss", "lr", "lr_g", "lr_d", "batch_size",
                   "beta1", "beta2", "seed", "steps", "images_seen", "wall_time_s", "images_per_s",
                   "fid", "precision", "coverage", "best_fid", "best_fid_step", "sweep", "trial",
                   "n_fake", "n_real", "feature_net", "feature_net_sha256", "diagnosis"):
        assert column in runs, column
    # Differing config keys become columns; equal ones and ones already shown do not.
    assert "model.ngf" in runs and "log_every" not in runs and "model.name" not in runs
    assert result.config_columns == ["model.ngf"]
    trial = runs.set_index("run").loc["sweeps/lr/trial_0001"]
    assert (trial["sweep"], trial["trial"], trial["model.ngf"]) == ("lr", 1, 64)
    assert runs.set_index("run").loc["runs/live", "status"] == "running"
    assert result.sweeps["lr"].params == ["lr", "model.ngf"]


def test_sort_lower_fid_first_and_higher_coverage_first(outputs: Path) -> None:
    runs = load_runs([outputs]).runs
    assert default_sort_key(runs) == "fid"
    by_fid = sort_runs(runs, "fid")
    assert list(by_fid["fid"].head(6)) == [25.0, 30.0, 32.5, 35.0, 40.0, 45.0]
    assert by_fid["fid"].tail(2).isna().all()  # running and diverged runs have no FID yet: last
    by_coverage = sort_runs(runs, "coverage")
    assert list(by_coverage["run"].head(2)) == ["sweeps/lr/trial_0001", "runs/c"]  # 0.9, then 0.85
    by_loss = sort_runs(runs, "loss_g")  # losses: lower first
    assert by_loss["loss_g"].dropna().is_monotonic_increasing
    with pytest.raises(ReportError, match="cannot sort by 'nope'"):
        sort_runs(runs, "nope")


def test_filter_and_group_by_numbers(outputs: Path) -> None:
    runs = load_runs([outputs]).runs
    kept = filter_runs(runs, "model == 'dcgan' and batch_size >= 64")
    assert sorted(kept["run"]) == ["runs/a", "runs/live", "runs/nan"] + [f"sweeps/lr/trial_000{i}" for i in range(4)]
    kept = filter_runs(runs, "`model.ngf` == 32")
    assert sorted(kept["trial"]) == [0, 2]

    groups = group_runs(runs, ["model"], "fid").set_index("model")
    assert groups.loc["dcgan", "count"] == 8 and groups.loc["mlp", "count"] == 1
    dcgan_fids = [25.0, 32.5, 45.0, 30.0, 35.0, 60.0]
    assert groups.loc["dcgan", "fid_mean"] == pytest.approx(sum(dcgan_fids) / 6)
    assert groups.loc["dcgan", "fid_min"] == 25.0 and groups.loc["dcgan", "fid_max"] == 60.0
    assert list(groups.index) == ["dcgan", "mlp"]  # mean FID 37.9 before 40


def test_bad_filter_is_one_line_report_error(outputs: Path) -> None:
    with pytest.raises(ReportError) as info:
        report(str(outputs), "--filter", "model ==")
    assert "bad --filter expression 'model =='" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ReportError, match="bad --filter expression"):
        report(str(outputs), "--filter", "no_such_column > 3")
    with pytest.raises(ReportError, match="no run matches --filter"):
        report(str(outputs), "--filter", "fid < 0")


def test_damaged_summary_is_skipped_with_a_warning_naming_it(outputs: Path, capsys: pytest.CaptureFixture) -> None:
    torn = outputs / "runs" / "torn"
    torn.mkdir()
    (torn / "summary.json").write_text('{"status": "runn')
    empty = outputs / "runs" / "empty"
    empty.mkdir()
    (empty / "summary.json").write_text("")

    assert report(str(outputs)) == 0
    out, err = capsys.readouterr()
    assert f"skipped {torn / 'summary.json'}: not valid JSON" in err
    assert f"skipped {empty / 'summary.json'}: empty file" in err
    assert "11 run folders found, 2 skipped; showing 9, sorted by fid (lower is better)" in out
    assert "runs/torn" not in out


def test_csv_round_trips(outputs: Path, tmp_path: Path) -> None:
    path = tmp_path / "out" / "runs.csv"
    assert report(str(outputs), "--csv", str(path), "--top", "5") == 0
    back = pd.read_csv(path)
    expected = sort_runs(load_runs([outputs]).runs, "fid")  # --top shortens the screen, not the file
    assert list(back.columns) == list(expected.columns) + ["flags"]
    assert list(back["run"]) == list(expected["run"])
    assert list(back["fid"])[:5] == [25.0, 30.0, 32.5, 35.0, 40.0]
    assert back["lr"].tolist() == pytest.approx(expected["lr"].tolist(), rel=0, abs=0)
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temp file


def test_json_and_group_by_export(outputs: Path, tmp_path: Path) -> None:
    path = tmp_path / "groups.json"
    assert report(str(outputs), "--group-by", "model,loss", "--json", str(path)) == 0
    groups = {(g["model"], g["loss"]): g for g in json.loads(path.read_text())}
    assert groups[("mlp", "hinge")]["count"] == 1 and groups[("mlp", "hinge")]["fid_mean"] == 40.0
    assert groups[("dcgan", "bce")]["count"] == 8


def test_parquet_without_pyarrow_is_a_clear_error(outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "has_pyarrow", lambda: False)
    with pytest.raises(ReportError, match="--parquet needs pyarrow: pip install pyarrow"):
        report(str(outputs), "--csv", str(tmp_path / "runs.csv"), "--parquet", str(tmp_path / "runs.parquet"))
    assert list(tmp_path.glob("runs.*")) == []  # nothing written, not even the CSV


def test_parquet_round_trips_when_pyarrow_is_installed(outputs: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "runs.parquet"
    assert report(str(outputs), "--parquet", str(path)) == 0
    assert sorted(pd.read_parquet(path)["run"]) == sorted(load_runs([outputs]).runs["run"])


def test_html_embeds_table_samples_and_plots(outputs: Path, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    assert report(str(outputs), "--html", str(path)) == 0
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    runs_table = re.search(r'<table class="runs">(.*?)</table>', page, re.S).group(1)
    assert runs_table.count("<tr>") == 1 + 9  # header + one row per run
    assert runs_table.index("runs/a") < runs_table.index("sweeps/lr/trial_0001") < runs_table.index("runs/c")
    assert "diverged at step 300" in runs_table
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert page.count('class="card"') == 6  # the top six runs' sample grids
    for plot in ("curves_loss", "curves_fid", "score_vs_lr", "sweep_lr_history", "sweep_lr_budget"):
        assert f'id="plot-{plot}"' in page
    assert len(images) == 6 + page.count("<figure")
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)  # nothing outside the file


def test_plots_dir_holds_pngs(outputs: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    assert report(str(outputs), "--plots", str(plots)) == 0
    names = sorted(p.name for p in plots.iterdir())
    assert {"curves_loss.png", "curves_fid.png", "score_vs_lr.png", "sweep_lr_history.png",
            "sweep_lr_budget.png", "sweep_lr_importance.png"} <= set(names)
    assert "sweep_lr_pareto.png" not in names  # single objective: no Pareto front
    assert all((plots / n).read_bytes().startswith(PNG_MAGIC) for n in names)


def test_mixed_feature_nets_and_sample_counts_are_flagged(outputs: Path, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    write_run(outputs / "runs" / "other_net", summary_for(fid=10.0, feature_net_sha256="b" * 64))
    write_run(outputs / "runs" / "few", summary_for(fid=12.0, n_fake=1000))
    path = tmp_path / "runs.csv"
    assert report(str(outputs), "--csv", str(path)) == 0
    err = capsys.readouterr().err
    assert "2 different values of feature_net_sha256" in err and f"{FEATURE_NET_SHA256[:12]}: 10 runs" in err
    assert "2 different values of n_fake (5000: 10 runs, 1000: 1 run)" in err
    flags = pd.read_csv(path, keep_default_na=False).set_index("run")["flags"]
    assert flags["runs/other_net"] == "feature net differs"
    assert flags["runs/few"] == "n_fake differs"
    assert (flags.drop(["runs/other_net", "runs/few"]) == "").all()


def test_empty_or_missing_folder_is_a_report_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no run folders \\(with summary.json\\) found under") as info:
        report(str(tmp_path / "empty"))
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    with pytest.raises(ReportError, match="no such folder"):
        report(str(tmp_path / "missing"))


def test_every_summary_damaged_is_a_report_error(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "summary.json").write_text("[1, 2")
    with pytest.raises(ReportError, match="all 1 run folders .* were skipped"):
        report(str(tmp_path))


def test_main_cli_turns_report_error_into_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cli = pytest.importorskip("gansweep.cli")
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no run folders" in err and "Traceback" not in err


def test_several_roots_are_named_from_their_common_parent(outputs: Path) -> None:
    runs = load_runs([outputs / "runs", outputs / "sweeps", outputs / "runs" / "a"]).runs
    assert len(runs) == 9  # runs/a is found once
    assert "runs/a" in set(runs["run"]) and "sweeps/lr/trial_0000" in set(runs["run"])
    assert load_runs([outputs / "runs" / "a"]).runs["run"].tolist() == ["a"]


def test_train_tail_and_latest_sample(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", sample_steps=(500, 1000, 90))
    tail = read_train_tail(run, n=3)
    assert [r["step"] for r in tail] == [900, 950, 1000]
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 10')  # a torn last line while the run writes
    assert [r["step"] for r in read_train_tail(run, n=1)] == [1000]
    assert latest_sample(run).name == "step_0001000.png"


@pytest.mark.parametrize(("key", "value", "text"), [
    ("fid", 31.234, "31.23"), ("fid", 250.0, "250.0"), ("coverage", 0.71234, "0.712"),
    ("lr", 2e-4, "0.0002"), ("steps", 1200.0, "1200"), ("images_seen", 1_280_000, "1,280,000"),
    ("wall_time_s", 95.0, "1m35s"), ("wall_time_s", 7300.0, "2h01m"), ("fid", float("nan"), "–"),
    ("model", "dcgan", "dcgan"), ("fid_mean", 40.0, "40.00"), ("count", 3, "3"),
])
def test_format_value(key: str, value: object, text: str) -> None:
    assert format_value(key, value) == text
