"""Model families: shapes, DCGAN init, conditioning, the prompt encoder, safetensors I/O."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from engine.models.gan import Discriminator, GanConfig, Generator
from engine.models.prompt_encoder import PromptTokenizer
from engine.models.vae import VAE, VaeConfig
from engine.models.state import save_model
from engine.models.weights import load_model

CAPTIONS = ["grinning face", "dog face", "red heart", "flag fr", "person running"]


def _tok() -> PromptTokenizer:
    return PromptTokenizer.from_captions(CAPTIONS, buckets=64)


@pytest.mark.parametrize("size,channels", [(16, 4), (64, 4), (32, 3)])
def test_gan_shapes(size, channels):
    cfg = GanConfig(size=size, channels=channels, nz=8, ngf=8, ndf=8)
    g, d = Generator(cfg).eval(), Discriminator(cfg).eval()
    x = g(torch.randn(3, 8))
    assert x.shape == (3, channels, size, size) and x.min() >= -1 and x.max() <= 1
    assert d(x).shape == (3,)


def test_resize_upsampling_has_no_checkerboard_and_bad_modes_are_refused():
    """From a constant feature map, nearest resize + 3x3 conv gives a constant interior; a
    stride-2 transposed conv gives the period-2 pattern that shows as a checkerboard."""
    from engine.models.gan import _double

    torch.manual_seed(0)
    flat = torch.ones(1, 4, 8, 8)
    for mode, uniform in (("resize", True), ("transposed", False)):
        layer = torch.nn.Sequential(*_double(4, 3, mode))
        torch.nn.init.normal_(layer[-1].weight, 0.0, 0.02)
        inner = layer(flat)[0, :, 2:-2, 2:-2].detach()
        assert inner.shape == (3, 12, 12)
        assert torch.allclose(inner, inner[:, :1, :1].expand_as(inner), atol=1e-6) is uniform, mode
    cfg = GanConfig(size=32, nz=8, ngf=8, upsample="resize")
    g = Generator(cfg).eval()
    assert g(torch.randn(2, 8)).shape == (2, 4, 32, 32)
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules()) == 1  # only 1x1 -> 4x4
    with pytest.raises(ValueError, match="upsample must be one of transposed, resize, got 'bilinear'"):
        GanConfig(upsample="bilinear")


def _transposed_like(conv3: torch.Tensor) -> torch.Tensor:
    """The 4x4 stride-2 transposed-conv kernel that computes exactly what nearest x2 + this 3x3
    conv computes (written out from the definitions, independently of resize_kernel)."""
    w = conv3.permute(1, 0, 2, 3)  # (c_in, c_out, 3, 3)
    # 1-D: output 2m takes x[m-1] by kernel row 3 and x[m] by row 1; 2m+1 takes x[m] by 2, x[m+1] by 0.
    # Nearest x2 + 3x3 conv: 2m: w0 x[m-1] + (w1+w2) x[m]; 2m+1: (w0+w1) x[m] + w2 x[m+1]
    # so kernel rows 0-3 are w2, w1+w2, w0+w1, w0 (along both axes)
    rows = lambda v: torch.stack([v[..., 2], v[..., 1] + v[..., 2], v[..., 0] + v[..., 1], v[..., 0]], -1)  # noqa: E731
    return rows(rows(w).transpose(-1, -2)).transpose(-1, -2).contiguous()


def test_resize_from_transposed_keeps_what_resize_can_draw_and_drops_only_the_checkerboard():
    """A transposed-conv generator whose kernels a resize-conv one can express converts to that
    generator exactly (same images); a pure checkerboard kernel is dropped whole; a random
    one loses part, not all, of its energy."""
    from engine.models.gan import resize_from_transposed, resize_kernel

    torch.manual_seed(0)
    conv3 = torch.randn(3, 5, 3, 3)
    got, dropped = resize_kernel(_transposed_like(conv3))
    torch.testing.assert_close(got, conv3, rtol=1e-5, atol=1e-5)
    assert dropped < 1e-10
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0])  # kernel rows 0, 2 feed odd outputs; 1, 3 even ones
    checker = torch.randn(5, 3, 1, 1) * sign[:, None] * sign[None, :]
    got, dropped = resize_kernel(checker)
    assert got.abs().max() < 1e-6 and dropped == pytest.approx(1.0)
    _, dropped = resize_kernel(torch.randn(5, 3, 4, 4))
    assert 0.05 < dropped < 0.95

    tok = _tok().to_dict()
    base = dict(size=32, nz=8, ngf=8, cond_dim=4, tokenizer=tok, cond_norm=True)
    resize = Generator(GanConfig(**base, upsample="resize")).eval()
    transposed = Generator(GanConfig(**base)).eval()
    for m in resize.modules():  # BatchNorm statistics and shifts away from their defaults
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, 0, 0.3)
    layers = [m for m in resize.main if not isinstance(m, torch.nn.Upsample)]
    for old, new in zip(transposed.main, layers):
        if isinstance(old, torch.nn.ConvTranspose2d) and old.stride == (2, 2):
            old.weight.data.copy_(_transposed_like(new.weight.data))
        else:
            old.load_state_dict(new.state_dict())
    transposed.embed.load_state_dict(resize.embed.state_dict())
    prompt = _tok().batch(CAPTIONS[:3])
    z = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(transposed(z, prompt), resize(z, prompt), rtol=1e-4, atol=1e-5)
        state, dropped = resize_from_transposed(transposed, Generator(GanConfig(**base, upsample="resize")))
        again = Generator(GanConfig(**base, upsample="resize")).eval()
        again.load_state_dict(state)  # strict: every key, right shapes
        torch.testing.assert_close(again(z, prompt), resize(z, prompt), rtol=1e-4, atol=1e-5)
    assert len(dropped) == 3 and max(dropped) < 1e-8
    with pytest.raises(ValueError, match="from a transposed-conv generator to a resize-conv one"):
        resize_from_transposed(resize, transposed)


def test_cond_norm_keeps_plain_keys_and_starts_as_plain_batchnorm():
    from engine.models.gan import CondBatchNorm2d

    tok = _tok().to_dict()
    plain = Generator(GanConfig(size=16, nz=8, ngf=8, cond_dim=4, tokenizer=tok))
    cbn = Generator(GanConfig(size=16, nz=8, ngf=8, cond_dim=4, tokenizer=tok, cond_norm=True))
    assert sum(isinstance(m, CondBatchNorm2d) for m in cbn.modules()) == 2  # 16x16: two BatchNorms
    # convs keep their names, so the shipped (plain) weights' keys mean the same thing
    convs = {k for k in plain.state_dict() if "main.0." in k or "main.3." in k}
    assert convs and convs <= set(cbn.state_dict())
    layer = CondBatchNorm2d(3, 4)
    torch.nn.init.zeros_(layer.gain.weight), torch.nn.init.zeros_(layer.gain.bias)
    torch.nn.init.zeros_(layer.shift.weight), torch.nn.init.zeros_(layer.shift.bias)
    x = torch.randn(5, 3, 4, 4)
    assert torch.allclose(layer(x, torch.randn(5, 4)), torch.nn.BatchNorm2d(3, affine=False)(x), atol=1e-6)
    with pytest.raises(ValueError, match=r"cond_norm needs a conditional model \(cond_dim > 0\)"):
        GanConfig(cond_norm=True)


def test_size_must_be_a_power_of_two():
    with pytest.raises(ValueError):
        GanConfig(size=48).n_up


def test_dcgan_init_is_normal_0_02():
    g = Generator(GanConfig(size=64, nz=100, ngf=64))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 0.01


def test_conditional_gan_uses_the_prompt():
    tok = _tok()
    cfg = GanConfig(size=16, nz=8, ngf=8, ndf=8, cond_dim=8, tokenizer=tok.to_dict(), spectral_norm=True)
    g, d = Generator(cfg).eval(), Discriminator(cfg).eval()
    z = torch.randn(2, 8)
    a, b = tok.batch(["dog face", "dog face"]), tok.batch(["red heart", "flag fr"])
    xa, xb = g(z, a), g(z, b)
    assert not torch.allclose(xa, xb)
    assert not torch.allclose(d(xa, a), d(xa, b))  # projection term depends on the prompt


def test_tokenizer_known_unknown_and_roundtrip():
    tok = _tok()
    ids, w = tok.encode("dog face")
    assert abs(sum(w) - 1.0) < 1e-6 and tok._index["dog"] in ids
    unk_ids, unk_w = tok.encode("doggo")  # unknown: char n-grams only, sharing some with "dog"
    assert all(i > len(tok.vocab) for i in unk_ids) and set(unk_ids) & set(ids)
    assert tok.encode("") == ([0], [1.0])
    again = PromptTokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode("Dog FACE!") == tok.encode("dog face")


def test_vae_shapes_and_encode():
    tok = _tok()
    vae = VAE(VaeConfig(size=32, nz=6, width=8, cond_dim=4, tokenizer=tok.to_dict())).eval()
    x = torch.rand(2, 4, 32, 32)
    prompt = tok.batch(["dog face", "red heart"])
    recon, mu, logvar = vae(x, prompt)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 6)
    assert 0 <= recon.min() and recon.max() <= 1


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_weights_roundtrip_safetensors(tmp_path, dtype):
    cfg = GanConfig(size=16, nz=8, ngf=8, ndf=8, cond_dim=4, tokenizer=_tok().to_dict())
    g = Generator(cfg).eval()
    path = save_model(g, cfg.to_dict(), tmp_path / "g", dtype=dtype)
    with safe_open(str(path), "pt") as f:  # a real safetensors file, not a pickle
        keys = set(f.keys())
        assert keys == set(g.state_dict())
        if dtype is not None:
            assert f.get_tensor("main.0.weight").dtype == torch.float16
    loaded, config = load_model(tmp_path / "g")
    assert config["kind"] == "gan" and not loaded.training
    z, prompt = torch.randn(1, 8), _tok().batch(["red heart"])
    tol = 0 if dtype is None else 1e-2
    assert torch.allclose(loaded(z, prompt), g(z, prompt), atol=tol)


def test_minibatch_stddev_sees_how_much_the_batch_varies():
    from engine.models.gan import minibatch_stddev

    h = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    out = minibatch_stddev(h, 4)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], h)
    same = minibatch_stddev(h[:1].expand(8, -1, -1, -1), 4)  # a collapsed batch: sd 0
    assert same[:, 3].abs().max() < 1e-3 < out[:, 3].min()
    assert minibatch_stddev(h[:3], 4)[:, 3].std() == 0  # 3 rows: one group of 3
    d = Discriminator(GanConfig(size=16, ngf=8, ndf=8, minibatch_std=4))
    assert d(torch.randn(5, 4, 16, 16)).shape == (5,)
    with pytest.raises(ValueError, match="minibatch_std"):
        GanConfig(minibatch_std=1)


@pytest.mark.parametrize("upsample, cond_norm", [("transposed", True), ("resize", False)])
def test_widen_generator_draws_the_same_images_and_its_copies_can_part(upsample, cond_norm):
    """Net2Net widening: the generator twice as wide draws what the narrow one drew, with batch
    statistics (training) and with running ones (serving); one optimisation step later the
    copies of a hidden channel differ (the split's perturbation breaks their symmetry), which a
    plain w/r split would not do; a width that is not a multiple, or any other change, is refused."""
    from engine.models.gan import widen_generator

    tok = _tok().to_dict()
    base = dict(size=32, nz=8, cond_dim=4, tokenizer=tok, cond_norm=cond_norm, upsample=upsample)
    torch.manual_seed(0)
    narrow = Generator(GanConfig(**base, ngf=8))
    for m in narrow.modules():  # statistics and conditional scales away from their defaults
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, 0, 0.3)
    wide = Generator(GanConfig(**base, ngf=16))
    wide.load_state_dict(widen_generator(narrow, wide, seed=1))  # strict: every key, right shapes
    prompt = _tok().batch(CAPTIONS)
    z = torch.randn(5, 8)
    with torch.no_grad():
        for mode in ("eval", "train"):
            narrow.train(mode == "train"), wide.train(mode == "train")
            torch.testing.assert_close(wide(z, prompt), narrow(z, prompt), rtol=1e-4, atol=1e-5)
    first = next(m for m in wide.main if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    c = first.weight.shape[1] // 2  # ConvTranspose2d: (in, out, k, k); the copies: channels j and j + c
    assert torch.equal(first.weight[:, :c], first.weight[:, c:])
    opt = torch.optim.SGD(wide.parameters(), lr=0.1)
    wide.train()
    wide(z, prompt).square().mean().backward()
    opt.step()
    assert not torch.allclose(first.weight[:, :c], first.weight[:, c:])

    with pytest.raises(ValueError, match="ngf 12 is not a multiple of 8"):
        widen_generator(narrow, Generator(GanConfig(**base, ngf=12)))
    with pytest.raises(ValueError, match="differ in nz, not only ngf"):
        widen_generator(narrow, Generator(GanConfig(**{**base, "nz": 4}, ngf=16)))
