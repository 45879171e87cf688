"""The typed config schema, registered in Hydra's ConfigStore.

The YAML files in ``conf/`` start from these dataclasses, so an unknown key or a
wrong type fails while Hydra composes. Range checks live in ``__post_init__``; they
run when the CLI converts the composed config with ``OmegaConf.to_object``, before
any work starts. Everything below the CLI receives these objects, never a DictConfig.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, OmegaConf

from gansweep.errors import ConfigError, GansweepError

CONFIG_MODULE = "gansweep.conf"  # conf/, installed as a package


class Device(str, Enum):
    auto = "auto"  # CUDA when present, else CPU
    cpu = "cpu"
    cuda = "cuda"


class LrDecay(str, Enum):
    none = "none"
    linear = "linear"  # to zero at the end of the budget
    cosine = "cosine"


class DNorm(str, Enum):
    auto = "auto"  # batch norm, except none for wgan_gp (the penalty is per sample)
    batch = "batch"
    layer = "layer"
    none = "none"


def _require(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value}: {rule}")


@dataclass
class DCGANConfig:
    name: str = "dcgan"
    z_dim: int = 100  # latent size
    ngf: int = 64  # generator width (channels of its last hidden layer)
    ndf: int = 64  # discriminator width (channels of its first layer)
    d_norm: DNorm = DNorm.auto
    pack: int = 1  # PacGAN: D judges this many samples at once, stacked along channels
    # Class-conditional G and D (docs/models.md): true, false, or auto (conf/config.yaml's
    # default): conditional where the data has classes and pack is 1. Resolved to a bool
    # before any run, so a run folder's config.yaml holds true or false.
    conditional: Any = False

    def __post_init__(self) -> None:
        _require(self.z_dim >= 1, "model.z_dim", self.z_dim, "must be >= 1")
        _require(self.ngf >= 1, "model.ngf", self.ngf, "must be >= 1")
        _require(self.ndf >= 1, "model.ndf", self.ndf, "must be >= 1")
        _require(self.pack >= 1, "model.pack", self.pack, "must be >= 1")


class Activation(str, Enum):
    relu = "relu"
    leaky_relu = "leaky_relu"
    elu = "elu"
    tanh = "tanh"


class GNorm(str, Enum):
    none = "none"
    batch = "batch"  # BatchNorm1d after each hidden Linear, which then has no bias (PacGAN's G)


class Init(str, Enum):
    pytorch = "pytorch"  # PyTorch's default Linear init (Kaiming-uniform weights and biases)
    normal = "normal"  # Linear weights ~ N(0, 0.02), biases 0, as in PacGAN


@dataclass
class MLPConfig:
    name: str = "mlp"
    z_dim: int = 64  # latent size
    hidden: int = 256  # units per hidden layer, in G and D unless g_hidden / d_hidden are set
    depth: int = 3  # hidden layers, in G and D unless g_depth / d_depth are set
    g_hidden: Optional[int] = None  # G's units per hidden layer; null follows hidden
    g_depth: Optional[int] = None  # G's hidden layers; null follows depth
    d_hidden: Optional[int] = None  # D's units per hidden layer; null follows hidden
    d_depth: Optional[int] = None  # D's hidden layers; null follows depth
    activation: Activation = Activation.relu  # of G's hidden layers, and of D's unless d_maxout >= 2
    g_norm: GNorm = GNorm.none
    d_norm: DNorm = DNorm.none
    d_maxout: int = 1  # pieces per maxout unit in D's hidden layers; 1 = the plain activation
    init: Init = Init.pytorch
    pack: int = 1  # PacGAN: D judges this many samples at once, their features concatenated
    # Class-conditional G and D (docs/models.md): true, false, or auto (conf/config.yaml's
    # default): conditional where the data has classes and pack is 1. Resolved to a bool
    # before any run, so a run folder's config.yaml holds true or false.
    conditional: Any = False

    def __post_init__(self) -> None:
        _require(self.z_dim >= 1, "model.z_dim", self.z_dim, "must be >= 1")
        _require(self.hidden >= 1, "model.hidden", self.hidden, "must be >= 1")
        _require(self.depth >= 1, "model.depth", self.depth, "must be >= 1")
        for key in ("g_hidden", "g_depth", "d_hidden", "d_depth"):
            value = getattr(self, key)
            _require(value is None or value >= 1, f"model.{key}", value, "must be >= 1 or null")
        _require(self.d_maxout >= 1, "model.d_maxout", self.d_maxout, "must be >= 1 (1 = no maxout)")
        _require(self.pack >= 1, "model.pack", self.pack, "must be >= 1")

    @property
    def g_layers(self) -> tuple[int, int]:
        """G's (units per hidden layer, hidden layers): g_hidden / g_depth where set, else hidden / depth."""
        return (self.hidden if self.g_hidden is None else self.g_hidden, self.depth if self.g_depth is None else self.g_depth)

    @property
    def d_layers(self) -> tuple[int, int]:
        """D's (units per hidden layer, hidden layers): d_hidden / d_depth where set, else hidden / depth."""
        return (self.hidden if self.d_hidden is None else self.d_hidden, self.depth if self.d_depth is None else self.d_depth)


DATA_NAMES = ("mnist", "mnist5k", "fashion_mnist", "cifar10", "folder", "ring8", "grid25", "stacked_mnist")
# The data sets whose classes a conditional GAN can be given, with their class counts.
# stacked_mnist stays unconditional: its 1,000 codes are what its mode metric counts.
CLASSES = {"mnist": 10, "mnist5k": 10, "fashion_mnist": 10, "cifar10": 10}


@dataclass
class DataConfig:
    name: str = "mnist5k"
    root: str = "data"  # where torchvision data sets and the image folder live
    download: bool = True  # torchvision data sets: try to download when absent
    image_size: int = 28  # pixels; images are resized/cropped to this
    channels: int = 1
    n_samples: int = 50_000  # 2D mixtures: size of the fixed training set
    radius: float = 1.0  # ring8: circle radius
    spacing: float = 2.0  # grid25: distance between neighbouring modes
    std: float = 0.01  # 2D mixtures: std of each Gaussian
    feature_net: str = "digit_cnn"  # network that scores the samples: digit_cnn, inception, auto, none
    eval_samples: Optional[int] = None  # generated samples scored on this data set, instead of eval.n_samples

    def __post_init__(self) -> None:
        _require(self.name in DATA_NAMES, "data.name", self.name, f"choose one of {', '.join(DATA_NAMES)}")
        _require(self.image_size >= 4, "data.image_size", self.image_size, "must be >= 4")
        _require(self.channels in (1, 3), "data.channels", self.channels, "must be 1 or 3")
        _require(self.n_samples >= 1, "data.n_samples", self.n_samples, "must be >= 1")
        _require(self.radius > 0, "data.radius", self.radius, "must be > 0")
        _require(self.spacing > 0, "data.spacing", self.spacing, "must be > 0")
        _require(self.std > 0, "data.std", self.std, "must be > 0")
        _require(self.eval_samples is None or self.eval_samples >= 2, "data.eval_samples", self.eval_samples, "must be >= 2 or null")
        if self.name == "stacked_mnist":
            _require(self.channels == 3, "data.channels", self.channels, "stacked_mnist has 3 channels (one digit each)")
        nets = ("digit_cnn", "inception", "auto", "none")
        _require(self.feature_net in nets, "data.feature_net", self.feature_net, f"choose one of {', '.join(nets)}")

    @property
    def is_points(self) -> bool:
        """True for the 2D mixtures, whose samples are points rather than images."""
        return self.name in ("ring8", "grid25")

    @property
    def num_classes(self) -> Optional[int]:
        """Classes a conditional GAN can be given on this data; None where it has none."""
        return CLASSES.get(self.name)

    @property
    def has_digit_classes(self) -> bool:
        """True for digit data, whose modes are the digit classifier's classes."""
        return self.name in ("mnist", "mnist5k", "stacked_mnist")


LOSS_NAMES = ("bce", "lsgan", "hinge", "wgan_gp")


@dataclass
class LossConfig:
    name: str = "bce"  # bce (non-saturating), lsgan, hinge, wgan_gp
    gp_weight: float = 10.0  # wgan_gp: gradient penalty weight (lambda)
    n_critic: int = 1  # D updates per G update

    def __post_init__(self) -> None:
        _require(self.name in LOSS_NAMES, "loss.name", self.name, f"choose one of {', '.join(LOSS_NAMES)}")
        _require(self.gp_weight >= 0, "loss.gp_weight", self.gp_weight, "must be >= 0")
        _require(self.n_critic >= 1, "loss.n_critic", self.n_critic, "must be >= 1")


@dataclass
class EvalConfig:
    enabled: bool = True
    n_samples: int = 10_000  # generated images scored at the last evaluation (2D mixtures use mixture_samples)
    # Generated images scored at the evaluations before the last: a cheaper look at progress
    # whose FID reads a little high (FID is biased upward at small counts); null = n_samples.
    interim_samples: Optional[int] = 2_000
    mixture_samples: int = 2_500  # generated points scored on ring8/grid25
    batch_size: int = 250  # samples generated, and distance rows, at a time
    pr_k: int = 3  # neighbours for improved precision/recall
    dc_k: int = 5  # neighbours for density/coverage
    mode_threshold: float = 0.25  # a class counts as covered at this share of uniform
    mixture_min_count: int = 10  # mixture modes_covered_min: HQ samples a mode needs
    # Where real-data statistics are cached; null = $GANSWEEP_CACHE, else ~/.cache/gansweep,
    # looked up when the run scores, so a run folder copied to another machine still works.
    cache_dir: Optional[str] = None

    def __post_init__(self) -> None:
        _require(
            self.n_samples > max(self.pr_k, self.dc_k), "eval.n_samples", self.n_samples,
            f"must exceed pr_k and dc_k ({self.pr_k}, {self.dc_k}): they count neighbours among the samples",
        )
        _require(
            self.interim_samples is None or self.interim_samples > max(self.pr_k, self.dc_k), "eval.interim_samples",
            self.interim_samples, f"must exceed pr_k and dc_k ({self.pr_k}, {self.dc_k}), or be null (= n_samples)",
        )
        _require(self.mixture_samples >= 1, "eval.mixture_samples", self.mixture_samples, "must be >= 1")
        _require(self.batch_size >= 1, "eval.batch_size", self.batch_size, "must be >= 1")
        _require(self.pr_k >= 1, "eval.pr_k", self.pr_k, "must be >= 1")
        _require(self.dc_k >= 1, "eval.dc_k", self.dc_k, "must be >= 1")
        _require(0 < self.mode_threshold <= 1, "eval.mode_threshold", self.mode_threshold, "must be in (0, 1]")


@dataclass
class StabilizeConfig:
    """The usual remedies for unstable GAN training, all off by default (docs/stabilizers.md)."""

    real_label: float = 1.0
    """bce only: D's target for real samples; 0.9 is one-sided label smoothing (Salimans et al. 2016)."""
    instance_noise: float = 0.0
    """Std of Gaussian noise added to every input of D, real and fake, annealed linearly to 0 over the budget."""
    d_dropout: float = 0.0
    """Dropout probability after each hidden activation of D."""
    clip_g: float = 0.0
    """Largest total L2 norm of G's gradient; larger ones are scaled down. 0 = off."""
    clip_d: float = 0.0
    """Largest total L2 norm of D's gradient. 0 = off."""
    spectral_norm: bool = False
    """Spectral normalization of every Linear and Conv2d weight of D (Miyato et al. 2018)."""
    ema: float = 0.0
    """Decay of an exponential moving average of G's weights (e.g. 0.999); the average draws
    the samples, is scored and is kept as best.pt. 0 = off."""

    def __post_init__(self) -> None:
        _require(0 < self.real_label <= 1, "stabilize.real_label", self.real_label, "must be in (0, 1], e.g. 0.9")
        _require(self.instance_noise >= 0, "stabilize.instance_noise", self.instance_noise, "must be >= 0, e.g. 0.1")
        _require(0 <= self.d_dropout < 1, "stabilize.d_dropout", self.d_dropout, "must be in [0, 1), e.g. 0.3")
        for key in ("clip_g", "clip_d"):
            _require(getattr(self, key) >= 0, f"stabilize.{key}", getattr(self, key), "must be >= 0 (0 = off), e.g. 10")
        _require(0 <= self.ema < 1, "stabilize.ema", self.ema, "must be in [0, 1) (0 = off), e.g. 0.999")


SCHEDULED = ("lr_g", "lr_d", "beta1", "beta2")  # the keys a schedule may change mid-run


@dataclass
class ScheduleStep:
    """After `step` generator updates, these values for the updates that follow (null:
    unchanged). `gansweep pbt` writes its best member's history as a schedule, which
    `gansweep train` replays from scratch."""

    step: int = 1
    lr_g: Optional[float] = None
    lr_d: Optional[float] = None
    beta1: Optional[float] = None
    beta2: Optional[float] = None


@dataclass
class TrainConfig:
    model: Any = None  # DCGANConfig or MLPConfig, chosen by the model group
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    stabilize: StabilizeConfig = field(default_factory=StabilizeConfig)

    # The four keys a sweep searches.
    lr: float = 2e-4  # Adam learning rate of G and D
    batch_size: int = 64
    beta1: float = 0.5  # Adam beta1; 0.5 as in DCGAN
    beta2: float = 0.999
    lr_g: float = "${lr}"  # type: ignore[assignment]  # generator lr; follows lr unless set
    lr_d: float = "${lr}"  # type: ignore[assignment]  # discriminator lr; follows lr unless set
    lr_decay: LrDecay = LrDecay.none
    # Piecewise-constant changes to lr_g, lr_d, beta1, beta2 by step (lr_decay still applies on top).
    schedule: list[ScheduleStep] = field(default_factory=list)

    # Budget: steps wins over images, images over epochs.
    steps: Optional[int] = None  # generator updates
    images: Optional[int] = None  # real images shown to D (fair across batch sizes)
    epochs: Optional[float] = 10.0  # passes over the training set

    seed: int = 0
    device: Device = Device.auto
    threads: int = 0  # CPU threads for torch; 0 = a fair share of the cores beside other trainings here

    log_every: int = 10  # steps between metrics.jsonl lines
    eval_every: int = 0  # steps between evaluations; 0 = four times per run
    sample_every: int = 0  # steps between sample grids; 0 = ten times per run
    checkpoint_every: int = 0  # steps between checkpoints; 0 = ten times per run
    resume: Optional[str] = None  # a run folder to continue
    overwrite: bool = False  # replace the run already in hydra.run.dir (its files are deleted first)
    tensorboard: bool = False  # also write TensorBoard events into the run folder (the [tensorboard] extra)

    def __post_init__(self) -> None:
        for key in ("lr", "lr_g", "lr_d"):
            value = getattr(self, key)
            _require(math.isfinite(value) and value > 0, key, value, "must be a positive number, e.g. 2e-4")
        _require(self.batch_size >= 1, "batch_size", self.batch_size, "must be an integer >= 1, e.g. 64")
        for i, change in enumerate(self.schedule):
            where = f"schedule[{i}]"
            _require(change.step >= 1 and (i == 0 or change.step > self.schedule[i - 1].step), f"{where}.step", change.step,
                     "must be >= 1 and larger than the step before it")
            for key in ("lr_g", "lr_d"):
                value = getattr(change, key)
                _require(value is None or (math.isfinite(value) and value > 0), f"{where}.{key}", value, "must be a positive number or null")
            for key in ("beta1", "beta2"):
                value = getattr(change, key)
                _require(value is None or 0 <= value < 1, f"{where}.{key}", value, "must be in [0, 1) or null")
        for key in ("beta1", "beta2"):
            value = getattr(self, key)
            _require(0 <= value < 1, key, value, "must be in [0, 1), e.g. 0.5")
        _require(self.steps is None or self.steps >= 1, "steps", self.steps, "must be >= 1 or null")
        _require(self.images is None or self.images >= 1, "images", self.images, "must be >= 1 or null")
        _require(
            self.epochs is None or self.epochs > 0, "epochs", self.epochs, "must be > 0 or null"
        )
        _require(
            any(v is not None for v in (self.steps, self.images, self.epochs)),
            "steps", None, "set a budget: steps, images or epochs",
        )
        _require(self.threads >= 0, "threads", self.threads, "must be >= 0")
        for key in ("log_every", "eval_every", "sample_every", "checkpoint_every"):
            _require(getattr(self, key) >= 0, key, getattr(self, key), "must be >= 0")
        _require(self.log_every >= 1, "log_every", self.log_every, "must be >= 1")
        if self.model is None:
            raise ConfigError("model: not set; choose model=dcgan or model=mlp")
        if self.stabilize.real_label != 1.0:
            _require(self.loss.name == "bce", "stabilize.real_label", self.stabilize.real_label,
                     f"label smoothing needs loss=bce (loss={self.loss.name} has no labels)")
        conditional = self.model.conditional
        _require(isinstance(conditional, bool) or conditional == "auto", "model.conditional", conditional, "choose true, false or auto (conditional where the data has classes)")
        if conditional == "auto":  # a packed D mixes classes, so packing picks unconditional
            self.model.conditional = self.data.num_classes is not None and self.model.pack == 1
        if self.model.conditional:
            _require(self.data.num_classes is not None, "model.conditional", True,
                     f"data={self.data.name} has no classes to condition on; use {', '.join(CLASSES)}, or model.conditional=false")
            _require(self.model.pack == 1, "model.conditional", True,
                     f"a packed D (model.pack={self.model.pack}) judges several samples of different classes at once; set model.pack=1")
        # D sees batch_size / pack packed samples of real and of fake per step; G still gets batch_size.
        pack = self.model.pack
        _require(
            self.batch_size % pack == 0, "batch_size", self.batch_size,
            f"must be divisible by model.pack={pack} (D judges {pack} samples at once)",
        )


MODEL_SCHEMAS = {"dcgan": DCGANConfig, "mlp": MLPConfig}


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore, where conf/*.yaml extend them."""
    cs = ConfigStore.instance()
    # Stored outside the model/data/loss groups, so --help lists only the real options.
    cs.store(name="config_schema", node=TrainConfig)
    cs.store(name="dcgan_schema", node=DCGANConfig)
    cs.store(name="mlp_schema", node=MLPConfig)
    cs.store(name="data_schema", node=DataConfig)
    cs.store(name="loss_schema", node=LossConfig)


def to_train_config(cfg: Any) -> TrainConfig:
    """Turn a composed DictConfig into a validated TrainConfig (raises ConfigError)."""
    try:
        obj = OmegaConf.to_object(cfg)
    except ConfigError:
        raise
    except Exception as exc:  # OmegaConf reports bad types and interpolations this way
        raise ConfigError(one_line(exc)) from None
    if not isinstance(obj, TrainConfig):
        raise ConfigError("the composed config is not a gansweep config; start from conf/config.yaml")
    return obj


def to_yaml(cfg: TrainConfig) -> str:
    """The resolved config as YAML, as stored in a run folder."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg), resolve=True)


def from_yaml_file(path: str) -> TrainConfig:
    """Load a stored run config (a run folder's config.yaml) back into a TrainConfig."""
    try:
        stored = OmegaConf.load(path)
    except Exception as exc:  # YAML syntax, or not a mapping
        raise ConfigError(f"{path}: not a readable config ({type(exc).__name__}); it is the run's own record, restore it") from None
    model_name = stored.get("model", {}).get("name") if isinstance(stored, DictConfig) else None
    model_schema = MODEL_SCHEMAS.get(model_name)
    if model_schema is None:
        raise ConfigError(f"{path}: model.name={model_name!r} is not dcgan or mlp")
    base = OmegaConf.structured(TrainConfig)
    base.model = OmegaConf.structured(model_schema)
    try:
        merged = OmegaConf.merge(base, stored)
    except Exception as exc:
        raise ConfigError(f"{path}: {one_line(exc)}") from None
    return to_train_config(merged)


def one_line(exc: BaseException) -> str:
    """An OmegaConf/Hydra error message on one line, led by the key it names."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), "")
    text = " ".join(line for line in lines if not line.startswith(("full_key:", "object_type=", "reference_type=")))
    text = text or type(exc).__name__
    return f"{key}: {text}" if key and key not in text else text


def _hydra_error_line(override_list: list[str], exc: BaseException, config_dir: str | None = None) -> str:
    """One readable line from Hydra's multi-line composition errors."""
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        group, _, option = str(exc.missing_cfg_file).rpartition("/")
        if not group:  # the primary config itself (--config-name)
            where = f"--config-dir {config_dir}" if config_dir else "gansweep's conf/ (give --config-dir, e.g. a sweep folder)"
            return f"--config-name {option}: no {option}.yaml in {where}"
        options = ", ".join(o for o in exc.options or [] if not o.endswith("_schema"))
        return f"{group}={option}: no such option; choose one of {options}"
    cause = exc.__cause__ or exc.__context__
    if cause is None:
        return one_line(exc)
    text = one_line(cause)
    unknown = re.match(r"(?:([\w.]+): )?Key '([^']+)' not in", text)
    if unknown:
        key = unknown.group(1) or unknown.group(2)
        return _unknown_key_line(key, _override_of(override_list, key))
    key = text.split(":", 1)[0]
    override = _override_of(override_list, key)
    return f"{override}: {text.split(':', 1)[1].strip()}" if override is not None else text


def _override_of(overrides: list[str], key: str) -> Optional[str]:
    """The override that sets ``key`` or a key under it, if one does."""
    return next((o for o in overrides if f"{o.lstrip('+~').split('=', 1)[0]}.".startswith(f"{key}.")), None)


def _dotted_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Every leaf key under ``node``, dotted."""
    keys = []
    for key, value in node.items_ex(resolve=False):
        keys += _dotted_keys(value, f"{prefix}{key}.") if isinstance(value, DictConfig) else [f"{prefix}{key}"]
    return keys


def known_keys() -> list[str]:
    """Every config key of the schema, dotted; model keys of both models."""
    keys = [k for k in _dotted_keys(OmegaConf.structured(TrainConfig)) if k != "model"]
    for schema in MODEL_SCHEMAS.values():
        keys += [f"model.{k}" for k in _dotted_keys(OmegaConf.structured(schema)) if f"model.{k}" not in keys]
    return keys


def closest_key(key: str) -> Optional[str]:
    """The known config key whose last part is most like ``key``'s: first among the keys
    beside it (stabilize.emaa -> stabilize.ema), then anywhere (+ema -> stabilize.ema)."""
    parent, _, leaf = key.rpartition(".")
    known = known_keys()
    for pool in ([k for k in known if k.rpartition(".")[0] == parent], known):
        leaves = {k.rpartition(".")[2]: k for k in pool}
        match = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.6)
        if match:
            return leaves[match[0]]
    return None


def _unknown_key_line(key: str, override: Optional[str]) -> str:
    """The one-line error for a key the schema lacks, with the closest known key."""
    close = closest_key(key)
    hint = f"; did you mean {close}?" if close else ""
    return f"{override or key}: no such config key{hint} (gansweep train --cfg job lists every key)"


def _unknown_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Keys of a composed config that its schema lacks. Hydra lets `+key=value` add any
    key, even under a typed node; nothing would read it."""
    schema = OmegaConf.get_type(node)
    fields = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    unknown = []
    for key, value in node.items_ex(resolve=False):
        if fields is not None and key not in fields:
            unknown.append(f"{prefix}{key}")
        elif isinstance(value, DictConfig):
            unknown += _unknown_keys(value, f"{prefix}{key}.")
    return unknown


def compose_config(overrides: list[str], config_name: str = "config", config_dir: str | None = None) -> DictConfig:
    """Compose conf/config.yaml (or `config_name` from `config_dir`, which may extend it)
    with overrides; raises ConfigError in one line, also for a key the schema lacks."""
    register_configs()  # idempotent; every composing process needs the schemas (sweep workers too)
    try:
        if config_dir is None:
            with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
                cfg = compose(config_name=config_name, overrides=overrides)
        else:
            if not Path(config_dir).is_dir():
                raise ConfigError(f"--config-dir {config_dir}: no such folder")
            with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
                cfg = compose(config_name=config_name, overrides=[f"hydra.searchpath=[pkg://{CONFIG_MODULE}]", *overrides])
    except GansweepError:
        raise
    except Exception as exc:
        raise ConfigError(_hydra_error_line(overrides, exc, config_dir)) from None
    unknown = _unknown_keys(cfg)
    if unknown:
        raise ConfigError(_unknown_key_line(unknown[0], _override_of(overrides, unknown[0])))
    return cfg
