"""Generators and discriminators: DCGAN for images, MLP for points and flat images.

Models take plain arguments; ``build_models`` maps a config to them through the
``MODELS`` registry. Discriminators return one raw logit/score per sample, or per
pack of ``pack`` consecutive samples (PacGAN, Lin et al. 2018; see ``pack_samples``).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from gansweep import noise
from gansweep.config import DCGANConfig, DNorm, GNorm, Init, MLPConfig, TrainConfig
from gansweep.errors import ConfigError


def dcgan_base_size(image_size: int) -> int:
    """The spatial size G starts from: 7 for 28-px-like sizes, 4 for powers of two."""
    for base in (7, 4):
        ratio = image_size / base
        if ratio >= 2 and ratio == int(ratio) and math.log2(ratio).is_integer():
            return base
    raise ConfigError(
        f"data.image_size={image_size}: DCGAN needs 7*2^k or 4*2^k pixels (k >= 1), e.g. 28, 32 or 64"
    )


def pack_samples(x: torch.Tensor, pack: int, batch_dim: int = 0) -> torch.Tensor:
    """PacGAN packing: (N, C, ...) -> (N/pack, pack*C, ...), each row `pack` consecutive samples.

    Points and flat features are concatenated along features, images along channels.
    Batch arithmetic: with batch_size B, D judges B/pack packed samples of real and
    B/pack of fake per step and returns B/pack outputs for the losses to average, while
    G still makes B samples per step. batch_dim: where N is, e.g. 1 for K stacked members'
    (K, N, C, ...) batches, each packed on its own.
    """
    n, c = x.shape[batch_dim], x.shape[batch_dim + 1]
    if n % pack:
        raise ValueError(f"a batch of {n} samples does not split into packs of {pack}")
    return x.reshape(*x.shape[:batch_dim], n // pack, pack * c, *x.shape[batch_dim + 2:])


def _d_norm(kind: DNorm, channels: int) -> nn.Module:
    if kind is DNorm.batch:
        return nn.BatchNorm2d(channels)
    if kind is DNorm.layer:
        return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W), per sample
    return nn.Identity()


class DCGANGenerator(nn.Module):
    """z -> image: a projection, then stride-2 transposed convs with BN+ReLU, tanh out."""

    def __init__(self, z_dim: int, ngf: int, channels: int, image_size: int):
        super().__init__()
        base = dcgan_base_size(image_size)
        n_up = int(math.log2(image_size // base))
        width = ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, width, base, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (or pack of images) -> logit: stride-2 convs with LeakyReLU(0.2); no norm on the first layer."""

    def __init__(self, ndf: int, channels: int, image_size: int, norm: DNorm, pack: int = 1):
        super().__init__()
        base = dcgan_base_size(image_size)
        n_down = int(math.log2(image_size // base))
        layers: list[nn.Module] = [nn.Conv2d(pack * channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), _d_norm(norm, width * 2), nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, base, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)
        self.pack = pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pack_samples(x, self.pack)).view(-1)


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2, True),
    "elu": lambda: nn.ELU(inplace=True),
    "tanh": nn.Tanh,
}


class Maxout(nn.Module):
    """Goodfellow et al.: the max over each run of `pieces` features, (N, units*pieces) -> (N, units)."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (-1, self.pieces)).amax(dim=2)


# What counts as a hidden activation (dropout goes after each): every _ACTIVATIONS entry and Maxout.
HIDDEN_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Tanh, Maxout)
_NORMS_1D: dict[str, Callable[[int], nn.Module]] = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


def _mlp(sizes: list[int], activation: str, norm: str = "none", bias: bool = True, pieces: int = 1) -> list[nn.Module]:
    """Linear layers through `sizes`, each hidden one followed by `norm` and the activation.

    pieces >= 2 makes each hidden layer a maxout layer: its Linear gives `pieces` values
    per unit and their max replaces the activation. `bias` applies to the hidden layers.
    """
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(nn.Linear(fan_in, fan_out * pieces, bias=bias))
        if norm in _NORMS_1D:
            layers.append(_NORMS_1D[norm](fan_out * pieces))
        layers.append(Maxout(pieces) if pieces > 1 else _ACTIVATIONS[activation]())
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return layers


class MLPGenerator(nn.Module):
    """z -> sample of `out_shape`; tanh output for images (in [-1, 1]), linear for points.

    norm=batch puts BatchNorm1d after each hidden Linear; those Linears then have no bias,
    which the norm's shift would cancel anyway.
    """

    def __init__(
        self, z_dim: int, hidden: int, depth: int, activation: str, out_shape: tuple[int, ...], norm: GNorm = GNorm.none
    ):
        super().__init__()
        out = math.prod(out_shape)
        layers = _mlp([z_dim] + [hidden] * depth + [out], activation, norm.value, bias=norm is GNorm.none)
        if len(out_shape) > 1:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.out_shape = out_shape
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """sample (or pack of samples) -> logit, through `depth` hidden layers, maxout ones for pieces >= 2."""

    def __init__(
        self, hidden: int, depth: int, activation: str, in_shape: tuple[int, ...], norm: DNorm, pieces: int = 1, pack: int = 1
    ):
        super().__init__()
        sizes = [pack * math.prod(in_shape)] + [hidden] * depth + [1]
        self.net = nn.Sequential(nn.Flatten(), *_mlp(sizes, activation, norm.value, pieces=pieces))
        self.pack = pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pack_samples(x, self.pack)).view(-1)


class ConditionalGenerator(nn.Module):
    """G(z, y): the class y as a one-hot vector appended to z (Mirza & Osindero 2014).

    `inner` is an unconditional generator built for z_dim + num_classes inputs; one-hot
    input into its first layer is a learned class embedding added to the projection.
    """

    def __init__(self, inner: nn.Module, z_dim: int, num_classes: int):
        super().__init__()
        self.inner = inner
        self.z_dim = z_dim
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1))


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = head(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama 2018).

    phi is every layer of the unconditional D's ``net`` but the last, which is the head
    (DCGAN: the final conv over the base x base map, MLP: the final Linear). Projection
    rather than concatenating y to x: it asks D how well x matches y, and trains faster
    and more stably than concatenation in the paper's comparisons.
    """

    def __init__(self, inner: nn.Module, num_classes: int):
        super().__init__()
        self.net = inner.net  # the stabilizers (dropout, spectral norm) rewrite it in place
        head = self.net[-1]
        width = head.in_features if isinstance(head, nn.Linear) else head.in_channels * math.prod(head.kernel_size)
        self.embed = nn.Embedding(num_classes, width)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.net[:-1](x)
        return self.net[-1](h).view(-1) + (self.embed(y) * h.flatten(1)).sum(dim=1)


def conditioning(labels: Optional[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The extra arguments of G and D: (labels,) for a conditional GAN, () otherwise."""
    return () if labels is None else (labels,)


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02), BN scale ~ N(1, 0.02), BN bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def normal_init(module: nn.Module) -> None:
    """PacGAN's MLP init: Linear weights ~ N(0, 0.02), biases 0; norms keep scale 1, shift 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _resolve_norm(norm: DNorm, loss_name: str, default: DNorm) -> DNorm:
    if norm is DNorm.auto:
        return DNorm.none if loss_name == "wgan_gp" else default
    if norm is DNorm.batch and loss_name == "wgan_gp":
        raise ConfigError("model.d_norm=batch: batch norm breaks the per-sample gradient penalty of wgan_gp; use layer or none")
    return norm


def _build_dcgan(cfg: TrainConfig, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    m: DCGANConfig = cfg.model
    if len(sample_shape) != 3:
        raise ConfigError(f"model=dcgan: data={cfg.data.name} is not images; use model=mlp for 2D points")
    channels, size = sample_shape[0], sample_shape[-1]
    norm = _resolve_norm(m.d_norm, cfg.loss.name, DNorm.batch)
    g = DCGANGenerator(m.z_dim + (cfg.data.num_classes if m.conditional else 0), m.ngf, channels, size)
    d = DCGANDiscriminator(m.ndf, channels, size, norm, m.pack)
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    return g, d


def _build_mlp(cfg: TrainConfig, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    m: MLPConfig = cfg.model
    norm = _resolve_norm(m.d_norm, cfg.loss.name, DNorm.none)
    act = m.activation.value
    g = MLPGenerator(m.z_dim + (cfg.data.num_classes if m.conditional else 0), *m.g_layers, act, sample_shape, m.g_norm)
    d = MLPDiscriminator(*m.d_layers, act, sample_shape, norm, m.d_maxout, m.pack)
    if m.init is Init.normal:
        g.apply(normal_init)
        d.apply(normal_init)
    return g, d


MODELS = {"dcgan": _build_dcgan, "mlp": _build_mlp}


class KeyedDropout(nn.Module):
    """Dropout whose masks come from the counter-based noise of gansweep.noise.

    Its probability, key and draw counter are buffers, so K stacked copies each drop with
    their own p and their own masks in one op, and a checkpoint holds where the masks are.
    """

    def __init__(self, p: float, key: int):
        super().__init__()
        self.register_buffer("p", torch.tensor(p))
        self.register_buffer("key", torch.tensor(key, dtype=torch.int64))
        self.register_buffer("draws", torch.zeros((), dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        u = noise.uniform(noise.draw_key(self.key, noise.DROPOUT, self.draws), tuple(x.shape), x.dtype)
        self.draws.add_(1)
        return x * (u >= self.p).to(x.dtype) / (1 - self.p)


def with_dropout(net: nn.Sequential, p: float, seed: int) -> nn.Sequential:
    """The same layers (and weights) with dropout(p) after every hidden activation, its
    masks drawn from the run's seed."""
    layers: list[nn.Module] = []
    for layer in net:
        layers.append(layer)
        if isinstance(layer, HIDDEN_ACTIVATIONS):
            layers.append(KeyedDropout(p, noise.seed_key(seed + len(layers))))
    return nn.Sequential(*layers)


class SpectralNorm(nn.Module):
    """W / sigma(W), sigma estimated by one power iteration per training forward (Miyato
    et al. 2018), as torch's spectral_norm does; written without out= arguments so that
    vmap can run K stacked copies, each with its own singular vectors."""

    def __init__(self, weight: torch.Tensor, eps: float = 1e-12):
        super().__init__()
        self.eps = eps
        mat = weight.detach().flatten(1)
        self.register_buffer("_u", F.normalize(mat.new_empty(mat.shape[0]).normal_(), dim=0, eps=eps))
        self.register_buffer("_v", F.normalize(mat.new_empty(mat.shape[1]).normal_(), dim=0, eps=eps))
        self._power(mat, 15)  # start from a good estimate, as torch does

    @torch.no_grad()
    def _power(self, mat: torch.Tensor, iterations: int) -> None:
        for _ in range(iterations):
            self._v.copy_(F.normalize(mat.mT @ self._u, dim=0, eps=self.eps))
            self._u.copy_(F.normalize(mat @ self._v, dim=0, eps=self.eps))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        mat = weight.flatten(1)
        if self.training:
            self._power(mat.detach(), 1)
        sigma = torch.dot(self._u.clone(), mat @ self._v.clone())
        return weight / sigma


def with_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every Linear and Conv2d weight of `module`."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.utils.parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight))
    return module


def memory_layout(sample_shape: tuple[int, ...]) -> torch.memory_format:
    """Channels-last for images: DCGAN's steps take 10-20% less time on CPU (BENCHMARKS.md).
    Training and `gansweep eval` use the same one, so they compute the same bits."""
    return torch.channels_last if len(sample_shape) == 3 else torch.contiguous_format


def build_models(cfg: TrainConfig, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """(G, D) for the config's model, sized to one sample's shape, e.g. (1, 28, 28) or (2,),
    class-conditional when model.conditional (then G(z, y) and D(x, y)), with the
    stabilizers of ``cfg.stabilize`` that change D (dropout, spectral norm)."""
    g, d = MODELS[cfg.model.name](cfg, sample_shape)
    if cfg.model.conditional:
        g, d = ConditionalGenerator(g, cfg.model.z_dim, cfg.data.num_classes), ProjectionDiscriminator(d, cfg.data.num_classes)
    if cfg.stabilize.d_dropout > 0:
        d.net = with_dropout(d.net, cfg.stabilize.d_dropout, cfg.seed)
    if cfg.stabilize.spectral_norm:
        with_spectral_norm(d)
    return g, d
