"""The display copy of an audio job: one picture per result that chat clients show in the embed
(Discord plays the sound files themselves inline, but shows no picture of them).

Each output becomes a strip: its log-magnitude spectrogram (time left to right, low
frequencies at the bottom, a perceptual colour map) with the waveform's envelope drawn over it
in white; several outputs are stacked with a gap. The files are the engine's own (decoded with
soundfile); a decode is bounded to MAX_SECONDS of audio.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from engine import labels

WIDTH, STRIP, GAP = 512, 160, 6
MAX_SECONDS = 30
# a few stops of matplotlib's "magma", interpolated: dark for silence, bright for loud
_STOPS = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                   [245, 125, 21], [250, 193, 39], [252, 253, 191]], np.float32)


def _colour(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB through the colour map."""
    pos = np.clip(v, 0, 1) * (len(_STOPS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_STOPS) - 2)
    frac = (pos - lo)[..., None]
    return (_STOPS[lo] * (1 - frac) + _STOPS[lo + 1] * frac).astype(np.uint8)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile

    with soundfile.SoundFile(io.BytesIO(data)) as f:
        x = f.read(frames=min(f.frames, MAX_SECONDS * f.samplerate), dtype="float32", always_2d=True)
        return x.mean(axis=1), f.samplerate


def strip(samples: np.ndarray, rate: int) -> Image.Image:
    """One output's picture: spectrogram (dB, 80 dB range) with the waveform's peak envelope
    (one column per WIDTH-th of the clip) outlined over it."""
    n_fft = 512 if rate > 24000 else 256
    hop = max(1, len(samples) // WIDTH)
    pad = np.pad(samples, (n_fft // 2, n_fft // 2 + hop * WIDTH))
    idx = np.arange(n_fft)[None, :] + hop * np.arange(WIDTH)[:, None]
    mag = np.abs(np.fft.rfft(pad[idx] * np.hanning(n_fft), axis=1)).T  # (bins, WIDTH)
    db = 20 * np.log10(mag + 1e-9)
    v = (db - (db.max() - 80)) / 80
    img = Image.fromarray(_colour(v[::-1])).resize((WIDTH, STRIP), Image.BILINEAR)
    cols = samples[:hop * WIDTH] if len(samples) >= hop * WIDTH else np.pad(samples, (0, hop * WIDTH - len(samples)))
    peak = np.abs(cols.reshape(WIDTH, hop)).max(axis=1)
    scale = (STRIP / 2 - 4) / max(float(peak.max()), 1e-6)
    mid = STRIP / 2
    draw = ImageDraw.Draw(img)
    draw.line([(x, mid - p * scale) for x, p in enumerate(peak)], fill=(255, 255, 255), width=1)
    draw.line([(x, mid + p * scale) for x, p in enumerate(peak)], fill=(255, 255, 255), width=1)
    return img


def display_audio_png(outputs: list[bytes], meta: dict[str, str], *, compress_level: int = 1) -> bytes:
    """The labelled display copy of ``outputs`` (audio files of one job, in index order)."""
    strips = [strip(*decode(d)) for d in outputs]
    canvas = Image.new("RGBA", (WIDTH, len(strips) * STRIP + GAP * (len(strips) - 1)), (0, 0, 0, 0))
    for i, s in enumerate(strips):
        canvas.paste(s.convert("RGBA"), (0, i * (STRIP + GAP)))
    return labels.encode_png(canvas, meta, visible_mark=True, compress_level=compress_level)
