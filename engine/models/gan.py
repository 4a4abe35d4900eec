"""DCGAN-style generator and discriminator (Radford et al. 2015), optionally conditional.

Sizes are powers of two from 16 up; 64x64 is the default, matching pytorch/examples dcgan.
Conditioning: the generator concatenates a prompt embedding to z (and, with ``cond_norm``,
lets it set every BatchNorm's scale and shift); the discriminator is a projection
discriminator (Miyato & Koyama 2018): logit = psi(phi(x)) + <e(y), phi(x)>. With
``minibatch_std`` the discriminator also sees how much its batch varies (ProGAN's minibatch
standard deviation, Karras et al. 2018), so a generator that collapses is easy to tell apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from engine.models.config_base import ModelConfig
from engine.models.prompt_encoder import prompt_embedding


# "resize": nearest-neighbour doubling then a 3x3 conv (Odena et al. 2016, "Deconvolution and
# checkerboard artifacts"): every output pixel sees the same number of weights, so the
# stride-2 transposed conv's checkerboard cannot form. It costs about 2.25x the generator's FLOPs.
UPSAMPLE_MODES = ("transposed", "resize")


@dataclass
class GanConfig(ModelConfig):
    KIND = "gan"
    size: int = 64
    channels: int = 4  # 3 = RGB, 4 = RGBA
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    cond_dim: int = 0  # 0: unconditional
    tokenizer: dict[str, Any] | None = None  # PromptTokenizer.to_dict() when conditional
    spectral_norm: bool = False  # on the discriminator (used with the hinge loss)
    upsample: str = "transposed"  # generator: "transposed" (DCGAN) or "resize" (nearest + 3x3 conv)
    cond_norm: bool = False  # generator: conditional BatchNorm (the prompt sets each layer's scale/shift)
    cond_norm_z: bool = False  # generator: z too sets each conditional BatchNorm's scale/shift (BigGAN's skip-z)
    minibatch_std: int = 0  # discriminator: group size of the minibatch-stddev feature; 0: off


    def __post_init__(self) -> None:
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {self.upsample!r}")
        if self.cond_norm and self.cond_dim <= 0:
            raise ValueError("cond_norm needs a conditional model (cond_dim > 0)")
        if self.cond_norm_z and not self.cond_norm:
            raise ValueError("cond_norm_z needs cond_norm (it feeds z to the conditional BatchNorms)")
        if self.minibatch_std < 0 or self.minibatch_std == 1:
            raise ValueError(f"minibatch_std: a group size >= 2, or 0 for off, got {self.minibatch_std}")


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) conv weights, N(1, 0.02) BatchNorm scales, as in the DCGAN paper."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _double(c_in: int, c_out: int, mode: str) -> list[nn.Module]:
    """One 2x upsampling conv: a stride-2 transposed conv, or nearest resize + 3x3 conv."""
    if mode == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]


def up_stack(in_dim: int, out_channels: int, width: int, n_up: int, out_act: nn.Module,
             mode: str = "transposed") -> nn.Sequential:
    """in_dim x 1 x 1 -> out_channels x 2^(n_up+2) x 2^(n_up+2); ``mode``: UPSAMPLE_MODES."""
    ch = width * 2 ** (n_up - 1)
    layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, ch, 4, 1, 0, bias=False),
                               nn.BatchNorm2d(ch), nn.ReLU(True)]
    for _ in range(n_up - 1):
        layers += [*_double(ch, ch // 2, mode), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
        ch //= 2
    layers += [*_double(ch, out_channels, mode), out_act]
    return nn.Sequential(*layers)


def down_stack(in_channels: int, width: int, n_up: int, batchnorm: bool = True,
               sn: bool = False) -> tuple[nn.Sequential, int]:
    """in_channels x S x S -> C x 4 x 4 with strided convs; returns (stack, C)."""
    wrap = _sn if sn else (lambda m: m)
    layers: list[nn.Module] = [wrap(nn.Conv2d(in_channels, width, 4, 2, 1, bias=False)),
                               nn.LeakyReLU(0.2, inplace=True)]
    ch = width
    for _ in range(n_up - 1):
        layers.append(wrap(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False)))
        if batchnorm:
            layers.append(nn.BatchNorm2d(ch * 2))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        ch *= 2
    return nn.Sequential(*layers), ch


class CondBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are functions of the prompt embedding (conditional BN,
    de Vries et al. 2017, as in SN-GAN's and BigGAN's generators): the prompt reaches every
    layer instead of only the input. Scale is 1 + linear(cond), so it starts near plain BN."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels)
        self.shift = nn.Linear(cond_dim, channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale = 1.0 + self.gain(cond)
        return self.norm(x) * scale[:, :, None, None] + self.shift(cond)[:, :, None, None]


class Generator(nn.Module):
    """z and the prompt embedding, concatenated, through a DCGAN up-stack. With ``cond_norm``
    the embedding also sets every BatchNorm's scale and shift; with ``cond_norm_z`` so does z
    (BigGAN's skip-z: the latent reaches every resolution, not only the 4x4 input, so a strong
    prompt signal in the norms cannot wash out what z chose)."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = (prompt_embedding(cfg.tokenizer, cfg.cond_dim)
                      if cfg.conditional else None)
        self.main = up_stack(cfg.nz + cfg.cond_dim, cfg.channels, cfg.ngf, cfg.n_up, nn.Tanh(), cfg.upsample)
        if cfg.cond_norm:  # same stack, its BatchNorms made conditional (so plain G's keys are unchanged)
            norm_in = cfg.cond_dim + (cfg.nz if cfg.cond_norm_z else 0)
            for i, layer in enumerate(self.main):
                if isinstance(layer, nn.BatchNorm2d):
                    self.main[i] = CondBatchNorm2d(layer.num_features, norm_in)
        dcgan_init(self.main)

    def forward(self, z: torch.Tensor, prompt: dict[str, torch.Tensor] | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """z: (B, nz). ``cond`` (B, cond_dim) overrides ``prompt`` (used to interpolate)."""
        norm_in = cond
        if self.embed is not None:
            if cond is None:
                cond = self.embed(prompt)
            norm_in = torch.cat([cond, z], dim=1) if self.cfg.cond_norm_z else cond
            z = torch.cat([z, cond], dim=1)
        h = z[:, :, None, None]
        for layer in self.main:
            h = layer(h, norm_in) if isinstance(layer, CondBatchNorm2d) else layer(h)
        return h


class LatentEncoder(nn.Module):
    """An image -> the mean and log-variance of the latent that draws it back (the encoder of a
    VAE-GAN, Larsen et al. 2016, and of BicycleGAN's cVAE-GAN, Zhu et al. 2017): a DCGAN
    down-stack without BatchNorm (a row's code must not depend on the rest of its batch)."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.features, ch = down_stack(cfg.channels, cfg.ndf, cfg.n_up, batchnorm=False)
        self.head = nn.Linear(ch * 16, 2 * cfg.nz)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.features(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)


def widen_for_skip_z(state: dict[str, torch.Tensor], into: Generator) -> dict[str, torch.Tensor]:
    """A cond-norm generator's weights, fitted to ``into`` (the same generator with
    ``cond_norm_z``): each conditional BatchNorm's linears get zero columns for z, after the
    prompt's, so the widened generator computes exactly what the original did and learns from
    there how z should set each layer's scale and shift."""
    target = into.state_dict()
    out = dict(state)
    for key, value in state.items():
        want = target.get(key)
        if (want is not None and key.endswith((".gain.weight", ".shift.weight")) and value.dim() == 2
                and want.shape[0] == value.shape[0] and want.shape[1] > value.shape[1]):
            out[key] = torch.cat([value, value.new_zeros(value.shape[0], want.shape[1] - value.shape[1])], dim=1)
    return out


# A 4x4 stride-2 transposed conv draws output row 2m from input rows (m-1, m) with kernel rows
# (3, 1), and row 2m+1 from (m, m+1) with rows (2, 0). Nearest doubling then a 3x3 conv w draws
# them with (w0, w1+w2) and (w0+w1, w2): _RESIZE_TAPS maps w to those four taps, in the order
# _TRANSPOSED_ROWS names the transposed kernel's rows. Its left null space, (1, 1, -1, -1), is
# the one thing resize-conv cannot draw: the two phases' different gains, the checkerboard.
_RESIZE_TAPS = torch.tensor([[1.0, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.float64)
_TRANSPOSED_ROWS = torch.tensor([3, 1, 2, 0])


def resize_kernel(transposed: torch.Tensor) -> tuple[torch.Tensor, float]:
    """A stride-2 ConvTranspose2d weight (c_in, c_out, 4, 4) -> the Conv2d weight (c_out, c_in,
    3, 3) of the nearest-x2 + 3x3 conv nearest to it (least squares on the taps each output
    phase applies), and the share of the kernel's energy that was left out (its checkerboard)."""
    t = transposed.detach().double()[:, :, _TRANSPOSED_ROWS][:, :, :, _TRANSPOSED_ROWS]
    pinv = torch.linalg.pinv(_RESIZE_TAPS)
    w = torch.einsum("ak,iokl,bl->ioab", pinv, t, pinv)
    kept = torch.einsum("ka,ioab,lb->iokl", _RESIZE_TAPS, w, _RESIZE_TAPS)
    dropped = float((t - kept).pow(2).sum() / t.pow(2).sum().clamp_min(1e-30))
    return w.permute(1, 0, 2, 3).to(transposed.dtype).contiguous(), dropped


def resize_from_transposed(source: Generator, into: Generator) -> tuple[dict[str, torch.Tensor], list[float]]:
    """``source``'s weights for ``into``, the same generator with ``upsample="resize"``: each
    stride-2 transposed conv becomes its ``resize_kernel``, everything else is copied. The
    result draws ``source``'s images without the checkerboard (softer: some phase detail goes
    with it), a start for a fine-tune in which D asks the detail back from layers that cannot
    draw the lattice. Returns the state dict and each layer's dropped energy share."""
    if source.cfg.upsample != "transposed" or into.cfg.upsample != "resize":
        raise ValueError("resize_from_transposed: from a transposed-conv generator to a resize-conv one")
    # into's layer positions, its Upsamples left out, pair one to one with source's layers
    positions = [i for i, m in enumerate(into.main) if not isinstance(m, nn.Upsample)]
    if len(positions) != len(source.main):
        raise ValueError("resize_from_transposed: the two generators' stacks differ beyond their upsampling")
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("main.")}
    dropped: list[float] = []
    for old, i in zip(source.main, positions):
        part = old.state_dict()
        if isinstance(old, nn.ConvTranspose2d) and old.stride == (2, 2):
            weight, share = resize_kernel(old.weight)
            part = {"weight": weight}
            dropped.append(share)
        state.update({f"main.{i}.{k}": v for k, v in part.items()})
    return state, dropped


def _conv_io(layer: nn.Module) -> tuple[int, int]:
    """The (input, output) channel dims of a conv weight: ConvTranspose2d keeps (in, out, k, k)."""
    return (0, 1) if isinstance(layer, nn.ConvTranspose2d) else (1, 0)


def widen_generator(source: Generator, into: Generator, noise: float = 0.05,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """``source``'s weights for ``into``, the same generator ``r`` times wider (ngf × r): Net2Net's
    function-preserving widening (Chen et al. 2016). Every hidden channel is copied r times
    (its conv filter, its BatchNorm statistics and its conditional scale/shift rows), and the
    next conv's weights from the r copies share the original weight: w/r each plus a
    perturbation that sums to zero across the copies. The copies carry the same activations,
    so the wide generator draws exactly the narrow one's images (training-mode batch statistics
    included), while the perturbation gives the copies different gradients, so training can
    pull them apart into new features. ``noise``: the perturbation's scale, relative to each
    weight's own standard deviation."""
    r, rem = divmod(into.cfg.ngf, source.cfg.ngf)
    if rem or r < 1:
        raise ValueError(f"widen_generator: ngf {into.cfg.ngf} is not a multiple of {source.cfg.ngf}")
    fields = ("size", "channels", "nz", "cond_dim", "upsample", "cond_norm")
    differ = [f for f in fields if getattr(source.cfg, f) != getattr(into.cfg, f)]
    if differ:
        raise ValueError(f"widen_generator: the two generators differ in {', '.join(differ)}, not only ngf")
    rng = torch.Generator().manual_seed(seed)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("main.")}
    convs = [i for i, m in enumerate(source.main) if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    last = convs[-1]
    for i, layer in enumerate(source.main):
        part = layer.state_dict()
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            w = part["weight"]
            d_in, d_out = _conv_io(layer)
            if i != convs[0]:  # its input channels are the previous layer's copies: split the weight
                copies = torch.cat([w / r] * r, dim=d_in)
                eps = torch.randn(copies.shape, generator=rng, dtype=torch.float32).to(w.dtype)
                eps = eps * noise * float(w.float().std()) / r
                c = w.shape[d_in]  # subtract each original channel's mean perturbation: zero sum over copies
                mean = sum(eps.narrow(d_in, k * c, c) for k in range(r)) / r
                w = copies + eps - torch.cat([mean] * r, dim=d_in)
            if i != last:  # its output channels are copied
                w = torch.cat([w] * r, dim=d_out)
            part = {"weight": w.contiguous()}
        elif isinstance(layer, nn.BatchNorm2d):
            part = {k: (torch.cat([v] * r) if v.dim() == 1 else v) for k, v in part.items()}
        elif isinstance(layer, CondBatchNorm2d):
            part = {k: (v if k.endswith("num_batches_tracked") else torch.cat([v] * r, dim=0))
                    for k, v in part.items()}
        state.update({f"main.{i}.{k}": v for k, v in part.items()})
    return state


def stddev_group_size(batch: int, group: int) -> int:
    """The group size minibatch_stddev uses for a batch: the largest divisor of the batch up
    to ``group``. Group j is rows j, j + batch // size, j + 2 * batch // size, ... (a strided
    layout), which the trainer's category groups (--mbstd-groups category) fill on purpose."""
    return max(d for d in range(1, min(group, batch) + 1) if batch % d == 0)


def minibatch_stddev(h: torch.Tensor, group: int) -> torch.Tensor:
    """h with one more channel: the feature sd within groups of ``group`` rows, averaged to
    one number per group (ProGAN). A batch that is not a multiple of the group uses the
    largest group that divides it."""
    b, c, hh, ww = h.shape
    g = stddev_group_size(b, group)
    if g < 2:
        return torch.cat([h, h.new_zeros(b, 1, hh, ww)], dim=1)
    y = h.float().reshape(g, b // g, c, hh, ww)
    sd = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b // g,)
    sd = sd.to(h.dtype).repeat(g)[:, None, None, None].expand(b, 1, hh, ww)
    return torch.cat([h, sd], dim=1)


class Discriminator(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.features, ch = down_stack(cfg.channels, cfg.ndf, cfg.n_up,
                                       batchnorm=not cfg.spectral_norm, sn=cfg.spectral_norm)
        self.feature_channels = ch  # phi(x)'s width (what with_features returns)
        head = nn.Conv2d(ch + (1 if cfg.minibatch_std else 0), 1, 4, 1, 0, bias=False)
        self.head = _sn(head) if cfg.spectral_norm else head
        self.embed = (prompt_embedding(cfg.tokenizer, ch)
                      if cfg.conditional else None)
        dcgan_init(self.features)
        dcgan_init(self.head)

    def forward(self, x: torch.Tensor, prompt: dict[str, torch.Tensor] | None = None,
                with_features: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (B,): the sigmoid is in the loss (BCE with logits), never twice. With
        ``with_features``, also phi(x): the last feature map averaged over space, (B, C),
        which an auxiliary classifier reads (the trainer's --aux-class)."""
        h = self.features(x)
        out = self.head(minibatch_stddev(h, self.cfg.minibatch_std) if self.cfg.minibatch_std else h).flatten()
        if self.embed is not None:
            out = out + (self.embed(prompt) * h.sum(dim=(2, 3))).sum(dim=1) / (h.shape[2] * h.shape[3])
        return (out, h.mean(dim=(2, 3))) if with_features else out

    def reprompt(self, logits: torch.Tensor, feat: torch.Tensor, prompt: dict[str, torch.Tensor],
                 other: dict[str, torch.Tensor]) -> torch.Tensor:
        """The logits that forward's images get under ``other`` instead of ``prompt``, from
        forward's ``logits`` and pooled features, without running D again: only the projection
        term <e(y), phi(x)> depends on the prompt (the trainer's --mismatch)."""
        return logits - (self.embed(prompt) * feat).sum(dim=1) + (self.embed(other) * feat).sum(dim=1)
