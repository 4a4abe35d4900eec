"""Fixed (not learned) low-pass filters on images, shared by the models and the evaluation.

The GAN's ``output_blur`` uses ``premultiplied_blur``: a stride-2 transposed-conv generator
leaves a lattice of dots and single-pixel alpha specks in its output (Odena et al. 2016); a
slight Gaussian on the alpha-premultiplied image removes them without bleeding the colour of
transparent pixels into the edges, the way StyleGAN's fixed blur after upsampling does inside
its generator (Karras et al. 2019).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# colour is divided back by the blurred alpha. Faint pixels keep their full colour, as in the
# data (straight alpha: its pixels at alpha 1-8 of 255 are as bright as its opaque outlines);
# below one 8-bit step, which the served PNG rounds to transparent, colour fades towards the
# data's transparent black instead of amplifying noise (and a gradient) without bound
ALPHA_FLOOR = 1.0 / 255


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) float images, reflect-padded."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def premultiplied_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, 4, H, W) straight-alpha RGBA in [0, 1], done on the premultiplied
    image (colour weighted by its alpha) and divided back; RGB images are blurred as they are."""
    if x.shape[1] != 4:
        return gaussian_blur(x, sigma)
    a = x[:, 3:]
    y = gaussian_blur(torch.cat([x[:, :3] * a, a], dim=1), sigma)
    alpha = y[:, 3:].clamp(0, 1)
    return torch.cat([(y[:, :3] / alpha.clamp_min(ALPHA_FLOOR)).clamp(0, 1), alpha], dim=1)
