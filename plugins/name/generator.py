"""The `/name` generator: one name per output, sampled from the style-conditioned VAE (or,
with ``model: gan``, the GAN's generator).

Output i is a pure function of (options, seed, i): its latent is ``Item.noise``, its characters
come from Gumbel-max sampling driven by uniforms drawn from ``Item.rng``; each item decodes
alone (batch size 1), so it is the same alone or inside any batch, bit for bit. A candidate the
content rules refuse, or one that is empty or only the requested prefix, is replaced by the
next attempt's (new latent, new uniforms), up to ``MAX_ATTEMPTS``: refused names are never
returned. ``variations`` ("more like #3") re-derives the source output's latent and samples
names around it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from engine import sdk
from plugins.name.data import STYLES
from plugins.name.gan import GANConfig, decode as decode_chars
from plugins.name.gan import NameGenerator as GANGenerator
from plugins.name.vae import NameVAE, VAEConfig, sample
from plugins.name.vocab import Vocab

HERE = Path(__file__).resolve().parent
MAX_ATTEMPTS = 16
VARIATION_ANGLE = 0.55  # radians between the source latent and a variation's
DEFAULT_VARIETY = 0.5


def temperature(variety: float) -> float:
    """variety 0 → 0.5 (the most typical names), 1 → 1.1 (the most unusual)."""
    return 0.5 + 0.6 * min(1.0, max(0.0, variety))


def load_gan(stem: Path | str) -> tuple[GANGenerator, Vocab, dict[str, Any]]:
    """A trained GAN generator (``aigc train names --model gan --export``), safetensors only."""
    import json

    stem = Path(stem)
    meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    if meta.get("kind") != "gan-generator":
        raise ValueError(f"{stem}.json: kind must be 'gan-generator', got {meta.get('kind')!r}")
    model = GANGenerator(GANConfig(**meta["config"]))
    tensors = sdk.load_safetensors(str(stem.with_suffix(".safetensors")), "cpu")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return model.eval(), Vocab(tuple(meta["vocab"])), meta


def load_vae(stem: Path | str, device: str = "cpu") -> tuple[NameVAE, Vocab, dict[str, Any]]:
    """A trained name VAE from ``stem.json`` + ``stem.safetensors`` (safetensors only)."""
    import json

    stem = Path(stem)
    meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    if meta.get("kind") != "vae":
        raise ValueError(f"{stem}.json: kind must be 'vae', got {meta.get('kind')!r}")
    model = NameVAE(VAEConfig(**meta["config"]))
    tensors = sdk.load_safetensors(str(stem.with_suffix(".safetensors")), device)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return model.to(device).eval(), Vocab(tuple(meta["vocab"])), meta


class NameGenerator(sdk.Generator):
    name = "name"
    max_batch_size = 64

    def __init__(self, stem: Path | str = HERE / "vae", gan_stem: Path | str | None = HERE / "gan") -> None:
        self.stem = Path(stem)
        self.gan_stem = Path(gan_stem) if gan_stem is not None else None
        self.model: NameVAE | None = None
        self.vocab: Vocab | None = None
        self.gan: tuple[GANGenerator, Vocab, dict[str, Any]] | None = None
        self.meta: dict[str, Any] = {}
        self.weights_sha = ""

    def load(self, device: str) -> None:
        # names are tiny: the CPU decodes them faster than a GPU round trip per character
        self.model, self.vocab, self.meta = load_vae(self.stem, "cpu")
        self.weights_sha = sdk.file_sha256(self.stem.with_suffix(".safetensors"))
        if self.gan_stem is not None and self.gan_stem.with_suffix(".safetensors").exists():
            self.gan = load_gan(self.gan_stem)

    def model_info(self) -> dict[str, str]:
        info = {"name": "name-vae", "version": str(self.meta.get("step", "")), "weights_sha256": self.weights_sha}
        if self.gan is not None and self.gan_stem is not None:
            info.update(name="name-vae+gan", gan_version=str(self.gan[2].get("step", "")),
                        gan_weights_sha256=sdk.file_sha256(self.gan_stem.with_suffix(".safetensors")))
        return info

    def _kind(self, item: sdk.Item) -> str:
        return "gan" if item.options.get("model") == "gan" and self.gan is not None else "vae"

    def warmup(self) -> None:
        self.generate([sdk.Item(command="name", options={"style": STYLES[0]}, seed=0, index=0)])

    # -- one output ------------------------------------------------------------------------
    def _attempt(self, item: sdk.Item, attempt: int, z: torch.Tensor) -> str:
        assert self.model is not None and self.vocab is not None
        gan = self._kind(item) == "gan"
        model, vocab = (self.gan[0], self.gan[1]) if gan and self.gan else (self.model, self.vocab)
        style = torch.tensor([STYLES.index(str(item.options.get("style", STYLES[0])))])
        prefix_text = str(item.options.get("starts_with") or "")
        prefix = vocab.encode(prefix_text)[: model.cfg.max_len - 1]
        g = item.rng("chars", attempt)
        u = torch.rand((1, model.cfg.max_len + 1, len(vocab)), generator=g)
        temp = temperature(float(item.options.get("variety", DEFAULT_VARIETY)))
        if gan:
            ids = decode_chars(model(z, style, u, prefix=[prefix], temperature=temp)[0])[0]
        else:
            ids = sample(model, z, style, u, temperature=temp, prefix=[prefix])[0]
        # the prefix as typed (characters the model does not know were read as <unk>)
        return prefix_text[: len(prefix)] + vocab.decode(ids[len(prefix):])

    def _latent(self, item: sdk.Item, attempt: int, source: torch.Tensor | None) -> torch.Tensor:
        assert self.model is not None
        nz = self.gan[0].cfg.noise if self._kind(item) == "gan" and self.gan else self.model.cfg.latent
        if source is not None:
            e = item.noise((1, nz), "variation", attempt)
            return math.cos(VARIATION_ANGLE) * source + math.sin(VARIATION_ANGLE) * e
        return item.noise((1, nz), "z", attempt)

    def _make(self, item: sdk.Item, source: torch.Tensor | None = None) -> tuple[str, torch.Tensor, int, list[str]]:
        """(name, its latent, the attempt that made it, the rules that refused earlier attempts)."""
        prefix = str(item.options.get("starts_with") or "")
        refused: list[str] = []
        name, z = "", self._latent(item, 0, source)
        for attempt in range(MAX_ATTEMPTS):
            z = self._latent(item, attempt, source)
            name = self._attempt(item, attempt, z).strip()
            if not name or name == prefix.strip():
                continue
            verdict = sdk.check_text(name)
            if verdict.allowed:
                return name, z, attempt, refused
            refused.append(verdict.rule or verdict.check)
        raise RuntimeError(f"no acceptable name in {MAX_ATTEMPTS} attempts (style "
                           f"{item.options.get('style')!r}, starts_with {prefix!r})")

    def _source_latent(self, item: sdk.Item) -> torch.Tensor | None:
        if item.action != "variations" or item.source is None:
            return None
        src = sdk.Item(command=item.command, options=item.options, seed=item.source[0], index=item.source[1])
        return self._make(src)[1]

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        outputs = []
        with torch.no_grad():
            for item in items:
                name, _, attempt, refused = self._make(item, self._source_latent(item))
                meta: dict[str, Any] = {"style": str(item.options.get("style")), "model": self._kind(item),
                                        "attempt": attempt}
                if refused:
                    meta["resampled"] = len(refused)
                outputs.append(sdk.Output(data=name, text=name, meta=meta))
        return outputs
