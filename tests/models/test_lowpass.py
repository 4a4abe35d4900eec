"""The fixed low-pass filters (engine/models/lowpass.py): what the GAN's output_blur does to
an image, checked against images whose answer is known."""
from __future__ import annotations

import math

import torch

from engine.models.lowpass import ALPHA_FLOOR, gaussian_blur, premultiplied_blur


def _rgba(rgb: tuple[float, float, float], alpha: torch.Tensor) -> torch.Tensor:
    x = torch.empty(1, 4, *alpha.shape)
    x[0, :3] = torch.tensor(rgb)[:, None, None]
    x[0, 3] = alpha
    return x


def test_an_opaque_flat_image_is_unchanged():
    x = _rgba((0.9, 0.6, 0.1), torch.ones(16, 16))
    assert torch.allclose(premultiplied_blur(x, 0.5), x, atol=1e-6)


def test_the_colour_of_transparent_pixels_does_not_bleed_into_the_edge():
    """Left half opaque red; right half transparent with green garbage in its RGB (what a
    generator may leave there). The straight blur paints the edge green; the premultiplied
    one keeps it red, only fading its alpha."""
    alpha = torch.zeros(16, 16)
    alpha[:, :8] = 1.0
    x = _rgba((1.0, 0.0, 0.0), alpha)
    x[0, :3, :, 8:] = torch.tensor([0.0, 1.0, 0.0])[:, None, None]
    straight, premult = gaussian_blur(x, 1.0), premultiplied_blur(x, 1.0)
    edge = (premult[0, 3] > ALPHA_FLOOR)  # every pixel that is still visible
    assert float(straight[0, 1, :, 7].min()) > 0.1  # the naive blur does bleed (the test has teeth)
    assert float(premult[0, 1][edge].max()) < 1e-6 and float(premult[0, 0][edge].min()) > 0.999
    assert 0.0 < float(premult[0, 3, 0, 8]) < 0.5 < float(premult[0, 3, 0, 7]) < 1.0  # the alpha edge is softened


def test_a_checkerboard_of_dots_and_a_lone_speck_are_damped():
    """A transposed conv's period-2 lattice keeps the kernel's response at Nyquist per axis
    (sigma 0.5: 0.57, so 0.33 over both axes); a one-pixel alpha speck keeps about 0.62 of
    its peak, so it no longer reads as a solid dot."""
    i = torch.arange(16)
    board = ((i[:, None] + i[None, :]) % 2).float()
    x = _rgba((0.5, 0.5, 0.5), torch.ones(16, 16))
    x[0, :3] = 0.4 + 0.2 * board
    y = premultiplied_blur(x, 0.5)
    before = float(x[0, 0, 4:12, 4:12].std())
    after = float(y[0, 0, 4:12, 4:12].std())
    k1, k2 = math.exp(-1 / (2 * 0.25)), math.exp(-4 / (2 * 0.25))  # the taps at 1 and 2 px, centre 1
    expect = ((1 - 2 * k1 + 2 * k2) / (1 + 2 * k1 + 2 * k2)) ** 2  # (+1, -1, +1, ...) through both axes
    assert abs(after / before - expect) < 0.02 and after / before < 0.35
    speck = torch.zeros(16, 16)
    speck[8, 8] = 1.0
    peak = float(premultiplied_blur(_rgba((0.0, 0.0, 0.0), speck), 0.5)[0, 3].max())
    assert 0.55 < peak < 0.7


def test_gradients_stay_finite_where_everything_is_transparent():
    x = torch.zeros(2, 4, 8, 8, requires_grad=True)
    premultiplied_blur(x, 0.5).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert float(x.grad.abs().max()) <= 1.0 / ALPHA_FLOOR  # bounded by the alpha floor


def test_rgb_images_are_blurred_as_they_are():
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(premultiplied_blur(x, 0.7), gaussian_blur(x, 0.7))
