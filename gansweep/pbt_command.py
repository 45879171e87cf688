"""`gansweep pbt`: population-based training of K members, its study, lineage and replay config."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any, Optional

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from gansweep.arguments import ArgumentParser
from gansweep.atomic import write_bytes_atomic, write_json_atomic
from gansweep.config import compose_config, to_train_config
from gansweep.data import load_dataset
from gansweep.errors import EXIT_INTERRUPTED, ConfigError
from gansweep.health import not_working
from gansweep.lineage import PBT_LINEAGE, PBT_STATE, History, lineage_png
from gansweep.member import MemberSpec, plan_steps
from gansweep.pbt import PERTURBED, PbtRules, PbtState, train_pbt
from gansweep.population import MemberResult, shape_key
from gansweep.progress import console
from gansweep.rundir import RunFolder, SweepMembership
from gansweep.scores import format_score, parse_objectives
from gansweep.scoring import run_kinds
from gansweep.sweep.outputs import write_outputs
from gansweep.sweep.space import build_space, parse_space, space_file
from gansweep.sweep.study import StudySpec, make_pruner, make_storage, open_study
from gansweep.sweep.trial import NOT_WORKING, trial_dir

EPILOG = """\
Every --ready share of the budget the members are evaluated and ranked by the objective,
with the sweep's working-generator gate; the bottom --quantile copies a random member of
the top --quantile (weights, EMA, Adam state), then perturbs each searched key: drawn anew
from the space with probability --resample, else times 0.8 or 1.25 within its bounds.
The space searches lr, lr_g, lr_d, beta1 and beta2 (the keys that may change mid-run).

The best member's history is written as best.yaml, a config whose `schedule:` replays it
from scratch; `gansweep confirm FOLDER` retrains it on new seeds. Only a confirmed replay
is a result: copied weights are not a recipe anyone can rerun.

A PBT run stopped by Ctrl-C or kill -9 continues when the same command is given again:
from its last round, bit for bit as if it had never stopped.

Examples:
  gansweep pbt --members 16 model=mlp data=grid25 steps=20000
  gansweep pbt --members 8 --ready 0.05 --space sweeps/pbt.yaml model=mlp data=ring8 steps=5000
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="gansweep pbt", description="Population-based training: members that copy the best and perturb "
                       "their hyperparameters mid-run. Trailing KEY=VALUE arguments fix the base config.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=8, help="members trained at once (default 8)")
    p.add_argument("--ready", type=float, default=0.1, help="share of the budget between rounds (default 0.1)")
    p.add_argument("--quantile", type=float, default=0.25, help="share of members that copy, and that are copied (default 0.25)")
    p.add_argument("--resample", type=float, default=0.25, help="chance a key is drawn anew instead of scaled (default 0.25)")
    p.add_argument("--space", default="pbt.yaml", help="search space YAML of lr, lr_g, lr_d, beta1, beta2 (default: sweeps/pbt.yaml)")
    p.add_argument("--objective", default=None, help="the score members are ranked by (default: fid for images, mixture_tv for 2D)")
    p.add_argument("--name", default=None, help="folder name under --dir (default: pbt-MODEL-DATA); the same command continues it")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial draws and of exploit/explore (default 0)")
    p.add_argument("--dir", default="outputs/pbt", help="where PBT folders go (default outputs/pbt)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the base config, e.g. model=mlp data=grid25 steps=20000")
    return p


def _check_args(args: argparse.Namespace) -> None:
    if args.members < 2:
        raise ConfigError(f"--members {args.members}: must be >= 2 (one member has no one to copy)")
    for flag, value in (("--ready", args.ready), ("--quantile", args.quantile)):
        if not 0 < value <= 0.5:
            raise ConfigError(f"{flag} {value}: must be in (0, 0.5]")
    if not 0 <= args.resample <= 1:
        raise ConfigError(f"--resample {args.resample}: must be in [0, 1]")


def _perturbed_space(source: str, params: dict[str, Any]) -> dict[str, FloatDistribution]:
    for key, dist in params.items():
        if key not in PERTURBED:
            raise ConfigError(f"{source}: {key}: PBT changes only {', '.join(PERTURBED)} mid-run; fix {key} with an override instead")
        if not isinstance(dist, FloatDistribution):
            raise ConfigError(f"{source}: {key}: give an interval, e.g. {key}: tag(log, interval(1e-4, 1e-3))")
    if not params:
        raise ConfigError(f"{source}: searches nothing; give params such as lr: tag(log, interval(1e-4, 1e-3))")
    return dict(params)


def replay_config(stored: dict[str, Any], history: History) -> dict[str, Any]:
    """A member's config as a from-scratch replay of its history: its start values and `schedule:`."""
    start, entries = history.schedule()
    replay = {**stored, **start, "schedule": entries}
    replay["lr"] = start["lr_g"] if start["lr_g"] == start["lr_d"] else stored["lr"]
    return replay


def _resume_point(pbt_dir: Path, name: str, identity: dict[str, Any]) -> Optional[PbtState]:
    """None for a new PBT folder; the state to continue from for a stopped one of the same
    command; ConfigError for a finished one, another command's or one with nothing to continue."""
    if not pbt_dir.exists():
        return None
    path = pbt_dir / PBT_STATE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--name {name}: {pbt_dir} exists and holds no {PBT_STATE} to continue from (it stopped before its "
                          "members' first checkpoints); delete the folder or give a new --name") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({type(exc).__name__}); give a new --name") from None
    if record.get("finished"):
        raise ConfigError(f"--name {name}: {pbt_dir} holds a finished PBT run; its results stay there, give a new --name")
    for key, mine in identity.items():
        if record["identity"].get(key) != mine:
            raise ConfigError(f"--name {name}: this PBT run was started with other {key} ({record['identity'].get(key)!r}); "
                              "rerun it as it was, or give a new --name")
    return PbtState.from_json(record)


def run_pbt(argv: list[str]) -> int:
    """Run `gansweep pbt ARGV`; returns the exit code."""
    args = build_parser().parse_args(argv)
    _check_args(args)
    source, space_text = space_file(args.space)
    exprs, space_base = parse_space(source, space_text)
    base_overrides = space_base + list(args.overrides)
    base_dict = compose_config(base_overrides)
    base_cfg = to_train_config(base_dict)
    data = load_dataset(base_cfg.data, base_cfg.seed)
    space = _perturbed_space(source, build_space(source, exprs, base_dict).params)
    objectives = parse_objectives(args.objective, run_kinds(base_cfg))
    if len(objectives) > 1:
        raise ConfigError(f"--objective {args.objective}: PBT ranks by one score; give one")
    if not base_cfg.eval.enabled:
        raise ConfigError("eval.enabled=false: PBT ranks members by their scores; drop that override")
    objective = objectives[0]
    total = plan_steps(base_cfg, len(data))
    ready = max(1, round(total * args.ready))
    name = args.name or f"pbt-{base_cfg.model.name}-{base_cfg.data.name}"
    pbt_dir = Path(args.dir) / name
    identity = {"--members": args.members, "--ready": args.ready, "--quantile": args.quantile, "--resample": args.resample,
                "--seed": args.seed, "--objective": objective, "--space": space_text, "overrides": base_overrides}
    start = _resume_point(pbt_dir, name, identity)
    rules = PbtRules(ready, args.quantile, args.resample, space)
    again = shlex.join(["gansweep", "pbt", *argv])

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pbt_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(StudySpec(name, objectives, space_text, base_overrides), make_storage(None, pbt_dir),
                       optuna.samplers.RandomSampler(seed=args.seed), make_pruner("none"))
    if start is None:
        trials = [study.ask(space) for _ in range(args.members)]
    else:
        trials = [optuna.trial.Trial(study, t._trial_id) for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)]
    # Every member evaluates and checkpoints at each round; it starts from its own seed.
    plumbing = [f"eval_every={ready}", f"checkpoint_every={ready}"]
    specs = []
    for i, trial in enumerate(trials):
        params = dict(trial.params)
        overrides = base_overrides + plumbing + [f"{k}={v}" for k, v in params.items()] + [f"seed={base_cfg.seed + i}"]
        cfg = to_train_config(compose_config(overrides))
        membership = SweepMembership(name, trial.number, params, objectives)
        specs.append(MemberSpec(cfg, trial_dir(pbt_dir, trial.number), overrides, sweep=membership, resume=start is not None,
                                resume_at=start.step if start is not None else None, continue_with=again))
    assert len({shape_key(s.cfg) for s in specs}) == 1  # the space changes no shape

    console.print(f"pbt {name}: {args.members} members of {base_cfg.model.name} on {base_cfg.data.name}, {total} steps each, "
                  f"ranked by {objective} every {ready} steps; folder {pbt_dir}")
    claims = []
    if start is not None:
        for spec in specs:  # refused while another process still trains this PBT run
            claims.append(RunFolder(spec.run_dir))
            claims[-1].take_over()
        console.print(f"continuing from step {start.step} (the last round recorded), {len(start.alive)} member(s) training", markup=False)
    at_step = [start.step if start is not None else 0]
    started = time.monotonic()
    finals: dict[int, tuple[MemberResult, History]] = {}

    def write_lineage(member: int, history: History) -> None:
        write_json_atomic(specs[member].run_dir / PBT_LINEAGE, history.record(member))

    def on_round(lines: list[str], histories: list[History]) -> None:
        for line in lines:
            console.print(line, markup=False)
        for member, history in enumerate(histories):
            if member not in finals:
                write_lineage(member, history)

    def on_done(member: int, result: MemberResult, history: History) -> None:
        finals[member] = (result, history)
        write_lineage(member, history)

    def on_state(state: PbtState) -> None:
        at_step[0] = state.step
        write_json_atomic(pbt_dir / PBT_STATE, {"identity": identity, **state.to_json()})

    try:
        train_pbt(specs, rules, objective, args.seed, on_done, on_round, on_state, threads=base_cfg.threads, start=start)
    except KeyboardInterrupt:
        # The trials stay running in the study: the same command continues them.
        console.print(f"\npbt interrupted; it continues from step {at_step[0]} (its last round) with: {again}", markup=False)
        return EXIT_INTERRUPTED
    for member, spec in enumerate(specs):  # ended in an earlier session: as their folders and the state say
        if member not in finals and start is not None:
            finals[member] = (MemberResult(spec, RunFolder(spec.run_dir).read_summary()), start.histories[member])

    told = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}  # a kill during these tells
    for member, trial in enumerate(trials):
        result, history = finals[member]
        if trial.number in told:
            continue
        summary = result.summary
        stored = RunFolder(specs[member].run_dir).read_config() or {}
        replay = replay_config(stored, history)
        start, entries = history.schedule()
        attrs = {"status": summary.status.value if summary else "failed", "config": replay, "schedule": entries,
                 "copies": history.copies, "duration_s": time.monotonic() - started}
        value = summary.scores.get(objective) if summary is not None else None
        if summary is not None and summary.status.has_objective and isinstance(value, (int, float)):
            attrs[NOT_WORKING] = not_working(summary.scores)
            for key, v in attrs.items():
                trial.set_user_attr(key, v)
            study.tell(trial, float(value))
        else:
            for key, v in attrs.items():
                trial.set_user_attr(key, v)
            study.tell(trial, state=TrialState.FAIL)

    facts = write_outputs(study, pbt_dir, name, objectives, config_from_study=True)
    histories = {m: h for m, (_, h) in finals.items()}
    scores = {m: (r.summary.scores.get(objective) if r.summary else None) for m, (r, _) in finals.items()}
    write_bytes_atomic(pbt_dir / "lineage.png", lineage_png(histories, scores, objective, total, f"pbt {name}"))
    write_json_atomic(pbt_dir / PBT_STATE, {"identity": identity, "finished": True})
    best = facts["best"]
    console.print(f"\npbt done: {len(finals)} members in {time.monotonic() - started:.0f}s")
    if best is not None:
        console.print(f"best: member {best.number}  {objective}={format_score(objective, best.values[0])}  "
                      f"{len(best.user_attrs.get('schedule', []))} schedule change(s), "
                      f"{len(best.user_attrs.get('copies', []))} copy(ies)", markup=False)
        console.print(f"replay it from scratch: gansweep train --config-dir {pbt_dir} --config-name best", markup=False)
        console.print(f"confirm the replay on new seeds (only that is a result): gansweep confirm {pbt_dir}", markup=False)
    else:
        console.print("best: none; no member ended with a working generator; give them a longer budget and rerun", markup=False)
    console.print(f"results: {pbt_dir}/{', '.join([*facts['results'], 'lineage.png'])}", markup=False)
    console.print(f"pbt folder: {pbt_dir}")
    return 0
