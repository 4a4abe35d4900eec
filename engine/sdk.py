"""The plugin API: the only engine module a plugin imports.

A plugin is a module exposed through the entry point group ``aigc.plugins`` (an installed
package's, or a built-in ``plugins/<name>`` declared in this project's pyproject.toml) whose ``plugin`` attribute (or a zero-argument callable returning
one) is a :class:`Plugin`::

    from engine import sdk

    class Tiles(sdk.Generator):
        name = "tiles"
        max_batch_size = 16

        def load(self, device: str) -> None: ...
        def generate(self, items: list[sdk.Item]) -> list[sdk.Output]: ...

    plugin = sdk.Plugin(
        name="tiles", version="1.0.0",
        commands=[sdk.Command(name="tiles", description="Draw tiles", modality="image",
                              generator="tiles", options=[sdk.Option(...)])],
        generators=[Tiles()],
    )

Determinism contract: ``generate`` must return, for each item, a value that depends only on
the item (command, options, seed, index, action, source) — never on the other items in the
batch. Use :meth:`Item.rng` / :func:`normal` for all randomness.

A new modality encodes with the label-aware writers below (:func:`encode_png`,
:func:`encode_gif`, :func:`encode_webp`, :func:`encode_mp4`, :func:`encode_wav`, :func:`encode_ogg`,
:func:`label_text`), which embed ``ctx.meta`` and the AI-generated labels::

    gif = sdk.Modality("loop", "image/gif", "gif", sdk.Presentation.animation,
                       lambda out, ctx: sdk.encode_gif(out.data, ctx.meta, visible_mark=ctx.visible_mark))
"""
from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Protocol, Sequence

from engine.protocol import (
    LOCALES,
    SEED_MAX,
    ActionSpec as Action,
    Choice,
    ModalitySpec,
    OptionSpec as Option,
    OptionType,
    Presentation,
)

from engine.policy.output_checks import OutputCheck, OutputVerdict

if TYPE_CHECKING:  # torch, Pillow and the writers are imported lazily: importing the SDK stays cheap
    import torch
    from PIL import Image

__all__ = [
    "Action", "Choice", "Command", "OptionError", "Tool", "EncodeContext", "Generator", "Item", "Modality", "Option", "OptionType",
    "Output", "OutputCheck", "OutputVerdict", "Plugin", "Presentation", "LOCALES", "SEED_MAX", "derive_seed", "normal",
    "REROLL", "VARIATIONS", "count_option", "seed_option", "variety_option", "module_tensors", "restore_module", "optimizer_tensors", "restore_optimizer",
    "save_checkpoint", "load_checkpoint", "load_safetensors", "load_model", "load_judge", "frechet_distance", "prompt_encoder", "file_sha256",
    "encode_png", "encode_gif", "encode_webp", "encode_mp4", "encode_wav", "encode_ogg", "label_text", "check_text",
    "CREDENTIALS_HEADROOM",
]

# What the engine's Content Credentials (a C2PA manifest, and the source's own for a follow-up)
# may add to a file after the plugin encoded it: a plugin that must fit a size cap (Discord's
# 256 KiB server emoji) aims this far below it. Measured: 3.5 KB for an output, 9.2 KB for a
# follow-up carrying its parent's manifest.
CREDENTIALS_HEADROOM = 16 * 1024

# Follow-up actions every command has; plugins may declare more.
REROLL = Action(name="reroll", label="Reroll", emoji="🎲",
                label_localizations={"zh-CN": "重新生成"})
VARIATIONS = Action(name="variations", label="Variations", emoji="🔀", per_output=True,
                    label_localizations={"zh-CN": "变体"})


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed derived from parts; stable across processes, platforms and versions."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        b = str(p).encode()
        h.update(struct.pack("<I", len(b)) + b)
    return int.from_bytes(h.digest(), "little") & (2**63 - 1)


def normal(shape: tuple[int, ...], *seed_parts: int | str) -> "torch.Tensor":
    """Standard-normal noise that depends only on ``seed_parts`` (CPU, float32)."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(derive_seed(*seed_parts))
    return torch.randn(shape, generator=g, dtype=torch.float32)


@dataclass(frozen=True)
class Item:
    """One output to generate. A job of count n becomes n items, batched across jobs.

    ``source`` is the (seed, index) of the output an action starts from, for example the
    output whose latent ``variations`` perturbs; ``action_options`` are that action's inputs.
    """

    command: str
    options: dict[str, Any]
    seed: int
    index: int
    action: str = "generate"
    source: tuple[int, int] | None = None
    action_options: dict[str, Any] = field(default_factory=dict)

    def rng(self, *salt: int | str) -> "torch.Generator":
        import torch

        return torch.Generator(device="cpu").manual_seed(
            derive_seed(self.seed, self.index, self.action, *salt))

    def noise(self, shape: tuple[int, ...], *salt: int | str) -> "torch.Tensor":
        """Noise for this output (the latent of a plain generation)."""
        return normal(shape, self.seed, self.index, *salt)


@dataclass
class Output:
    """What a generator returns for one item; the modality's encoder turns ``data`` to bytes."""

    data: Any
    text: str | None = None  # for text modalities: what a front shows inline
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EncodeContext:
    """What an encoder needs besides the output: provenance ``meta`` to embed in the file
    (model, seed, job, the AI-generated label fields) and whether to draw a visible mark."""

    meta: dict[str, str]
    visible_mark: bool = True
    compress_level: int = 1


class Encoder(Protocol):
    def __call__(self, output: Output, ctx: EncodeContext) -> bytes: ...


@dataclass(frozen=True)
class Modality:
    """A kind of artifact. ``encode(output, ctx)`` returns the file bytes and must embed
    ``ctx.meta`` (provenance and the AI-generated label) in the file where the format allows."""

    name: str
    mime: str
    extension: str
    presentation: Presentation
    encode: Encoder
    description: str = ""
    # Other file types the same modality can be encoded as, chosen per job by the command option
    # ``format_option`` (e.g. an animation as GIF, WebP or MP4): option value -> (mime, extension).
    # ``mime``/``extension`` above are the default, used when the option is absent or unknown.
    formats: dict[str, tuple[str, str]] = field(default_factory=dict)
    format_option: str = "format"

    def file_type(self, options: dict[str, Any]) -> tuple[str, str]:
        """(mime, extension) of a job's files with these options."""
        chosen = options.get(self.format_option)
        return self.formats.get(chosen, (self.mime, self.extension)) if isinstance(chosen, str) \
            else (self.mime, self.extension)

    def spec(self) -> ModalitySpec:
        return ModalitySpec(name=self.name, mime=self.mime, extension=self.extension,
                            presentation=self.presentation, description=self.description)


class OptionError(ValueError):
    """Raised by a command's ``check`` for options that are each valid but not together: the
    engine answers 422 naming ``options.<option>`` and ``rule``, before the job is queued."""

    def __init__(self, option: str, rule: str) -> None:
        super().__init__(f"options.{option}: {rule}")
        self.option, self.rule = option, rule


@dataclass(frozen=True)
class Command:
    name: str
    description: str
    modality: str
    generator: str
    options: list[Option] = field(default_factory=list)
    actions: list[Action] = field(default_factory=lambda: [REROLL, VARIATIONS])
    max_count: int = 1
    nsfw: bool = False
    name_localizations: dict[str, str] = field(default_factory=dict)
    description_localizations: dict[str, str] = field(default_factory=dict)
    # Rules across options, run on the validated options (defaults filled) of a plain generation
    # before it is queued; raise OptionError. Runs on the event loop: keep it cheap.
    check: Callable[[dict[str, Any]], None] | None = None


class Generator:
    """A model that runs batches. Subclasses set ``name`` and ``max_batch_size`` and
    implement ``load`` and ``generate``. ``generate`` runs in a worker thread, under
    ``torch.inference_mode()``, never on the event loop."""

    name: str = ""
    max_batch_size: int = 8
    # Preferred batch sizes (Triton's term): the scheduler may wait up to the configured
    # max queue delay to fill one. Empty: run whatever is there.
    preferred_batch_sizes: tuple[int, ...] = ()

    def load(self, device: str) -> None:
        """Load weights (safetensors only: use ``engine.sdk.load_safetensors``)."""

    def generate(self, items: list[Item]) -> list[Output]:
        raise NotImplementedError

    def model_info(self) -> dict[str, str]:
        """Model name, version and weights hash, recorded with every artifact."""
        return {"name": self.name}

    def warmup(self) -> None:
        """Run once before the engine reports ready; the default generates one item."""


def count_option(max_count: int, things: str, *, default: int = 1) -> Option:
    """``count``: how many outputs one job makes (the job's ``count`` field), e.g. ``things="emoji"``."""
    return Option(name="count", type="integer", min_value=1, max_value=max_count, default=default,
                  job_field="count", description=f"How many {things} (1-{max_count})",
                  name_localizations={"zh-CN": "数量"},
                  description_localizations={"zh-CN": f"生成几个（1-{max_count}）"})


def seed_option(thing: str, *, zh: str = "随机种子；相同种子得到相同结果") -> Option:
    """``seed``: the job's seed; the same (command, options, seed) makes the same output."""
    return Option(name="seed", type="integer", min_value=0, max_value=SEED_MAX, job_field="seed",
                  description=f"Seed; the same seed gives the same {thing}",
                  name_localizations={"zh-CN": "种子"}, description_localizations={"zh-CN": zh})


def variety_option(default: float = 0.7, *, description: str = "0 = safest, most typical; 1 = most varied",
                   zh: str = "0 最稳妥典型，1 最多样") -> Option:
    """``variety`` in [0, 1]: how far from the typical a generator may sample (truncation)."""
    return Option(name="variety", type="number", min_value=0.0, max_value=1.0, default=default,
                  description=description, name_localizations={"zh-CN": "多样性"},
                  description_localizations={"zh-CN": zh})


AutocompleteSource = Callable[[str, dict[str, Any]], Iterable[Choice | str]]


@dataclass(frozen=True)
class Tool:
    """A subcommand a plugin adds to the ``aigc`` command line. ``module`` is imported only when
    the subcommand runs and exposes ``configure(parser: argparse.ArgumentParser)`` and
    ``run(args: argparse.Namespace) -> int`` (0 = success, 2 = bad arguments).

    ``kind`` says where it appears: ``"data"`` as ``aigc data NAME ...`` (build a data set),
    ``"train"`` as ``aigc train NAME ...`` (train a model family), ``"eval"`` as
    ``aigc eval --plugin NAME ...`` (evaluate the plugin's models; NAME is the plugin's name).
    """

    kind: Literal["data", "train", "eval"]
    name: str
    module: str
    help: str = ""


@dataclass
class Plugin:
    name: str
    version: str
    commands: list[Command]
    generators: list[Generator]
    modalities: list[Modality] = field(default_factory=list)
    autocomplete: dict[str, AutocompleteSource] = field(default_factory=dict)
    description: str = ""
    # Checks run on every output of the listed modalities after generation (e.g. a
    # classifier); a refusal fails the job with code output_refused.
    output_checks: list[OutputCheck] = field(default_factory=list)
    # Command-line tools (data set builders, trainers, evaluations): see Tool.
    tools: list[Tool] = field(default_factory=list)


def load_safetensors(path: str, device: str = "cpu") -> dict[str, "torch.Tensor"]:
    """Load a weights file. Only safetensors: pickle-based formats can run code."""
    from engine.runtime import load_weights

    return load_weights(path, device)


def load_model(stem: str | Path, device: str = "cpu") -> tuple["torch.nn.Module", dict[str, Any]]:
    """A model of the engine's GAN/VAE families from ``stem.json`` + ``stem.safetensors``, in
    eval() mode on ``device``, with its config (what `aigc train` writes)."""
    from engine.models.weights import load_model as _load

    return _load(stem, device)


def load_judge(stem: str | Path) -> tuple["torch.nn.Module", dict[str, Any]]:
    """A locally trained judge (``aigc eval``'s feature extractor) from ``stem.json`` +
    ``stem.safetensors``, in eval() mode: ``judge.features(x)`` maps (B, C, 64, 64) images in
    [0, 1] to feature rows, the space a plugin's evaluation measures distances in."""
    from engine.evaluation.judge import load_judge as _load

    return _load(stem)


def frechet_distance(a: "torch.Tensor", b: "torch.Tensor") -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature rows (float64), the
    figure every plugin evaluation reports in its own judge's feature space."""
    from engine.evaluation.metrics import frechet_distance as _fd

    return _fd(a, b)


def prompt_encoder(spec: dict[str, Any]) -> Any:
    """The text side of a model config's ``tokenizer`` entry (hashed n-grams or MiniLM)."""
    from engine.models.prompt_encoder import make_prompt_encoder

    return make_prompt_encoder(spec)


def check_text(text: str) -> OutputVerdict:
    """The shipped global content rules' verdict on a text a generator is about to return, so a
    text generator can resample a refused candidate instead of failing the job (the engine still
    checks every text output against the global and the guild's rules before publishing it)."""
    from engine.policy.checker import check

    v = check(text)
    return OutputVerdict(allowed=v.allowed, check="text-rules", category=v.category, rule=v.rule)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (model_info's weights hash)."""
    from engine.runtime import file_sha256 as _sha

    return _sha(path)


# ---- training checkpoints (engine.training.checkpoint): safetensors + JSON, never pickle ----
# A plugin's trainer saves ``{prefix/name: tensor}`` (modules and optimizers flattened) with a JSON
# meta; the files are written under temporary names and renamed, so a run killed mid-save keeps
# its previous checkpoint. The same code the image trainers use, so every resume works alike.

def module_tensors(prefix: str, module: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
    from engine.training.checkpoint import module_tensors as _f

    return _f(prefix, module)


def restore_module(module: "torch.nn.Module", prefix: str, tensors: dict[str, "torch.Tensor"]) -> None:
    from engine.training.checkpoint import restore_module as _f

    _f(module, prefix, tensors)


def optimizer_tensors(prefix: str, opt: "torch.optim.Optimizer") -> tuple[dict[str, "torch.Tensor"], list[dict[str, Any]]]:
    """An optimizer's state as tensors, and its param groups (for the JSON meta)."""
    from engine.training.checkpoint import optimizer_tensors as _f

    return _f(prefix, opt)


def restore_optimizer(opt: "torch.optim.Optimizer", prefix: str, tensors: dict[str, "torch.Tensor"],
                      groups: list[dict[str, Any]]) -> None:
    from engine.training.checkpoint import restore_optimizer as _f

    _f(opt, prefix, tensors, groups)


def save_checkpoint(stem: str | Path, tensors: dict[str, "torch.Tensor"], meta: dict[str, Any]) -> None:
    """``stem.safetensors`` + ``stem.json``, atomically each."""
    from engine.training.checkpoint import save_checkpoint as _f

    _f(stem, tensors, meta)


def load_checkpoint(stem: str | Path, device: str = "cpu") -> tuple[dict[str, "torch.Tensor"], dict[str, Any]]:
    from engine.training.checkpoint import load_checkpoint as _f

    return _f(stem, device)


# ---- label-aware writers (engine.labels): every file a modality encodes carries the labels ----
# ``meta`` is the encoder's ``ctx.meta``. Each writer adds the GB 45438 ``AIGC`` object, the IPTC
# DigitalSourceType ``trainedAlgorithmicMedia`` and the provenance meta, in the places the format's
# readers look; ``engine.labels.read_labels`` (and ``/v1/verify``) reads them back. Bad input
# raises ``ValueError`` (engine.labels.LabelError) naming the rule it breaks.

def encode_png(image: Image.Image | Any, meta: dict[str, str], *, visible_mark: bool = True,
               compress_level: int = 1) -> bytes:
    """PNG from a PIL image or a uint8 HxW[xC] array: the visible "AI" mark (unless
    ``visible_mark`` is off, e.g. ``ctx.visible_mark``), iTXt XMP and iTXt ``AIGC`` (JSON)."""
    from engine.labels import encode_png as _encode

    return _encode(image, meta, visible_mark=visible_mark, compress_level=compress_level)


def encode_gif(frames: Sequence[Image.Image | Any], meta: dict[str, str], *, duration_ms: int = 100,
               loop: int = 0, visible_mark: bool = True, mark_frames: int | None = None,
               disposal: int | None = None) -> bytes:
    """Animated (or one-frame) GIF: the mark on every frame (or the first ``mark_frames``), an
    XMP application extension and a comment extension carrying the ``AIGC`` object.
    ``disposal=2`` clears each frame before the next (for moving transparent content)."""
    from engine.labels import encode_gif as _encode

    return _encode(frames, meta, duration_ms=duration_ms, loop=loop, visible_mark=visible_mark,
                   mark_frames=mark_frames, disposal=disposal)


def encode_webp(frames: Image.Image | Any | Sequence[Image.Image | Any], meta: dict[str, str], *,
                duration_ms: int = 100, loop: int = 0, visible_mark: bool = True,
                mark_frames: int | None = None, lossless: bool = True, quality: int = 90) -> bytes:
    """WebP, one image or (a list of frames) an animation: the mark and an ``XMP `` chunk."""
    from engine.labels import encode_webp as _encode

    return _encode(frames, meta, duration_ms=duration_ms, loop=loop, visible_mark=visible_mark,
                   mark_frames=mark_frames, lossless=lossless, quality=quality)


def encode_mp4(frames: Sequence[Image.Image | Any], meta: dict[str, str], *, fps: int = 12,
               visible_mark: bool = True, background: tuple[int, int, int] = (49, 51, 56),
               bitrate: int = 600_000) -> bytes:
    """H.264 MP4 (PyAV, OpenH264, yuv420p; deterministic bytes): the mark on every frame,
    transparent pixels composited on ``background``, a top-level XMP ``uuid`` box and the
    ``AIGC`` object in the container's comment (``moov/udta``)."""
    from engine.labels import encode_mp4 as _encode

    return _encode(frames, meta, fps=fps, visible_mark=visible_mark, background=background, bitrate=bitrate)


def encode_wav(samples: Any, rate: int, meta: dict[str, str]) -> bytes:
    """PCM 16-bit WAV from float samples in [-1, 1] (or int16), shape (n,) or (n, channels):
    ``LIST``/``INFO`` (ICMT comment, ISFT software, INAM title), an ``AIGC`` chunk and XMP
    (``_PMX``). Audio has no visible mark; the title and comment say "AI-generated"."""
    from engine.labels import encode_wav as _encode

    return _encode(samples, rate, meta)


def encode_ogg(samples: Any, rate: int, meta: dict[str, str], *, codec: str = "vorbis") -> bytes:
    """Ogg Vorbis (or ``codec="opus"``) from float samples, with the comments ``AIGC``,
    ``AIGCBOT_PROVENANCE``, ``DIGITALSOURCETYPE`` and ``COMMENT`` in its comment header."""
    from engine.labels import encode_ogg as _encode

    return _encode(samples, rate, meta, codec=codec)


def label_text(text: str, *, locale: str = "en-US") -> str:
    """``text`` ending in the line ``[AI-generated]`` (``[人工智能生成]`` for zh-CN), once."""
    from engine.labels import label_text as _label

    return _label(text, locale=locale)
