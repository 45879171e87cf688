"""Search spaces: sweeps/*.yaml in the syntax of Hydra's Optuna sweeper plugin.

A space file looks like::

    base: [model=mlp, data=grid25]        # optional overrides that fix the base config
    params:
      lr: tag(log, interval(1e-5, 1e-2))  # log-uniform float
      batch_size: choice(32, 64, 128, 256)
      beta1: interval(0.0, 0.9)           # uniform; int keys get integer intervals
      model.depth: range(2, 5)            # 2, 3, 4
      loss: choice(bce, hinge)            # a config group, by option name

Each expression is parsed by Hydra's own override grammar and mapped to an Optuna
distribution. Unknown keys, empty ranges and malformed expressions fail here, before
any trial, with one line naming them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from gansweep.config import closest_key
from gansweep.errors import ConfigError

DEFAULT_SPACE = "default.yaml"
CONFIG_GROUPS = ("model", "data", "loss")  # searched by option name, e.g. loss: choice(bce, hinge)


@dataclass
class SearchSpace:
    """Distributions over dotted config keys."""

    source: str  # the file it came from
    params: dict[str, BaseDistribution]


def space_file(path: str | None) -> tuple[str, str]:
    """(name, text) of a space: a path, or a file name shipped in sweeps/ (default.yaml)."""
    if path is None or not Path(path).exists():
        # A shipped space by name (or as sweeps/NAME.yaml when run outside the repo).
        name = Path(path).name if path else DEFAULT_SPACE
        shipped = resources.files("gansweep.sweeps") / name
        if shipped.is_file():
            return f"sweeps/{name}", shipped.read_text()
    if path is None or not Path(path).is_file():
        raise ConfigError(f"--space {path}: no such file; give a YAML file like sweeps/default.yaml")
    return path, Path(path).read_text()


def parse_space(source: str, text: str) -> tuple[dict[str, str], list[str]]:
    """The raw `params` expressions and `base` overrides of a space file."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict) or not doc["params"]:
        raise ConfigError(f"{source}: needs a non-empty 'params:' mapping of config keys to expressions")
    unknown = set(doc) - {"params", "base"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {sorted(unknown)[0]!r}; use params and base")
    base = doc.get("base") or []
    if not isinstance(base, list) or not all(isinstance(b, str) for b in base):
        raise ConfigError(f"{source}: 'base' must be a list of overrides like [model=mlp, data=grid25]")
    return {str(k): str(v) for k, v in doc["params"].items()}, base


def to_distribution(key: str, expr: str, current: Any, source: str) -> BaseDistribution:
    """Map one Hydra sweep expression to an Optuna distribution for config key `key`."""
    try:
        value = OverridesParser.create().parse_overrides([f"{key}={expr}"])[0].value()
    except Exception as exc:
        raise ConfigError(f"{source}: {key}: malformed expression {expr!r} ({str(exc).splitlines()[0]})") from None
    is_int = isinstance(current, int) and not isinstance(current, bool)
    if isinstance(value, ChoiceSweep):
        if not value.list:
            raise ConfigError(f"{source}: {key}: choice() is empty")
        return CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        values = list(range(int(value.start), int(value.stop), int(value.step or 1)))
        if not values:
            raise ConfigError(f"{source}: {key}: {expr} is an empty range")
        return IntDistribution(values[0], values[-1], step=int(value.step or 1))
    if isinstance(value, IntervalSweep):
        low, high, log = value.start, value.end, "log" in value.tags
        if not low < high:
            raise ConfigError(f"{source}: {key}: {expr} is empty; the low end must be below the high end")
        if log and low <= 0:
            raise ConfigError(f"{source}: {key}: {expr}: a log interval needs a low end > 0")
        if is_int:
            return IntDistribution(int(low), int(high), log=log)
        return FloatDistribution(float(low), float(high), log=log)
    raise ConfigError(f"{source}: {key}: {expr!r} is not a sweep; use choice(...), range(...) or interval(...)")


def build_space(source: str, exprs: dict[str, str], base_cfg: DictConfig) -> SearchSpace:
    """Check a space's expressions against the composed base config (raises ConfigError)."""
    params = {}
    for key, expr in exprs.items():
        if key in CONFIG_GROUPS:
            dist = to_distribution(key, expr, None, source)
            if not isinstance(dist, CategoricalDistribution):
                raise ConfigError(f"{source}: {key} is a config group; search it with choice(...) of its options")
            params[key] = dist
            continue
        current = OmegaConf.select(base_cfg, key, default="__missing__")
        if current == "__missing__" or isinstance(current, DictConfig):
            close = closest_key(key)
            hint = f"did you mean {close}? " if close else ""
            raise ConfigError(f"{source}: {key}: no such config key; {hint}see gansweep train --cfg job for the keys")
        params[key] = to_distribution(key, expr, current, source)
    return SearchSpace(source, params)


def grid_values(space: SearchSpace) -> dict[str, list[Any]]:
    """The grid of a space whose every key is a choice or a range (for --sampler grid)."""
    grid = {}
    for key, dist in space.params.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            grid[key] = list(range(dist.low, dist.high + 1, dist.step))
        else:
            raise ConfigError(f"--sampler grid: {key} is an interval; use choice(...) or range(...) for every key")
    return grid
