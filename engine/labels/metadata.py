"""The implicit label: the GB 45438 ``AIGC`` object and the XMP packet that carries it with
IPTC ``trainedAlgorithmicMedia`` and the engine's provenance meta. Every writer embeds these;
``engine.labels.readback.parse_xmp`` reads them back. Shared constants and ``LabelError`` live
here because every other module of the package needs them."""
from __future__ import annotations

import json
import re
from typing import Any
from xml.sax.saxutils import escape, quoteattr

AIGC_KEY = "AIGC"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "TC260": "http://www.tc260.org.cn/ns/AIGC/1.0/",  # GB 45438-2025 XMP namespace
    "aigcbot": "urn:aigc-bot:ns:provenance:1.0",
}
XMP_PNG_KEY = "XML:com.adobe.xmp"
TEXT_LABELS = {"en-US": "[AI-generated]", "zh-CN": "[人工智能生成]"}
AIGC_FIELDS = ("Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator",
               "PropagateID", "ReservedCode2")
MAX_XMP_BYTES = 1 << 20  # read-back refuses larger packets (the files come from users)


class LabelError(ValueError):
    """Input that cannot be encoded or labelled, with the reason."""


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: Any) -> str:
    return _XML_INVALID.sub("", str(value))


def aigc_object(meta: dict[str, str]) -> dict[str, str]:
    """The GB 45438 implicit-label object for an artifact with provenance ``meta``.

    ``Label`` "1" means AI-generated. ``ContentProducer`` is the service (``meta["producer"]``),
    ``ProduceID`` the artifact's id (job:index). Propagator fields are for whoever redistributes
    the file (the bot fills them when it posts: ``content_propagator``/``propagate_id``).
    Any field but ``Label`` given in ``meta`` under its own name wins (Label stays "1": an
    artifact of ours is AI-generated, whatever a caller passes).
    """
    job, index = meta.get("job", ""), meta.get("index", "")
    obj = {
        "Label": "1",
        "ContentProducer": meta.get("producer", "AIGC Bot"),
        "ProduceID": f"{job}:{index}" if job else meta.get("produce_id", ""),
        "ReservedCode1": meta.get("model_sha256", "")[:64],
        "ContentPropagator": meta.get("content_propagator", ""),
        "PropagateID": meta.get("propagate_id", ""),
        "ReservedCode2": "",
    }
    obj.update({k: str(meta[k]) for k in AIGC_FIELDS if k in meta and k != "Label"})
    return {k: _clean(v) for k, v in obj.items()}


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _provenance(meta: dict[str, str]) -> dict[str, str]:
    return {str(k): _clean(v) for k, v in meta.items()}


def build_xmp(meta: dict[str, str]) -> str:
    """An XMP packet carrying the AI-generated labels and the provenance ``meta``."""
    provenance = _provenance(meta)
    ns_decl = " ".join(f"xmlns:{p}={quoteattr(u)}" for p, u in NS.items() if p not in ("x", "rdf"))
    label = _clean(meta.get("label", "AI-generated"))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="{NS["x"]}">\n'
        f' <rdf:RDF xmlns:rdf="{NS["rdf"]}">\n'
        f'  <rdf:Description rdf:about="" {ns_decl}\n'
        f'   Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"\n'
        f'   TC260:AIGC={quoteattr(_json(aigc_object(meta)))}\n'
        f'   xmp:CreatorTool={quoteattr(_clean(meta.get("producer", "AIGC Bot")))}\n'
        f'   aigcbot:Provenance={quoteattr(_json(provenance))}>\n'
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(label)}'
        '</rdf:li></rdf:Alt></dc:description>\n'
        '  </rdf:Description>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
        '<?xpacket end="w"?>'
    )
