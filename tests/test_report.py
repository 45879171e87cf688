"""`gansweep report` on run folders written by tests/report_fixtures.py."""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import (
    FEATURE_NET_SHA256,
    image_scores,
    mixture_scores,
    train_config,
    train_rows,
    write_run,
    write_sweep,
)
from rich.console import Console

from gansweep.errors import ReportError
from gansweep.report import command, export
from gansweep.report.load import load_runs
from gansweep.report.table import (
    compact_columns,
    default_sort_key,
    filter_runs,
    format_value,
    group_runs,
    primary_scores,
    sort_runs,
)
from gansweep.rundir import RunFolder, RunSummary, StopKind, StopReason
from gansweep.scores import SCORES, DataKind, Direction, Score

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def report(*argv: str, width: int | None = None) -> tuple[int, str, str]:
    """Run `gansweep report ARGV`: on a terminal ``width`` columns wide, else piped.
    Returns the exit code, stdout and stderr."""
    parser = argparse.ArgumentParser(prog="gansweep report")
    command.add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    terminal = {"force_terminal": True, "width": width, "color_system": None} if width else {}
    code = command.run(parser.parse_args(list(argv)), out=Console(file=out, highlight=False, **terminal),
                       err=Console(file=err, highlight=False, soft_wrap=True))
    return code, out.getvalue(), err.getvalue()


def table_header(out: str) -> list[str]:
    """Column names of the first table printed (the header row between ┃)."""
    line = next(line for line in out.splitlines() if line.startswith("┃"))
    return [cell.strip().removesuffix(" ↓").removesuffix(" ↑") for cell in line.strip("┃").split("┃")]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five single runs on MNIST (one running, one diverged) and a four-trial sweep."""
    root = tmp_path_factory.mktemp("report") / "outputs"
    write_run(root / "runs" / "a", train_config(batch_size=128), image_scores(fid=25.0))
    write_run(root / "runs" / "b", train_config("mlp", loss="hinge", lr=1e-3), image_scores(fid=40.0, coverage=0.3))
    write_run(root / "runs" / "c", train_config(batch_size=32), image_scores(fid=32.5, coverage=0.85))
    write_run(root / "runs" / "live", train_config(), {}, running=True, train=None)
    write_run(root / "runs" / "nan", train_config(), {}, stop=StopReason(StopKind.diverged, 300, "non-finite loss"))
    write_sweep(root / "sweeps", "lr", [1e-4, 2e-4, 5e-4, 1e-3], [45.0, 30.0, 35.0, 60.0])
    return root


@pytest.fixture
def outputs(written: Path, tmp_path: Path) -> Path:
    """A copy of the written runs that a test may change."""
    return Path(shutil.copytree(written, tmp_path / "outputs"))


def test_one_row_per_run_with_summary_and_registry_columns(outputs: Path) -> None:
    result = load_runs([outputs])
    runs = result.runs
    assert result.found == 9 and result.skipped == []
    assert sorted(runs["run"]) == [
        "runs/a", "runs/b", "runs/c", "runs/live", "runs/nan",
        "sweeps/lr/trial_0000", "sweeps/lr/trial_0001", "sweeps/lr/trial_0002", "sweeps/lr/trial_0003",
    ]
    assert list(runs.columns[:3]) == ["run", "status", "diagnosis"] and runs.columns[-1] == "path"
    # Every registered score is a column, scored or not (mixture_tv, modes_covered_min: no MNIST run has them).
    assert set(SCORES) <= set(runs.columns) and runs["mixture_tv"].isna().all()
    for column in ("model", "data", "loss", "lr", "lr_g", "lr_d", "batch_size", "beta1", "beta2", "seed", "total_steps",
                   "steps", "images_seen", "wall_time_s", "images_per_s", "best_fid", "best_fid_step", "sweep", "trial",
                   "n_fake", "n_real", "feature_net", "feature_net_sha256", "loss_d", "d_real", "stop_reason"):
        assert column in runs, column
    assert "data_used" not in runs and "run_dir" not in runs and "scores" not in runs
    # Differing config keys are the shown config columns; equal ones are in the frame (a
    # filter or an export can name them) but not shown; run settings and ones already shown are neither.
    assert result.config_columns == ["model.ngf"]
    assert "model.ndf" in runs and "model.ndf" not in result.config_columns
    assert "log_every" not in runs and "threads" not in runs and "model.name" not in runs
    by_run = runs.set_index("run")
    assert tuple(by_run.loc["sweeps/lr/trial_0001", ["sweep", "trial", "model.ngf"]]) == ("lr", 1, 128)
    assert by_run.loc["runs/live", "status"] == "running"
    assert by_run.loc["runs/nan", "stop_reason"] == "diverged at step 300: non-finite loss"
    assert result.sweeps["lr"].params == ["lr", "model.ngf"] and result.sweeps["lr"].objectives == ["fid"]


def test_sort_lower_fid_first_and_higher_coverage_first(outputs: Path) -> None:
    runs = load_runs([outputs]).runs
    assert default_sort_key(runs) == "fid"
    by_fid = sort_runs(runs, "fid")
    assert list(by_fid["fid"].head(7)) == [25.0, 30.0, 32.5, 35.0, 40.0, 45.0, 60.0]
    assert by_fid["fid"].tail(2).isna().all()  # running and diverged runs have no FID: last
    by_coverage = sort_runs(runs, "coverage")
    assert list(by_coverage["run"].head(2)) == ["sweeps/lr/trial_0001", "runs/c"]  # 0.9, then 0.85
    by_loss = sort_runs(runs, "loss_g")  # losses: lower first
    assert by_loss["loss_g"].dropna().is_monotonic_increasing
    with pytest.raises(ReportError, match="cannot sort by 'nope'"):
        sort_runs(runs, "nope")


def test_a_score_added_to_the_registry_is_a_column_a_sort_key_and_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SCORES, "sharpness", Score("sharpness", Direction.maximize, frozenset({DataKind.image}), ".2f"))
    for name, sharpness in (("dull", 0.25), ("sharp", 0.75), ("mid", 0.5)):
        write_run(tmp_path / name, train_config(), image_scores(sharpness=sharpness))
    summary = RunSummary.from_json(json.loads((tmp_path / "sharp" / "summary.json").read_text()))
    assert summary.scores["sharpness"] == 0.75  # the writer files it with the scores, not the provenance
    runs = load_runs([tmp_path]).runs
    assert list(sort_runs(runs, "sharpness")["run"]) == ["sharp", "mid", "dull"]  # maximized: higher first
    assert format_value("sharpness", 0.75) == "0.75"
    assert "sharpness" in compact_columns(runs, [], primary_scores(runs, "fid", []))
    code, out, _ = report(str(tmp_path), "--sort", "sharpness")
    assert "sorted by sharpness (higher is better)" in out and "sharpness ↑" in out


def test_filter_and_group_by_numbers(outputs: Path) -> None:
    runs = load_runs([outputs]).runs
    kept = filter_runs(runs, "model == 'dcgan' and batch_size >= 64")
    assert sorted(kept["run"]) == ["runs/a", "runs/live", "runs/nan"] + [f"sweeps/lr/trial_000{i}" for i in range(4)]
    kept = filter_runs(runs, "`model.ngf` == 64")
    assert sorted(kept["trial"]) == [0, 2]
    # a key that is the same in every run it applies to can be filtered on too
    assert len(filter_runs(runs, "model.ndf == 32")) == 8

    groups = group_runs(runs, ["model"], "fid").set_index("model")
    assert groups.loc["dcgan", "count"] == 8 and groups.loc["mlp", "count"] == 1
    dcgan_fids = [25.0, 32.5, 45.0, 30.0, 35.0, 60.0]
    assert groups.loc["dcgan", "fid:mean"] == pytest.approx(sum(dcgan_fids) / 6)
    assert groups.loc["dcgan", "fid:min"] == 25.0 and groups.loc["dcgan", "fid:max"] == 60.0
    assert list(groups.index) == ["dcgan", "mlp"]  # mean FID 37.9 before 40


def test_bad_filter_is_one_line_report_error(outputs: Path) -> None:
    with pytest.raises(ReportError) as info:
        report(str(outputs), "--filter", "model ==")
    assert "bad --filter expression 'model =='" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ReportError, match="bad --filter expression"):
        report(str(outputs), "--filter", "no_such_column > 3")
    with pytest.raises(ReportError, match="no run matches --filter"):
        report(str(outputs), "--filter", "fid < 0")


def test_a_filter_is_comparisons_joined_by_and_or_not(outputs: Path) -> None:
    runs = load_runs([outputs]).runs
    dcgan = set(filter_runs(runs, "model == 'dcgan'")["run"])
    assert set(filter_runs(runs, 'not model == "dcgan"')["run"]) == set(runs["run"]) - dcgan
    expected = ((runs["model"] == "mlp") | (runs["batch_size"] >= 64)) & (runs["batch_size"] >= 64)
    assert set(filter_runs(runs, "(model == 'mlp' | batch_size >= 64) & 64 <= batch_size")["run"]) == set(runs[expected]["run"])
    assert sorted(filter_runs(runs, "model.ngf == 64")["trial"]) == [0, 2]  # dotted keys need no backticks


@pytest.mark.parametrize("expr", [
    "model.to_csv('{file}') == 1",  # pandas' query ran this and wrote the file
    "@runs.to_csv('{file}') == 1",
    "lr.__class__.__init__.__globals__['os'].system('touch {file}') == 0",
    "__import__('os').system('touch {file}') == 0",
])
def test_a_filter_that_would_run_code_is_refused_and_runs_nothing(outputs: Path, tmp_path: Path, expr: str) -> None:
    file = tmp_path / "written"
    with pytest.raises(ReportError, match="^bad --filter expression "):
        report(str(outputs), "--filter", expr.format(file=file))
    assert not file.exists()


def test_damaged_summary_is_skipped_with_a_warning_naming_it(outputs: Path) -> None:
    torn = outputs / "runs" / "torn"
    torn.mkdir()
    (torn / "summary.json").write_text('{"status": "runn')
    empty = outputs / "runs" / "empty"
    empty.mkdir()
    (empty / "summary.json").write_text("")
    alien = outputs / "runs" / "alien"
    alien.mkdir()
    (alien / "summary.json").write_text('{"status": "done"}')

    code, out, err = report(str(outputs))
    assert code == 0
    assert f"skipped {torn / 'summary.json'}: not valid JSON" in err
    assert f"skipped {empty / 'summary.json'}: empty file" in err
    assert f"skipped {alien / 'summary.json'}: not a gansweep summary" in err
    assert "12 run folders found, 3 skipped; showing 9, sorted by fid (lower is better)" in out
    assert "torn" not in out


def test_damaged_config_or_metrics_is_a_warning_and_the_run_stays(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r")
    (run / "config.yaml").write_text("model: [unclosed\n")
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[:-2] + ["{not json\n"] + lines[-1:]))
    result = load_runs([run])
    assert len(result.runs) == 1 and result.runs.loc[0, "diagnosis"] == "healthy"
    assert result.warnings == [f"ignored {run / 'config.yaml'}: not valid YAML (ParserError)",
                               f"ignored {run / 'metrics.jsonl'}: a line near its end is not a JSON object; repair or delete it"]


def test_piped_table_is_the_compact_set_in_a_useful_order(outputs: Path) -> None:
    code, out, _ = report(str(outputs))
    header = table_header(out)
    # Run, status, diagnosis, the objective scores, then the hyperparameters that vary.
    assert header[:4] == ["run", "status", "diagnosis", "fid"]
    assert header[header.index("fid"):] == ["fid", "precision", "modes", "recall", "density", "coverage", "mode_kl",
                                            "model", "loss", "lr", "batch_size", "seed", "model.ngf"]
    # Not the 40-odd columns of the export: no provenance, no values equal in every run.
    for hidden in ("n_fake", "feature_net_sha256", "beta1", "data", "lr_g", "images_seen", "path", "confidence"):
        assert hidden not in header
    assert "hidden to fit" not in out and max(len(line) for line in out.splitlines()) < 250


def test_terminal_of_80_columns_keeps_run_status_diagnosis_the_objective_precision_and_modes(outputs: Path) -> None:
    code, out, _ = report(str(outputs), width=80)
    header = table_header(out)
    assert header[:6] == ["run", "status", "diagnosis", "fid", "precision", "modes"]
    assert all(len(line) <= 80 for line in out.splitlines())
    hidden = " ".join(out.split()).split("hidden to fit the terminal: ")[1]
    assert hidden.startswith("recall") and "batch_size" in hidden
    # Run names are relative to the root, lose leading folders first and are never cut in the middle.
    assert "│runs/a " in out and "│…/trial_0001 " in out


def test_terminal_of_200_columns_shows_hyperparameters_before_secondary_scores(outputs: Path) -> None:
    code, out, _ = report(str(outputs), width=200)
    header = table_header(out)
    assert header[:4] == ["run", "status", "diagnosis", "fid"]
    assert {"lr", "batch_size", "model", "loss", "model.ngf"} <= set(header)
    assert all(len(line) <= 200 for line in out.splitlines())


def test_run_names_are_shortened_on_a_terminal_and_relative_to_the_common_root(tmp_path: Path) -> None:
    for name in ("2026-12-03/16-35-09_dcgan_mnist_with_a_long_tag", "2026-12-03/16-40-11_dcgan_mnist"):
        write_run(tmp_path / "outputs" / name, train_config())
    code, out, _ = report(str(tmp_path / "outputs"), width=80)
    assert "runs in 2026-12-03/" in out  # the common folder, said once as the title
    # Cut at the end: the time that starts a run's name tells runs apart.
    assert "│16-40-11_dcga… " in out and "│16-35-09_dcga… " in out
    assert "2026-12-03/16-35-09" not in out.split("runs in")[1]


def test_columns_flag_picks_columns_on_a_terminal_and_piped(outputs: Path) -> None:
    for width in (80, None):
        code, out, _ = report(str(outputs), "--columns", "run,lr,fid", width=width)
        assert table_header(out) == ["run", "lr", "fid"]
    with pytest.raises(ReportError, match="--columns nope: no such column"):
        report(str(outputs), "--columns", "run,nope")


@pytest.mark.parametrize("width", [80, None], ids=["narrow terminal", "piped"])
def test_all_columns_shows_everything_on_a_terminal_or_not(outputs: Path, width: int | None) -> None:
    code, out, _ = report(str(outputs), "--all-columns", width=width)
    header = table_header(out)
    assert header == list(load_runs([outputs]).runs.columns) + ["flags"]
    assert "hidden to fit" not in out


def test_config_keys_that_do_not_apply_are_blank_and_never_differ(tmp_path: Path) -> None:
    write_run(tmp_path / "mnist", train_config(model_keys={"ngf": 32}))
    write_run(tmp_path / "mnist_wide", train_config(model_keys={"ngf": 64}))
    write_run(tmp_path / "ring_sharp", train_config("mlp", "ring8"))
    write_run(tmp_path / "ring_wide", train_config("mlp", "ring8", data_keys={"std": 0.1}))
    write_run(tmp_path / "grid", train_config("mlp", "grid25"))
    result = load_runs([tmp_path])
    runs = result.runs.set_index("run")
    # data.std differs among ring8 runs; grid25's own default is shown, not compared; images have none.
    assert "data.std" in result.config_columns
    assert runs.loc["ring_wide", "data.std"] == 0.1 and runs.loc["grid", "data.std"] == 0.05
    assert pd.isna(runs.loc["mnist", "data.std"])
    # model.ngf is a DCGAN key: blank for MLP runs. z_dim and d_norm differ only between
    # the two models' defaults, radius and image_size only between data sets: not columns.
    assert "model.ngf" in result.config_columns and pd.isna(runs.loc["grid", "model.ngf"])
    for key in ("model.z_dim", "model.d_norm", "data.radius", "data.spacing", "data.image_size", "data.feature_net",
                "eval.n_samples", "data.n_samples"):
        assert key not in result.config_columns, key


def test_provenance_flags_compare_only_runs_on_the_same_data(outputs: Path, tmp_path: Path) -> None:
    write_run(outputs / "runs" / "other_net", train_config(), image_scores(fid=10.0, feature_net_sha256="b" * 64))
    write_run(outputs / "runs" / "few", train_config(), image_scores(fid=12.0, n_fake=1000))
    # A pruned run keeps its interim evaluation's scores, fewer samples by design: not a mismatch.
    write_run(outputs / "runs" / "pruned", train_config(), image_scores(fid=90.0, n_fake=2000),
              stop=StopReason(StopKind.pruned, 500, "worse than the median"))
    # A 2D run scores 2500 points, an image run 5000 samples: by design, not a mismatch.
    write_run(outputs / "runs" / "ring", train_config("mlp", "ring8"), mixture_scores())
    path = tmp_path / "runs.csv"
    code, out, err = report(str(outputs), "--csv", str(path))
    assert "runs on mnist were scored with 2 different values of feature_net_sha256" in err
    assert f"{FEATURE_NET_SHA256[:12]}: 9 runs" in err  # the pruned run counts here: same network
    assert "runs on mnist were scored with 2 different values of n_fake (5000: 8 runs, 1000: 1 run)" in err
    assert "ring8" not in err
    flags = pd.read_csv(path, keep_default_na=False).set_index("run")["flags"]
    assert flags["runs/other_net"] == "feature net differs"
    assert flags["runs/few"] == "n_fake differs"
    assert (flags.drop(["runs/other_net", "runs/few"]) == "").all()  # runs/pruned included


def test_digit_network_scores_on_other_images_are_flagged(tmp_path: Path) -> None:
    fashion = train_config("dcgan", "fashion_mnist")
    write_run(tmp_path / "fashion", fashion, image_scores(fid=20.0, feature_domain="digits, not this data"))
    write_run(tmp_path / "digits", train_config(), image_scores(fid=20.0))
    path = tmp_path / "runs.csv"
    code, out, err = report(str(tmp_path), "--csv", str(path))
    assert code == 0
    assert "1 run scored with the digit network on non-digit images: marked 'digit-network scores'" in err
    flags = pd.read_csv(path, keep_default_na=False).set_index("run")["flags"]
    assert (flags["fashion"], flags["digits"]) == ("digit-network scores", "")


def test_csv_round_trips(outputs: Path, tmp_path: Path) -> None:
    path = tmp_path / "out" / "runs.csv"
    code, out, _ = report(str(outputs), "--csv", str(path), "--top", "5")
    back = pd.read_csv(path)
    expected = sort_runs(load_runs([outputs]).runs, "fid")  # --top shortens the screen, not the file
    assert list(back.columns) == list(expected.columns) + ["flags"]
    assert list(back["run"]) == list(expected["run"])
    assert list(back["fid"])[:5] == [25.0, 30.0, 32.5, 35.0, 40.0]
    assert back["lr"].tolist() == pytest.approx(expected["lr"].tolist(), rel=0, abs=0)
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temp file


def test_json_and_group_by_export(outputs: Path, tmp_path: Path) -> None:
    path = tmp_path / "groups.json"
    code, out, _ = report(str(outputs), "--group-by", "model,loss", "--json", str(path))
    groups = {(g["model"], g["loss"]): g for g in json.loads(path.read_text())}
    assert groups[("mlp", "hinge")]["count"] == 1 and groups[("mlp", "hinge")]["fid:mean"] == 40.0
    assert groups[("dcgan", "bce")]["count"] == 8


def test_parquet_without_pyarrow_is_a_clear_error(outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "has_pyarrow", lambda: False)
    with pytest.raises(ReportError, match="--parquet needs pyarrow: pip install pyarrow"):
        report(str(outputs), "--csv", str(tmp_path / "runs.csv"), "--parquet", str(tmp_path / "runs.parquet"))
    assert list(tmp_path.glob("runs.*")) == []  # nothing written, not even the CSV


def test_parquet_round_trips_when_pyarrow_is_installed(outputs: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "runs.parquet"
    report(str(outputs), "--parquet", str(path))
    assert sorted(pd.read_parquet(path)["run"]) == sorted(load_runs([outputs]).runs["run"])


def test_html_embeds_table_samples_and_plots(outputs: Path, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    report(str(outputs), "--html", str(path))
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    runs_table = re.search(r'<table class="runs">(.*?)</table>', page, re.S).group(1)
    assert runs_table.count("<tr>") == 1 + 9  # header + one row per run
    assert runs_table.index(">runs/a<") < runs_table.index(">sweeps/lr/trial_0001<") < runs_table.index(">runs/c<")
    assert "<td class=\"warn\">diverged at step 300</td>" in runs_table
    # Status badges take the terminal's colours (Status.style): diverged is bold red there.
    assert '<span class="badge" style="background:#cf222e">diverged</span>' in runs_table
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert page.count('class="card"') == 6  # the top six runs' sample grids
    for plot in ("curves_loss", "curves_fid", "score_vs_lr", "sweep_lr_history", "sweep_lr_budget", "sweep_lr_slices"):
        assert f'id="plot-{plot}"' in page
    assert len(images) == 6 + page.count("<figure")
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)  # nothing outside the file


@pytest.mark.slow
def test_plots_dir_holds_pngs(outputs: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    code, out, err = report(str(outputs), "--plots", str(plots))
    names = sorted(p.name for p in plots.iterdir())
    assert {"curves_loss.png", "curves_fid.png", "score_vs_lr.png", "sweep_lr_history.png",
            "sweep_lr_budget.png", "sweep_lr_slices.png"} <= set(names)
    assert "sweep_lr_pareto.png" not in names  # single objective: no Pareto front
    # Four completed trials: no importance, and one line says why.
    assert "sweep_lr_importance.png" not in names
    assert "note: sweep lr: parameter importance not drawn: 4 completed trials, and fANOVA needs 10" in err
    assert all((plots / n).read_bytes().startswith(PNG_MAGIC) for n in names)


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
    from gansweep import cli  # a broken import of our own CLI must fail the test, not skip it

    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no run folders" in err and "Traceback" not in err


def test_several_roots_name_runs_from_their_own_root(outputs: Path, tmp_path: Path) -> None:
    runs = load_runs([outputs / "runs", outputs / "sweeps", outputs / "runs" / "a"]).runs
    assert len(runs) == 9  # runs/a is found once
    assert "runs/a" in set(runs["run"]) and "sweeps/lr/trial_0000" in set(runs["run"])
    assert load_runs([outputs / "runs" / "a"]).runs["run"].tolist() == ["a"]
    elsewhere = write_run(tmp_path / "far" / "away" / "copied", train_config())  # another disk, say
    names = set(load_runs([outputs / "runs", elsewhere]).runs["run"])
    assert "copied" in names and "runs/a" in names  # not the long path below their common parent


def test_train_tail_is_read_from_the_end_of_a_long_metrics_file(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", train_config(steps=20000), train=train_rows(20000, every=10))  # ~600 kB
    folder = RunFolder(run)
    assert [r["step"] for r in folder.read_train_tail(3)] == [19980, 19990, 20000]  # past the eval row at 20000
    with open(folder.metrics_path, "a") as fh:
        fh.write('{"kind": "train", "step": 20010')  # a torn last line while the run writes
    assert [r["step"] for r in folder.read_train_tail(2)] == [19990, 20000]
    assert load_runs([run]).warnings == []


@pytest.mark.parametrize(("key", "value", "text"), [
    ("fid", 31.234, "31.23"), ("fid", 250.0, "250"), ("best_fid", 31.234, "31.23"), ("coverage", 0.71234, "0.712"),
    ("modes_covered", 7.0, "7"), ("modes_covered:mean", 7.5, "7.50"), ("modes_covered_min", 3.0, "3"), ("modes_covered_min:max", 5.0, "5"), ("mixture_tv", 0.98889, "0.989"),
    ("lr", 2e-4, "0.0002"), ("steps", 1200.0, "1200"), ("images_seen", 1_280_000, "1,280,000"),
    ("wall_time_s", 95.0, "1m35s"), ("wall_time_s", 7300.0, "2h01m"), ("fid", float("nan"), "–"),
    ("model", "dcgan", "dcgan"), ("fid:mean", 40.0, "40"), ("count", 3, "3"), ("loss_d", 1.0, "1.00"),
])
def test_format_value(key: str, value: object, text: str) -> None:
    assert format_value(key, value) == text
