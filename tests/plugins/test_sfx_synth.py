"""The sfxr-style synthesiser: every class renders, reproducibly, with the shape its name says."""
from __future__ import annotations

import numpy as np
import pytest

from plugins.sfx import synth

RATE = synth.RATE


def dominant_hz(x: np.ndarray, start_s: float, end_s: float) -> float:
    seg = x[int(start_s * RATE):int(end_s * RATE)] * np.hanning(int(end_s * RATE) - int(start_s * RATE))
    spec = np.abs(np.fft.rfft(seg, 8192))
    return float(np.fft.rfftfreq(8192, 1 / RATE)[np.argmax(spec)])


def flatness(x: np.ndarray) -> float:
    """Spectral flatness of 128 ms from 10 ms in: near 0 for a tone, tens of % for noise."""
    spec = np.abs(np.fft.rfft(x[160:2208] * np.hanning(2048))) ** 2 + 1e-12
    return float(np.exp(np.mean(np.log(spec))) / np.mean(spec))


def active_seconds(x: np.ndarray) -> float:
    env = np.abs(x) > 0.01 * np.abs(x).max()
    return float(np.flatnonzero(env)[-1] / RATE)


@pytest.mark.parametrize("kind", list(synth.CLASSES))
def test_every_class_renders_one_second_bounded_and_reproducible(kind):
    for seed in range(5):
        x, params = synth.random_clip(kind, seed)
        assert x.dtype == np.float32 and x.shape == (synth.SAMPLES,)
        assert np.isfinite(x).all() and np.abs(x).max() <= 0.9 + 1e-6
        assert np.abs(x).max() > 0.4  # never silent: peak 0.9 minus at most 6 dB
        y, same = synth.random_clip(kind, seed)
        assert same == params and np.array_equal(x, y)
    assert not np.array_equal(synth.random_clip(kind, 0)[0], synth.random_clip(kind, 1)[0])


def test_unknown_kind_names_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"kind: must be one of coin, laser"):
        synth.random_params("kazoo", np.random.default_rng(0))


def test_slides_and_arpeggio_move_the_pitch_the_right_way():
    laser = synth.Params(wave="sine", freq=2000, slide=-4, freq_min=50, sustain=0.3, decay=0.2)
    jump = synth.Params(wave="sine", freq=400, slide=3, sustain=0.3, decay=0.2)
    coin = synth.Params(wave="sine", freq=1000, arp_mult=1.5, arp_time=0.1, sustain=0.3, decay=0.1)
    for p, early, late in ((laser, 2000, 2000 * 2 ** (-4 * 0.25)), (jump, 400, 400 * 2 ** (3 * 0.25)),
                           (coin, 1000, 1500)):
        x = synth.render(p)
        assert dominant_hz(x, 0.0, 0.02) == pytest.approx(early, rel=0.1)
        assert dominant_hz(x, 0.24, 0.26) == pytest.approx(late, rel=0.1)


def test_vibrato_repeat_and_envelope():
    siren = synth.Params(wave="sine", freq=800, vib_depth=0.3, vib_rate=2, sustain=0.9, decay=0.05)
    x = synth.render(siren)
    # a quarter period into the vibrato the pitch is up 30 %, three quarters in down 30 %
    assert dominant_hz(x, 0.115, 0.135) == pytest.approx(1040, rel=0.05)
    assert dominant_hz(x, 0.365, 0.385) == pytest.approx(560, rel=0.05)
    t = np.arange(synth.SAMPLES) / RATE
    env = synth.envelope(synth.Params(attack=0.1, sustain=0.2, punch=0.5, decay=0.3), t)
    assert env[0] == 0 and env[int(0.1 * RATE)] == pytest.approx(2.0, rel=0.01)  # punch at sustain start
    assert env[int(0.3 * RATE) - 1] == pytest.approx(1.0, abs=0.01) and env[int(0.61 * RATE)] == 0
    rep = synth.render(synth.Params(wave="sine", freq=500, slide=4, repeat=0.2, sustain=0.8, decay=0.1))
    assert dominant_hz(rep, 0.0, 0.02) == pytest.approx(dominant_hz(rep, 0.2, 0.22), rel=0.05)


def test_classes_differ_in_character():
    explosion = [flatness(synth.random_clip("explosion", s)[0]) for s in range(8)]
    coin = [flatness(synth.random_clip("coin", s)[0]) for s in range(8)]
    assert np.median(explosion) > 0.05 > 0.001 > np.median(coin)  # noise vs tone
    assert max(active_seconds(synth.random_clip("blip", s)[0]) for s in range(6)) < 0.2
    assert min(active_seconds(synth.random_clip("siren", s)[0]) for s in range(6)) > 0.65


def test_filters_cut_what_they_should():
    noise = dict(wave="noise", freq=4000, sustain=0.8, decay=0.1)
    dark = synth.render(synth.Params(**noise, lpf=500))
    bright = synth.render(synth.Params(**noise, hpf=3000))
    def high_share(x):
        s = np.abs(np.fft.rfft(x)) ** 2
        return s[len(s) // 4:].sum() / s.sum()  # above 2 kHz
    assert high_share(dark) < 0.05 < 0.8 < high_share(bright)
