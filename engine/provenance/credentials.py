"""Content Credentials (C2PA): the signing keys, ``sign`` (a manifest saying the file was made
by a trained model, with the GB 45438 ``AIGC`` object as an assertion of its own, and the source
files of a follow-up or a display copy as ingredients) and ``read_credentials`` (what any file's
manifest says, whoever signed it; ``/verify`` uses it).

Why here and not in ``engine.labels``: the labels are byte-deterministic pure-Python writers
(files made again on demand are sha-checked against the ledger), while a C2PA manifest is not
reproducible — c2pa-rs salts every assertion box with 16 random bytes (``c2sh``), gives each
manifest a random ``urn:c2pa:`` label and instance id, and ECDSA signatures use a random nonce.
So the engine signs *on top of* the deterministic labelled bytes when it finishes an output
(engine/execution.py) and records both hashes in the ledger; it belongs with provenance (keys,
the ledger, verification).

Keys: an operator's certificate chain (PEM, signer first) and private key (PEM) by
configuration (``AIGC_C2PA_CERT``, ``AIGC_C2PA_KEY``); without them, a local CA and an ES256
signer certificate are created once in ``<data_dir>/c2pa/`` (PKCS#8 keys, mode 0600) and reused.
Key material is never logged nor put in an exception message.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import io
import json
import logging
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.labels.metadata import DIGITAL_SOURCE_TYPE, aigc_object

log = logging.getLogger("aigc.engine")

__all__ = ["AIGC_ASSERTION", "SIGNABLE_MIMES", "CredentialsError", "Ingredient", "SigningKeys", "Signer",
           "create_local_ca", "load_keys", "local_keys", "read_credentials", "sign", "signable"]

AIGC_ASSERTION = "cn.gb45438.aigc"  # the GB 45438 implicit-label object, as a custom assertion
# What c2pa-rs can embed a manifest in among our formats (Ogg is not supported: metadata + ledger).
SIGNABLE_MIMES = {"image/png": "image/png", "image/gif": "image/gif", "image/webp": "image/webp",
                  "audio/wav": "audio/wav", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav",
                  "audio/vnd.wave": "audio/wav", "image/jpeg": "image/jpeg", "video/mp4": "video/mp4"}
C2PA_BMFF_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")  # the top-level uuid box of a manifest in MP4
# IPTC digital source types: a model's output, and a picture composed of several of them.
COMPOSITE_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic"
_AI_SOURCE_TYPES = (DIGITAL_SOURCE_TYPE, COMPOSITE_SOURCE_TYPE,
                    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia")
MAX_INGREDIENTS = 64  # a display copy shows at most 64 outputs (max_count); more is a bug
# A thumbnail costs ~300 ms and ~2 MB per file. verify_after_sign re-reads and validates every
# file just signed (0.47 -> 1.1 ms per 64-px PNG); the Signer validates one file of its own when
# it is made instead, which catches what that would (a key that does not match its certificate,
# an expired or unusable chain), and the tests read every format back with c2pa.Reader.
_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}, "verify": {"verify_after_sign": False}}
_VALIDITY_DAYS = 3650


def signable(mime: str) -> str | None:
    """The format c2pa-rs signs ``mime`` as, or None (Ogg, text: labels and the ledger only)."""
    return SIGNABLE_MIMES.get(mime.split(";")[0].strip().lower())


Relationship = Literal["parentOf", "componentOf", "inputTo"]


@dataclass(frozen=True)
class Ingredient:
    """A source file named in a manifest. With ``data`` (the file itself, normally signed by us)
    c2pa-rs hashes it and carries its own manifest along, so a reader shows the whole chain;
    without (the source is no longer at hand) it is named by title only.

    ``relationship`` as C2PA defines it: ``parentOf`` — this file is an edited copy of it (one
    at most; a display copy of one output), ``componentOf`` — it was placed into this file (the
    outputs in a grid), ``inputTo`` — it was an input to the model that made this file (the
    output a variation or a morph starts from; the result a reroll replaces)."""

    title: str
    relationship: Relationship
    mime: str = "image/png"
    data: bytes | None = None

    def __repr__(self) -> str:
        return (f"Ingredient({self.title!r}, {self.relationship}, {self.mime}, "
                f"{'no data' if self.data is None else f'{len(self.data)} bytes'})")


class CredentialsError(RuntimeError):
    """Keys that cannot be loaded or made, or a file that cannot be signed (no key material in
    the message)."""


@dataclass(frozen=True)
class SigningKeys:
    chain_pem: bytes  # the signer's certificate first, then its issuers
    key_pem: bytes
    source: str  # "configured" or "local CA"

    def __repr__(self) -> str:  # never show the key
        return f"SigningKeys(source={self.source!r}, chain={len(self.chain_pem)} bytes, key=<hidden>)"


# ---- keys ------------------------------------------------------------------------------

def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def create_local_ca(directory: Path, organization: str = "AIGC Bot", *, common_name: str | None = None
                    ) -> SigningKeys:
    """A new CA (P-256) and an ES256 signer certificate it issued, written to ``directory``
    (``ca.pem``, ``ca.key``, ``signer.pem`` = signer + CA, ``signer.key``; keys PKCS#8, 0600).

    The signer certificate has what C2PA asks of one: digitalSignature key usage (critical),
    an extended key usage (emailProtection and the C2PA signing EKU 1.3.6.1.4.1.62558.2.1),
    not a CA, and subject/authority key identifiers."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
    until = now + _dt.timedelta(days=_VALIDITY_DAYS)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])

    def usage(**on: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
        return x509.KeyUsage(**{**flags, **on})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(f"{organization} local C2PA CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name(common_name or f"{organization} content signer"))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                                  ObjectIdentifier("1.3.6.1.4.1.62558.2.1")]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pkcs8 = dict(encoding=serialization.Encoding.PEM, format=serialization.PrivateFormat.PKCS8,
                 encryption_algorithm=serialization.NoEncryption())
    pem = serialization.Encoding.PEM
    chain = cert.public_bytes(pem) + ca.public_bytes(pem)
    key_pem = key.private_bytes(**pkcs8)
    _write_private(directory / "ca.key", ca_key.private_bytes(**pkcs8))
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    _write_private(directory / "signer.key", key_pem)
    _write_private(directory / "signer.pem", chain)  # last: its presence means the set is complete
    return SigningKeys(chain, key_pem, "local CA")


_create_lock = threading.Lock()


def local_keys(data_dir: Path) -> SigningKeys:
    """The data dir's local CA and signer, created on first use and reused afterwards."""
    directory = Path(data_dir) / "c2pa"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    # processes sharing a data dir (workers and API nodes started together) must not each
    # create a CA: one's certificate beside another's key makes credentials that never verify
    with _create_lock, open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        chain, key = directory / "signer.pem", directory / "signer.key"
        if chain.exists() and key.exists():
            return SigningKeys(chain.read_bytes(), key.read_bytes(), "local CA")
        log.info("creating a local C2PA signing CA", extra={"dir": str(directory)})
        return create_local_ca(directory)


def load_keys(cert: Path | None, key: Path | None, data_dir: Path) -> SigningKeys:
    """The operator's chain and key when both are configured, else the local CA's."""
    if (cert is None) != (key is None):
        raise CredentialsError("AIGC_C2PA_CERT and AIGC_C2PA_KEY must be set together")
    if cert is None or key is None:
        return local_keys(data_dir)
    try:
        chain_pem, key_pem = Path(cert).read_bytes(), Path(key).read_bytes()
    except OSError as e:
        raise CredentialsError(f"cannot read the C2PA certificate or key: {e.strerror} ({e.filename})") from None
    if b"-----BEGIN CERTIFICATE-----" not in chain_pem or b"PRIVATE KEY-----" not in key_pem:
        raise CredentialsError("AIGC_C2PA_CERT must be a PEM certificate chain and AIGC_C2PA_KEY a PEM private key")
    return SigningKeys(chain_pem, key_pem, "configured")


# ---- signing ---------------------------------------------------------------------------

def _alg(key_pem: bytes) -> Any:
    import c2pa
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise CredentialsError("the C2PA private key cannot be read (PEM, unencrypted)") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: c2pa.C2paSigningAlg.ES256, 384: c2pa.C2paSigningAlg.ES384,
                521: c2pa.C2paSigningAlg.ES512}[key.curve.key_size]
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    raise CredentialsError("the C2PA private key must be EC (P-256/384/521), RSA or Ed25519")


class Signer:
    """Signs files with one set of keys, from any thread. Each thread gets a c2pa Context (with
    the signer) of its own, made on first use: threads sign in parallel in native code (a display
    copy with 16 ingredients takes ~25 ms; it does not hold up outputs being finished meanwhile)."""

    def __init__(self, keys: SigningKeys, producer: str = "AIGC Bot") -> None:
        import c2pa

        from importlib.metadata import PackageNotFoundError, version

        self.keys, self.producer = keys, producer
        try:  # once: a metadata lookup costs more (~1.5 ms) than signing a 64-px PNG
            self.engine_version = version("aigc-bot")
        except PackageNotFoundError:
            self.engine_version = "dev"
        self._alg = _alg(keys.key_pem)
        self._local = threading.local()
        self._context()  # bad key material fails here, in the constructor
        self._self_check()

    def _context(self) -> Any:
        """This thread's c2pa Context (no TSA: signing is offline)."""
        import c2pa

        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            try:
                info = c2pa.C2paSignerInfo(self._alg, self.keys.chain_pem, self.keys.key_pem, None)
                ctx = self._local.ctx = c2pa.Context.from_dict(_SETTINGS, signer=c2pa.Signer.from_info(info))
            except c2pa.C2paError as e:
                raise CredentialsError(f"the C2PA signer could not be made: {type(e).__name__}") from None
        return ctx

    def _self_check(self) -> None:
        """Sign a 1-pixel PNG and validate it: keys that would make invalid credentials stop
        start-up here, with the validation codes (never key material)."""
        import numpy as np

        from engine.labels import encode_png

        meta = {"job": "self-check", "index": "0", "command": "self-check"}
        check = read_credentials(self.sign(encode_png(np.zeros((1, 1, 3), np.uint8), meta), "image/png", meta))
        if check is None or check["state"] not in ("Valid", "Trusted"):
            codes = ", ".join(sorted({str(e.get("code")) for e in (check or {}).get("errors", [])})) or "unreadable"
            raise CredentialsError(f"the C2PA signing certificate and key make invalid credentials ({codes}): "
                                   "check that the key matches the certificate and the chain is valid now")

    def manifest(self, mime: str, meta: dict[str, str], ingredients: list[Ingredient] | tuple = (),
                 description: str | None = None) -> dict[str, Any]:
        """The manifest definition: the actions say what made the file (see ``_actions``), the
        GB 45438 object is an assertion of its own; ingredients are added by ``sign``."""
        index = meta.get("index", "")
        return {
            "claim_generator_info": [{"name": meta.get("producer") or self.producer, "version": self.engine_version}],
            "title": f"{meta.get('command', 'output')} {meta.get('job', '')}:{index}".strip(),
            "format": mime,
            "assertions": [
                {"label": "c2pa.actions", "data": {"actions": self._actions(meta, ingredients, description)}},
                {"label": AIGC_ASSERTION, "data": aigc_object(meta)},
            ],
        }

    def _actions(self, meta: dict[str, str], ingredients: list[Ingredient] | tuple,
                 description: str | None) -> list[dict[str, Any]]:
        """An output (a follow-up's too): ``c2pa.created`` by the model (trainedAlgorithmicMedia),
        referring to the ``inputTo`` ingredients it started from. A display copy of one output:
        ``c2pa.opened`` of its parent, then ``c2pa.resized``. A grid: ``c2pa.created`` as a
        composite, then ``c2pa.placed`` for each output in it."""
        model = meta.get("model") or meta.get("producer") or self.producer
        agent = {"name": model, **({"version": meta["model_version"]} if meta.get("model_version") else {})}
        ids = [f"ingredient-{k}" for k in range(len(ingredients))]

        def refs(rel: str) -> dict[str, Any]:
            chosen = [i for i, ing in zip(ids, ingredients) if ing.relationship == rel]
            return {"parameters": {"ingredientIds": chosen}} if chosen else {}

        rendition = meta.get("rendition", "")
        if any(i.relationship == "parentOf" for i in ingredients):
            return [{"action": "c2pa.opened", **refs("parentOf"), **({"description": rendition} if rendition else {})},
                    {"action": "c2pa.resized", "description": "scaled for display"}]
        if any(i.relationship == "componentOf" for i in ingredients):
            return [{"action": "c2pa.created", "digitalSourceType": COMPOSITE_SOURCE_TYPE,
                     **({"description": rendition} if rendition else {})},
                    *({"action": "c2pa.placed", "parameters": {"ingredientIds": [i]}}
                      for i, ing in zip(ids, ingredients) if ing.relationship == "componentOf")]
        return [{"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE, "softwareAgent": agent,
                 **refs("inputTo"), **({"description": description} if description else {})}]

    def sign(self, data: bytes, mime: str, meta: dict[str, str], ingredients: list[Ingredient] | tuple = (),
             description: str | None = None) -> bytes:
        """``data`` with our manifest; ``description`` says what a follow-up is ("variations of
        output 2 of job …"). Thread-safe."""
        import c2pa

        fmt = signable(mime)
        if fmt is None:
            raise CredentialsError(f"C2PA signing does not support {mime}")
        if len(ingredients) > MAX_INGREDIENTS:
            raise CredentialsError(f"at most {MAX_INGREDIENTS} ingredients, got {len(ingredients)}")
        definition = self.manifest(fmt, meta, ingredients, description)
        specs = [{"title": ing.title, "relationship": ing.relationship, "label": f"ingredient-{k}",
                  "format": ing.mime} for k, ing in enumerate(ingredients)]
        with_data = [(spec, ing) for spec, ing in zip(specs, ingredients) if ing.data is not None and signable(ing.mime)]
        # named only (the file is gone, or of a format c2pa cannot read): no hash of bytes we lack
        definition["ingredients"] = [spec for spec, ing in zip(specs, ingredients)
                                     if not (ing.data is not None and signable(ing.mime))]
        out = io.BytesIO()
        try:
            builder = c2pa.Builder.from_json(definition, self._context())
            for spec, ing in with_data:
                builder.add_ingredient(spec, signable(ing.mime), io.BytesIO(ing.data))
            builder.sign(fmt, io.BytesIO(data), out)
        except c2pa.C2paError as e:
            raise CredentialsError(f"C2PA signing failed: {str(e)[:200]}") from None
        return out.getvalue()


_default: Signer | None = None
_default_lock = threading.Lock()


def default_signer(cert: Path | None = None, key: Path | None = None, data_dir: Path | None = None) -> Signer:
    """This process's signer, made on first use from the paths (or the engine's settings)."""
    global _default
    with _default_lock:
        if _default is None:
            if data_dir is None:
                from engine.config import load_engine_settings

                s = load_engine_settings()
                cert, key, data_dir = s.c2pa_cert, s.c2pa_key, s.data_dir
            _default = Signer(load_keys(cert, key, data_dir))
        return _default


def sign(data: bytes, mime: str, meta: dict[str, str], signer: Signer | None = None,
         ingredients: list[Ingredient] | tuple = (), description: str | None = None) -> bytes:
    """``data`` with a C2PA manifest: ``c2pa.created`` by the model (trainedAlgorithmicMedia)
    and the GB 45438 AIGC object (``cn.gb45438.aigc``), with ``ingredients`` (the sources of a
    follow-up or a display copy). No thumbnail, no timestamp authority."""
    return (signer or default_signer()).sign(data, mime, meta, ingredients, description)


# ---- reading ---------------------------------------------------------------------------

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"), (b"\xff\xd8\xff", "image/jpeg"))


def sniff_mime(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return None


MAX_JPEG_SEGMENTS = 4096


def manifest_box(data: bytes, mime: str) -> bool:
    """Whether the file holds a C2PA manifest store where its format keeps one, found by our
    own bounded walk (engine/containers.py): PNG ``caBX`` chunks, RIFF ``C2PA`` chunks, JPEG
    APP11 segments, GIF ``C2PA_GIF`` application extensions, MP4 top-level ``uuid`` boxes with
    the C2PA UUID. The SDK reader walks the whole
    file itself and is not bounded (a 32 MiB file of tiny chunks held it for 20-80 s), so it
    runs only on files that pass this: a walk that hits its limit, or finds no box, means no
    reading."""
    from engine.containers import WalkLimit, mp4_boxes, png_chunks, riff_chunks

    try:
        # The whole walk, not the first box: the reader will walk it all too.
        if mime == "image/png":
            return b"caBX" in [ctype for ctype, _, _ in png_chunks(data)]
        if mime in ("image/webp", "audio/wav"):
            return b"C2PA" in [cid for cid, _ in riff_chunks(data)]
        if mime == "image/jpeg":
            return _jpeg_has_app11(data)
        if mime == "image/gif":
            return _gif_has_c2pa(data)
        if mime == "video/mp4":  # top level only, like c2pa-rs writes it; the walk is bounded
            return C2PA_BMFF_UUID in [bytes(body[:16]) for btype, body in mp4_boxes(data) if btype == b"uuid"]
    except (WalkLimit, ValueError, struct.error):
        return False
    return False


def _jpeg_has_app11(data: bytes) -> bool:
    """An APP11 (JUMBF) segment among the markers before the scan, at most MAX_JPEG_SEGMENTS."""
    pos = 2
    for _ in range(MAX_JPEG_SEGMENTS):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: no more metadata segments
            return False
        if marker == 0xEB:
            return True
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return False


def _gif_has_c2pa(data: bytes) -> bool:
    """A ``C2PA_GIF`` application extension anywhere in the stream, walking every block and
    sub-block (frames included) up to MAX_CHUNKS sub-blocks."""
    from engine.containers import MAX_CHUNKS

    if len(data) < 13:
        return False
    pos = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    walked, found = 0, False
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            found = found or (data[pos + 1:pos + 2] == b"\xff" and data[pos + 3:pos + 11] == b"C2PA_GIF")
            pos += 2
        elif block == 0x2C:  # image: descriptor, local colour table, LZW code size, sub-blocks
            if pos + 10 > len(data):
                return False
            packed = data[pos + 9]
            pos += 10 + (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0) + 1
        else:
            return False
        while pos < len(data) and data[pos]:
            walked += 1
            if walked > MAX_CHUNKS:
                return False
            pos += 1 + data[pos]
        pos += 1
    return found


def read_credentials(data: bytes) -> dict[str, Any] | None:
    """What the file's active C2PA manifest says, or None when it has none (or a format the
    SDK cannot read). Any signer's manifest is read; a trust list is not applied, so
    ``trusted`` says whether the SDK found the signer on its trust list (normally not).
    ``state``: Valid / Trusted / Invalid (the file or manifest was changed: see ``errors``)."""
    import c2pa

    mime = sniff_mime(data)
    if mime is None or not manifest_box(data, mime):
        return None
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data))
    except c2pa.C2paError as e:
        return {"state": "Invalid", "errors": [{"code": "manifest.unreadable", "explanation": str(e)[:300]}],
                "signer": None, "actions": [], "digital_source_type": None, "ai_generated": False, "ingredients": [],
                "aigc": None, "trusted": False, "claim_generator": None, "title": None}
    if reader is None:
        return None
    with reader:
        store = json.loads(reader.json())
    manifest = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    statuses = store.get("validation_status") or []
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [f for f in (results.get("failure") or statuses) if f.get("code") != "signingCredential.untrusted"]
    actions: list[dict[str, Any]] = []
    aigc = None
    for a in manifest.get("assertions", []):
        label = a.get("label", "")
        if label.startswith("c2pa.actions"):
            actions.extend((a.get("data") or {}).get("actions") or [])
        elif label == AIGC_ASSERTION:
            aigc = a.get("data")
    sourced = next((a for a in actions if a.get("digitalSourceType")), None)
    sig = manifest.get("signature_info") or {}
    state = store.get("validation_state") or ("Invalid" if failures else "Valid")
    manifests = store.get("manifests", {})

    def ingredient(i: dict[str, Any]) -> dict[str, Any]:
        out = {k: i[k] for k in ("title", "format", "relationship", "instance_id") if k in i}
        parent = manifests.get(i.get("active_manifest") or "")  # the source's own credentials
        if parent:
            psig = parent.get("signature_info") or {}
            out["credentials"] = {"title": parent.get("title"), "signer": psig.get("common_name"),
                                  "issuer": psig.get("issuer"),
                                  "aigc": next((a.get("data") for a in parent.get("assertions", [])
                                                if a.get("label") == AIGC_ASSERTION), None)}
        return out

    return {
        "state": state,
        "trusted": state == "Trusted",
        "errors": [{"code": f.get("code"), "explanation": f.get("explanation")} for f in failures],
        "signer": {"common_name": sig.get("common_name"), "issuer": sig.get("issuer"), "alg": sig.get("alg"),
                   "serial": sig.get("cert_serial_number")} if sig else None,
        "claim_generator": (manifest.get("claim_generator_info") or [{}])[0].get("name"),
        "title": manifest.get("title"),
        "actions": [{k: a[k] for k in ("action", "digitalSourceType", "softwareAgent", "description", "when")
                     if k in a} for a in actions],
        "digital_source_type": (sourced or {}).get("digitalSourceType"),
        "ai_generated": any(a.get("digitalSourceType") in _AI_SOURCE_TYPES for a in actions)
        or (aigc or {}).get("Label") == "1",
        "ingredients": [ingredient(i) for i in manifest.get("ingredients", [])][:MAX_INGREDIENTS],
        "aigc": aigc,
    }
