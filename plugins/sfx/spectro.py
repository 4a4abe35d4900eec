"""The model's audio representation: a 128x128 log-magnitude spectrogram (SpecGAN's), and back.

16384 samples at 16 kHz, STFT with a 256-point Hann window and hop 128: 129 bins x 129 frames;
the Nyquist bin and the last frame are dropped, leaving 128 x 128. Magnitudes are in dB, floored
at -80 dB and mapped linearly to [-1, 1] ((dB + 20) / 60, clamped). Phase comes back with
Griffin-Lim (the fast variant with momentum, Perraudin et al. 2013) via torch.stft/istft,
started from a fixed phase so decoding is deterministic.
"""
from __future__ import annotations

import torch

N_FFT = 256
HOP = 128
BINS = 128
FRAMES = 128
SAMPLES = 16384
DB_FLOOR = -80.0


def _window() -> torch.Tensor:
    return torch.hann_window(N_FFT, dtype=torch.float32)


def to_spec(audio: torch.Tensor) -> torch.Tensor:
    """(B, SAMPLES) float audio -> (B, 1, BINS, FRAMES) in [-1, 1]."""
    s = torch.stft(audio.float(), N_FFT, HOP, window=_window(), center=True, return_complex=True)
    mag = s.abs()[:, :BINS, :FRAMES]
    db = 20 * torch.log10(mag.clamp_min(10 ** (DB_FLOOR / 20)))
    return ((db + 20) / 60).clamp(-1, 1).unsqueeze(1)


def to_magnitude(spec: torch.Tensor) -> torch.Tensor:
    """(B, 1, BINS, FRAMES) in [-1, 1] -> (B, BINS + 1, FRAMES + 1) linear magnitudes."""
    db = spec.squeeze(1).clamp(-1, 1) * 60 - 20
    mag = 10 ** (db / 20)
    mag = torch.where(db <= DB_FLOOR + 1e-3, torch.zeros_like(mag), mag)
    return torch.nn.functional.pad(mag, (0, 1, 0, 1))


def griffin_lim(mag: torch.Tensor, iters: int = 48, momentum: float = 0.99) -> torch.Tensor:
    """(B, BINS + 1, FRAMES + 1) magnitudes -> (B, SAMPLES) audio (fast Griffin-Lim)."""
    win = _window()
    # fixed starting phase: a deterministic pseudo-random pattern, the same for every item
    g = torch.Generator().manual_seed(1234)
    phase = torch.rand(mag.shape[-2:], generator=g) * 2 * torch.pi
    angles = torch.polar(torch.ones_like(mag), phase.expand_as(mag))
    prev = torch.zeros_like(angles)
    for _ in range(iters):
        audio = torch.istft(mag * angles, N_FFT, HOP, window=win, center=True, length=SAMPLES)
        rebuilt = torch.stft(audio, N_FFT, HOP, window=win, center=True, return_complex=True)
        accel = rebuilt - (momentum / (1 + momentum)) * prev
        angles = accel / accel.abs().clamp_min(1e-8)
        prev = rebuilt
    return torch.istft(mag * angles, N_FFT, HOP, window=win, center=True, length=SAMPLES)


def to_audio(spec: torch.Tensor, iters: int = 48) -> torch.Tensor:
    """(B, 1, BINS, FRAMES) spectrograms -> (B, SAMPLES) audio, peak-normalised to 0.9.
    Each item is decoded on its own, so an item's audio never depends on its batch."""
    outs = []
    for one in spec:
        a = griffin_lim(to_magnitude(one.unsqueeze(0)), iters)[0]
        peak = a.abs().max()
        outs.append(a * (0.9 / peak) if peak > 1e-6 else a)
    return torch.stack(outs)
