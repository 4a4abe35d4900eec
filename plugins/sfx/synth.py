"""A procedural sound-effect synthesiser in the style of sfxr/jsfxr (Tomas Pettersson's sfxr).

A sound is a :class:`Params` (oscillator, envelope, frequency slide and its acceleration,
vibrato, arpeggio, repeat, duty sweep, flanger, resonant low-pass and high-pass with sweeps);
:func:`render` turns it into ~1 s of 16 kHz float audio, vectorised with numpy (sfxr's
per-sample loop in Python would take ~50 ms a clip). Each class of :data:`CLASSES` has a
randomiser that draws parameters the way sfxr's buttons do ("Pickup/Coin", "Laser/Shoot", ...),
from a ``numpy.random.Generator``, so a data set is reproducible from its seed.

Filters are applied in the STFT domain, frame by frame (a time-varying magnitude response),
which is how the sweeps stay vectorised.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Literal

import numpy as np

RATE = 16000
SAMPLES = 16384  # 1.024 s: WaveGAN's and SpecGAN's clip length
Wave = Literal["square", "saw", "sine", "triangle", "noise"]


@dataclass(frozen=True)
class Params:
    """One sound. Times are seconds, frequencies Hz, slides octaves per second."""

    wave: Wave = "square"
    freq: float = 440.0
    freq_min: float = 20.0  # the sound stops when a downward slide passes it (sfxr's freq_limit)
    slide: float = 0.0  # octaves / s
    slide_accel: float = 0.0  # octaves / s^2 (sfxr's delta slide)
    vib_depth: float = 0.0  # fraction of the frequency
    vib_rate: float = 0.0  # Hz
    arp_mult: float = 1.0  # frequency multiplier applied at arp_time
    arp_time: float = 0.0  # 0 = no arpeggio
    repeat: float = 0.0  # seconds between restarts of slide and arpeggio; 0 = none
    duty: float = 0.5  # square wave duty cycle
    duty_sweep: float = 0.0  # per second
    attack: float = 0.0
    sustain: float = 0.2
    punch: float = 0.0  # extra level at the start of the sustain, fading over it
    decay: float = 0.3
    lpf: float = 8000.0  # cutoff, Hz (>= 8000: off)
    lpf_sweep: float = 0.0  # octaves / s
    lpf_res: float = 0.0  # 0..1, resonance peak at the cutoff
    hpf: float = 0.0  # cutoff, Hz (0: off)
    hpf_sweep: float = 0.0  # octaves / s
    flanger_ms: float = 0.0  # flanger delay, 0 = off
    flanger_sweep: float = 0.0  # ms / s
    noise_period: float = 0.0  # for wave "noise": seconds per random value = 1/(freq*32) as sfxr


def envelope(p: Params, t: np.ndarray) -> np.ndarray:
    """sfxr's attack / sustain (with punch) / linear decay envelope."""
    a, s, d = max(p.attack, 1e-4), max(p.sustain, 0.0), max(p.decay, 1e-4)
    env = np.zeros_like(t)
    up = t < a
    env[up] = t[up] / a
    mid = (t >= a) & (t < a + s)
    frac = (t[mid] - a) / max(s, 1e-9)
    env[mid] = 1.0 + 2.0 * p.punch * (1.0 - frac)
    down = (t >= a + s) & (t < a + s + d)
    env[down] = 1.0 - (t[down] - a - s) / d
    return env


def frequency(p: Params, t: np.ndarray) -> np.ndarray:
    """Instantaneous frequency: slide with acceleration, arpeggio and repeat, then vibrato."""
    tr = np.mod(t, p.repeat) if p.repeat > 0 else t
    octaves = p.slide * tr + 0.5 * p.slide_accel * tr * tr
    f = p.freq * np.exp2(np.clip(octaves, -12, 6))
    if p.arp_time > 0:
        f = np.where(tr >= p.arp_time, f * p.arp_mult, f)
    if p.vib_depth > 0:
        f = f * (1.0 + p.vib_depth * np.sin(2 * np.pi * p.vib_rate * t))
    return np.clip(f, 1.0, RATE / 2 - 1)


def oscillator(p: Params, f: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    phase = np.cumsum(f) / RATE
    frac = phase - np.floor(phase)
    if p.wave == "square":
        duty = np.clip(p.duty + p.duty_sweep * t, 0.05, 0.95)
        return np.where(frac < duty, 0.5, -0.5)
    if p.wave == "saw":
        return 1.0 - 2.0 * frac
    if p.wave == "triangle":
        return 1.0 - 4.0 * np.abs(frac - 0.5)
    if p.wave == "sine":
        return np.sin(2 * np.pi * frac)
    # noise: a new random value 32 times per period, as sfxr does (the pitch shapes the noise)
    ticks = np.floor(phase * 32).astype(np.int64)
    table = rng.uniform(-1, 1, int(ticks[-1]) + 2)
    return table[ticks]


def flanger(p: Params, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    if p.flanger_ms <= 0 and p.flanger_sweep == 0:
        return x
    delay = np.clip(p.flanger_ms + p.flanger_sweep * t, 0.0, 20.0) * RATE / 1000.0
    idx = np.arange(len(x)) - delay.astype(np.int64)
    return x + np.where(idx >= 0, x[np.clip(idx, 0, None)], 0.0)


def filters(p: Params, x: np.ndarray) -> np.ndarray:
    """Resonant low-pass and high-pass with sweeps, as time-varying STFT-domain responses."""
    if p.lpf >= 8000 and p.lpf_sweep <= 0 and p.hpf <= 0 and p.hpf_sweep <= 0:
        return x
    n_fft, hop = 512, 128
    win = np.hanning(n_fft + 1)[:-1]
    pad = np.pad(x, (n_fft // 2, n_fft // 2 + n_fft))
    frames = 1 + (len(pad) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.fft.rfft(pad[idx] * win, axis=1)
    tf = np.arange(frames) * hop / RATE
    fr = np.fft.rfftfreq(n_fft, 1 / RATE)[None, :]
    lp = np.clip(p.lpf * np.exp2(p.lpf_sweep * tf), 30, 16000)[:, None]
    hp = np.clip(p.hpf * np.exp2(p.hpf_sweep * tf), 0, 7900)[:, None]
    # 2nd-order responses: |H| of a low-pass with Q from the resonance, and a 2nd-order high-pass
    q = 0.707 + 6.0 * p.lpf_res
    r = fr / lp
    h = 1.0 / np.sqrt((1 - r**2) ** 2 + (r / q) ** 2)
    if p.hpf > 0:
        rh = fr / np.maximum(hp, 1.0)
        h = h * rh**2 / np.sqrt((1 - rh**2) ** 2 + (rh / 0.707) ** 2)
    spec = spec * h
    out = np.zeros(len(pad))
    norm = np.zeros(len(pad))
    np.add.at(out, idx, np.fft.irfft(spec, n=n_fft, axis=1) * win)
    np.add.at(norm, idx, np.broadcast_to(win**2, idx.shape))
    out = out / np.maximum(norm, 1e-3)
    return out[n_fft // 2: n_fft // 2 + len(x)]


def render(p: Params, seed: int = 0, samples: int = SAMPLES) -> np.ndarray:
    """The sound ``p`` as float32 samples in [-1, 1], peak-normalised to 0.9 (silence stays 0)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    f = frequency(p, t)
    x = oscillator(p, f, t, rng)
    x = flanger(p, x, t)
    x = filters(p, x)
    env = envelope(p, t)
    # sfxr stops a downward slide at freq_limit
    if p.slide < 0 or p.slide_accel < 0:
        env = np.where(np.cumsum(f < p.freq_min) > 0, 0.0, env)
    x = x * env
    peak = float(np.max(np.abs(x)))
    return (x * (0.9 / peak) if peak > 1e-6 else x).astype(np.float32)


# ---- class randomisers: the shape of each kind, drawn like sfxr's generator buttons ----

def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _log_u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def coin(r: np.random.Generator) -> Params:
    return Params(wave=str(r.choice(["square", "saw", "sine"])), freq=_log_u(r, 700, 1800),
                  duty=_u(r, 0.2, 0.5), arp_mult=_u(r, 1.25, 1.6), arp_time=_u(r, 0.04, 0.12),
                  attack=0.0, sustain=_u(r, 0.03, 0.12), punch=_u(r, 0.2, 0.6), decay=_u(r, 0.15, 0.45))


def laser(r: np.random.Generator) -> Params:
    return Params(wave=str(r.choice(["square", "saw", "sine"])), freq=_log_u(r, 900, 3500),
                  freq_min=_u(r, 80, 300), slide=-_u(r, 6, 18), slide_accel=_u(r, 0, 10),
                  duty=_u(r, 0.1, 0.5), duty_sweep=_u(r, -0.5, 0.5),
                  vib_depth=_u(r, 0, 0.05), vib_rate=_u(r, 10, 40),
                  sustain=_u(r, 0.05, 0.2), punch=_u(r, 0, 0.4), decay=_u(r, 0.05, 0.3),
                  hpf=_u(r, 0, 300), flanger_ms=_u(r, 0, 3) if r.random() < 0.3 else 0.0)


def explosion(r: np.random.Generator) -> Params:
    return Params(wave="noise", freq=_log_u(r, 60, 600), slide=-_u(r, 0, 2.5),
                  repeat=_u(r, 0.2, 0.5) if r.random() < 0.3 else 0.0,
                  vib_depth=_u(r, 0, 0.3) if r.random() < 0.4 else 0.0, vib_rate=_u(r, 4, 15),
                  sustain=_u(r, 0.1, 0.35), punch=_u(r, 0.2, 0.8), decay=_u(r, 0.3, 0.6),
                  lpf=_log_u(r, 1500, 8000), lpf_sweep=-_u(r, 0, 2),
                  flanger_ms=_u(r, 1, 8) if r.random() < 0.3 else 0.0, flanger_sweep=_u(r, -5, 5))


def jump(r: np.random.Generator) -> Params:
    return Params(wave=str(r.choice(["square", "sine", "triangle"])), freq=_log_u(r, 250, 650),
                  slide=_u(r, 2.5, 6), duty=_u(r, 0.2, 0.5),
                  sustain=_u(r, 0.05, 0.2), decay=_u(r, 0.1, 0.3),
                  lpf=_log_u(r, 2500, 8000) if r.random() < 0.5 else 8000.0, hpf=_u(r, 0, 200))


def hit(r: np.random.Generator) -> Params:
    noise = r.random() < 0.6
    return Params(wave="noise" if noise else str(r.choice(["square", "saw"])),
                  freq=_log_u(r, 150, 1000) if noise else _log_u(r, 150, 700),
                  freq_min=40.0, slide=-_u(r, 4, 12), duty=_u(r, 0.2, 0.5),
                  sustain=_u(r, 0.0, 0.05), punch=_u(r, 0.2, 0.6), decay=_u(r, 0.08, 0.25),
                  hpf=_u(r, 0, 400))


def blip(r: np.random.Generator) -> Params:
    return Params(wave=str(r.choice(["square", "sine", "triangle"])), freq=_log_u(r, 400, 2400),
                  duty=_u(r, 0.2, 0.5), sustain=_u(r, 0.03, 0.09), decay=_u(r, 0.01, 0.06),
                  hpf=_u(r, 0, 150))


def powerup(r: np.random.Generator) -> Params:
    rep = r.random() < 0.6
    return Params(wave=str(r.choice(["square", "saw", "triangle"])), freq=_log_u(r, 200, 600),
                  slide=_u(r, 1.5, 5) if rep else _u(r, 1, 2.5),
                  repeat=_u(r, 0.08, 0.18) if rep else 0.0,
                  vib_depth=_u(r, 0.05, 0.2) if not rep else 0.0, vib_rate=_u(r, 8, 20),
                  duty=_u(r, 0.2, 0.5), sustain=_u(r, 0.25, 0.5), decay=_u(r, 0.15, 0.35))


def siren(r: np.random.Generator) -> Params:
    return Params(wave=str(r.choice(["sine", "triangle", "square", "saw"])), freq=_log_u(r, 500, 1100),
                  vib_depth=_u(r, 0.15, 0.35), vib_rate=_u(r, 1.5, 4.5), duty=_u(r, 0.3, 0.5),
                  attack=_u(r, 0.0, 0.05), sustain=_u(r, 0.65, 0.85), decay=_u(r, 0.05, 0.12),
                  lpf=_log_u(r, 2500, 8000))


def whoosh(r: np.random.Generator) -> Params:
    up = r.random() < 0.5
    return Params(wave="noise", freq=_log_u(r, 800, 4000),
                  attack=_u(r, 0.2, 0.45), sustain=_u(r, 0.0, 0.15), decay=_u(r, 0.25, 0.45),
                  lpf=_log_u(r, 300, 900) if up else _log_u(r, 2500, 5000),
                  lpf_sweep=_u(r, 1.5, 3.5) if up else -_u(r, 1.5, 3.5), lpf_res=_u(r, 0.2, 0.6),
                  hpf=_u(r, 50, 250))


def alarm(r: np.random.Generator) -> Params:
    lo = _log_u(r, 400, 900)
    period = _u(r, 0.12, 0.25)
    return Params(wave=str(r.choice(["square", "saw"])), freq=lo, duty=_u(r, 0.25, 0.5),
                  arp_mult=_u(r, 1.25, 1.5), arp_time=period / 2, repeat=period,
                  attack=0.0, sustain=_u(r, 0.6, 0.85), decay=_u(r, 0.02, 0.1), lpf=_log_u(r, 3000, 8000))


CLASSES: dict[str, Callable[[np.random.Generator], Params]] = {
    "coin": coin, "laser": laser, "explosion": explosion, "jump": jump, "hit": hit,
    "blip": blip, "powerup": powerup, "siren": siren, "whoosh": whoosh, "alarm": alarm,
}


def random_params(kind: str, rng: np.random.Generator) -> Params:
    """Parameters of a random sound of ``kind`` (one of CLASSES)."""
    if kind not in CLASSES:
        raise ValueError(f"kind: must be one of {', '.join(CLASSES)} (got {kind!r})")
    return CLASSES[kind](rng)


def random_clip(kind: str, seed: int) -> tuple[np.ndarray, Params]:
    """A clip of ``kind`` drawn from ``seed``, with light level variation (-6..0 dB)."""
    rng = np.random.default_rng(seed)
    p = random_params(kind, rng)
    x = render(p, seed=int(rng.integers(2**31)))
    return x * np.float32(10 ** (-_u(rng, 0, 6) / 20)), p


__all__ = ["CLASSES", "Params", "RATE", "SAMPLES", "random_clip", "random_params", "render", "replace"]
