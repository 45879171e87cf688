"""Which device a run trains on, and which GPU each sweep worker gets.

`--workers N` on a machine with several GPUs gives worker i the GPU i mod G (round
robin over CUDA_VISIBLE_DEVICES, or over every GPU torch sees), so N > G runs several
workers per GPU. A worker sees only its GPU, as cuda:0; summaries record the physical one.
"""

from __future__ import annotations

import os
from typing import Optional

import torch

from gansweep.config import Device
from gansweep.errors import ConfigError


def pick_device(choice: Device) -> torch.device:
    """auto -> CUDA when present, else CPU; cuda without CUDA is a config error."""
    if choice is Device.cuda and not torch.cuda.is_available():
        raise ConfigError("device=cuda: no CUDA device here; use device=auto or device=cpu")
    if choice is Device.cpu or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (ids or UUIDs)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]  # NVML: no CUDA context in the parent


def gpu_for_worker(index: int, gpus: list[str]) -> Optional[str]:
    """Worker `index`'s GPU, round robin; None without GPUs."""
    return gpus[index % len(gpus)] if gpus else None


def device_label(device: torch.device) -> str:
    """The device as a summary records it: cpu, or cuda:<the physical GPU> and its name."""
    if device.type != "cuda":
        return str(device)
    gpu = (visible_gpus() or ["0"])[device.index or 0]
    return f"cuda:{gpu} ({torch.cuda.get_device_name(device)})"
