"""The name GAN: the seed's losses done right (logits, not a sigmoid fed to from_logits=True),
straight-through Gumbel-softmax characters, a tiny training run with exact resume, and serving
it through the generator (deterministic alone vs batched)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine import sdk
from plugins.name import checkpoint
from plugins.name.data import Example
from plugins.name.gan import (GANConfig, NameDiscriminator, NameGenerator, d_loss, decode, g_loss,
                              one_hot_names)
from plugins.name.gan_training import GANPair, GANTrainConfig, export, train_gan
from plugins.name.generator import NameGenerator as Served
from plugins.name.vocab import EOS, Vocab, batch

TINY = {"noise": 8, "emb": 16, "hidden": 32, "style_emb": 4, "d_channels": 16, "max_len": 12}
TRAIN = [Example(s, n, "train") for s, ns in {"person-en": ["Ada Lovelace", "Alan Turing", "Grace Hopper"],
                                              "place": ["Aachen", "Bologna", "Cremona"]}.items() for n in ns]


def test_the_seed_losses_on_logits():
    real, fake = torch.tensor([3.0, -1.0, 0.5]), torch.tensor([-2.0, 0.0, 4.0])
    sig = torch.sigmoid
    want_d = (-torch.log(sig(real)).mean()) + (-torch.log(1 - sig(fake)).mean())
    assert torch.allclose(d_loss(real, fake), want_d, atol=1e-6)
    assert torch.allclose(g_loss(fake), -torch.log(sig(fake)).mean(), atol=1e-6)
    # the seed's slip: a sigmoid output given to a loss that expects logits is squashed twice,
    # so even a certain, right discriminator cannot get below log(1 + e^-1)
    sure = torch.tensor([50.0])
    slipped = F.binary_cross_entropy_with_logits(sig(sure), torch.ones(1))
    assert float(g_loss(sure)) < 1e-6 and abs(float(slipped) - math.log(1 + math.exp(-1))) < 1e-4


def test_discriminator_outputs_logits_and_generator_a_softmax_per_step():
    torch.manual_seed(0)
    cfg = GANConfig(vocab_size=12, n_styles=2, **TINY)
    gen, disc = NameGenerator(cfg), NameDiscriminator(cfg)
    u = torch.rand(4, cfg.max_len + 1, cfg.vocab_size)
    chars, logits = gen(torch.randn(4, cfg.noise), torch.tensor([0, 1, 0, 1]), u)
    rows = chars.sum(-1)
    assert set(rows.unique().tolist()) <= {0.0, 1.0}  # one-hot while alive, zeros after EOS
    assert all(chars[r, :, EOS].sum() == 1 for r in range(4))  # each name ends exactly once
    out = disc(chars, torch.tensor([0, 1, 0, 1]))
    assert out.shape == (4,) and out.requires_grad
    out.sum().backward()  # gradients reach the generator through the straight-through estimator
    assert gen.out.weight.grad is not None and gen.out.weight.grad.abs().sum() > 0
    _, y = batch(Vocab(tuple("abcdefgh")), ["abc"], cfg.max_len)
    assert decode(one_hot_names(y, cfg.vocab_size)) == [[4, 5, 6]]


def _weights(stem):
    pair = GANPair(GANConfig(**checkpoint.read_meta(stem)["config"]))
    checkpoint.load_into(stem, pair)
    return pair.state_dict()


def test_tiny_gan_training_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    cfg = GANTrainConfig(steps=16, pretrain_steps=8, batch_size=8, checkpoint_every=4)
    straight = train_gan(TRAIN, tmp_path / "a", cfg, model_cfg=TINY, progress=False)
    assert straight["history"][0]["mle"] > 0 and "d" in straight["history"][-1]
    train_gan(TRAIN, tmp_path / "b", cfg, model_cfg=TINY, progress=False, stop=lambda s: s == 10)
    resumed = train_gan(TRAIN, tmp_path / "b", cfg, progress=False)
    assert resumed["step"] == 16
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_served_gan_is_deterministic_alone_and_batched(tmp_path):
    from plugins.name.training import TrainConfig, train_vae

    torch.set_num_threads(1)
    train_vae(TRAIN, [], tmp_path / "vae", TrainConfig(steps=5, batch_size=8),
              model_cfg={"emb": 8, "hidden": 16, "latent": 4, "style_emb": 4}, progress=False)
    train_gan(TRAIN, tmp_path / "ckpt", GANTrainConfig(steps=120, pretrain_steps=110, batch_size=16, lr_mle=1e-2),
              model_cfg=TINY, progress=False)
    export(tmp_path / "ckpt", tmp_path / "gan")
    assert checkpoint.read_meta(tmp_path / "gan")["kind"] == "gan-generator"
    gen = Served(tmp_path / "vae", tmp_path / "gan")
    gen.load("cpu")
    items = [sdk.Item(command="name", options={"style": s, "model": "gan"}, seed=4, index=i)
             for s in ("person-en", "place") for i in range(4)]
    together = gen.generate(items)
    alone = [gen.generate([it])[0] for it in items]
    assert [o.text for o in together] == [o.text for o in alone]
    assert all(o.meta["model"] == "gan" and o.text for o in together)
