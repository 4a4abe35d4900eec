"""The emoji generator: a conditional DCGAN (and a conditional VAE) served per item.

Determinism: latents come from sdk.normal seeded by (seed, index), never from global RNG
state, and each item's condition is computed on its own. The network always runs on
micro-batches of exactly CHUNK rows (zero-padded): CPU convolution kernels are chosen by
shape, and a batch of 3 can round differently from a batch of 1 (seen with the trained
weights: 1-ulp differences that flipped uint8 pixels). With one fixed shape, a row's result
depends neither on its position nor on its neighbours, so alone == inside any batch.

Quality "best" (an option; the default is "draft" since #21's session 17) uses the critic, ``critic.safetensors``: a discriminator
trained against exactly these GAN weights (engine/training/critic_trainer.py), whose logit
estimates log p_data(x)/p_g(x). Each output is the one of CANDIDATES latents drawn from its
(seed, index) with the lowest energy PRIOR_WEIGHT * |z|^2/2 - critic(G(z))
(discriminator-driven selection, Azadi et al. 2019; with PRIOR_WEIGHT 1 the energy is DDLS's,
Che et al. 2020: the latent density the critic's correction implies). MODEL_CARD.md has the
figures and the ablation: the critic's pick alone mostly improves FD; the prior term adds
precision; gradient refinement of the pick cost recall and was dropped.
Variations choose among neighbours of the source's result; a morph starts from the source's
result and is not re-selected, so its path stays smooth. Quality "draft" is one latent, no
critic: the fastest path. A model's JSON may carry ``truncation_scale``, a factor on the
truncation threshold that calibrates what ``variety`` means for that model; the VAE decodes
its draw through its fitted prior when it has one (engine/models/vae.py).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine import sdk

HERE = Path(__file__).resolve().parent
MORPH_STEPS = 4  # morph output i is the point t = 1 - i/4 between the two prompts
VARIATION_ANGLE = 0.5  # radians between the source latent and a variation's latent
CHUNK = 8  # the one batch shape the networks ever see
CANDIDATES = 8  # latents the critic chooses among, per GAN output (see the module docstring)
PRIOR_WEIGHT = 1.0  # of the latent prior in the choice; 0: the critic alone, 1: DDLS's energy
# /emoji's quality when none is given, and what /animate's stills match by default (since #21's
# session 17 a draft: for the current generator the critic's pick cut diversity, MODEL_CARD.md)
DEFAULT_QUALITY = "draft"


def truncated_latent(nz: int, seed: int, index: int, variety: float, draw: int = 0,
                     scale: float = 1.0) -> torch.Tensor:
    """Candidate ``draw`` of output (seed, index): N(0, I), truncated for variety < 1 by
    resampling entries beyond a threshold (BigGAN's truncation trick) with a seeded
    generator. Draw 0 is the latent outputs had before there was a critic. ``scale`` is the
    model's truncation calibration (``truncation_scale`` in its JSON), a factor on the threshold."""
    extra = (draw,) if draw else ()
    z = sdk.normal((1, nz), seed, index, "z", *extra)
    if variety >= 1.0:
        return z
    threshold = (0.1 + 1.9 * max(0.0, float(variety))) * scale
    g = torch.Generator().manual_seed(sdk.derive_seed(seed, index, "truncate", *extra))
    for _ in range(32):
        outside = z.abs() > threshold
        if not bool(outside.any()):
            break
        z = torch.where(outside, torch.randn(z.shape, generator=g), z)
    return z.clamp(-threshold, threshold)


def to_image(x: torch.Tensor) -> Image.Image:
    """(1, C, H, W) in [0, 1] -> PIL RGBA; rounding happens once, here."""
    a = (x[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return Image.fromarray(np.ascontiguousarray(a), "RGBA")


def fixed_chunks(fn: Any, *rows: Any) -> torch.Tensor:
    """fn over any number of rows in zero-padded micro-batches of exactly CHUNK rows.
    ``rows`` are tensors (padded with zeros) or lists of prompts (padded with "")."""
    n = len(rows[0])
    out = []
    for start in range(0, n, CHUNK):
        part = []
        for r in rows:
            piece = r[start:start + CHUNK]
            pad = CHUNK - len(piece)
            if pad and isinstance(piece, torch.Tensor):
                piece = torch.cat([piece, piece.new_zeros((pad,) + tuple(piece.shape[1:]))])
            elif pad:
                piece = list(piece) + [""] * pad
            part.append(piece)
        out.append(fn(*part)[:min(CHUNK, n - start)])
    return torch.cat(out)


class EmojiGenerator(sdk.Generator):
    name = "emoji"
    max_batch_size = 32
    preferred_batch_sizes = (8, 16, 24, 32)

    def __init__(self, weights_dir: Path = HERE) -> None:
        self.weights_dir = Path(weights_dir)
        self.models: dict[str, tuple[torch.nn.Module, dict[str, Any]]] = {}
        self.tokenizers: dict[str, Any] = {}
        self.critic: torch.nn.Module | None = None
        self.critic_tokenizer: Any = None
        self.weights_sha: dict[str, str] = {}  # file name -> sha256, hashed once at load
        self.truncation_scales: dict[str, float] = {}  # kind -> its JSON's truncation_scale, read at load
        self.device = "cpu"

    def available(self) -> list[str]:
        return [k for k in ("gan", "vae") if (self.weights_dir / f"{k}.safetensors").exists()]

    def load(self, device: str) -> None:
        self.device = device
        for kind in self.available():
            module, config = sdk.load_model(self.weights_dir / kind, device)
            self.models[kind] = (module.requires_grad_(False), config)  # inference only, in any caller
            self.tokenizers[kind] = sdk.prompt_encoder(config["tokenizer"]) if config.get("tokenizer") else None
            # a bad calibration is refused at load, not on a user's request
            self.truncation_scales[kind] = self._read_truncation_scale(kind, config)
        if "gan" not in self.models:
            raise FileNotFoundError(f"no GAN weights in {self.weights_dir} (gan.safetensors + gan.json)")
        self.critic = None
        if (self.weights_dir / "critic.safetensors").exists():
            critic, config = sdk.load_model(self.weights_dir / "critic", device)
            gan_sha = self._sha("gan.safetensors")
            if config.get("generator_sha256") != gan_sha:
                # a critic judges the generator it was trained against, byte for byte, no other
                raise ValueError(f"{self.weights_dir / 'critic.json'}: generator_sha256 "
                                 f"{config.get('generator_sha256')!r} is not gan.safetensors ({gan_sha}); "
                                 "retrain it (aigc train critic) or remove it")
            if self.tokenizers["gan"] is None:
                raise ValueError(f"{self.weights_dir / 'critic.json'}: a critic needs a conditional GAN")
            self.critic, self.critic_tokenizer = critic.requires_grad_(False), sdk.prompt_encoder(config["tokenizer"])

    def _sha(self, name: str) -> str:
        if name not in self.weights_sha:
            self.weights_sha[name] = sdk.file_sha256(self.weights_dir / name)
        return self.weights_sha[name]

    def model_info(self) -> dict[str, str]:
        version = self.models["gan"][1].get("version", "0") if "gan" in self.models else "0"
        info = {"name": "emoji-dcgan", "version": str(version), "sha256": self._sha("gan.safetensors")}
        if (scale := self.truncation_scale("gan")) != 1.0:  # outputs depend on it as on the weights
            info["truncation_scale"] = f"{scale:g}"
        if "vae" in self.models:  # model:vae outputs depend on these
            info["vae_sha256"] = self._sha("vae.safetensors")
            if (scale := self.truncation_scale("vae")) != 1.0:
                info["vae_truncation_scale"] = f"{scale:g}"
        if self.critic is not None:  # quality:best outputs depend on it too
            info["critic_sha256"] = self._sha("critic.safetensors")
        return info

    def truncation_scale(self, kind: str) -> float:
        """The model's truncation calibration (its JSON's ``truncation_scale``, default 1): a
        factor on the truncation threshold, so that a user's ``variety`` gives about the same
        spread relative to real emoji from one served model to the next (MODEL_CARD.md)."""
        return self.truncation_scales[kind]

    def _read_truncation_scale(self, kind: str, config: dict[str, Any]) -> float:
        raw = config.get("truncation_scale", 1.0)
        try:
            scale = float(raw)
        except (TypeError, ValueError):
            scale = float("nan")
        if not 0.1 <= scale <= 10.0:  # (NaN fails too)
            raise ValueError(f"{self.weights_dir / kind}.json: truncation_scale must be a number in [0.1, 10], "
                             f"got {raw!r}")
        return scale

    # -- the networks, in fixed-shape micro-batches ------------------------------------
    def _cond(self, kind: str, prompt: str) -> torch.Tensor | None:
        module, _ = self.models[kind]
        tok = self.tokenizers[kind]
        if tok is None:
            return None
        batch = {k: v.to(self.device) for k, v in tok.batch([prompt]).items()}
        return module.embed(batch)

    def _decode(self, kind: str, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Rows in [0, 1]."""
        module, _ = self.models[kind]
        if kind == "vae":  # z is a standard-normal draw; a fitted prior maps it (engine/models/vae.py)
            fn = lambda zc, cc=None: module.decode(module.prior_latent(zc, cc), cc)  # noqa: E731
        else:
            fn = lambda zc, cc=None: (module(zc, cond=cc) + 1.0) / 2.0  # noqa: E731
        return fixed_chunks(fn, z) if cond is None else fixed_chunks(fn, z, cond)

    def _critic(self, x: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """The critic's logits for GAN images in [-1, 1] (one micro-batch)."""
        assert self.critic is not None
        batch = {k: v.to(self.device) for k, v in self.critic_tokenizer.batch(prompts).items()}
        return self.critic(x, batch)

    def _score(self, x: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """The critic's logit per row of GAN images in [0, 1]."""
        return fixed_chunks(lambda xc, pc: self._critic(xc * 2.0 - 1.0, pc), x, prompts)

    # -- latents ---------------------------------------------------------------------------
    def _uses_critic(self, kind: str, item: sdk.Item) -> bool:
        return (kind == "gan" and self.critic is not None and item.action != "morph"
                and item.options.get("quality", DEFAULT_QUALITY) == "best")

    def _candidates(self, item: sdk.Item, kind: str, nz: int, variety: float,
                    source: torch.Tensor | None) -> torch.Tensor:
        """(draws, nz): the latents this item's output is chosen among."""
        n = CANDIDATES if self._uses_critic(kind, item) else 1
        if item.action == "morph" and source is not None:
            return source
        if item.action == "variations" and source is not None:
            noise = [item.noise((1, nz), "variation", *((j,) if j else ())) for j in range(n)]
            return torch.cat([math.cos(VARIATION_ANGLE) * source + math.sin(VARIATION_ANGLE) * e for e in noise])
        scale = self.truncation_scale(kind)
        return torch.cat([truncated_latent(nz, item.seed, item.index, variety, j, scale) for j in range(n)])

    def _best(self, kind: str, items: list[sdk.Item], cands: list[torch.Tensor],
              conds: list[torch.Tensor | None], prompts: list[str]) -> list[dict[str, Any]]:
        """Per item: its image row, latent and (with the critic) pick and logit: the
        lowest-energy of its candidates; or its only candidate."""
        sizes = [c.shape[0] for c in cands]
        z = torch.cat(cands).to(self.device)
        cond = None if conds[0] is None else torch.cat([c.expand(n, -1) for c, n in zip(conds, sizes)])  # type: ignore[union-attr]
        x = self._decode(kind, z, cond).float()
        out, start = [], 0
        for n in sizes:
            out.append({"x": x[start:start + 1], "z": z[start:start + 1], "start": start, "n": n})
            start += n
        critic_rows = [i for i, it in enumerate(items) if self._uses_critic(kind, it)]
        if not critic_rows:
            return out
        # score every candidate of the items that use the critic; each takes its lowest energy
        rows = [out[i]["start"] + j for i in critic_rows for j in range(sizes[i])]
        logits = self._score(x[rows], [prompts[i] for i in critic_rows for _ in range(sizes[i])]).float()
        energy = PRIOR_WEIGHT * 0.5 * z[rows].float().pow(2).sum(1) - logits
        at = 0
        for i in critic_rows:
            pick = int(energy[at:at + sizes[i]].argmin())
            row = out[i]["start"] + pick
            out[i].update(x=x[row:row + 1], z=z[row:row + 1], pick=pick, logit=float(logits[at + pick]))
            at += sizes[i]
        return out

    def _sources(self, kind: str, items: list[sdk.Item], nz: int) -> list[torch.Tensor | None]:
        """The final latent of each action's source output, re-derived from its (seed, index)
        exactly as that output was made."""
        # one computation per distinct source: a job's variations all share theirs
        def key(it: sdk.Item) -> tuple[Any, ...] | None:
            if it.action in ("variations", "morph") and it.source is not None:
                return (it.source, repr(sorted(it.options.items())))
            return None

        keys: dict[tuple[Any, ...], sdk.Item] = {}
        for it in items:
            if (k := key(it)) is not None:
                keys.setdefault(k, sdk.Item(command=it.command, options=it.options, seed=it.source[0],  # type: ignore[index]
                                            index=it.source[1]))  # type: ignore[index]
        if not keys:
            return [None] * len(items)
        srcs = list(keys.values())
        prompts = [str(it.options.get("prompt", "")) for it in srcs]
        cands = [self._candidates(it, kind, nz, float(it.options.get("variety", 0.7)), None) for it in srcs]
        best = self._best(kind, srcs, cands, [self._cond(kind, p) for p in prompts], prompts)
        latent = {key: b["z"].cpu() for key, b in zip(keys, best)}
        return [latent.get(k) if (k := key(it)) is not None else None for it in items]

    # -- a batch ---------------------------------------------------------------------------
    def _kind(self, item: sdk.Item) -> str:
        kind = str(item.options.get("model", "gan"))
        return kind if kind in self.models else "gan"

    def _generate_kind(self, kind: str, items: list[sdk.Item]) -> list[sdk.Output]:
        nz = int(self.models[kind][1]["nz"])
        sources = self._sources(kind, items, nz)
        prompts, conds, cands, metas = [], [], [], []
        for item, source in zip(items, sources):
            prompt = str(item.options.get("prompt", ""))
            cond = self._cond(kind, prompt)
            meta: dict[str, Any] = {"model": kind, "prompt": prompt}
            if item.action == "morph" and cond is not None:
                t = 1.0 - (item.index % MORPH_STEPS) / MORPH_STEPS
                target = str(item.action_options.get("to", prompt))
                cond = torch.lerp(cond, self._cond(kind, target), t)
                meta.update(to=target, t=t)
            prompts.append(prompt)
            conds.append(cond)
            cands.append(self._candidates(item, kind, nz, float(item.options.get("variety", 0.7)), source))
            metas.append(meta)
        outputs = []
        for best, meta in zip(self._best(kind, items, cands, conds, prompts), metas):
            if "logit" in best:
                meta.update(candidates=best["n"], pick=best["pick"], critic_logit=round(best["logit"], 3))
            outputs.append(sdk.Output(data=to_image(best["x"].cpu()), meta=meta))
        return outputs

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        """Items grouped by model kind; every row's result depends on that item alone
        (tests/plugins/test_emoji_plugin.py and tests/engine/test_determinism.py check alone ==
        in batch, pixel for pixel)."""
        with torch.no_grad():
            outputs: list[sdk.Output | None] = [None] * len(items)
            for kind in sorted({self._kind(it) for it in items}):
                idx = [i for i, it in enumerate(items) if self._kind(it) == kind]
                for i, out in zip(idx, self._generate_kind(kind, [items[i] for i in idx])):
                    outputs[i] = out
            return outputs  # type: ignore[return-value]
