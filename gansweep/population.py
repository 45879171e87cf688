"""Many runs trained as one stack: the loop that drives gansweep.engine for K members.

Each member is an ordinary run (gansweep.member): set up exactly as a solo run, with its
own folder, log, checkpoints and noise, resumable by ``gansweep train resume=``. Only
the arithmetic is shared: one step of the stack updates every member with its own lr,
betas, lr decay and stabilizer settings, and one evaluation pass scores every member
due (their samples drawn and featurised together). A solo run is a population of one.

Members join and leave between steps: one that finishes, diverges or is stopped by its
hooks leaves the stack at once, and ``refill`` may hand in a new member (a new sweep
trial) for the freed slot. Members never mix, so a member's numbers do not depend on
who else is in the population.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from omegaconf import OmegaConf

from gansweep.adam import AdamState
from gansweep.batches import StackedBatches
from gansweep.config import TrainConfig
from gansweep.devices import pick_device
from gansweep.engine import DECAYS, STATS, Knobs, Stack, StepSpec, train_step
from gansweep.losses import LOSSES
from gansweep.member import Evaluation, Member, MemberSpec, StopTraining, stop_reason_of
from gansweep.progress import console
from gansweep.rundir import RunFolder, RunSummary, StopKind
from gansweep.scoring import score_stack
from gansweep.signals import stop_on_signal
from gansweep.stacked import StackedNet
from gansweep.threads import ThreadShare, set_threads

# Keys that may differ between the members of one population: none of them changes a
# tensor's shape or the order of the step's operations (d_dropout only while it stays on).
MEMBER_KEYS = (
    "lr", "lr_g", "lr_d", "beta1", "beta2", "lr_decay", "schedule", "seed", "threads", "resume", "overwrite",
    "log_every", "eval_every", "sample_every", "checkpoint_every", "steps", "images", "epochs", "tensorboard",
    "stabilize.real_label", "stabilize.instance_noise", "stabilize.clip_g", "stabilize.clip_d", "stabilize.ema",
    "stabilize.d_dropout", "eval",
)
SEEDED_DATA = ("ring8", "grid25", "stacked_mnist")  # data sets drawn from the run's seed


def shape_key(cfg: TrainConfig) -> str:
    """Configs with the same key can share a population: everything but MEMBER_KEYS."""
    tree = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)
    for key in MEMBER_KEYS:
        *parents, leaf = key.split(".")
        node = tree
        for parent in parents:
            node = node[parent]
        node.pop(leaf)
    tree["d_dropout_on"] = cfg.stabilize.d_dropout > 0  # dropout layers exist or not
    return json.dumps(tree, sort_keys=True)


@dataclass
class MemberResult:
    spec: MemberSpec
    summary: Optional[RunSummary]  # None when the run could not even start
    error: Optional[BaseException] = None  # what stopped it from starting or finishing


def _stack_of(m: Member, device: torch.device) -> Stack:
    """A stack of one member: its fresh nets, then its checkpoint when it resumes."""
    dtype = next(m.g.parameters()).dtype
    # channels-last weights only where the CPU's fast kernels take them (float64's slow_conv2d does not)
    channels_last = m.layout is torch.channels_last and dtype != torch.float64
    g, d = StackedNet.of([m.g], channels_last), StackedNet.of([m.d], channels_last)
    col = lambda v: torch.tensor([[v]], dtype=dtype, device=device)  # noqa: E731
    kn = m.knobs()
    keys = torch.tensor([m.key], dtype=torch.int64, device=device)
    cfg = m.cfg
    knobs = Knobs(col(kn["beta1"]), col(kn["beta2"]), col(kn["clip_g"])[0], col(kn["clip_d"])[0], col(kn["ema"]), col(kn["real_label"]),
                  keys, torch.tensor([[kn["lr_g"], kn["lr_d"]]], dtype=dtype, device=device), col(float(DECAYS.index(cfg.lr_decay.value))),
                  col(float(max(1, m.total))), col(cfg.stabilize.instance_noise), [(kn["beta1"], kn["beta2"])])
    shared = m.data.name not in SEEDED_DATA
    samples = m.data.samples.to(device, dtype=dtype).contiguous(memory_format=m.layout)
    labels = m.data.labels.to(device) if m.cfg.model.conditional else None
    if not shared:
        samples, labels = samples.unsqueeze(0), (None if labels is None else labels.unsqueeze(0))
    batches = StackedBatches(samples, labels, m.cfg.batch_size, keys, shared)
    counter = lambda v: torch.tensor([v], dtype=torch.int64, device=device)  # noqa: E731
    stack = Stack(g, d, AdamState.zeros(g.flat), AdamState.zeros(d.flat), g.flat.detach().clone(),
                  {n: t.clone() for n, t in g.buffers.items()}, torch.zeros(1, 1, dtype=dtype, device=device), batches, knobs,
                  counter(m.at.step), counter(m.at.window_start))
    m.load_into(stack, 0)
    return stack


def _spec_of(members: list[Member], device: torch.device, stacked: Optional[bool]) -> StepSpec:
    cfg = members[0].cfg
    st = [m.cfg.stabilize for m in members]
    return StepSpec(
        loss=LOSSES[cfg.loss.name], n_critic=cfg.loss.n_critic, gp_weight=cfg.loss.gp_weight if cfg.loss.name == "wgan_gp" else 0.0,
        z_dim=cfg.model.z_dim, smoothing=any(s.real_label != 1.0 for s in st), instance_noise=any(s.instance_noise > 0 for s in st),
        clipping=any(s.clip_g > 0 or s.clip_d > 0 for s in st), ema=any(s.ema > 0 for s in st),
        fused_adam=device.type == "cpu" and not stacked,
    )


class Population:
    """The members training now, their stack and the steps' statistics since each one's last log line."""

    def __init__(self, device: torch.device, stacked: Optional[bool] = None):
        self.device, self.stacked = device, stacked
        self.members: list[Member] = []
        self.stack: Optional[Stack] = None
        self.hist: Optional[torch.Tensor] = None  # (K, log window, len(STATS)) on the device
        self.spec: Optional[StepSpec] = None

    def admit(self, m: Member) -> None:
        one = _stack_of(m, self.device)
        row = torch.full((1, self._width([m]), len(STATS)), float("nan"), dtype=one.g.flat.dtype, device=self.device)
        if m.at.window is not None:  # a resumed window
            row[0, : len(m.at.window)] = torch.as_tensor(m.at.window, dtype=row.dtype, device=self.device)
        self.members.append(m)
        for member in self.members:  # a stack only grows here
            member.summary.stack_max = max(member.summary.stack_max or 1, len(self.members))
        self.stack = one if self.stack is None else self.stack.concat(one)
        self.hist = row if self.hist is None else torch.cat([self._widen(self.hist, row.shape[1]), self._widen(row, self.hist.shape[1])])
        self._retune()

    def drop(self, ended: list[int]) -> None:
        keep = [k for k in range(len(self.members)) if k not in ended]
        self.members = [self.members[k] for k in keep]
        if not keep:
            self.stack, self.hist = None, None
            return
        assert self.stack is not None and self.hist is not None
        self.stack = self.stack.select(keep)
        self.hist = self.hist.index_select(0, torch.tensor(keep, device=self.device))
        self._retune()

    def _retune(self) -> None:
        self.spec = _spec_of(self.members, self.device, self.stacked)
        self.stack.g.stacked = self.stack.d.stacked = self.stacked  # type: ignore[union-attr]

    @staticmethod
    def _width(members: list[Member]) -> int:
        return max(m.when.log_every for m in members)

    @staticmethod
    def _widen(t: torch.Tensor, width: int) -> torch.Tensor:
        if t.shape[1] >= width:
            return t
        pad = torch.full((t.shape[0], width - t.shape[1], t.shape[2]), float("nan"), dtype=t.dtype, device=t.device)
        return torch.cat([t, pad], dim=1)

    def step(self) -> None:
        """One step of every member; its statistics go to each member's window."""
        ms, stack = self.members, self.stack
        assert stack is not None and self.spec is not None and self.hist is not None
        stats = train_step(stack, self.spec, [m.host_lr() for m in ms] if self.spec.fused_adam else None)
        width = self.hist.shape[1]  # row k, column (step - window start) of the history, as one flat index
        at = torch.arange(len(ms), device=self.device) * width + stack.steps - stack.window_start
        self.hist.view(-1, len(STATS)).index_copy_(0, at, stats.detach())
        stack.steps.add_(1)
        for k, m in enumerate(ms):
            if m.after_step(stack.batches.batch_size * self.spec.n_critic):
                self.set_hparams(k, m.hparams)

    def set_hparams(self, k: int, values: dict[str, float]) -> None:
        """Member k's lr_g, lr_d (before decay), beta1 and beta2 from its next step on."""
        kn = self.stack.knobs  # type: ignore[union-attr]
        kn.lr[k, 0], kn.lr[k, 1] = values["lr_g"], values["lr_d"]
        kn.beta1[k, 0], kn.beta2[k, 0] = values["beta1"], values["beta2"]
        kn.betas_host[k] = (values["beta1"], values["beta2"])

    def advance(self, steps: int) -> None:
        """`steps` steps with their log lines and side work, as training runs them (benchmarks)."""
        for _ in range(steps):
            self.step()
            self.periodic()

    def windows(self) -> list[Optional[np.ndarray]]:
        """Each member's rows since its last log line, on the host (one copy for all)."""
        assert self.hist is not None
        hist = self.hist.cpu().numpy()
        return [hist[k, : m.at.step - m.at.window_start].copy() if m.at.step > m.at.window_start else None
                for k, m in enumerate(self.members)]

    def periodic(self) -> dict[int, Optional[BaseException]]:
        """Log lines and side work of the members due now; those whose run ends here, with why
        (None: its budget is done)."""
        due_log = [m.log_due() for m in self.members]
        due_side = [m.side_work_due() for m in self.members]
        ended: dict[int, Optional[BaseException]] = {}
        if not (any(due_log) or any(due_side)):
            return ended
        windows = self.windows()
        evaluations = self.evaluate([k for k, m in enumerate(self.members) if due_side[k] and m.eval_due()])
        for k, m in enumerate(self.members):
            try:
                if due_log[k]:
                    m.write_log_line(windows[k])
                    windows[k] = None
                    self.stack.window_start[k] = m.at.step
                if due_side[k]:
                    m.side_work(self.stack, k, windows[k], evaluations.get(k))
            except (StopTraining, Exception) as exc:  # noqa: B014  # the member's run ends; the others go on
                ended[k] = exc
                continue
            if m.at.step >= m.total:
                ended[k] = None
        return ended

    def evaluate(self, due: list[int]) -> dict[int, Evaluation]:
        """Score members `due` now: those whose evaluators share a pass (the same sample count,
        feature net, ...; all of them in a sweep or PBT) are drawn from one stacked sampler
        and featurised together, so the pass costs about what one member's costs in calls."""
        passes: dict[tuple, list[int]] = {}
        out: dict[int, Evaluation] = {}
        for k in due:
            m = self.members[k]
            try:
                passes.setdefault(m.evaluator.pass_key(m.eval_samples()), []).append(k)
            except Exception as exc:  # noqa: BLE001  # an evaluation this member cannot run ends its run alone
                out[k] = Evaluation(exc, 0.0)
        for idx in passes.values():
            started = time.monotonic()
            ms = [self.members[k] for k in idx]
            sampler = self.stack.sampler(idx, [m.cfg.stabilize.ema > 0 for m in ms])  # type: ignore[union-attr]
            first = ms[0].cfg
            try:
                with sampler.evaluating():
                    results = score_stack([m.evaluator for m in ms], sampler, first.model.z_dim, [m.cfg.seed for m in ms], self.device,
                                          ms[0].eval_samples(), first.data.num_classes if first.model.conditional else 0)
            except Exception as exc:  # noqa: BLE001  # the pass itself failed (out of memory): its members end, other stacks go on
                results = [exc] * len(idx)
            share = (time.monotonic() - started) / len(idx)
            out.update({k: Evaluation(r, share) for k, r in zip(idx, results)})
        return out

    def save(self, k: int) -> None:
        """Member k's checkpoint now, with its open window (stopped early: keep where it got)."""
        window = self.windows()[k]
        self.members[k].save_checkpoint(self.stack, k, window)


def end_member(pop: Population, k: int, exc: Optional[BaseException], on_done: Callable[[MemberResult], None]) -> None:
    """Record how member k's run ended (exc None: its budget is done), with a checkpoint
    where it stopped early, and hand its result to on_done."""
    m = pop.members[k]
    if m.ended:  # on_done raised for it (a full disk): the population ends, it is on record already
        return
    reason = stop_reason_of(exc, m.at.step, m.run.path, m.spec.continue_with) if exc is not None else None
    if reason is not None and reason.kind not in (StopKind.diverged, StopKind.failed):
        pop.save(k)
    m.finish(reason)
    on_done(MemberResult(m.spec, m.summary, exc if reason is not None and reason.kind is StopKind.failed else None))


def train_population(
    specs: list[MemberSpec],
    on_done: Callable[[MemberResult], None],
    refill: Optional[Callable[[], Optional[MemberSpec]]] = None,
    size: Optional[int] = None,
    threads: int = 0,
    quiet: bool = True,
    stacked: Optional[bool] = None,
) -> None:
    """Train the members together until all are done; each result goes to on_done as its run
    ends. While fewer than `size` (default: len(specs)) members train, refill() is asked for
    another; it returns None when it has none.

    Members of one ``shape_key`` form one stack; members of other shapes (a sweep's other
    batch sizes) form stacks of their own, stepped in turn, so no trial waits for a
    population of its shape. A Ctrl-C (or SIGTERM) checkpoints every member, records it
    interrupted and re-raises KeyboardInterrupt. stacked=True runs even one member in the
    stacked form (tests)."""
    size = size or len(specs)
    device = pick_device(specs[0].cfg.device)
    share = ThreadShare(threads) if device.type == "cpu" else None
    n_threads, note = set_threads(threads, share)
    if note and not quiet:
        console.print(note)
    groups: dict[str, Population] = {}  # by shape_key
    pending = list(specs)

    def training() -> int:
        return sum(len(pop.members) for pop in groups.values())

    def admit(spec: MemberSpec) -> None:
        try:
            m = Member(spec, device, quiet, n_threads if device.type == "cpu" else None)
            if m.at.step >= m.total:  # a resumed run whose budget is already done: nothing to train
                m.finish(None)
                on_done(MemberResult(spec, m.summary))
                return
            groups.setdefault(shape_key(m.cfg), Population(device, stacked)).admit(m)
        except Exception as exc:  # a member that cannot start never stops the others
            on_done(MemberResult(spec, RunFolder(spec.run_dir).read_summary(), exc))

    def end_all(exc: BaseException) -> None:
        for pop in groups.values():
            for k in range(len(pop.members)):
                end_member(pop, k, exc, on_done)

    try:
        with stop_on_signal() as caught, share if share is not None else nullcontext():
            while True:
                while pending and training() < size:
                    admit(pending.pop(0))
                while refill is not None and training() < size:
                    spec = refill()
                    if spec is None:
                        break
                    admit(spec)
                for key in [key for key, pop in groups.items() if not pop.members]:
                    del groups[key]
                if not groups:
                    return
                if caught:
                    raise KeyboardInterrupt
                for pop in list(groups.values()):
                    pop.step()
                    ended = pop.periodic()
                    for k in sorted(ended):
                        end_member(pop, k, ended[k], on_done)
                    if ended:
                        pop.drop(list(ended))
    except KeyboardInterrupt as exc:
        end_all(exc)
        raise
    except Exception as exc:  # a fault of the population ends its members as failed, each on record
        end_all(exc)
