"""The audio display copy (engine/display_audio.py): one labelled strip per output, spectrogram and waveform."""
from __future__ import annotations

import io

import numpy as np
import soundfile
from PIL import Image

from engine.display_audio import STRIP, WIDTH, display_audio_png, strip
from engine.labels import read_labels


def ogg(x: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, x, rate, format="OGG", subtype="OPUS")
    return buf.getvalue()


def test_strips_show_where_and_how_high_the_sound_is():
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 2000 * t) * (t < 0.5)).astype(np.float32)  # 2 kHz, first half only
    img = np.asarray(strip(tone, 16000).convert("L"), dtype=np.float32)
    assert img.shape == (STRIP, WIDTH)
    row = int(round((1 - 2000 / 8000) * (STRIP - 1)))  # 2 kHz is a quarter of the way up
    first, second = img[:, 10:WIDTH // 2 - 10], img[:, WIDTH // 2 + 10:-10]
    assert first[row - 2:row + 3].mean() > 3 * second[row - 2:row + 3].mean()
    assert first[row - 2:row + 3].mean() > 2 * first[5:15].mean()  # brighter at 2 kHz than near 8 kHz


def test_display_png_stacks_outputs_and_is_labelled():
    rng = np.random.default_rng(0)
    files = [ogg((0.3 * rng.standard_normal(16000)).astype(np.float32)) for _ in range(3)]
    meta = {"job": "j9", "index": "display", "label": "AI-generated", "rendition": "display copy of outputs 0-2"}
    png = display_audio_png(files, meta)
    img = Image.open(io.BytesIO(png))
    assert img.size == (WIDTH, 3 * STRIP + 2 * 6)
    got = read_labels(png)
    assert got["ai_generated"] and got["provenance"]["rendition"] == "display copy of outputs 0-2"


def test_a_long_file_is_bounded():
    from engine.display_audio import MAX_SECONDS, decode

    x, rate = decode(ogg(np.zeros(8000 * (MAX_SECONDS + 5), np.float32), 8000))
    assert rate == 8000 and len(x) == MAX_SECONDS * 8000
