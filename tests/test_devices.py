"""Sweep workers over several GPUs: round robin over the visible ones, tested with a faked list."""

from __future__ import annotations

import os

import pytest

import gansweep.sweep.driver as driver
from gansweep.devices import gpu_for_worker, visible_gpus


def test_workers_go_round_robin_over_the_gpus_several_per_gpu_when_more() -> None:
    assert [gpu_for_worker(i, ["0", "1"]) for i in range(5)] == ["0", "1", "0", "1", "0"]
    assert [gpu_for_worker(i, ["3"]) for i in range(3)] == ["3", "3", "3"]
    assert gpu_for_worker(0, []) is None  # no GPU: workers train on the CPU


def test_the_visible_gpus_are_the_ones_cuda_visible_devices_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5,GPU-1f3c")
    assert visible_gpus() == ["2", "5", "GPU-1f3c"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_a_worker_process_sees_only_its_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []
    monkeypatch.setattr(driver, "run_worker", lambda spec: seen.append(os.environ.get("CUDA_VISIBLE_DEVICES")) or "done")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    spec = driver.WorkerSpec(None, None, None, None, "random", "none", 0, 1, None, worker_index=3, gpu="1")  # type: ignore[arg-type]
    driver.worker_process(spec)
    assert seen == ["1"]
