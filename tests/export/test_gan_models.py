"""GAN model files: shapes, the modulated convolution's maths, losses and penalties (tiny, CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from export.models import dcgan as D
from export.models import stylegan as S

torch.set_num_threads(1)


def _tiny_style(cond: int = 32) -> S.StyleGANConfig:
    return S.StyleGANConfig(img_size=16, z_dim=16, w_dim=16, mapping_layers=2, cond_features=cond, cond_embed=8,
                            channel_base=256, channel_max=16, d_channel_base=256, d_channel_max=16)


def test_stylegan_shapes_and_layers() -> None:
    cfg = _tiny_style()
    assert cfg.num_ws == 6 and cfg.layer_resolutions() == [4, 4, 8, 8, 16, 16]
    assert S.StyleGANConfig().num_ws == 10  # 64x64
    G, Dn = S.Generator(cfg), S.Discriminator(cfg)
    z, c = torch.randn(4, 16), torch.randn(4, 32)
    img = G(z, c, mixing_prob=1.0, update_w_avg=True)
    assert img.shape == (4, 4, 16, 16) and G.mapping.w_avg.abs().sum() > 0
    assert Dn(img, c).shape == (4,) and Dn(img).shape == (4,)
    ws = G.mapping(z, c)[:, None].repeat(1, cfg.num_ws, 1)
    a, b = G.synthesis(ws, "const"), G.synthesis(ws, "const")
    assert torch.equal(a, b)  # const noise: deterministic


def test_modulated_conv_equals_modulating_the_weight() -> None:
    torch.manual_seed(0)
    conv = S.ModulatedConv(6, 5, 3, w_dim=8)
    x, w = torch.randn(2, 6, 7, 7), torch.randn(2, 8)
    got = conv(x, w)
    s = conv.affine(w)
    for b in range(2):  # StyleGAN2's formula: w' = w * s, w'' = w' / ||w'||
        wt = conv.weight * conv.scale * s[b][None, :, None, None]
        wt = wt * torch.rsqrt(wt.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        torch.testing.assert_close(got[b:b + 1], F.conv2d(x[b:b + 1], wt, padding=1), atol=1e-5, rtol=1e-4)


def test_condition_changes_w_and_zero_condition_is_unconditional() -> None:
    G = S.Generator(_tiny_style())
    z = torch.randn(2, 16)
    assert not torch.allclose(G.mapping(z, torch.randn(2, 32)), G.mapping(z, torch.randn(2, 32)))
    torch.testing.assert_close(G.mapping(z, None), G.mapping(z, torch.zeros(2, 32)))


def test_stylegan_losses_and_r1() -> None:
    cfg = _tiny_style(cond=0)
    Dn = S.Discriminator(cfg)
    real = torch.randn(4, 4, 16, 16)
    r1 = S.r1_penalty(Dn, real, None)
    assert r1.item() > 0 and r1.requires_grad
    loss = S.d_loss(Dn(real), Dn(real.flip(3)))
    loss.backward()
    assert S.g_loss(torch.zeros(3)).item() == pytest.approx(0.6931, abs=1e-3)


@pytest.mark.parametrize("size", [16, 32])
def test_dcgan_shapes_and_losses(size: int) -> None:
    cfg = D.DCGANConfig(img_size=size, z_dim=8, ngf=8, ndf=8)
    G, Dn = D.Generator(cfg), D.Discriminator(cfg)
    img = G(torch.randn(3, 8))
    assert img.shape == (3, 4, size, size) and img.abs().max() <= 1
    assert Dn(img).shape == (3,)
    assert D.d_loss_ns(torch.zeros(2), torch.zeros(2)).item() == pytest.approx(2 * 0.6931, abs=1e-3)
    assert D.g_loss_ns(torch.full((2,), 20.0)).item() < 1e-6


def test_wgan_gp_mode() -> None:
    with pytest.raises(ValueError, match="batch norm"):
        D.DCGANConfig(loss="wgan-gp", d_norm="batch").validated()
    with pytest.raises(ValueError, match="loss"):
        D.DCGANConfig(loss="hinge").validated()
    cfg = D.DCGANConfig(img_size=16, z_dim=8, ngf=8, ndf=8, loss="wgan-gp", d_norm="layer")
    critic = D.Discriminator(cfg)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    real, fake = torch.randn(4, 4, 16, 16), torch.randn(4, 4, 16, 16)
    gp = D.gradient_penalty(critic, real, fake)
    assert gp.item() >= 0 and gp.requires_grad
    assert D.d_loss_wgan(torch.ones(2), torch.zeros(2)).item() == -1.0
