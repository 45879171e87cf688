"""Session-wide test settings: a private feature-statistics cache, a headless plot backend,
and under pytest-xdist, cores of its own for each test process."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config: pytest.Config) -> None:
    # Two torch processes that share cores run 40-100x slower each. Each xdist worker takes
    # its own slice of the cores, and the processes its tests start inherit it (gansweep's
    # fair thread share counts the cores a process may use), so the workers never contend.
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker is None or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    mine = cores[int(worker.removeprefix("gw")) % count::count] or cores
    os.sched_setaffinity(0, mine)
    import torch

    torch.set_num_threads(len(mine))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Real-data feature statistics are cached on disk; tests share one cache of their own.
    os.environ["GANSWEEP_CACHE"] = str(tmp_path_factory.mktemp("gansweep-cache"))
