"""A throwaway PostgreSQL cluster for the multi-machine sweep tests.

initdb and pg_ctl (PostgreSQL's server programs; .ci/run installs Debian's postgresql)
make a cluster in a temporary folder, listening on 127.0.0.1 only. PostgreSQL refuses
to run as root, so under root the server runs as the unprivileged user `nobody`.
Where the programs are missing the tests skip, except when GANSWEEP_REQUIRE_POSTGRES=1
(set by .ci/run), where a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # Debian keeps them off PATH


# How to restart each running cluster, by its URL: pg_ctl restart -m fast, as an admin would.
_RESTART: dict[str, Callable[[], object]] = {}


def restart(url: str) -> None:
    """Restart the cluster behind `url` (its clients' connections drop; it is back within a second or so)."""
    _RESTART[url]()


def _program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return next((str(d / name) for d in PG_BIN_DIRS if (d / name).exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster in a new temporary folder; yields its SQLAlchemy URL (database
    `postgres`). The folder is outside pytest's own, which only root may enter."""
    initdb, pg_ctl = _program("initdb"), _program("pg_ctl")
    if initdb is None or pg_ctl is None:
        message = "PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)"
        if os.environ.get("GANSWEEP_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="gansweep-pg-"))
    root.chmod(0o777)
    data, port = root / "pgdata", _free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "gansweep"], check=True, capture_output=True, cwd=root)
    options = f"-h 127.0.0.1 -p {port} -k {root}"
    server = [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w"]
    subprocess.run([*server, "start"], check=True, capture_output=True, cwd=root)
    url = f"postgresql://gansweep@127.0.0.1:{port}/postgres"
    _RESTART[url] = lambda: subprocess.run([*server, "-m", "fast", "restart"], check=True, capture_output=True, cwd=root)
    try:
        yield url
    finally:
        _RESTART.pop(url, None)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
