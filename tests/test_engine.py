"""The stacked engine: a step issues the same ops for 1, 4 or 16 members, with every
stabilizer on, for both model families; the solo form computes what the stacked form does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gansweep.config import compose_config, to_train_config
from gansweep.opcount import population_of, step_ops
from gansweep.population import MemberSpec, train_population

EVERY_STABILIZER = ["stabilize.ema=0.9", "stabilize.clip_g=0.5", "stabilize.clip_d=0.5", "stabilize.instance_noise=0.1",
                    "stabilize.real_label=0.9", "stabilize.d_dropout=0.2", "stabilize.spectral_norm=true", "lr_decay=cosine"]
MLP = ["model=mlp", "data=grid25", "model.hidden=8", "model.z_dim=4", "batch_size=16"]
DCGAN = ["model=dcgan", "data=mnist5k", "data.image_size=32", "model.ngf=4", "model.ndf=4", "model.z_dim=8", "batch_size=8"]
FAMILIES = {
    "mlp": MLP,
    "dcgan": DCGAN,
    "dcgan-conditional": [*DCGAN, "model.conditional=true"],
    "mlp-conditional-gp": ["model=mlp", "data=mnist5k", "data.image_size=28", "model.hidden=8", "model.z_dim=4", "batch_size=16",
                           "model.conditional=true", "loss=wgan_gp", "model.d_norm=layer"],
    # D without dropout or spectral norm: the grouped road (gansweep.grouped) for G and D.
    "dcgan-conditional-grouped": [*DCGAN, "model.conditional=true", "model.d_norm=layer"],
}
# Not here: the WGAN-GP penalty of a DCGAN. torch computes the double backward of a grouped
# convolution one group at a time, on the grouped road as under vmap, so it grows with K
# (BENCHMARKS.md, "One engine").


def configs(arch: list[str], k: int, *extra: str):
    base = [*arch, "steps=100", "log_every=3", "eval.enabled=false", "threads=1", *extra]
    return [to_train_config(compose_config([*base, f"seed={i}", f"lr={1e-4 * (i + 1)}", f"beta1={0.1 * (i % 9)}"])) for i in range(k)]


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_a_step_issues_the_same_ops_for_1_4_and_16_members(tmp_path: Path, family: str) -> None:
    skip = ("real_label",) * ("gp" in family) + ("d_dropout", "spectral_norm") * ("grouped" in family)
    stabilizers = [s for s in EVERY_STABILIZER if not any(word in s for word in skip)]
    counts = {}
    for k in (1, 4, 16):
        pop = population_of(configs(FAMILIES[family], k, *stabilizers), tmp_path / str(k), stacked=True)
        counts[k] = step_ops(pop).ops
    assert counts[4] == counts[16]
    assert sum(counts[4].values()) > 50  # the counter saw the step
    # No tensor made from host data (aten.lift_fresh): on a GPU each is a copy that waits for it.
    assert all("aten.lift_fresh" not in c for c in counts.values())
    # At K = 1, vmap's convolution rule (D with dropout and spectral norm) and the grouped
    # road's reshapes find some to be views (view, squeeze) where K > 1 copies them
    # (clone + _unsafe_view); every other op is counted alike.
    layout_only = {"aten.view", "aten.squeeze", "aten.clone", "aten._unsafe_view"}
    assert {op for op in counts[1] | counts[4] if counts[1][op] != counts[4][op]} <= layout_only
    assert abs(sum(counts[1].values()) - sum(counts[4].values())) <= 0.03 * sum(counts[4].values())


def _losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[k] for r in rows if r["kind"] == "train" for k in ("loss_d", "loss_g", "grad_norm_d", "grad_norm_g")]


@pytest.mark.slow
@pytest.mark.parametrize("family, k", [("mlp", 1), ("dcgan", 1), ("mlp", 3)])
def test_the_cpu_form_equals_the_stacked_form_in_float64(tmp_path: Path, family: str, k: int) -> None:
    """On the CPU, K = 1 runs on its row directly and Adam is torch's fused kernel member by
    member; the stacked form (vmap, element-wise Adam over all rows) computes the same numbers."""
    torch.set_default_dtype(torch.float64)
    try:
        cfgs = configs(FAMILIES[family], k, *EVERY_STABILIZER, "log_every=1", "steps=40")
        for name, stacked in (("cpu", None), ("stacked", True)):
            results: list = []
            specs = [MemberSpec(cfg, tmp_path / f"{name}{i}") for i, cfg in enumerate(cfgs)]
            train_population(specs, on_done=results.append, threads=1, stacked=stacked)
            assert [(r.error, r.summary.status.value) for r in results] == [(None, "completed")] * k
    finally:
        torch.set_default_dtype(torch.float32)
    for i in range(k):
        cpu, stacked = _losses(tmp_path / f"cpu{i}"), _losses(tmp_path / f"stacked{i}")
        assert len(cpu) == len(stacked) == 160
        assert max(abs(a - b) / max(abs(a), 1e-3) for a, b in zip(cpu, stacked)) < 1e-9


@pytest.mark.slow
def test_same_config_seed_device_and_threads_give_the_same_bits_whatever_is_evaluated(tmp_path: Path) -> None:
    """Training draws its noise from its own keys: two runs agree bit for bit, and evaluation
    (which draws from its own generator) leaves the losses untouched."""
    from gansweep.train import train

    base = ["model=mlp", "data=ring8", "model.hidden=16", "model.z_dim=4", "steps=60", "log_every=5", "threads=1"]
    runs = {"a": ["eval.enabled=false"], "b": ["eval.enabled=false"], "evaluated": ["eval.enabled=true", "eval_every=10"]}
    for name, extra in runs.items():
        train(to_train_config(compose_config([*base, *extra])), tmp_path / name, quiet=True)
    rows = {name: [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()] for name in runs}
    train_losses = {name: [(r["loss_d"], r["loss_g"]) for r in r_ if r["kind"] == "train"] for name, r_ in rows.items()}
    assert train_losses["a"] == train_losses["b"] == train_losses["evaluated"]
    assert any(r["kind"] == "eval" for r in rows["evaluated"])
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["threads"] == 1
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["stack_max"] == 1  # a solo run steps alone
