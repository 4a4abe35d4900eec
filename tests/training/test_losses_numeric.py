"""Both losses against values computed by hand from the seed document's formulas."""
from __future__ import annotations

import math

import pytest
import torch

from engine.training.losses import d_loss, g_loss, kl_divergence, kl_weight, reconstruction, vae_loss


def test_bce_gan_losses_match_the_formulas():
    # D(x) = sigmoid(logit): real logits 0, ln 3 -> D = 0.5, 0.75; fake logits 0, -ln 3 -> 0.5, 0.25
    real = torch.tensor([0.0, math.log(3)])
    fake = torch.tensor([0.0, -math.log(3)])
    # L_D = -mean(log D(x)) - mean(log(1 - D(G(z))))
    expected_d = -(math.log(0.5) + math.log(0.75)) / 2 - (math.log(0.5) + math.log(0.75)) / 2
    # L_G = -mean(log D(G(z)))
    expected_g = -(math.log(0.5) + math.log(0.25)) / 2
    assert d_loss(real, fake).item() == pytest.approx(expected_d, abs=1e-6)  # 0.980829
    assert g_loss(fake).item() == pytest.approx(expected_g, abs=1e-6)  # 1.039721
    assert expected_d == pytest.approx(0.980829, abs=1e-6)


def test_bce_is_stable_for_confident_logits():
    # log(1 - sigmoid(40)) underflows in float32 when written naively; logsigmoid does not
    assert d_loss(torch.tensor([40.0]), torch.tensor([40.0])).item() == pytest.approx(40.0, rel=1e-5)


def test_hinge_losses():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])
    assert d_loss(real, fake, "hinge").item() == pytest.approx((0.5 + 0.0) / 2 + (0.0 + 1.5) / 2)
    assert g_loss(fake, "hinge").item() == pytest.approx(0.75)
    with pytest.raises(ValueError):
        d_loss(real, fake, "wasserstein")


def test_vae_loss_is_negative_elbo():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    # KL(N(mu, s^2) || N(0, 1)) = -1/2 sum(1 + log s^2 - mu^2 - s^2)
    kl = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2) - 0 - 2))
    assert kl_divergence(mu, logvar).item() == pytest.approx(kl, abs=1e-6)  # 0.653426
    recon, x = torch.tensor([[0.5, 0.9]]), torch.tensor([[1.0, 0.0]])
    rec = -math.log(0.5) - math.log(0.1)  # -log p(x|z), Bernoulli
    assert reconstruction(recon, x).item() == pytest.approx(rec, abs=1e-5)
    assert reconstruction(recon, x, "mse").item() == pytest.approx(0.5 * (0.25 + 0.81), abs=1e-6)
    total, r, k = vae_loss(recon, x, mu, logvar, beta=0.5)
    assert total.item() == pytest.approx(rec + 0.5 * kl, abs=1e-5)
    assert (r.item(), k.item()) == (pytest.approx(rec, abs=1e-5), pytest.approx(kl, abs=1e-6))


def test_kl_warmup_is_linear_then_flat():
    assert [kl_weight(s, 2.0, 100) for s in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]
    assert kl_weight(0, 2.0, 0) == 2.0
