"""Motion: latent paths (morph, loop) and looping reaction motions (bounce, spin, pulse).

Pure functions of their inputs (no global RNG): an animation is a function of its job's
(command, options, seed), like every output.
"""
from __future__ import annotations

import math

import torch
from PIL import Image

MOTIONS = ("loop", "morph", "bounce", "spin", "pulse")
LOOP_ANGLE = 0.45  # the loop circle's radius, as a fraction of |z0| (0.25 barely moved on the shipped GAN)


def ease(t: torch.Tensor) -> torch.Tensor:
    """Cosine ease-in-out on [0, 1]: the walk starts and ends at rest."""
    return (1.0 - torch.cos(math.pi * t)) / 2.0


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of rows ``a`` (1, n) to ``b`` (1, n) at each ``t`` (k,) -> (k, n):
    Gaussian latents live near a sphere, and a straight line between two cuts through its
    low-density middle (White, 2016). Exact at t = 0 and 1; linear when a ∥ b."""
    a64, b64, t64 = a.double(), b.double(), t.double()[:, None]
    cos = (a64 / a64.norm()) @ (b64 / b64.norm()).T
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega) < 1e-6:
        out = torch.lerp(a64, b64, t64)
    else:
        so = torch.sin(omega)
        out = torch.sin((1.0 - t64) * omega) / so * a64 + torch.sin(t64 * omega) / so * b64
    out[t.double() == 0] = a64[0]
    out[t.double() == 1] = b64[0]
    return out.float()


def morph_path(z0: torch.Tensor, z1: torch.Tensor, c0: torch.Tensor | None, c1: torch.Tensor | None,
               frames: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(frames, nz) latents and conditions from still 0 to still 1, eased, endpoints exact."""
    s = ease(torch.linspace(0.0, 1.0, frames, dtype=torch.float64))
    s[0], s[-1] = 0.0, 1.0
    z = slerp(z0, z1, s)
    if c0 is None or c1 is None:
        return z, None
    c = torch.lerp(c0.double(), c1.double(), s[:, None]).float()
    c[0], c[-1] = c0[0], c1[0]
    return z, c


def loop_path(z0: torch.Tensor, plane: torch.Tensor, frames: int, radius: float = LOOP_ANGLE) -> torch.Tensor:
    """(frames, nz): a circle through ``z0`` in the plane spanned by ``plane`` (2, nz, random),
    z(θ) = z0 + r|z0|((cos θ - 1) u + sin θ v), each point rescaled to |z0| (the shell the GAN
    samples from). Frame 0 is z0 itself, and frame ``frames`` would be again: a seamless loop."""
    u, v = _orthonormal(plane, z0)
    theta = 2.0 * math.pi * torch.arange(frames, dtype=torch.float64)[:, None] / frames
    norm = z0.double().norm()
    z = z0.double() + radius * norm * ((torch.cos(theta) - 1.0) * u + torch.sin(theta) * v)
    z = z * (norm / z.norm(dim=1, keepdim=True))
    z[0] = z0.double()[0]
    return z.float()


def _orthonormal(plane: torch.Tensor, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit vectors orthogonal to each other and to z0 (Gram-Schmidt, float64)."""
    basis = [z0.double()[0] / z0.double().norm()]
    for row in plane.double():
        for b in basis:
            row = row - (row @ b) * b
        basis.append(row / row.norm())
    return basis[1][None], basis[2][None]


# ---- reaction motions: the still, moved on a transparent canvas --------------------------

def _place(image: Image.Image, size: int, scale_x: float, scale_y: float, angle: float = 0.0,
           dx: float = 0.0, dy: float = 0.0) -> Image.Image:
    """``image`` scaled about its centre, rotated by ``angle`` degrees and moved by (dx, dy),
    on a transparent ``size`` canvas. Resampled premultiplied (RGBa) so transparent pixels'
    colours never bleed into the edges."""
    src = image.convert("RGBa")
    w, h = src.size
    cx, cy = size / 2.0 + dx, size / 2.0 + dy
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    # output pixel (x, y) -> source pixel: undo the move, the rotation, then the scale
    kx, ky = w / (size * scale_x), h / (size * scale_y)
    coeffs = (cos * kx, sin * kx, w / 2.0 - (cos * cx + sin * cy) * kx,
              -sin * ky, cos * ky, h / 2.0 - (-sin * cx + cos * cy) * ky)
    out = src.transform((size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC,
                        fillcolor=(0, 0, 0, 0))
    return out.convert("RGBA")


def _bump(t: float, at: float, width: float = 0.09) -> float:
    """A smooth bump at ``at`` on the circle [0, 1): periodic, so frame 0 follows the last."""
    d = abs(t - at) % 1.0
    return math.exp(-(min(d, 1.0 - d) / width) ** 2)


def reaction_frames(image: Image.Image, motion: str, frames: int, size: int) -> list[Image.Image]:
    """``frames`` frames of a seamless loop of ``motion`` (bounce, spin or pulse) of ``image``."""
    out = []
    for i in range(frames):
        t = i / frames  # one period over the clip; frame ``frames`` would be frame 0 again
        if motion == "bounce":
            height = abs(math.sin(math.pi * t))  # 0 on the ground, 1 at the top
            squash = 0.12 * (1.0 - height) ** 6  # flattens as it lands
            s = 0.78
            dy = -0.2 * size * height + 0.5 * size * s * squash + 0.08 * size
            out.append(_place(image, size, s * (1 + squash), s * (1 - squash), dy=dy))
        elif motion == "spin":
            out.append(_place(image, size, 0.72, 0.72, angle=360.0 * t))
        elif motion == "pulse":
            # a heartbeat: two smooth beats ("lub-dub") then a rest, sampled well at any frame count
            beat = _bump(t, 0.15) + 0.7 * _bump(t, 0.42)
            s = 0.8 + 0.14 * beat
            out.append(_place(image, size, s, s))
        else:
            raise ValueError(f"motion must be one of bounce, spin, pulse here, got {motion!r}")
    return out
