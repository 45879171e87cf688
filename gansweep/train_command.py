"""`gansweep train`: validate the overrides, then hand them to Hydra's own main.

Hydra keeps all its flags (--cfg, --help, -m, hydra.run.dir=...). Before it starts,
every override (each value of each multirun sweep) is composed and checked against
the typed schema here, so a bad value fails in one line with exit code 2 before any
run folder exists. `resume=DIR` bypasses Hydra: the run continues with the config
stored in its folder.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig

from gansweep.config import compose_config, from_yaml_file, one_line, register_configs, to_train_config
from gansweep.errors import EXIT_INTERRUPTED, ConfigError, GansweepError, RunFolderError, os_error_line
from gansweep.progress import console, err_console
from gansweep.rundir import RunFolder, Status
from gansweep.signals import signals_held
from gansweep.train import train

register_configs()


def override_variants(overrides: list[str]) -> list[list[str]]:
    """Override lists that together try every value of every multirun sweep once."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise ConfigError(f"bad override: {one_line(exc)}") from None
    choices = []
    for o in parsed:
        key = o.get_key_element()
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        choices.append([f"{key}={v}" for v in values] if o.is_sweep_override() else [o.input_line])
    base = [c[0] for c in choices]
    variants = [base]
    for i, c in enumerate(choices):
        variants += [base[:i] + [v] + base[i + 1 :] for v in c[1:]]
    return variants


def validate(overrides: list[str], config_name: str | None = None, config_dir: str | None = None) -> None:
    """Compose and type-check every variant; hydra.* overrides are Hydra's to check."""
    own = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    for variant in override_variants(own):
        to_train_config(compose_config(variant, config_name or "config", config_dir))


_exit_codes: list[int] = []


@hydra.main(version_base="1.3", config_path="pkg://gansweep.conf", config_name="config")
def _hydra_task(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    try:
        result = train(to_train_config(cfg), run_dir, list(hc.overrides.task))
        if result.status is Status.interrupted:
            err_console.print(str(result.summary.stop_reason))
            _exit_codes.append(EXIT_INTERRUPTED)
            if hc.mode == RunMode.MULTIRUN:  # stop the remaining jobs too, as Ctrl-C means
                console.print(f"run folder: {run_dir}")
                raise KeyboardInterrupt
    except (GansweepError, OSError) as exc:
        is_os = isinstance(exc, OSError)
        err_console.print(f"error: {os_error_line(exc) if is_os else exc}")
        _exit_codes.append(2 if is_os else exc.exit_code)
        if RunFolder(run_dir).summary_path.exists():
            console.print(f"run folder: {run_dir}")
        else:
            _remove_unstarted(run_dir)
        return
    console.print(f"run folder: {run_dir}")


def _check_output_dirs(overrides: list[str], multirun: bool) -> RunFolder | None:
    """Check a hydra.run.dir / hydra.sweep.dir override's folder before Hydra writes into it.

    A folder that already holds a run is refused (Hydra would overwrite its .hydra/ and
    the new run would mix with it) unless overwrite=true, which deletes it first. An
    unwritable folder is a one-line error here rather than a traceback inside Hydra.
    Nothing is left behind. A single run's hydra.run.dir is then claimed (returned), so
    that of several runs started on one folder at once only one gets to Hydra.
    """
    overwrite = any(o.lower() in ("overwrite=true", "overwrite=1", "overwrite=yes") for o in overrides)
    reserved = None
    for override in overrides:
        key, _, value = override.partition("=")
        if key not in ("hydra.run.dir", "hydra.sweep.dir") or not value or "${" in value:
            continue
        folder = RunFolder(value)
        if key == "hydra.run.dir" and folder.holds_run():
            if not overwrite:
                raise ConfigError(f"{key}={value}: already holds a run; continue it with resume={value}, "
                                  "replace it with overwrite=true, or choose another folder")
            busy = folder.running_elsewhere()
            if busy:
                raise ConfigError(f"{key}={value}: its run is still training ({busy}); stop it before overwriting")
            folder.clear()
        existing = Path(value).absolute()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".gansweep-probe-"))
        except OSError as exc:
            raise ConfigError(f"{key}={value}: cannot create it ({exc.strerror} in {existing}); choose a writable folder") from None
        if key == "hydra.run.dir" and not multirun:
            folder.reserve()
            reserved = folder
    return reserved


def _remove_unstarted(run_dir: Path) -> None:
    """Undo what Hydra made for a run that failed before its first step: its .hydra/, then
    the run folder and its parents up to the working directory while they are empty."""
    RunFolder(run_dir).unreserve()
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    stop = Path.cwd().resolve()
    folder = run_dir.resolve()
    while folder != stop and folder != folder.parent and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _resume(run_dir: str, other: list[str]) -> int:
    if other:
        raise ConfigError(f"resume={run_dir}: give no other overrides ({' '.join(other)}); the run keeps its own config")
    run = RunFolder(run_dir)
    if not run.config_path.is_file():
        raise ConfigError(f"resume={run_dir}: not a run folder (no config.yaml); give the folder a run printed at its end")
    cfg = from_yaml_file(str(run.config_path))
    try:
        summary = run.read_summary()
    except RunFolderError:
        # The run's state is its config and checkpoint; the summary is rewritten from them.
        raise RunFolderError(f"{run.summary_path}: damaged; config.yaml and the checkpoint are what a resume needs: "
                             f"delete summary.json and run gansweep train resume={run_dir} again") from None
    if summary is not None and summary.status is Status.completed:
        console.print(f"run already completed ({summary.steps} steps); nothing to do")
        console.print(f"run folder: {run.path}")
        return 0
    run.take_over()  # refused while another process writes the folder
    try:
        result = train(cfg, run.path, hooks=None, resume=True)
    finally:
        run.release()
    console.print(f"run folder: {run.path}")
    return EXIT_INTERRUPTED if result.status is Status.interrupted else 0


def run_train(argv: list[str]) -> int:
    """Run `gansweep train ARGV`; returns the exit code."""
    if "--version" in argv:  # gansweep's version, not Hydra's (which Hydra's parser would print)
        from gansweep.cli import version_line

        print(version_line())
        return 0
    args = get_args_parser().parse_args(argv)
    resume = [o for o in args.overrides if o.startswith("resume=")]
    if resume:
        if args.cfg or args.multirun or args.help or args.hydra_help or args.info:
            raise ConfigError(f"{resume[0]}: a resumed run keeps its stored config; --cfg, -m and --help do not apply to it")
        others = [o for o in args.overrides if not o.startswith("resume=")]
        return _resume(resume[0].split("=", 1)[1], others)
    reserved = None
    saved = sys.argv
    try:
        if not (args.help or args.hydra_help or args.info or args.shell_completion):
            validate(args.overrides, args.config_name, args.config_dir)
            with signals_held():  # a stop right after the claim finds it in `reserved` and removes it
                reserved = _check_output_dirs(args.overrides, args.multirun)
        _exit_codes.clear()
        # The installed completion script names and calls this program: gansweep, not "gansweep train".
        sys.argv = ["gansweep" if args.shell_completion else "gansweep train", *argv]
        _hydra_task()
    except SystemExit as exc:  # Hydra exits after --help/--info, and on its own errors
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
        if reserved is not None and not reserved.summary_path.exists():
            with signals_held():
                _remove_unstarted(reserved.path)  # no run started (--cfg, stopped in start-up): nothing left behind
    return max(_exit_codes, default=0)
