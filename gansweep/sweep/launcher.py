"""Worker jobs on a cluster scheduler, through submitit: `gansweep sweep --launcher slurm`.

Each job runs the same worker loop as `--workers N` on this machine, against the same
study storage, so the storage and the sweep folder must be reachable from every node:
PostgreSQL (`--storage postgresql://...`), or the default journal file on a shared
filesystem. `--launcher local` runs the jobs through submitit's local executor, as real
processes on this machine: the same path as SLURM without a cluster (what CI tests).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

from gansweep.errors import ConfigError, SweepError
from gansweep.sweep.driver import STORAGE_ENV, WorkerSpec, run_worker

LAUNCHERS = ("processes", "slurm", "local")  # processes: multiprocessing on this machine (no submitit)
JOBS_DIR = "jobs"  # in the sweep folder: submitit's files and each job's stdout/stderr logs
POLL_S = 5.0


@dataclass(frozen=True)
class JobResources:
    """What each worker job asks the scheduler for."""

    partition: Optional[str] = None
    time_min: int = 240
    gpus: int = 0
    cpus: int = 4
    mem_gb: float = 16.0

    def check(self) -> None:
        for flag, value in (("--time-min", self.time_min), ("--cpus-per-job", self.cpus), ("--mem-gb", self.mem_gb)):
            if value <= 0:
                raise ConfigError(f"{flag} {value}: must be > 0")
        if self.gpus < 0:
            raise ConfigError(f"--gpus-per-job {self.gpus}: must be >= 0")


def require_launcher(launcher: str) -> None:
    """Raise ConfigError, before a sweep creates anything, where the launcher cannot run here."""
    if launcher == "processes":
        return
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ConfigError(f"--launcher {launcher}: submitit is not installed; pip install 'gansweep[slurm]'") from None
    if launcher == "slurm" and shutil.which("srun") is None:  # what submitit looks for
        raise ConfigError("--launcher slurm: no SLURM here (srun is not on PATH); run the sweep on the cluster's "
                          "login node, or try it on this machine with --launcher local")


def submit_workers(spec: WorkerSpec, workers: int, launcher: str, resources: JobResources) -> list[Any]:
    """Submit `workers` worker jobs (worker indices 0..N-1) and return submitit's jobs."""
    import submitit

    folder = spec.plan.sweep_dir / JOBS_DIR
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm" if launcher == "slurm" else "local")
    params: dict[str, Any] = {
        "name": f"gansweep-{spec.plan.sweep_name}", "timeout_min": resources.time_min, "gpus_per_node": resources.gpus,
        "cpus_per_task": resources.cpus, "mem_gb": resources.mem_gb,
    }
    if resources.partition:
        params["slurm_partition"] = resources.partition
    executor.update_parameters(**params)
    # submitit pickles each job's arguments into the jobs folder, readable by others on a
    # shared file system: the storage URL (and its password) goes by environment instead,
    # which the local executor and sbatch (--export=ALL, its default) pass on to the jobs.
    if spec.storage_url:
        os.environ[STORAGE_ENV] = spec.storage_url
        spec = replace(spec, storage_url=STORAGE_ENV)
    # Each job runs one worker loop and returns why it stopped.
    try:
        return [executor.submit(run_worker, replace(spec, worker_index=i)) for i in range(workers)]
    except Exception as exc:  # the scheduler refused (sbatch: bad partition, limits, ...)
        lines = str(exc).strip().splitlines()
        raise SweepError(f"--launcher {launcher}: submitting failed ({lines[-1] if lines else type(exc).__name__}); "
                         f"details in {folder}") from None


def wait_for_jobs(jobs: list[Any], on_poll: Callable[[], None], folder: Path) -> str:
    """Wait until every job has ended; returns "done" or "interrupted". Ctrl-C cancels
    the jobs (each worker checkpoints its trial, which a rerun retries)."""
    try:
        while not all(job.done() for job in jobs):
            on_poll()
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        for job in jobs:
            job.cancel(check=False)
        return "interrupted"
    failed = [job for job in jobs if job.exception() is not None]
    if failed:
        first = str(failed[0].exception()).strip().splitlines()
        raise SweepError(f"{len(failed)} of {len(jobs)} worker jobs failed (job {failed[0].job_id}: "
                         f"{first[-1] if first else 'no message'}); logs in {folder}; rerun the same command to continue")
    return "interrupted" if any(job.result() == "interrupted" for job in jobs) else "done"
