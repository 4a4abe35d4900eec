"""Distribution metrics on judge features (float64 throughout)."""
from __future__ import annotations

import numpy as np
import torch


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FD between Gaussians fitted to feature sets a and b (Heusel et al. 2017):
    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)). The trace of the matrix square root
    is computed from the symmetric form S_a^(1/2) S_b S_a^(1/2), which has real eigenvalues."""
    x, y = a.double().numpy(), b.double().numpy()
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s_x)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eig = np.linalg.eigvalsh(root @ s_y @ root)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * tr_covmean)


def kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0


def covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    out = []
    for i in range(0, points.shape[0], chunk):
        d = torch.cdist(points[i:i + chunk], centres)
        out.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(out)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): precision = share of fakes
    inside the union of real k-NN balls; recall = share of reals inside the fake balls."""
    real, fake = real.double(), fake.double()
    precision = covered(fake, real, kth_radius(real, k)).double().mean().item()
    recall = covered(real, fake, kth_radius(fake, k)).double().mean().item()
    return precision, recall


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) float images, reflect-padded."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def nearest_rmse(samples: torch.Tensor, train: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Per sample, the pixel RMSE to its nearest training image (inputs in [0, 1])."""
    t = train.flatten(1).double()
    out = []
    for i in range(0, samples.shape[0], chunk):
        s = samples[i:i + chunk].flatten(1).double()
        out.append(torch.cdist(s, t).min(dim=1).values / np.sqrt(t.shape[1]))
    return torch.cat(out)


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance over all pairs of distinct rows: how spread a set is. Its
    expectation does not depend on the number of rows, so sets of different sizes compare."""
    n = x.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(x.double(), x.double())
    return float(d.sum() / (n * (n - 1)))


def pixel_shuffle(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each image's pixels in a random order (every channel of a pixel moves together): the
    colours of a real image without its shapes."""
    b, c, h, w = x.shape
    flat = x.flatten(2)
    order = torch.argsort(torch.rand(b, h * w, generator=g), dim=1)
    return flat.gather(2, order[:, None, :].expand(b, c, h * w)).reshape(b, c, h, w)


def speckle(x: torch.Tensor, sd: float, g: torch.Generator) -> torch.Tensor:
    """Gaussian colour noise of ``sd`` on the visible pixels of RGBA images in [0, 1] (alpha
    kept): grain on an intact shape."""
    if x.shape[1] != 4:
        return (x + torch.randn(x.shape, generator=g) * sd).clamp(0, 1)
    rgb = x[:, :3] + torch.randn(x[:, :3].shape, generator=g) * sd * (x[:, 3:] > 0)
    return torch.cat([rgb.clamp(0, 1), x[:, 3:]], dim=1)


def chimera(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each image's four quadrants taken from four different images of ``x``: every local
    patch is a real emoji's, the whole is no emoji. A set with real textures and colours and
    no structure, the failure a judge that reads only texture cannot see."""
    b, _, h, w = x.shape
    out = x.clone()
    for qi, (ys, xs) in enumerate([(slice(0, h // 2), slice(0, w // 2)), (slice(0, h // 2), slice(w // 2, w)),
                                   (slice(h // 2, h), slice(0, w // 2)), (slice(h // 2, h), slice(w // 2, w))]):
        src = torch.randperm(b, generator=g) if qi else torch.arange(b)
        out[:, :, ys, xs] = x[src, :, ys, xs]
    return out
