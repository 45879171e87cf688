"""Population-based training (Jaderberg et al. 2017) on the stacked engine.

K members train as one stack (gansweep.population). Every `ready` generator updates each
member has just been evaluated; they are ranked by the objective, with the sweep's
working-generator gate (a member whose samples are noise or cover nothing ranks last and
is never copied). The bottom `quantile` then copies a random member of the top
`quantile`: its networks, EMA and Adam moments, a row copy inside the stack (exploit).
Each copier then perturbs the copied hyperparameters: every searched key is drawn anew
from the space with probability `resample`, else multiplied by 0.8 or 1.25, clipped to
the space's bounds (explore). Data order and noise stay the member's own.

Each member's history is what its weights went through: the donor's history up to the
copy, then its own values. That history, as a `schedule:`, is the recipe
`gansweep train` replays from scratch; a copied-weights result is not one.

Before each round, with every member's checkpoint of that step written, the caller is
handed a PbtState: the generator of the draws, who trains, the histories and the scores
the round ranks. A run killed at any moment continues from the last one bit for bit:
the members load their checkpoints of that step and the round is done again.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from optuna.distributions import FloatDistribution

from gansweep.config import SCHEDULED
from gansweep.devices import pick_device
from gansweep.health import not_working
from gansweep.lineage import History
from gansweep.member import Member, MemberSpec
from gansweep.population import MemberResult, Population, end_member
from gansweep.progress import console
from gansweep.scores import higher_is_better, is_finite_number
from gansweep.signals import stop_on_signal
from gansweep.threads import ThreadShare, set_threads

PERTURB = (0.8, 1.25)  # explore: each searched value times one of these, or drawn anew
PERTURBED = ("lr", *SCHEDULED)  # keys a PBT space may search: lr moves lr_g and lr_d together


@dataclass(frozen=True)
class PbtRules:
    """When and how members copy and perturb."""

    ready: int  # generator updates between rounds
    quantile: float  # the bottom share copies the top share
    resample: float  # chance a key is drawn anew from the space instead of scaled
    space: dict[str, FloatDistribution]  # keys of PERTURBED


def rank_score(scores: dict[str, Any], objective: str) -> Optional[float]:
    """The member's objective, oriented so that lower is better; None when it has none or
    its generator does not work (it ranks last and is never copied)."""
    value = scores.get(objective)
    if not is_finite_number(value) or not_working(scores) is not None:
        return None
    return -float(value) if higher_is_better(objective) else float(value)


def explore(values: dict[str, float], rules: PbtRules, rng: np.random.Generator) -> dict[str, float]:
    """Perturbed copies of `values` (lr_g, lr_d, beta1, beta2), within the space's bounds."""
    new = dict(values)
    for key, dist in rules.space.items():
        targets = ("lr_g", "lr_d") if key == "lr" else (key,)
        if rng.random() < rules.resample:
            drawn = (math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))) if dist.log else rng.uniform(dist.low, dist.high))
            for t in targets:
                new[t] = drawn
        else:
            factor = float(rng.choice(PERTURB))
            for t in targets:
                new[t] = min(max(values[t] * factor, dist.low), dist.high)
    return {k: float(v) for k, v in new.items()}


@dataclass
class PbtState:
    """Where a PBT run stands at a round, before its copies: what continues it bit for bit."""

    step: int
    rng: dict[str, Any]  # the state of the exploit/explore draws
    alive: list[int]  # the members training, in row order
    histories: list[History]  # every member's, by member number
    scores: list[dict[str, Any]]  # the alive members' scores this round ranks, in row order

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "rng": self.rng, "alive": self.alive, "scores": self.scores,
                "histories": [h.record(member) for member, h in enumerate(self.histories)]}

    @staticmethod
    def from_json(record: dict[str, Any]) -> "PbtState":
        return PbtState(record["step"], record["rng"], list(record["alive"]), [History.from_record(h) for h in record["histories"]],
                        list(record["scores"]))


def pbt_round(pop: Population, ids: list[int], histories: list[History], rules: PbtRules, objective: str,
              rng: np.random.Generator, member_scores: list[dict[str, Any]]) -> list[str]:
    """One exploit-and-explore round over the members training now (row k is member ids[k],
    with member_scores[k]); returns a line per copy, or one saying why none happened."""
    step = pop.members[0].at.step
    scores = [rank_score(s, objective) for s in member_scores]
    ranked = sorted((k for k, v in enumerate(scores) if v is not None), key=lambda k: (scores[k], ids[k]))
    if not ranked:
        return [f"step {step}: no member draws a working generator yet; none copied"]
    n = max(1, int(len(pop.members) * rules.quantile))
    top = ranked[:n]
    unranked = [k for k, v in enumerate(scores) if v is None]
    bottom = (unranked + ranked[::-1])[:n]  # no score first, then the worst scored
    lines = []
    for k in bottom:
        if k in top:
            continue
        j = int(rng.choice(top))
        pop.stack.copy_member(k, j)  # type: ignore[union-attr]
        values = explore(pop.members[j].hparams, rules, rng)
        pop.members[k].hparams = values
        pop.set_hparams(k, values)
        donor = histories[ids[j]]
        own, theirs = (member_scores[i].get(objective) for i in (k, j))
        histories[ids[k]] = History([e for e in donor.steps if e[0] < step] + [(step, values)],
                                    histories[ids[k]].copies + [{"step": step, "from": ids[j], objective: own, f"donor_{objective}": theirs}])
        lines.append(f"step {step}: member {ids[k]} ({objective} {_shown(own)}) copies member {ids[j]} ({_shown(theirs)}); "
                     + ", ".join(f"{key} {values[key]:.4g}" for key in SCHEDULED))
    return lines


def _shown(value: Any) -> str:
    return f"{value:.4g}" if is_finite_number(value) else "none"


def train_pbt(
    specs: list[MemberSpec],
    rules: PbtRules,
    objective: str,
    seed: int,
    on_done: Callable[[int, MemberResult, History], None],
    on_round: Callable[[list[str], list[History]], None],
    on_state: Callable[[PbtState], None],
    threads: int = 0,
    start: Optional[PbtState] = None,
) -> None:
    """Train the members as one population with a PBT round every rules.ready steps;
    on_done(member, result, history) as each run ends, on_round(lines, histories) after
    each round, on_state(state) at the start and before each round, once the members'
    checkpoints of that step are written. With `start` (specs then resume at its step) the
    members it names continue, and the round of that step is done again. Every spec must
    share one shape (gansweep.population.shape_key) and budget."""
    device = pick_device(specs[0].cfg.device)
    share = ThreadShare(threads) if device.type == "cpu" else None
    n_threads, note = set_threads(threads, share)
    if note:
        console.print(note)
    rng = np.random.default_rng(seed)
    pop = Population(device)
    with stop_on_signal() as caught, share if share is not None else nullcontext():
        ids = list(range(len(specs))) if start is None else list(start.alive)
        for i in ids:
            pop.admit(Member(specs[i], device, quiet=True, threads=n_threads if device.type == "cpu" else None))
        total = pop.members[0].total

        def ended_here(exc: Optional[BaseException], rows: list[int]) -> None:
            for k in rows:
                member = ids[k]
                end_member(pop, k, exc, lambda result, member=member: on_done(member, result, histories[member]))

        def record(scores: list[dict[str, Any]]) -> None:
            on_state(PbtState(pop.members[0].at.step, rng.bit_generator.state, list(ids), list(histories), scores))

        histories = [History([(0, dict(m.hparams))]) for m in pop.members] if start is None else list(start.histories)
        try:
            if start is None:
                for k in range(len(pop.members)):
                    pop.save(k)  # the step-0 checkpoints a kill before the first round resumes from
                record([])
            else:
                rng.bit_generator.state = start.rng
                for k, member in enumerate(ids):  # the values the round found them with
                    pop.members[k].hparams = dict(histories[member].steps[-1][1])
                    pop.set_hparams(k, pop.members[k].hparams)
                if start.step > 0:
                    on_round(pbt_round(pop, ids, histories, rules, objective, rng, start.scores), histories)
            while pop.members:
                if caught:
                    raise KeyboardInterrupt
                pop.step()
                ended = pop.periodic()
                for k in sorted(ended):
                    ended_here(ended[k], [k])
                if ended:
                    pop.drop(list(ended))
                    ids[:] = [i for k, i in enumerate(ids) if k not in ended]
                if pop.members and pop.members[0].at.step % rules.ready == 0 and pop.members[0].at.step < total:
                    scores = [dict(m.summary.scores) for m in pop.members]
                    record(scores)
                    on_round(pbt_round(pop, ids, histories, rules, objective, rng, scores), histories)
        except BaseException as exc:  # Ctrl-C, or a fault of the population: every member on record
            ended_here(exc, list(range(len(pop.members))))
            raise
