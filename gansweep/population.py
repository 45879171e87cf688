"""Population training: many MLP-GAN runs of one architecture trained as one batched model.

Each member is an ordinary run: it is set up exactly as ``train`` sets up a solo run
(same seed, same initial weights, its own data order and noise), writes its own run
folder (summary, metrics.jsonl, samples, checkpoints in the solo format) and can be
resumed by ``gansweep train resume=`` or by another population. Only the arithmetic
is shared: the members' G's and D's are stacked (gansweep.stacked), so one batched
step updates every member with its own lr, betas, lr decay and stabilizer settings.

Members join and leave between steps: one that finishes, diverges or is stopped by
its hooks leaves the stack at once, and ``refill`` may hand in a new member (a new
sweep trial) for the freed slot. Members never mix, so a member's numbers do not
depend on who else is in the population.
"""

from __future__ import annotations

import json
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from omegaconf import OmegaConf

from gansweep.config import TrainConfig
from gansweep.errors import DivergedError
from gansweep.rundir import RunFolder, RunSummary, StopKind, StopReason, SweepMembership
from gansweep.stacked import clip_member_grads, discriminate, generate, member_norms, member_state, stack_states
from gansweep.threads import ThreadShare, rebalance, set_threads
from gansweep.train import (
    DIVERGED_DETAIL,
    LogWindow,
    Progress,
    RunParts,
    StopTraining,
    TrainHooks,
    checkpoint_state,
    config_sha256,
    finish_run,
    instance_noise_std,
    lr_factor,
    open_run,
    periodic_work,
    pick_device,
    prepare_run,
    stop_on_signal,
    write_log_line,
)
from gansweep.progress import ProgressDisplay

# Keys that may differ between the members of one population: none of them changes a
# tensor's shape or the order of the step's operations.
MEMBER_KEYS = (
    "lr", "lr_g", "lr_d", "beta1", "beta2", "lr_decay", "seed", "threads", "resume", "overwrite",
    "log_every", "eval_every", "sample_every", "checkpoint_every",
    "stabilize.real_label", "stabilize.instance_noise", "stabilize.clip_g", "stabilize.clip_d", "stabilize.ema",
)


def population_blocker(cfg: TrainConfig) -> Optional[str]:
    """Why a config cannot train in a population (it then trains alone), or None."""
    if cfg.model.name != "mlp":
        return f"model={cfg.model.name}: populations stack MLPs only"
    if cfg.model.conditional:
        return "model.conditional: the projection discriminator is not stacked"
    if cfg.loss.name == "wgan_gp":
        return "loss=wgan_gp: the gradient penalty is not stacked"
    if cfg.stabilize.d_dropout > 0:
        return "stabilize.d_dropout: dropout masks are drawn per run"
    if cfg.stabilize.spectral_norm:
        return "stabilize.spectral_norm: its power iteration is not stacked"
    return None


def shape_key(cfg: TrainConfig) -> str:
    """Configs with the same key can share a population: everything but MEMBER_KEYS."""
    tree = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)
    for key in MEMBER_KEYS:
        *parents, leaf = key.split(".")
        node = tree
        for parent in parents:
            node = node[parent]
        node.pop(leaf)
    return json.dumps(tree, sort_keys=True)


@dataclass
class MemberSpec:
    """One run to train in a population, as ``train`` takes it."""

    cfg: TrainConfig
    run_dir: Path
    overrides: list[str] = field(default_factory=list)
    hooks: TrainHooks = field(default_factory=TrainHooks)
    sweep: Optional[SweepMembership] = None
    resume: bool = False
    tag: Any = None  # the caller's handle, e.g. its Optuna trial


@dataclass
class MemberResult:
    spec: MemberSpec
    summary: Optional[RunSummary]  # None when the run could not even start
    error: Optional[Exception] = None  # what stopped it from starting or finishing


@dataclass
class _Member:
    """One run's state beside the stack: what train() keeps in its locals."""

    spec: MemberSpec
    parts: RunParts
    run: RunFolder
    at: Progress
    summary: RunSummary
    config_sha: str
    rng: torch.Generator  # the member's noise: z, instance noise
    log: LogWindow
    joined: float  # time.monotonic() when it joined
    # The member's Adam state, one dict per parameter in the stack's order ("g", "d"):
    # the very dicts the population's optimizers update (see _optimizers).
    adam: dict[str, list[dict[str, torch.Tensor]]] = field(default_factory=dict)
    ema_n: int = 0  # EMA updates so far (AveragedModel.n_averaged)
    grad_norms: tuple[Any, Any] = (None, None)  # (D, G) before clipping, on log steps

    @property
    def cfg(self) -> TrainConfig:
        return self.parts.cfg

    def wall(self) -> float:
        return self.at.wall_before + time.monotonic() - self.joined


@dataclass
class _Stack:
    """The members' tensors, member k in slice k of each: G and D parameters and
    buffers, and the EMA of G's parameters and buffers."""

    gp: dict[str, torch.Tensor]
    gb: dict[str, torch.Tensor]
    dp: dict[str, torch.Tensor]
    db: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    opt_g: Optional[torch.optim.Adam] = None  # set by _optimizers once the members are known
    opt_d: Optional[torch.optim.Adam] = None

    @staticmethod
    def of(m: _Member) -> "_Stack":
        """A stack of one member, from its solo nets (fresh or restored)."""
        nets = m.parts.nets
        gp, gb = stack_states([nets.g])
        dp, db = stack_states([nets.d])
        ema_source = nets.ema.module if nets.ema is not None else nets.g
        ema = {k: v.detach().clone().unsqueeze(0) for k, v in ema_source.state_dict().items()}
        return _Stack(gp, gb, dp, db, ema)

    def select(self, keep: list[int]) -> "_Stack":
        """The members at `keep`, in that order."""
        idx = torch.tensor(keep, device=next(iter(self.gp.values())).device)
        return self._map(lambda t: t.index_select(0, idx))

    def concat(self, other: "_Stack") -> "_Stack":
        return self._map(lambda t, o: torch.cat([t, o]), other)

    def _map(self, fn: Callable[..., torch.Tensor], other: Optional["_Stack"] = None) -> "_Stack":
        def each(mine: dict[str, torch.Tensor], theirs: Optional[dict[str, torch.Tensor]], leaf: bool = False) -> dict[str, torch.Tensor]:
            out = {k: fn(t.detach(), *([theirs[k].detach()] if theirs is not None else [])) for k, t in mine.items()}
            return {k: t.requires_grad_() for k, t in out.items()} if leaf else out

        o = other
        return _Stack(each(self.gp, o.gp if o else None, True), each(self.gb, o.gb if o else None),
                      each(self.dp, o.dp if o else None, True), each(self.db, o.db if o else None), each(self.ema, o.ema if o else None))


def _adam_state(opt: torch.optim.Optimizer, module: torch.nn.Module, names: list[str]) -> list[dict[str, torch.Tensor]]:
    """A solo Adam's state per parameter (restored, or zeros as its first step makes them)."""
    named = dict(module.named_parameters())
    states = []
    for name in names:
        p = named[name]
        state = opt.state.get(p) or {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                     "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        states.append({key: t.clone() for key, t in state.items()})
    return states


def _optimizers(members: list[_Member], stack: _Stack) -> None:
    """Give the stack one Adam for G and one for D, with a param group per member: its
    slices, lr and betas, and its own state (the dicts it carries from stack to stack).

    Adam runs per member, not element-wise over the stacked tensors: its fused kernel
    does a member's update in one pass over that member's slice, which stays in cache,
    where passes over all members' stacked tensors went to memory and were several
    times slower (BENCHMARKS.md, population training).
    """
    for which, params in (("g", stack.gp), ("d", stack.dp)):
        groups = []
        for k, m in enumerate(members):
            if which not in m.adam:
                nets = m.parts.nets
                solo, module = (nets.opt_g, nets.g) if which == "g" else (nets.opt_d, nets.d)
                m.adam[which] = _adam_state(solo, module, list(params))
            groups.append({"params": [t.detach()[k] for t in params.values()], "betas": (m.cfg.beta1, m.cfg.beta2)})
        first = groups[0]["params"][0]
        opt = torch.optim.Adam(groups, lr=members[0].cfg.lr, eps=1e-8, fused=_fused_ok(first))
        for group, m in zip(opt.param_groups, members):
            for view, state in zip(group["params"], m.adam[which]):
                opt.state[view] = state
        setattr(stack, f"opt_{which}", opt)


def _fused_ok(t: torch.Tensor) -> bool:
    return t.device.type in ("cpu", "cuda") and t.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _join(spec: MemberSpec, device: torch.device) -> _Member:
    """Set a member up as train() sets up a solo run, restoring its checkpoint on resume."""
    parts = prepare_run(spec.cfg, device, spec.sweep)
    run = RunFolder(spec.run_dir)
    at, summary, config_yaml = open_run(parts.cfg, run, parts.nets, parts.batches, device, parts.total, spec.overrides, spec.sweep, spec.resume)
    # The member's noise continues torch's default generator from here, as its solo run would.
    rng = torch.Generator(device=device)
    rng.set_state(torch.get_rng_state() if device.type == "cpu" else torch.cuda.get_rng_state())
    nets = parts.nets
    m = _Member(spec, parts, run, at, summary, config_sha256(config_yaml), rng, LogWindow(time.monotonic(), parts.total), time.monotonic())
    m.ema_n = int(nets.ema.n_averaged) if nets.ema is not None else 0
    return m


def train_population(
    specs: list[MemberSpec],
    on_done: Callable[[MemberResult], None],
    refill: Optional[Callable[[], Optional[MemberSpec]]] = None,
    size: Optional[int] = None,
    threads: int = 0,
    quiet: bool = True,
) -> None:
    """Train the members together until all are done; each result goes to on_done as
    its run ends. While fewer than `size` (default: len(specs)) members train, refill()
    is asked for another; it returns None when it has none. Every spec must satisfy
    ``population_blocker`` and share one ``shape_key``.
    """
    size = size or len(specs)
    device = pick_device(specs[0].cfg.device)
    share = ThreadShare(threads) if device.type == "cpu" else None
    n_threads, _ = set_threads(threads, share)
    members: list[_Member] = []
    stack: Optional[_Stack] = None
    pending = list(specs)
    progress = ProgressDisplay(0, 0, "population", quiet=quiet)

    def admit(spec: MemberSpec) -> None:
        nonlocal stack
        try:
            m = _join(spec, device)
        except Exception as exc:  # a member that cannot start never stops the others
            on_done(MemberResult(spec, RunFolder(spec.run_dir).read_summary(), exc))
            return
        one = _Stack.of(m)
        stack = one if stack is None else stack.concat(one)
        members.append(m)
        _optimizers(members, stack)  # the stack is new: point the optimizers at it

    try:
        with stop_on_signal() as caught, share if share is not None else nullcontext():
            while True:
                while pending and len(members) < size:
                    admit(pending.pop(0))
                while refill is not None and len(members) < size:
                    spec = refill()
                    if spec is None:
                        break
                    admit(spec)
                if not members:
                    return
                if caught:
                    raise KeyboardInterrupt
                assert stack is not None
                ended = _step(members, stack, device)
                for k, m in enumerate(members):
                    if k not in ended:
                        reason = _periodic_work(m, k, stack, progress)
                        if reason is not False:
                            ended[k] = reason
                for k in sorted(ended):
                    m, reason = members[k], ended[k]
                    if reason is not None and reason.kind is not StopKind.diverged:
                        _sync(m, k, stack)  # stopped early: keep where it got, to resume or look at
                        _checkpoint(m)
                    _end(m, reason, on_done)
                if ended:
                    keep = [k for k in range(len(members)) if k not in ended]
                    members = [members[k] for k in keep]
                    stack = stack.select(keep) if keep else None
                    if stack is not None:
                        _optimizers(members, stack)
                n_threads, _ = rebalance(share, n_threads)
    except KeyboardInterrupt:
        for k, m in enumerate(members):
            if stack is not None:
                _sync(m, k, stack)
            _checkpoint(m)
            _end(m, StopReason(StopKind.interrupted, m.at.step, f"continue with: gansweep train resume={m.run.path}"), on_done)
        raise
    except Exception as exc:  # a fault of the population ends its members as failed, each on record
        for m in members:
            _end(m, StopReason(StopKind.failed, m.at.step, f"{type(exc).__name__}: {exc}".splitlines()[0]), on_done, exc)
    finally:
        progress.close()


def _end(m: _Member, reason: Optional[StopReason], on_done: Callable[[MemberResult], None], error: Optional[Exception] = None) -> None:
    finish_run(m.run, m.summary, reason, m.at, len(m.parts.data), m.wall())
    on_done(MemberResult(m.spec, m.summary, error))


def _per_member(values: list[float], device: torch.device, dtype: torch.dtype, dims: int) -> torch.Tensor:
    return torch.tensor(values, device=device, dtype=dtype).view(-1, *[1] * dims)


def _noisy(x: torch.Tensor, sigmas: list[float], members: list[_Member]) -> torch.Tensor:
    """Each member's x plus its own instance noise, drawn from its generator (as add_noise)."""
    if not any(s > 0 for s in sigmas):
        return x
    rows = [x[k] + s * torch.randn(x[k].shape, generator=m.rng, dtype=x.dtype, device=x.device) if s > 0 else x[k]
            for k, (s, m) in enumerate(zip(sigmas, members))]
    return torch.stack(rows)


def _step(members: list[_Member], stack: _Stack, device: torch.device) -> dict[int, Optional[StopReason]]:
    """One training step of every member: n_critic D updates, then one G update; the
    same operations, on the same numbers, as the solo loop's body. Returns the members
    whose run ended in it (an empty dict when none did)."""
    first = members[0]
    g_t, d_t = first.parts.nets.g, first.parts.nets.d
    gan_loss, n_critic, z_dim = first.parts.gan_loss, first.cfg.loss.n_critic, first.cfg.model.z_dim
    to_p = torch.sigmoid if gan_loss.probabilities else (lambda t: t)
    sigmas = [instance_noise_std(m.at.step, m.parts.total, m.cfg.stabilize.instance_noise) for m in members]
    log_now = [m.parts.when.due(m.at.step + 1, m.parts.when.log_every) for m in members]
    lr_f = [lr_factor(m.at.step, m.parts.total, m.cfg.lr_decay) for m in members]
    d_params, g_params = list(stack.dp.values()), list(stack.gp.values())

    for _ in range(n_critic):
        real = torch.stack([m.parts.batches.next()[0] for m in members])
        z = torch.stack([torch.randn(real.shape[1], z_dim, generator=m.rng, device=device, dtype=real.dtype) for m in members])
        fake = generate(g_t, stack.gp, stack.gb, z)
        out_real = discriminate(d_t, stack.dp, stack.db, _noisy(real, sigmas, members))
        out_fake = discriminate(d_t, stack.dp, stack.db, _noisy(fake.detach(), sigmas, members))
        loss_d = torch.stack([m.parts.d_loss(out_real[k], out_fake[k]) for k, m in enumerate(members)])
        grads = [g.contiguous() for g in torch.autograd.grad(loss_d.sum(), d_params)]
        _clip(grads, [m.cfg.stabilize.clip_d for m in members], log_now, members, 0)
        for m in members:
            m.at.images_seen += real.shape[1]
        _adam_step(stack.opt_d, members, grads, "lr_d", lr_f)

    out_g = discriminate(d_t, stack.dp, stack.db, _noisy(fake, sigmas, members))
    loss_g = torch.stack([gan_loss.g(out_g[k]) for k in range(len(members))])
    grads = [g.contiguous() for g in torch.autograd.grad(loss_g.sum(), g_params)]
    _clip(grads, [m.cfg.stabilize.clip_g for m in members], log_now, members, 1)
    _adam_step(stack.opt_g, members, grads, "lr_g", lr_f)
    if any(m.cfg.stabilize.ema > 0 for m in members):
        _update_ema(stack, members)

    with torch.no_grad():
        # row by row, as the solo loop reduces them: a reduction over (K, N) would round by K
        stats = torch.stack([torch.stack([loss_d[k], loss_g[k], to_p(out_real[k]).mean(), to_p(out_fake[k]).mean()]) for k in range(len(members))])
    for k, m in enumerate(members):  # every member's step is counted before any hook may end the population
        m.at.step += 1
        m.at.window.append(stats[k])
    ended: dict[int, Optional[StopReason]] = {}
    for k, m in enumerate(members):
        if log_now[k]:
            reason = _log(m)
            if reason is not False:
                ended[k] = reason
    return ended


def _adam_step(opt: torch.optim.Adam, members: list[_Member], grads: list[torch.Tensor], lr_key: str, lr_f: list[float]) -> None:
    """Every member's Adam step on its slices, at its lr of this step (its lr decay)."""
    for k, (group, m) in enumerate(zip(opt.param_groups, members)):
        group["lr"] = getattr(m.cfg, lr_key) * lr_f[k]
        for view, grad in zip(group["params"], grads):
            view.grad = grad[k]  # contiguous (see _step): the fused kernel pairs elements by memory order
    opt.step()


def _clip(grads: list[torch.Tensor], bounds: list[float], log_now: list[bool], members: list[_Member], which: int) -> None:
    """Record the members' gradient norms on their log steps, then clip where asked."""
    clipping = any(b > 0 for b in bounds)
    if not (clipping or any(log_now)):
        return
    norms = member_norms(grads)
    for k, m in enumerate(members):
        if log_now[k]:
            pair = list(m.grad_norms)
            pair[which] = norms[k]
            m.grad_norms = (pair[0], pair[1])
    if clipping:
        clip_member_grads(grads, torch.tensor(bounds, dtype=norms.dtype, device=norms.device), norms)


@torch.no_grad()
def _update_ema(stack: _Stack, members: list[_Member]) -> None:
    """AveragedModel.update_parameters for each member: copy on the first update, then
    lerp towards G by 1 - decay (buffers too; integer ones rounded as it does)."""
    weight = [1.0 if m.ema_n == 0 else 1.0 - m.cfg.stabilize.ema for m in members]
    decay = [0.0 if m.ema_n == 0 else m.cfg.stabilize.ema for m in members]
    for name, current in {**stack.gp, **stack.gb}.items():
        ema = stack.ema[name]
        if ema.is_floating_point():
            ema.lerp_(current.detach(), _per_member(weight, ema.device, ema.dtype, ema.dim() - 1))
        else:
            real = torch.get_default_dtype()  # as AveragedModel mixes them
            ema.copy_(ema * _per_member(decay, ema.device, real, ema.dim() - 1) + current * _per_member(weight, ema.device, real, ema.dim() - 1))
    for m in members:
        m.ema_n += 1


def _log(m: _Member) -> Optional[StopReason] | bool:
    """The member's train line; its reason to end here, or False to go on."""
    try:
        row = write_log_line(m.run, m.summary, m.at, m.log, torch.stack(m.at.window).cpu(), m.cfg, len(m.parts.data),
                             m.parts.batches.batch_size, *m.grad_norms, m.wall())
    except DivergedError as exc:
        return StopReason(StopKind.diverged, exc.step, DIVERGED_DETAIL)
    if m.spec.hooks.on_log:
        try:
            m.spec.hooks.on_log(row)
        except StopTraining as exc:
            return exc.reason
    return False


def _sync(m: _Member, k: int, stack: _Stack) -> None:
    """Copy member k's slices into its solo nets, optimizers and schedules, so the solo
    helpers (samples, scores, checkpoints) see exactly the member's state."""
    nets = m.parts.nets
    nets.g.load_state_dict(member_state(stack.gp, stack.gb, k))
    nets.d.load_state_dict(member_state(stack.dp, stack.db, k))
    if nets.ema is not None:
        nets.ema.module.load_state_dict({name: t[k].clone() for name, t in stack.ema.items()})
        nets.ema.n_averaged.fill_(m.ema_n)
    for solo, module, which, params in ((nets.opt_g, nets.g, "g", stack.gp), (nets.opt_d, nets.d, "d", stack.dp)):
        named = dict(module.named_parameters())
        for name, state in zip(params, m.adam[which]):
            if int(state["step"]):
                solo.state[named[name]] = {key: t.clone() for key, t in state.items()}
    for sched in (nets.sched_g, nets.sched_d):
        sched.last_epoch = m.at.step - 1
        with warnings.catch_warnings():  # "step() before optimizer.step()": the stack stepped it
            warnings.simplefilter("ignore", UserWarning)
            sched.step()  # sets each group's lr for the member's next step, as the solo schedule has it


def _checkpoint(m: _Member) -> None:
    """Save the member's solo nets (brought up to date by _sync) as its last.pt."""
    m.run.save_checkpoint(checkpoint_state(m.parts.nets, m.parts.batches, m.at, m.wall(), m.rng.device, m.config_sha, m.rng))


def _periodic_work(m: _Member, k: int, stack: _Stack, progress: ProgressDisplay) -> Optional[StopReason] | bool:
    """Samples, evaluation and checkpoints when due, as the solo loop does them; the
    member's reason to end (None: its budget is done), or False to go on."""
    try:
        periodic_work(m.parts, m.run, m.summary, m.at, m.spec.hooks, progress, m.rng.device,
                      save=lambda: _checkpoint(m), wall=m.wall, before=lambda: _sync(m, k, stack))
    except DivergedError as exc:
        return StopReason(StopKind.diverged, exc.step, DIVERGED_DETAIL)
    except StopTraining as exc:
        return exc.reason
    return None if m.at.step >= m.parts.total else False
