"""`aigc train sfx --data DIR --out RUN [--minutes M | --steps N] [--export STEM]`: train the
class-conditional SpecGAN (plugins/sfx/model.py) on a data set from `aigc data sfx|digits`.

Resumes exactly: everything random in step k (the batch, its latents) comes from a generator
seeded by (seed, k), and the checkpoint (RUN/ckpt.safetensors + .json) holds both networks, the
generator's EMA, both Adam states and the step; so N steps in one run equal N steps in several
(tests/plugins/sfx/test_train_resume.py). Hinge loss, spectral-norm projection discriminator,
Adam(2e-4, betas 0/0.9), EMA of the generator's weights (decay min(0.999, (1+k)/(10+k))).
Optional: the mode-seeking term (--ms-weight, per class with --ms-weight-per-class), D's
minibatch-stddev feature (--mbstd), and a discriminator warm-up with the generator held
(--d-warmup, for a warm start with a fresh D).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, action="append",
                        help="a folder from `aigc data sfx|digits`; repeat it to train one generator on "
                             "several sets (classes named as dataset.class_name: coin, digit-seven)")
    parser.add_argument("--out", required=True, help="run folder (resumed when it holds a checkpoint)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long (then checkpoint)")
    parser.add_argument("--steps", type=int, default=None, help="stop at this total step count")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ckpt-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--ms-weight", type=float, default=0.0,
                        help="mode-seeking regulariser's weight (MSGAN, Mao et al. 2019; 0 = off)")
    parser.add_argument("--ms-weight-per-class", default=None, metavar="KIND=W,...",
                        help="mode-seeking weight per class (e.g. alarm=0.4,blip=0); the classes not named "
                             "keep --ms-weight. Each latent pair's term is then w_class / ratio of that pair")
    parser.add_argument("--d-warmup", type=int, default=0,
                        help="the first N steps of the run train D only (G and its EMA held): a fresh D "
                             "learns the warm-started G before G follows its gradients (0 = off)")
    parser.add_argument("--mbstd", type=int, default=0,
                        help="minibatch-stddev feature in the discriminator, group size (Karras et al. 2018; "
                             "0 = off)")
    parser.add_argument("--init-from", default=None,
                        help="start a new run's generator from this exported generator (STEM): layers "
                             "copied, class embeddings matched by class name (new classes: random rows)")
    parser.add_argument("--export", default=None, help="write the generator to STEM.safetensors/.json")
    parser.add_argument("--export-weights", choices=["ema", "raw"], default="ema",
                        help="export the EMA of the generator's weights (default) or its last weights")


def run(args: argparse.Namespace) -> int:
    if args.minutes is None and args.steps is None:
        print("--minutes or --steps: one of them is required (training is always bounded)")
        return 2
    if args.batch < 2 or args.batch > 512 or args.batch % 2:
        print("--batch: must be an even number between 2 and 512")
        return 2
    if not 0.0 <= args.ms_weight <= 100.0:
        print("--ms-weight: must be between 0 and 100")
        return 2
    if args.mbstd != 0 and not 2 <= args.mbstd <= args.batch:
        print("--mbstd: must be 0 (off) or a group size between 2 and --batch")
        return 2
    if not 0 <= args.d_warmup <= 10**6:
        print("--d-warmup: must be between 0 and 1000000 steps")
        return 2
    import torch

    torch.set_num_threads(max(1, args.threads))
    from plugins.sfx import dataset
    from plugins.sfx.model import Config

    try:
        data = dataset.join([dataset.load(d) for d in args.data])
    except (ValueError, OSError) as e:
        print(f"--data: {e}")
        return 2
    try:
        per_class = parse_per_class(args.ms_weight_per_class, data.classes)
    except ValueError as e:
        print(f"--ms-weight-per-class: {e}")
        return 2
    trainer = Trainer(data, Path(args.out), batch=args.batch, lr=args.lr, seed=args.seed, ms_weight=args.ms_weight,
                      config=Config(classes=len(data.classes), mbstd=args.mbstd), ms_weight_per_class=per_class,
                      d_warmup=args.d_warmup)
    if args.init_from and trainer.step == 0:
        print(trainer.init_generator(args.init_from))
    trainer.train(minutes=args.minutes, steps=args.steps, ckpt_every=args.ckpt_every)
    if args.export:
        trainer.export(args.export, args.export_weights)
        print(f"exported {args.export}.safetensors at step {trainer.step}")
    return 0


def parse_per_class(text: str | None, classes) -> dict[str, float]:
    """"alarm=0.4,blip=0" -> {"alarm": 0.4, "blip": 0.0}; every name must be one of ``classes``."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in classes:
            raise ValueError(f"{part.strip()!r}: expected KIND=WEIGHT with KIND one of {', '.join(classes)}")
        try:
            w = float(value)
        except ValueError:
            raise ValueError(f"{part.strip()!r}: the weight is not a number") from None
        if not 0.0 <= w <= 100.0:
            raise ValueError(f"{part.strip()!r}: the weight must be between 0 and 100")
        out[name] = w
    return out


class Trainer:
    def __init__(self, data, out: Path, batch: int = 32, lr: float = 2e-4, seed: int = 0,
                 ema: float = 0.999, config=None, ms_weight: float = 0.0,
                 ms_weight_per_class: dict[str, float] | None = None, d_warmup: int = 0):
        import torch

        from plugins.sfx.model import Config, Discriminator, Generator

        self.data, self.out, self.batch, self.seed, self.ema_decay = data, out, batch, seed, ema
        self.ms_weight = ms_weight
        # per class: {name: weight}, the others keep ms_weight; empty = the single weight (the
        # original loss, w / mean ratio, exactly as runs before session 16 trained)
        self.ms_weight_per_class = dict(ms_weight_per_class or {})
        self.ms_class_weights = torch.tensor([self.ms_weight_per_class.get(c, ms_weight) for c in data.classes])
        self.d_warmup = int(d_warmup)
        self.cfg = config or Config(classes=len(data.classes))
        torch.manual_seed(seed)  # only the initial weights come from the global generator
        self.G, self.D = Generator(self.cfg), Discriminator(self.cfg)
        self.G_ema = Generator(self.cfg)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.G_ema.requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr, betas=(0.0, 0.9))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr, betas=(0.0, 0.9))
        self.step = 0
        self.elapsed_s = 0.0
        self.history: list[dict] = []
        if Path(f"{out / 'ckpt'}.json").exists():
            self.resume()

    # ---- checkpoints ----
    def state(self) -> tuple[dict, dict]:
        from plugins.sfx import checkpoint as ck

        tensors = {**ck.module_tensors("G", self.G), **ck.module_tensors("D", self.D),
                   **ck.module_tensors("G_ema", self.G_ema)}
        tg, groups_g = ck.optimizer_tensors("opt_g", self.opt_g)
        td, groups_d = ck.optimizer_tensors("opt_d", self.opt_d)
        meta = {"step": self.step, "seed": self.seed, "batch": self.batch, "config": self.cfg.to_json(),
                "classes": list(self.data.classes), "kind": self.data.kind, "opt_g": groups_g, "opt_d": groups_d,
                "elapsed_s": self.elapsed_s, "history": self.history[-200:], "ms_weight": self.ms_weight}
        if self.ms_weight_per_class:  # only when set: older runs' checkpoints stay as they were
            meta["ms_weight_per_class"] = self.ms_weight_per_class
        if self.d_warmup:
            meta["d_warmup"] = self.d_warmup
        return {**tensors, **tg, **td}, meta

    def save(self) -> None:
        from plugins.sfx import checkpoint as ck

        tensors, meta = self.state()
        ck.save(self.out / "ckpt", tensors, meta)

    def resume(self) -> None:
        from plugins.sfx import checkpoint as ck

        tensors, meta = ck.load(self.out / "ckpt")
        from plugins.sfx.model import Config

        if (Config.from_json(meta["config"]) != self.cfg or meta["batch"] != self.batch or meta["seed"] != self.seed
                or meta.get("ms_weight", 0.0) != self.ms_weight or tuple(meta["classes"]) != self.data.classes
                or meta.get("ms_weight_per_class", {}) != self.ms_weight_per_class
                or meta.get("d_warmup", 0) != self.d_warmup):
            raise ValueError(f"--out: {self.out} holds a run with another config, batch, seed, --ms-weight, "
                             "--ms-weight-per-class, --d-warmup or classes; use a new folder")
        for name, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            ck.restore_module(module, name, tensors)
        ck.restore_optimizer(self.opt_g, "opt_g", tensors, meta["opt_g"])
        ck.restore_optimizer(self.opt_d, "opt_d", tensors, meta["opt_d"])
        self.step, self.elapsed_s, self.history = meta["step"], meta["elapsed_s"], meta["history"]

    def init_generator(self, stem: str | Path) -> str:
        """Warm start (step 0 only): copy an exported generator's weights into G and its EMA. Class
        embeddings are matched by name; a class the source lacks keeps its own random row."""
        import json

        import torch

        from engine import sdk

        if self.step:
            raise ValueError("--init-from: only a new run (step 0) can be initialised")
        stem = Path(stem)
        meta = json.loads(stem.with_suffix(".json").read_text())
        src = sdk.load_safetensors(str(stem.with_suffix(".safetensors")))
        own = self.G.state_dict()
        emb = src["embed.weight"]
        # a new class keeps its own random row: rows that start equal (e.g. at the mean) stay nearly
        # equal for thousands of Adam steps, and the generator ignores which of them it was asked for
        rows = [emb[meta["classes"].index(c)] if c in meta["classes"] else own["embed.weight"][i]
                for i, c in enumerate(self.data.classes)]
        src = {**src, "embed.weight": torch.stack(rows)}
        for key, value in src.items():
            if key not in own or own[key].shape != value.shape:
                raise ValueError(f"--init-from: {stem} does not fit this generator ({key})")
        self.G.load_state_dict(src)
        self.G_ema.load_state_dict(src)
        kept = sum(c in meta["classes"] for c in self.data.classes)
        return f"initialised G from {stem} (step {meta.get('step')}): {kept} of {len(self.data.classes)} classes kept"

    # ---- training ----
    def batch_for(self, step: int):
        """The real batch and latents of ``step``: a function of (seed, step) only."""
        import numpy as np
        import torch

        from engine.sdk import derive_seed
        from plugins.sfx.spectro import to_spec

        g = torch.Generator().manual_seed(derive_seed("sfx-train", self.seed, step))
        idx = torch.randint(len(self.data.labels), (self.batch,), generator=g).numpy()
        order = np.sort(idx)  # sorted reads are kinder to the mmap; the pairing keeps its labels
        audio = torch.from_numpy(self.data.floats(order))
        labels = torch.from_numpy(self.data.labels[order])
        z = torch.randn(self.batch, self.cfg.nz, generator=g)
        return to_spec(audio), labels, z

    def fake_labels(self, y):
        """The generator's classes for a step: the real batch's, except that with the mode-seeking
        term on, each class comes in latent pairs: the even rows' classes (the batch is sorted by
        clip, so these keep its class mix), twice."""
        import torch

        if not self.mode_seeking:
            return y
        return torch.cat([y[0::2], y[0::2]])

    @property
    def mode_seeking(self) -> bool:
        return bool(self.ms_weight) or any(w > 0 for w in self.ms_weight_per_class.values())

    def train_step(self) -> dict:
        import torch

        real, y, z = self.batch_for(self.step)
        yf = self.fake_labels(y)
        if self.cfg.mbstd and self.mode_seeking:
            # D's minibatch-stddev groups runs of consecutive rows, and the fakes' classes are the
            # even rows' twice: so the reals go in as their even rows then their odd rows, and a
            # group of reals mixes classes as a group of fakes does (otherwise the stddev would
            # tell D the class mix, not the variety). D's loss is a mean: the order is all it changes.
            order = torch.cat([torch.arange(0, self.batch, 2), torch.arange(1, self.batch, 2)])
            real, y = real[order], y[order]
        warmup = self.step < self.d_warmup
        with torch.set_grad_enabled(not warmup):
            fake = self.G(z, yf)
        loss_d = torch.relu(1 - self.D(real, y)).mean() + torch.relu(1 + self.D(fake.detach(), yf)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        if warmup:  # D's warm-up: G (and so its EMA) held
            self.step += 1
            return {"step": self.step, "loss_d": loss_d.item(), "loss_g": 0.0, "d_warmup": 1}
        loss_g = -self.D(fake, yf).mean()
        rec = {}
        if self.mode_seeking:
            # MSGAN (Mao et al. 2019): two latents of one class should give outputs as far apart
            # as the latents are; penalise 1 / (|G(z1)-G(z2)| / |z1-z2|)
            half = self.batch // 2
            pair = ((fake[:half] - fake[half:]).abs().mean((1, 2, 3))
                    / (z[:half] - z[half:]).abs().mean(1))
            ratio = pair.mean()
            if self.ms_weight_per_class:
                # per class: each pair's own term, weighted by its class's weight (the pairs of
                # a class pushed apart as hard as its weight says; weight 0: not pushed at all)
                loss_g = loss_g + (self.ms_class_weights[yf[:half]] / (pair + 1e-5)).mean()
            else:
                loss_g = loss_g + self.ms_weight / (ratio + 1e-5)
            rec["ms_ratio"] = ratio.item()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        # EMA with a warm-up (as the emoji GAN's): early on the average must not hold the
        # random initial weights; plain 0.999 still weighs them 18 % after 1,700 steps
        decay = min(self.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
                pe.lerp_(p, 1 - decay)
        self.step += 1
        return {"step": self.step, "loss_d": loss_d.item(), "loss_g": loss_g.item(), **rec}

    def train(self, minutes: float | None = None, steps: int | None = None, ckpt_every: int = 250) -> None:
        from tqdm import tqdm

        start = time.monotonic()
        budget = None if minutes is None else minutes * 60
        target = steps if steps is not None else None
        with tqdm(initial=self.step, total=target, desc="sfx gan", unit="step") as bar:
            while (target is None or self.step < target) and (budget is None or time.monotonic() - start < budget):
                t0 = time.monotonic()
                rec = self.train_step()
                self.elapsed_s += time.monotonic() - t0
                bar.update(1)
                if self.step % 25 == 0:
                    bar.set_postfix(d=f"{rec['loss_d']:.3f}", g=f"{rec['loss_g']:.3f}")
                    self.history.append(rec)
                if self.step % ckpt_every == 0:
                    self.save()
        self.save()

    def export(self, stem: str | Path, weights: str = "ema") -> None:
        """Write the generator for serving: its EMA (default) or its last weights (``"raw"``)."""
        from plugins.sfx import checkpoint as ck

        module = self.G_ema if weights == "ema" else self.G
        tensors = {k.split("/", 1)[1]: v for k, v in ck.module_tensors("G", module).items()}
        ck.save(stem, tensors, {"family": "specgan", "config": self.cfg.to_json(), "classes": list(self.data.classes),
                                "kind": self.data.kind, "step": self.step, "batch": self.batch,
                                "seed": self.seed, "train_seconds": round(self.elapsed_s),
                                "weights": weights})
