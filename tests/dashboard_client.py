"""Start optuna-dashboard on a sweep's storage and read the studies it lists (its JSON API)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
        return json.load(reply)


def dashboard_studies(*storage_args: str, timeout_s: float = 60.0) -> dict[str, int]:
    """{study name: number of trials} as a freshly started optuna-dashboard serves them."""
    port = _free_port()
    exe = Path(sys.executable).with_name("optuna-dashboard")
    server = subprocess.Popen([str(exe), *storage_args, "--port", str(port), "--host", "127.0.0.1", "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                listed = _get(port, "/api/studies")["study_summaries"]
                return {s["study_name"]: len(_get(port, f"/api/studies/{s['study_id']}")["trials"]) for s in listed}
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"optuna-dashboard exited: {server.stderr.read()}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=10)
