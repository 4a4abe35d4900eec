"""`aigc data digits DIR [--per-class N] [--test-per-class M] [--seed S]`: spoken digits "zero" ..
"nine" (an SC09 analogue) from Debian's espeak-ng (scripts/install.sh installs it), across its
English voices and voice variants, pitches and speeds, with light augmentation: a random start
in the 1.024 s window, -6..0 dB of gain and background noise 30-45 dB below the speech.

espeak-ng speaks at 22050 Hz; clips are resampled to 16 kHz by band-limited (FFT) resampling.
Each clip's voice, pitch, speed and augmentation come from derive(seed, digit, k), so the same
arguments give the same set.
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from pathlib import Path

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5",
            "+klatt", "+klatt2", "+croak", "+whisper")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder")
    parser.add_argument("--per-class", type=int, default=600, help="training clips per digit (default 600)")
    parser.add_argument("--test-per-class", type=int, default=60, help="held-out clips per digit (default 60)")
    parser.add_argument("--seed", type=int, default=0)


def espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError("espeak-ng: not installed (scripts/install.sh installs it: apt-get install espeak-ng)")
    return path


def speak(word: str, voice: str, pitch: int, speed: int) -> "tuple[object, int]":
    import soundfile as sf

    wav = subprocess.run([espeak(), "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", word],
                         capture_output=True, timeout=30, check=True).stdout
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return x, rate


def resample(x, rate_in: int, rate_out: int):
    """Band-limited resampling through the FFT (the spectrum cut or zero-padded)."""
    import numpy as np

    n_out = int(round(len(x) * rate_out / rate_in))
    spec = np.fft.rfft(x)
    keep = n_out // 2 + 1
    spec = spec[:keep] if len(spec) >= keep else np.pad(spec, (0, keep - len(spec)))
    return (np.fft.irfft(spec, n=n_out) * (n_out / len(x))).astype(np.float32)


def clip(digit: int, seed: int):
    """One augmented clip of ``digit`` drawn from ``seed``: float32 (SAMPLES,)."""
    import numpy as np

    from plugins.sfx.synth import RATE, SAMPLES

    rng = np.random.default_rng(seed)
    voice = VOICES[rng.integers(len(VOICES))] + VARIANTS[rng.integers(len(VARIANTS))]
    x, rate = speak(DIGITS[digit], voice, int(rng.integers(20, 80)), int(rng.integers(130, 220)))
    x = resample(x, rate, RATE)
    loud = np.flatnonzero(np.abs(x) > 0.02 * max(float(np.abs(x).max()), 1e-6))
    x = x[loud[0]: loud[-1] + 1] if len(loud) else x
    x = x[:SAMPLES]
    if len(x) == SAMPLES:  # too long: fade the cut end
        x[-256:] *= np.linspace(1, 0, 256, dtype=np.float32)
    out = np.zeros(SAMPLES, np.float32)
    start = int(rng.integers(0, SAMPLES - len(x) + 1))
    out[start:start + len(x)] = x
    peak = float(np.abs(out).max())
    out = out * (0.9 / peak) if peak > 1e-6 else out
    out *= np.float32(10 ** (-rng.uniform(0, 6) / 20))
    noise_db = rng.uniform(30, 45)
    rms = float(np.sqrt(np.mean(out[out != 0] ** 2))) if np.any(out) else 0.0
    out += rng.normal(0, rms * 10 ** (-noise_db / 20), SAMPLES).astype(np.float32)
    return np.clip(out, -1, 1)


def build(out: Path, per_class: int, test_per_class: int, seed: int, progress: bool = True) -> None:
    import numpy as np
    from tqdm import tqdm

    from engine.sdk import derive_seed
    from plugins.sfx import dataset

    n = per_class + test_per_class
    clips, labels, test = [], [], []
    with tqdm(total=len(DIGITS) * n, desc="spoken digits", unit="clip", disable=not progress) as bar:
        for d in range(len(DIGITS)):
            for k in range(n):
                clips.append(dataset.to_int16(clip(d, derive_seed("digits-data", seed, d, k) & 0x7FFFFFFF)))
                labels.append(d)
                test.append(k >= per_class)
                bar.update(1)
    audio, lab, test_mask = np.stack(clips), np.array(labels), np.array(test)
    dataset.write(out, "digits", list(DIGITS), audio[~test_mask], lab[~test_mask], audio[test_mask],
                  lab[test_mask], seed, {"voices": list(VOICES), "variants": list(VARIANTS)})


def run(args: argparse.Namespace) -> int:
    for name in ("per_class", "test_per_class"):
        if not 1 <= getattr(args, name) <= 100_000:
            print(f"--{name.replace('_', '-')}: must be between 1 and 100000")
            return 2
    try:
        espeak()
    except RuntimeError as e:
        print(e)
        return 2
    build(Path(args.dir), args.per_class, args.test_per_class, args.seed)
    print(f"wrote {args.dir}")
    return 0
