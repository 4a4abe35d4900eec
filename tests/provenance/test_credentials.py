"""Content Credentials: keys made once (0600, reused), signing, reading back with c2pa.Reader
and exiftool, and tampering detected."""
from __future__ import annotations

import io
import json
import shutil
import stat
import struct
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image

c2pa = pytest.importorskip("c2pa")

from engine.labels import DIGITAL_SOURCE_TYPE, aigc_object, encode_png  # noqa: E402
from engine.provenance import credentials as cr  # noqa: E402

META = {"label": "AI-generated", "producer": "AIGC Bot", "job": "j1", "index": "0", "command": "draw",
        "model": "tiny-diffusion", "model_version": "1.2", "model_sha256": "ab" * 32, "seed": "7"}


def _pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return cr.Signer(cr.local_keys(tmp_path_factory.mktemp("data")))


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, at = [], 8
    while at < len(data):
        n, = struct.unpack(">I", data[at:at + 4])
        out.append((data[at + 4:at + 8], data[at + 8:at + 8 + n]))
        at += 12 + n
    return out


def _png_join(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d)) for t, d in chunks)


def test_local_keys_created_once_private_and_reused(tmp_path):
    keys = cr.local_keys(tmp_path)
    d = tmp_path / "c2pa"
    for name in ("signer.key", "ca.key", "signer.pem"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600, name
    assert b"BEGIN PRIVATE KEY" in keys.key_pem  # PKCS#8
    assert keys.chain_pem.count(b"BEGIN CERTIFICATE") == 2
    again = cr.local_keys(tmp_path)
    assert again.key_pem == keys.key_pem and again.chain_pem == keys.chain_pem
    assert "PRIVATE" not in repr(keys) and keys.key_pem.decode() not in repr(keys)


def _local_keys_in(data_dir: str) -> tuple[bytes, bytes]:
    keys = cr.local_keys(data_dir)
    return keys.chain_pem, keys.key_pem


def test_processes_sharing_a_data_dir_create_one_ca(tmp_path):
    """Workers and API nodes started together on one data dir: every process gets the same
    chain and key, and that key signs for that chain (a scale-out test once saw a worker hold
    one process's certificate beside another's key: claimSignature.mismatch)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(6) as pool:
        got = pool.map(_local_keys_in, [str(tmp_path)] * 12)
    assert len(set(got)) == 1
    cr.Signer(cr.local_keys(tmp_path))  # its self-check signs and verifies with the pair on disk


def test_signer_certificate_is_what_c2pa_asks(tmp_path):
    from cryptography import x509

    cert = x509.load_pem_x509_certificates(cr.local_keys(tmp_path).chain_pem)[0]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ekus = {o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
    assert "1.3.6.1.5.5.7.3.4" in ekus


def test_configured_keys_need_both_paths(tmp_path):
    with pytest.raises(cr.CredentialsError):
        cr.load_keys(tmp_path / "c.pem", None, tmp_path)
    with pytest.raises(cr.CredentialsError) as e:
        cr.load_keys(tmp_path / "missing.pem", tmp_path / "missing.key", tmp_path)
    assert "missing" in str(e.value)
    local = cr.create_local_ca(tmp_path / "op", "Operator Ltd")
    keys = cr.load_keys(tmp_path / "op" / "signer.pem", tmp_path / "op" / "signer.key", tmp_path)
    assert keys.source == "configured" and keys.key_pem == local.key_pem


def test_signed_png_reads_back(signer, tmp_path):
    png = encode_png(_pixels(), META)
    signed = signer.sign(png, "image/png", META)
    assert len(signed) - len(png) < 20_000  # no thumbnail
    with c2pa.Reader("image/png", io.BytesIO(signed)) as reader:
        store = json.loads(reader.json())
        assert reader.get_validation_state() in ("Valid", "Trusted")
    manifest = store["manifests"][store["active_manifest"]]
    actions = [a for x in manifest["assertions"] if x["label"].startswith("c2pa.actions")
               for a in x["data"]["actions"]]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert actions[0]["softwareAgent"] == {"name": "tiny-diffusion", "version": "1.2"}
    aigc = next(x["data"] for x in manifest["assertions"] if x["label"] == cr.AIGC_ASSERTION)
    assert aigc == aigc_object(META) and aigc["Label"] == "1"
    assert not any(x["label"].startswith("c2pa.thumbnail") for x in manifest["assertions"])
    # the labels written before signing are still there
    from engine.labels import read_labels
    assert read_labels(signed)["ai_generated"]
    info = cr.read_credentials(signed)
    assert info["state"] == "Valid" and not info["errors"]
    assert info["digital_source_type"] == DIGITAL_SOURCE_TYPE and info["aigc"]["ProduceID"] == "j1:0"
    assert info["signer"]["issuer"] == "AIGC Bot"


def _exiftool() -> str:
    path = shutil.which("exiftool")
    assert path, "exiftool is required: apt-get install libimage-exiftool-perl (scripts/install.sh does)"
    return path


def test_exiftool_sees_the_jumbf(signer, tmp_path):
    path = tmp_path / "signed.png"
    path.write_bytes(signer.sign(encode_png(_pixels(), META), "image/png", META))
    out = subprocess.run([_exiftool(), "-a", "-G1", str(path)], capture_output=True, text=True, check=True).stdout
    assert "[JUMBF]" in out and "c2pa" in out.lower()
    assert "trainedAlgorithmicMedia" in out


def test_one_pixel_change_reads_as_tampered(signer):
    pixels = _pixels()
    signed = signer.sign(encode_png(pixels, META), "image/png", META)
    changed = pixels.copy()
    changed[10, 10, 0] ^= 1
    other = dict(_png_chunks(encode_png(changed, META)))
    tampered = _png_join([(t, other[b"IDAT"] if t == b"IDAT" else d) for t, d in _png_chunks(signed)])
    assert Image.open(io.BytesIO(tampered)).getpixel((10, 10)) != Image.open(io.BytesIO(signed)).getpixel((10, 10))
    info = cr.read_credentials(tampered)
    assert info["state"] == "Invalid"
    assert any("mismatch" in (e["code"] or "") for e in info["errors"])


def _labelled(mime: str) -> bytes:
    from engine.labels import encode_gif, encode_wav, encode_webp

    return {"image/png": lambda: encode_png(_pixels(), META),
            "image/gif": lambda: encode_gif([_pixels(1), _pixels(2)], META),
            "image/webp": lambda: encode_webp(_pixels(), META),
            "audio/wav": lambda: encode_wav(np.zeros(800, dtype=np.float32), 8000, META),
            "video/mp4": lambda: _mp4()}[mime]()


def _mp4() -> bytes:
    from engine.labels import encode_mp4

    return encode_mp4([np.full((64, 64, 4), 30 * k, np.uint8) for k in range(8)], META)


@pytest.mark.parametrize("mime", ["image/png", "image/gif", "image/webp", "audio/wav", "video/mp4"])
def test_every_format_reads_back_with_c2pa_reader_and_exiftool(signer, mime, tmp_path):
    from engine.labels import read_labels

    signed = signer.sign(_labelled(mime), mime, META)
    with c2pa.Reader(mime, io.BytesIO(signed)) as reader:
        assert reader.get_validation_state() == "Valid"
        store = json.loads(reader.json())
    manifest = store["manifests"][store["active_manifest"]]
    assert manifest["title"] == "draw j1:0"
    info = cr.read_credentials(signed)
    assert info["state"] == "Valid" and info["digital_source_type"] == DIGITAL_SOURCE_TYPE
    assert info["aigc"]["ProduceID"] == "j1:0" and read_labels(signed)["ai_generated"]
    # exiftool (12.57, Debian's) decodes PNG's JUMBF; in RIFF (WebP, WAV) it lists the C2PA chunk,
    # in GIF the C2PA_GIF application extension, in MP4 the top-level uuid box with C2PA's UUID:
    # either way a JUMBF superbox labelled c2pa.
    path = tmp_path / f"signed.{mime.split('/')[1]}"
    path.write_bytes(signed)
    if mime == "image/png":
        out = subprocess.run([_exiftool(), "-a", "-G1", str(path)], capture_output=True, text=True, check=True).stdout
        assert "[JUMBF]" in out and "c2pa" in out
    elif mime == "image/gif":
        out = subprocess.run([_exiftool(), "-v3", str(path)], capture_output=True, text=True, check=True).stdout
        assert "Application Extension: C2PA_GIF" in out and "jumb" in out and "c2pa" in out
    elif mime == "video/mp4":
        box = subprocess.run([_exiftool(), "-U", "-b", "-QuickTime:UUID-Unknown", str(path)], capture_output=True,
                             check=True).stdout
        assert box[:16] == cr.C2PA_BMFF_UUID and b"jumb" in box[:64] and b"c2pa" in box[:80]
        assert box in signed
    else:
        box = subprocess.run([_exiftool(), "-U", "-b", "-RIFF:Unknown_C2PA", str(path)], capture_output=True,
                             check=True).stdout
        assert box[4:8] == b"jumb" and box[12:16] == b"jumd" and box[16:20] == b"c2pa"
        assert box in signed


def test_unsupported_and_unsigned(signer):
    with pytest.raises(cr.CredentialsError):
        signer.sign(b"OggS...", "audio/ogg", META)
    assert cr.read_credentials(encode_png(_pixels(), META)) is None
    assert cr.read_credentials(b"plain text") is None


def test_a_key_that_does_not_match_its_certificate_stops_the_signer(tmp_path):
    a = cr.create_local_ca(tmp_path / "a", "Studio A")
    b = cr.create_local_ca(tmp_path / "b", "Studio B")
    with pytest.raises(cr.CredentialsError, match="invalid credentials") as e:
        cr.Signer(cr.SigningKeys(a.chain_pem, b.key_pem, "configured"))
    assert "PRIVATE" not in str(e.value) and b.key_pem.decode()[40:80] not in str(e.value)


def test_threads_sign_at_once_each_with_its_own_context(signer):
    from concurrent.futures import ThreadPoolExecutor

    files = [encode_png(_pixels(k), {**META, "index": str(k)}) for k in range(12)]
    with ThreadPoolExecutor(4) as pool:
        signed = list(pool.map(lambda kd: signer.sign(kd[1], "image/png", {**META, "index": str(kd[0])}),
                               enumerate(files)))
    for k, data in enumerate(signed):
        info = cr.read_credentials(data)
        assert info["state"] == "Valid" and info["aigc"]["ProduceID"] == f"j1:{k}"
