"""optuna-dashboard opens a sweep's default storage (the journal file in the sweep folder);
tests/test_sweep_machines.py checks it on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_client import dashboard_studies

from gansweep.cli import main

TINY = ["model=mlp", "data=ring8", "data.std=0.1", "steps=20", "model.hidden=16", "eval.mixture_samples=300", "log_every=10"]


@pytest.mark.slow
def test_the_dashboard_lists_a_sweeps_journal_study_with_its_trials(tmp_path: Path) -> None:
    assert main(["sweep", "--dir", str(tmp_path), "--trials", "2", "--name", "dash", *TINY]) == 0
    journal = tmp_path / "dash" / "study.journal"
    assert dashboard_studies(str(journal), "--storage-class", "JournalFileStorage") == {"dash": 2}
