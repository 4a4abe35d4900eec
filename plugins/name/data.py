"""The names data set: name and word lists that Faker ships (MIT), split by style.

Styles (each a different "sound", so a style classifier can tell them apart):

- ``person-en``: "First Last" from Faker's en_US given names (US census/SSA lists) and surnames.
- ``person-zh``: 姓 + 名 from Faker's zh_CN surnames (399) and given names.
- ``place``: European town names (Faker's it_IT and de_DE city lists; accents kept).
- ``project``: single capitalised English words (Faker's en_US lorem words, colour names and
  catch-phrase words) — what teams name projects after.
- ``fantasy``: given names from Finnish, Icelandic, Irish, Hungarian and Latin-word lists
  (Faker's fi_FI, is_IS, ga_IE, hu_HU, la lorem) — unfamiliar-sounding names for characters,
  pets and worlds.

Deduplicated (case-folded) across styles (first style wins), then split by a hash of the name
so a name is always in the same split whatever else changes.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

STYLES: tuple[str, ...] = ("person-en", "person-zh", "place", "project", "fantasy")
MAX_CHARS = 24  # longest name kept (and the models' output bound)
SPLITS = ("train", "valid", "test")
SOURCES = {
    "person-en": "faker.providers.person.en_US first_names × last_names (MIT)",
    "person-zh": "faker.providers.person.zh_CN last_names × first_names (MIT)",
    "place": "faker.providers.address.it_IT cities + de_DE cities (MIT)",
    "project": "faker.providers.lorem.en_US word_list + color.en_US all_colors + company.en_US catch_phrase_words (MIT)",
    "fantasy": "faker.providers.person fi_FI/is_IS/ga_IE/hu_HU first_names + lorem.la word_list (MIT)",
}


@dataclass(frozen=True)
class Example:
    style: str
    name: str
    split: str


def _provider(module: str):
    return importlib.import_module(module).Provider


def _names(module: str, attr: str) -> list[str]:
    value = getattr(_provider(module), attr)
    return [str(v) for v in (value.keys() if isinstance(value, dict) else value)]


def clean(name: str) -> str | None:
    """NFC, single spaces, no control characters; None when empty or too long."""
    name = " ".join(unicodedata.normalize("NFC", name).split())
    if not name or len(name) > MAX_CHARS or any(unicodedata.category(c).startswith("C") for c in name):
        return None
    return name


def _pairs(rng: random.Random, firsts: list[str], lasts: list[str], n: int, sep: str) -> list[str]:
    out: set[str] = set()
    limit = min(n, len(firsts) * len(lasts))
    while len(out) < limit:
        out.add(f"{rng.choice(firsts)}{sep}{rng.choice(lasts)}")
    return sorted(out)


def raw_styles(seed: int = 0, person_pairs: int = 12000) -> dict[str, list[str]]:
    """Every style's names before cleaning and deduplication (deterministic for a seed)."""
    rng = random.Random(seed)
    en_first = _names("faker.providers.person.en_US", "first_names")
    en_last = _names("faker.providers.person.en_US", "last_names")
    zh_first = _names("faker.providers.person.zh_CN", "first_names")
    zh_last = _names("faker.providers.person.zh_CN", "last_names")
    # sorted: Faker builds it_IT's cities from a set, whose order changes from process to process
    # (the other lists are tuples or OrderedDicts: stable, and the drawn pairs depend on their order)
    place = sorted(set(_names("faker.providers.address.it_IT", "cities") + _names("faker.providers.address.de_DE", "cities")))
    catch = [w for group in _provider("faker.providers.company.en_US").catch_phrase_words for w in group]
    words = (_names("faker.providers.lorem.en_US", "word_list") + _names("faker.providers.color.en_US", "all_colors")
             + catch)
    project = sorted({w[:1].upper() + w[1:] for w in words if w.isalpha() and len(w) >= 3})
    fantasy: list[str] = []
    for loc in ("fi_FI", "is_IS", "ga_IE", "hu_HU"):
        fantasy += _names(f"faker.providers.person.{loc}", "first_names")
    fantasy += [w.capitalize() for w in _names("faker.providers.lorem.la", "word_list") if len(w) >= 4]
    return {
        "person-en": _pairs(rng, en_first, en_last, person_pairs, " "),
        "person-zh": _pairs(rng, zh_last, zh_first, person_pairs // 2, ""),
        "place": place,
        "project": project,
        "fantasy": fantasy,
    }


def split_of(name: str, valid: float = 0.05, test: float = 0.05) -> str:
    h = int.from_bytes(hashlib.blake2b(name.casefold().encode(), digest_size=8).digest(), "little") / 2**64
    return "test" if h < test else "valid" if h < test + valid else "train"


def build(seed: int = 0, person_pairs: int = 12000) -> list[Example]:
    seen: set[str] = set()
    out: list[Example] = []
    for style, names in raw_styles(seed, person_pairs).items():
        for raw in names:
            name = clean(raw)
            if name is None or name.casefold() in seen:
                continue
            seen.add(name.casefold())
            out.append(Example(style, name, split_of(name)))
    return out


def write(examples: Iterable[Example], out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = list(examples)
    with (out_dir / "names.jsonl").open("w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps({"style": e.style, "name": e.name, "split": e.split}, ensure_ascii=False) + "\n")
    counts = {s: {sp: sum(1 for e in examples if e.style == s and e.split == sp) for sp in SPLITS} for s in STYLES}
    manifest = {"styles": list(STYLES), "counts": counts, "sources": SOURCES, "max_chars": MAX_CHARS}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def load(data_dir: Path | str, split: str | None = None) -> list[Example]:
    """The examples of ``data_dir/names.jsonl`` (one split, or all); a bad line names its number."""
    path = Path(data_dir) / "names.jsonl"
    out: list[Example] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            e = Example(str(row["style"]), str(row["name"]), str(row["split"]))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{n}: not a names record ({err})") from None
        if e.style not in STYLES or e.split not in SPLITS or clean(e.name) != e.name:
            raise ValueError(f"{path}:{n}: style must be one of {STYLES}, split one of {SPLITS}, "
                             f"name 1-{MAX_CHARS} printable characters")
        if split is None or e.split == split:
            out.append(e)
    return out
