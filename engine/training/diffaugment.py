"""Differentiable augmentation (Zhao et al. 2020, "DiffAugment"): the same random colour,
translation and cutout applied to real and fake images before D, so a small data set does
not let D memorise. All randomness comes from the given generator (exact resume)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _rand(n: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, generator=g).to(device)


def color(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    rgb, rest = x[:, :3], x[:, 3:]
    n, dev = x.shape[0], x.device
    rgb = rgb + (_rand(n, g, dev) - 0.5)  # brightness
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * (_rand(n, g, dev) * 2) + mean  # saturation
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (_rand(n, g, dev) + 0.5) + mean  # contrast
    return torch.cat([rgb, rest], dim=1)


def translation(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1), generator=g).to(x.device)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1), generator=g).to(x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=g).to(x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=g).to(x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: str, g: torch.Generator) -> torch.Tensor:
    """Apply the comma-separated policy (e.g. "color,translation,cutout"); "" = identity."""
    for name in filter(None, policy.split(",")):
        x = POLICIES[name](x, g)
    return x
