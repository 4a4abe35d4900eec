import io
import json
import wave

import numpy as np
import pytest
import soundfile

from engine import labels
from engine.labels import DIGITAL_SOURCE_TYPE, LabelError, label_ogg, ogg, read_labels


def tone(seconds=0.5, rate=16000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 440 * t)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


def test_wav_is_valid_pcm_with_info_aigc_and_xmp(tmp_path, meta, exiftool):
    data = labels.encode_wav(tone(channels=2), 16000, meta)
    with wave.open(io.BytesIO(data)) as w:  # stdlib reader
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (2, 2, 16000, 8000)
        pcm = np.frombuffer(w.readframes(8000), "<i2").reshape(-1, 2)
    assert abs(int(pcm.max()) - round(0.3 * 32767)) <= 2
    path = tmp_path / "out.wav"
    path.write_bytes(data)
    tags = exiftool(path)
    assert tags["RIFF:Comment"].startswith("AI-generated. AIGC=")
    assert tags["RIFF:Software"] == "AIGC Bot"
    assert tags["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert json.loads(tags["XMP-aigcbot:Provenance"]) == meta
    got = read_labels(data)
    assert (got["format"], got["ai_generated"], got["provenance"]) == ("wav", True, meta)
    assert got["aigc"]["ProduceID"] == "job42:1" and got["info"]["ISFT"] == "AIGC Bot"
    assert "riff:AIGC" in got["sources"]


def test_wav_accepts_int16_and_clips_floats(meta):
    data = labels.encode_wav(np.array([0, 32767, -32768], np.int16), 8000, meta)
    with wave.open(io.BytesIO(data)) as w:
        assert list(np.frombuffer(w.readframes(3), "<i2")) == [0, 32767, -32768]
    data = labels.encode_wav(np.array([2.0, -2.0]), 8000, meta)
    with wave.open(io.BytesIO(data)) as w:
        assert list(np.frombuffer(w.readframes(2), "<i2")) == [32767, -32767]


@pytest.mark.parametrize("samples, rate, message", [
    (np.zeros(10), 0, "rate must be an integer sample rate"),
    (np.zeros(10), 44100.0, "rate must be an integer sample rate"),
    (np.zeros((2, 2, 2)), 8000, "samples must be (n,) or (n, channels≤8)"),
    (np.array([np.nan]), 8000, "NaN or infinity"),
    (np.array(["a"]), 8000, "float in [-1, 1] or int16"),
])
def test_bad_audio_is_explained(samples, rate, message, meta):
    with pytest.raises(LabelError) as info:
        labels.encode_wav(samples, rate, meta)
    assert message in str(info.value)


@pytest.mark.parametrize("codec, rate", [("vorbis", 16000), ("opus", 48000)])
def test_ogg_comments_read_by_exiftool_and_audio_still_decodes(tmp_path, meta, exiftool, codec, rate):
    data = labels.encode_ogg(tone(rate=rate), rate, meta, codec=codec)
    decoded, got_rate = soundfile.read(io.BytesIO(data))  # libsndfile decodes the relabelled pages
    assert got_rate == rate and abs(len(decoded) - rate // 2) <= rate // 50
    path = tmp_path / f"out.{codec}.ogg"
    path.write_bytes(data)
    tags = exiftool(path)
    assert json.loads(tags["Vorbis:Aigc"])["Label"] == "1"
    assert json.loads(tags["Vorbis:AigcbotProvenance"]) == meta
    assert tags["Vorbis:Digitalsourcetype"] == DIGITAL_SOURCE_TYPE
    assert "Warning" not in json.dumps(tags)  # exiftool checks page structure as it reads
    got = read_labels(data)
    assert (got["format"], got["ai_generated"], got["provenance"]) == ("ogg", True, meta)


def test_label_ogg_replaces_its_own_comments_and_keeps_others(meta):
    buf = io.BytesIO()
    with soundfile.SoundFile(buf, "w", 16000, 1, format="OGG", subtype="VORBIS") as f:
        f.title = "keep me"
        f.write(tone())
    once = label_ogg(buf.getvalue(), meta)
    twice = label_ogg(once, {**meta, "job": "other"})
    got = read_labels(twice)
    assert got["aigc"]["ProduceID"] == "other:1"
    info = soundfile.info(io.BytesIO(twice))
    assert info.samplerate == 16000
    with soundfile.SoundFile(io.BytesIO(twice)) as f:
        assert f.title == "keep me"


def test_label_ogg_handles_a_comment_header_spanning_pages(meta):
    # A long propagator id makes the comment packet exceed one page (255 segments × 255 bytes).
    big = {**meta, "propagate_id": "x" * 70_000}
    data = labels.encode_ogg(tone(), 16000, big)
    assert read_labels(data)["aigc"]["PropagateID"] == "x" * 70_000
    decoded, _ = soundfile.read(io.BytesIO(data))
    assert len(decoded) > 7000


@pytest.mark.parametrize("bad, message", [
    (b"not ogg at all", "not an Ogg page at byte 0"),
    (b"OggS" + b"\x00" * 22 + b"\x05\x01", "truncated Ogg page at byte 0"),
    (ogg._Page(2, 0, 1, 0, b"\x05", b"hello").to_bytes(), "only Ogg Vorbis and Ogg Opus"),
    (ogg._Page(2, 0, 1, 0, b"\x08", b"OpusHead").to_bytes(), "fewer than 2 header packets"),
])
def test_label_ogg_rejects_what_it_cannot_label(bad, message, meta):
    with pytest.raises(LabelError, match=message):
        label_ogg(bad, meta)


def test_encode_ogg_rejects_bad_codec_and_rate(meta):
    with pytest.raises(LabelError, match="codec must be 'vorbis' or 'opus'"):
        labels.encode_ogg(tone(), 16000, meta, codec="mp3")
    with pytest.raises(LabelError, match="Opus needs a rate"):
        labels.encode_ogg(tone(), 44100, meta, codec="opus")


def test_text_label_is_added_once_and_read_back():
    out = labels.label_text("A poem about rain.")
    assert out == "A poem about rain.\n\n[AI-generated]"
    assert labels.label_text(out) == out
    assert labels.label_text("雨", locale="zh-CN").endswith("\n\n[人工智能生成]")
    got = read_labels(out.encode())
    assert (got["format"], got["ai_generated"], got["sources"]) == ("text", True, ["text:label-line"])
    assert read_labels("plain".encode())["ai_generated"] is False
