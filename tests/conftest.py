"""Session-wide test settings: a private feature-statistics cache and a headless plot backend."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Real-data feature statistics are cached on disk; tests share one cache of their own.
    os.environ["GANSWEEP_CACHE"] = str(tmp_path_factory.mktemp("gansweep-cache"))
