"""gansweep's own exceptions. Each carries the exit code the CLI returns for it.

They are raised anywhere in the package and caught once, in ``gansweep.cli``, which
prints the message as one line and exits with ``exit_code``.
"""

from __future__ import annotations


EXIT_INTERRUPTED = 130  # the shell's code for a process stopped by Ctrl-C


class GansweepError(Exception):
    """Base class: a failure the user can fix, reported as one line."""

    exit_code = 1


class ConfigError(GansweepError):
    """A bad config value, key, override, search space or path given by the user."""

    exit_code = 2


class DataError(GansweepError):
    """A data set that is missing, empty, unreadable or not available offline."""

    exit_code = 2


class CheckpointError(GansweepError):
    """A checkpoint or run folder that is missing, damaged or incompatible."""

    exit_code = 2


class RunFolderError(GansweepError):
    """A run folder's file (summary, metrics, config) that is damaged or not gansweep's."""

    exit_code = 2


class DivergedError(GansweepError):
    """Training produced a non-finite loss at ``step``; the run folder records it."""

    exit_code = 3

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


class SweepError(GansweepError):
    """A sweep that could not run to its end (a worker process failed)."""

    exit_code = 1


class ReportError(GansweepError):
    """Nothing to report: an empty or missing folder."""

    exit_code = 2


def os_error_line(exc: OSError) -> str:
    """An OSError (full disk, unwritable folder, missing file) as one line naming the path."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}; check the path, its permissions and the free space"
