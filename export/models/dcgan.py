"""DCGAN (Radford et al. 2016) for small RGBA images, with two training losses:

- `loss="ns"`: the seed's formula, min_G max_D E[log D(x)] + E[log(1 − D(G(z)))], trained with the
  non-saturating generator loss −log D(G(z)) (softplus form, numerically safe);
- `loss="wgan-gp"`: the Wasserstein critic with gradient penalty (Gulrajani et al. 2017), the seed's
  "WGAN improves stability". The critic must not use batch norm (the penalty is per sample), so its
  config switches the discriminator's normalisation to layer norm (`d_norm="layer"`).

Generator: z (B, Z) -> transposed convolutions with batch norm and ReLU, doubling the resolution from
4x4, -> tanh: an image (B, C, H, W) in [-1, 1], RGB premultiplied by alpha (as the StyleGAN model).
Exported as one graph `generator.onnx` (z -> image); batch norm is folded in eval mode.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DCGANConfig:
    img_size: int = 64        # output resolution (a power of two, >= 8)
    channels: int = 4         # RGBA, RGB premultiplied by alpha
    z_dim: int = 100          # latent z, as in the DCGAN paper
    ngf: int = 64             # generator width at the last layer (doubles toward 4x4)
    ndf: int = 64             # discriminator width at the first layer
    max_ch: int = 512         # width cap
    loss: str = "ns"          # "ns" (non-saturating GAN loss) or "wgan-gp"
    d_norm: str = "batch"     # "batch", "layer" (required by wgan-gp) or "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def log2(self) -> int:
        n = int(math.log2(self.img_size))
        assert 2**n == self.img_size and n >= 3, "img_size must be a power of two >= 8"
        return n

    def validated(self) -> DCGANConfig:
        if self.loss not in ("ns", "wgan-gp"):
            raise ValueError(f"loss must be 'ns' or 'wgan-gp', not {self.loss!r}")
        if self.d_norm not in ("batch", "layer", "none"):
            raise ValueError(f"d_norm must be batch, layer or none, not {self.d_norm!r}")
        if self.loss == "wgan-gp" and self.d_norm == "batch":
            raise ValueError("wgan-gp needs a critic without batch norm: use d_norm='layer' or 'none'")
        return self


def init_weights(m: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) for convolutions, N(1, 0.02) for norm scales."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__()
        self.cfg = cfg.validated()
        n_up = cfg.log2 - 2                                          # 4x4 -> img_size
        chans = [min(cfg.max_ch, cfg.ngf * 2 ** (n_up - 1 - i)) for i in range(n_up)]
        layers: list[nn.Module] = [nn.ConvTranspose2d(cfg.z_dim, chans[0], 4, 1, 0, bias=False),  # (B, C0, 4, 4)
                                   nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])                         # (B, C, H, W)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class Discriminator(nn.Module):
    """image (B, C, H, W) -> logit or critic score (B,)."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__()
        self.cfg = cfg.validated()
        n_down = cfg.log2 - 2
        chans = [min(cfg.max_ch, cfg.ndf * 2**i) for i in range(n_down)]
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, chans[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=cfg.d_norm == "none"), self._norm(b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(chans[-1], 1, 4, 1, 0)]                 # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def _norm(self, ch: int) -> nn.Module:
        if self.cfg.d_norm == "batch":
            return nn.BatchNorm2d(ch)
        if self.cfg.d_norm == "layer":
            return nn.GroupNorm(1, ch)  # layer norm over (C, H, W), per sample
        return nn.Identity()

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img).flatten()


# ----------------------------------------------------------------------------- losses


def d_loss_ns(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """−log D(x) − log(1 − D(G(z))) with D = sigmoid(logit)."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def g_loss_ns(d_fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss −log D(G(z))."""
    return F.softplus(-d_fake).mean()


def gradient_penalty(D: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E (||∇ D(x̂)||₂ − 1)² at random points x̂ between real and fake images."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


def d_loss_wgan(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return d_fake.mean() - d_real.mean()


def g_loss_wgan(d_fake: torch.Tensor) -> torch.Tensor:
    return -d_fake.mean()
