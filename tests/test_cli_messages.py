"""What the CLI says on small things: its version, bad flags, a missing primary config,
an unwritable output, the confirm table's trial numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import write_run
from rich.console import Console

from gansweep import __version__
from gansweep.cli import main
from gansweep.confirm import confirm_table


@pytest.mark.parametrize("argv", [["--version"], ["train", "--version"]])
def test_version_is_gansweeps_own(argv: list[str], capsys) -> None:
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith(f"gansweep {__version__} (torch ")


@pytest.mark.parametrize("argv,message", [
    (["sweep", "--trials", "abc"], "gansweep sweep: argument --trials: invalid int value: 'abc'"),
    (["sweep", "--sampler", "annealing"], "gansweep sweep: argument --sampler: invalid choice: 'annealing'"),
    (["confirm", "x", "--top", "abc"], "gansweep confirm: argument --top: invalid int value: 'abc'"),
    (["eval", "x", "--samples", "many"], "gansweep eval: argument --samples: invalid int value: 'many'"),
    (["report", "x", "--top", "-3"], "gansweep report: argument --top: must be at least 1, got -3"),
    (["report", "x", "--sort"], "gansweep report: argument --sort: expected one argument"),
])
def test_a_bad_flag_is_one_line_with_exit_2_not_a_usage_block(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {message}") and captured.err.count("\n") == 1 and "usage:" not in captured.err


def test_a_missing_primary_config_names_the_config_and_where_it_looked(tmp_path: Path, capsys) -> None:
    assert main(["train", "--config-dir", str(tmp_path), "--config-name", "nosuch"]) == 2
    assert capsys.readouterr().err == f"error: --config-name nosuch: no nosuch.yaml in --config-dir {tmp_path}\n"


@pytest.mark.parametrize("flag", ["--html", "--csv", "--plots"])
def test_an_unwritable_output_is_one_line_before_any_table(tmp_path: Path, capsys, flag: str) -> None:
    write_run(tmp_path / "runs" / "a")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["report", str(tmp_path / "runs"), flag, str(blocker / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"error: cannot write {blocker / 'out'}: ")


def test_parquet_without_pyarrow_is_one_line_before_any_table(tmp_path: Path, capsys, monkeypatch) -> None:
    from gansweep.report import export

    monkeypatch.setattr(export, "has_pyarrow", lambda: False)
    write_run(tmp_path / "runs" / "a")
    assert main(["report", str(tmp_path / "runs"), "--parquet", str(tmp_path / "runs.parquet")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: --parquet needs pyarrow: pip install pyarrow")
    assert not (tmp_path / "runs.parquet").exists()


def test_the_confirm_table_shows_trial_numbers_as_integers() -> None:
    frame = pd.DataFrame([{"trial": 2.0, "seeds": 2, "sweep_fid": 30.0, "completed": 2, "not_working": 0,
                           "fid_mean": 31.0, "fid_std": 1.0, "fid_worst": 32.0}])
    console = Console(width=120, record=True, color_system=None)
    console.print(confirm_table(frame, "fid"))
    text = console.export_text()
    assert "│     2 │" in text and "2.0" not in text


def test_tab_completion_registers_gansweep_and_its_query_completes_train_and_sweep_overrides(monkeypatch, capsys) -> None:
    assert main(["train", "-sc", "install=bash"]) == 0
    script = capsys.readouterr().out
    assert script.rstrip().endswith("-F hydra_bash_completion gansweep") and "gansweep train" not in script
    # The script calls `gansweep -sc query=bash` with the line typed so far.
    for line, expected in (("gansweep train model=", {"model=dcgan", "model=mlp"}),
                           ("gansweep sweep --trials 3 los", {"loss=", "loss."}),
                           ("gansweep train model=mlp model.hid", {"model.hidden="})):
        monkeypatch.setenv("COMP_LINE", line)
        assert main(["-sc", "query=bash"]) == 0
        assert set(capsys.readouterr().out.split()) == expected
