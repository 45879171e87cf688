"""The command line: ``gansweep train|sweep|eval|confirm|report``.

This is the one place that catches gansweep's errors, and OSErrors (a full disk, an
unwritable folder): each becomes one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Callable

from gansweep.errors import EXIT_INTERRUPTED, GansweepError, os_error_line
from gansweep.progress import err_console

USAGE = """usage: gansweep COMMAND [ARGS]   (gansweep --version)

commands:
  train    train one GAN (Hydra overrides: model=mlp data=ring8 lr=1e-4; --cfg job; --help; -m)
  sweep    search hyperparameters with Optuna (gansweep sweep --help)
  eval     score a run folder's checkpoint again (gansweep eval --help)
  confirm  retrain a sweep's best trials with new seeds (gansweep confirm --help)
  pbt      population-based training: members copy the best and perturb lr and betas (gansweep pbt --help)
  report   compare run folders (gansweep report --help)
"""



def _train(argv: list[str]) -> int:
    from gansweep.train_command import run_train

    return run_train(argv)


def _sweep(argv: list[str]) -> int:
    from gansweep.sweep.command import run_sweep

    return run_sweep(argv)


def _eval(argv: list[str]) -> int:
    from gansweep.eval_command import run_eval

    return run_eval(argv)


def _confirm(argv: list[str]) -> int:
    from gansweep.confirm import run_confirm

    return run_confirm(argv)


def _pbt(argv: list[str]) -> int:
    from gansweep.pbt_command import run_pbt

    return run_pbt(argv)


def _report(argv: list[str]) -> int:
    from gansweep.arguments import ArgumentParser
    from gansweep.report import command

    parser = ArgumentParser(prog="gansweep report", description="Compare GAN runs side by side.")
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def version_line() -> str:
    """``gansweep 0.1.0 (torch 2.5.1, hydra 1.3.2, optuna 4.1.0)``: what a bug report needs."""
    from importlib.metadata import version

    deps = ", ".join(f"{name} {version(dist)}" for name, dist in (("torch", "torch"), ("hydra", "hydra-core"), ("optuna", "optuna")))
    return f"gansweep {version('gansweep')} ({deps})"


def _complete(argv: list[str]) -> int:
    """``gansweep -sc query=bash``, as the script of ``gansweep train -sc install=bash``
    calls it: Hydra completes the overrides on the line. Hydra takes every word after the
    program's name for an override, so the line it sees keeps only the overrides (words
    with ``=``) and the word being typed, without the subcommand and its flags."""
    words = os.environ.get("COMP_LINE", "").split(" ")
    if len(words) > 1 and words[1] in COMMANDS:
        typed = [words[-1]] if len(words) > 2 and "=" not in words[-1] and not words[-1].startswith("-") else []
        os.environ["COMP_LINE"] = " ".join([words[0], *[w for w in words[2:] if "=" in w], *typed])
    return _train(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": _train, "sweep": _sweep, "eval": _eval, "confirm": _confirm, "pbt": _pbt, "report": _report,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gansweep` console script and `python -m gansweep`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(version_line())
        return 0
    if argv[0] in ("-sc", "--shell-completion"):
        return _complete(argv)
    command = COMMANDS.get(argv[0])
    if command is None:
        err_console.print(f"gansweep: unknown command {argv[0]!r}; choose one of {', '.join(COMMANDS)}")
        return 2
    # SIGTERM (kill, a scheduler, a parent process) stops a command as Ctrl-C does, with the
    # same checkpoints, outputs and exit code, also before training installs its own handler.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return command(argv[1:])
    except GansweepError as exc:
        err_console.print(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except OSError as exc:  # a full disk, an unwritable folder, a missing file: the user's to fix
        err_console.print(f"error: {os_error_line(exc)}")
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt

