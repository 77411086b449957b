"""A StyleGAN2-style generator and discriminator for small RGBA images, readable from top to bottom.

Generator = `MappingNetwork` (z [, condition] -> w) + `SynthesisNetwork` (one w per style layer -> image),
exported as two graphs so that truncation, style mixing, directions and interpolation happen in numpy
between them (aigc_studio/core/latents.py).

- Equalised learning rate (weights scaled at run time), a mapping network with a 100x lower learning rate.
- Modulated and demodulated 3x3 convolutions. The modulation is applied to the activations (scale the
  input channels by the style, convolve with the shared weight, scale the output channels by the
  demodulation coefficients): StyleGAN2's `fused_modconv=False` path. It is exactly the same maths as
  modulating the weight, uses only standard ONNX ops (Mul, Conv) and keeps the batch axis dynamic,
  which the grouped-convolution path cannot (its group count would be the batch size).
- Per-layer noise inputs with a learned strength. Training draws fresh noise; the exported graph uses
  fixed noise buffers ("const" noise), so a seed always gives the same pixels.
- Text conditioning: the condition is `core.latents.condition_features(label + tags)`, a hashed
  bag of words; the mapping network embeds it and concatenates it with z; the discriminator uses it as a
  projection (Miyato and Koyama 2018). Zeros mean "no condition" (trained with condition dropout).
- Discriminator: residual blocks, minibatch standard deviation, R1 penalty on reals (lazy, every few steps).
- Images are 4 channels, RGB premultiplied by alpha, in [-1, 1] (invisible colours cannot matter).

Style layer indices follow StyleGAN2: every conv has its own w, and the toRGB layer of a block shares the
w of the next block's first conv; a 64x64 model has 10 style layers. `layer_resolutions` gives the
resolution of each (two per level, as in the paper), which core.latents uses for coarse/middle/fine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------- building blocks


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored N(0, 1/lr_mul²), scaled at run time."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.activation else x


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1 / math.sqrt(in_ch * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class ModulatedConv(nn.Module):
    """3x3 (or 1x1) convolution whose input channels are scaled by a style from w, then demodulated
    so each output channel has unit expected variance."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)  # style starts at 1: the plain conv
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate = demodulate
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)                                           # (B, I)
        weight = self.weight * self.scale                            # (O, I, k, k)
        x = x * s[:, :, None, None]                                  # (B, I, H, W)
        x = F.conv2d(x, weight, padding=self.padding)                # (B, O, H, W)
        if self.demodulate:
            # d[b, o] = 1 / sqrt(sum_i,k (weight[o, i, k] * s[b, i])^2)
            wsq = weight.square().sum(dim=(2, 3))                    # (O, I)
            d = torch.rsqrt(s.square() @ wsq.t() + 1e-8)             # (B, O)
            x = x * d[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """Modulated conv -> noise -> bias -> leaky ReLU (optionally upsampling x2 first)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool) -> None:
        super().__init__()
        self.up = up
        self.conv = ModulatedConv(in_ch, out_ch, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        # Fixed noise for export and deterministic sampling ("const" noise mode).
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.conv(x, w)                                          # (B, O, H, W)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device)
        else:
            noise = self.noise_const
        x = x + noise * self.noise_strength
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(in_ch, out_ch, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


# ----------------------------------------------------------------------------- config


@dataclass
class StyleGANConfig:
    img_size: int = 64            # output resolution (a power of two, >= 8)
    channels: int = 4             # RGBA, RGB premultiplied by alpha
    z_dim: int = 128              # latent z
    w_dim: int = 128              # intermediate latent w
    mapping_layers: int = 4       # MLP depth of the mapping network
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network
    cond_features: int = 0        # width of the text features (core.latents.CONDITION_DIM); 0 = unconditional
    cond_embed: int = 64          # embedding of the text features
    channel_base: int = 4096      # channels at resolution r: min(channel_max, channel_base // r)
    channel_max: int = 256
    d_channel_base: int = 4096    # the same for the discriminator
    d_channel_max: int = 256
    mbstd_group: int = 4          # minibatch standard-deviation group size
    w_avg_beta: float = 0.995     # decay of the tracked average w

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def log2(self) -> int:
        n = int(math.log2(self.img_size))
        assert 2**n == self.img_size and n >= 3, "img_size must be a power of two >= 8"
        return n

    @property
    def num_ws(self) -> int:
        return 2 * self.log2 - 2

    def channels_at(self, res: int, discriminator: bool = False) -> int:
        base, top = (self.d_channel_base, self.d_channel_max) if discriminator else (self.channel_base,
                                                                                       self.channel_max)
        return min(top, base // res)

    def layer_resolutions(self) -> list[int]:
        """Resolution of each style layer as in the StyleGAN paper (two per level)."""
        return [2 ** (2 + i // 2) for i in range(self.num_ws)]


# ----------------------------------------------------------------------------- generator


class MappingNetwork(nn.Module):
    """z (B, Z) [, c (B, C)] -> w (B, W). Tracks the average w for truncation."""

    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = EqualLinear(cfg.cond_features, cfg.cond_embed) if cfg.cond_features else None
        in_dim = cfg.z_dim + (cfg.cond_embed if cfg.cond_features else 0)
        dims = [in_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=cfg.mapping_lr_mul, activation=True)
                                    for a, b in zip(dims[:-1], dims[1:]))
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, update_w_avg: bool = False) -> torch.Tensor:
        x = normalize_2nd_moment(z)                                  # (B, Z)
        if self.embed is not None:
            if c is None:
                c = z.new_zeros(z.shape[0], self.cfg.cond_features)
            # Zero features (no condition) embed to the bias only; normalising keeps the scales equal.
            x = torch.cat([x, normalize_2nd_moment(self.embed(c))], dim=1)  # (B, Z + E)
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.cfg.w_avg_beta))
        return x                                                     # (B, W)


class SynthesisNetwork(nn.Module):
    """ws (B, L, W) -> image (B, C, H, W) in [-1, 1]; skip architecture (toRGB at every level, summed)."""

    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch4 = cfg.channels_at(4)
        self.const = nn.Parameter(torch.randn(1, ch4, 4, 4))
        self.convs = nn.ModuleList([StyleLayer(ch4, ch4, cfg.w_dim, 4, up=False)])
        self.torgbs = nn.ModuleList([ToRGB(ch4, cfg.channels, cfg.w_dim)])
        for level in range(3, cfg.log2 + 1):
            res = 2**level
            cin, cout = cfg.channels_at(res // 2), cfg.channels_at(res)
            self.convs.append(StyleLayer(cin, cout, cfg.w_dim, res, up=True))
            self.convs.append(StyleLayer(cout, cout, cfg.w_dim, res, up=False))
            self.torgbs.append(ToRGB(cout, cfg.channels, cfg.w_dim))

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.const.expand(ws.shape[0], -1, -1, -1)               # (B, C4, 4, 4)
        x = self.convs[0](x, ws[:, 0], noise_mode)
        img = self.torgbs[0](x, ws[:, 1])                            # (B, 4, 4, 4)
        for i in range(1, len(self.torgbs)):
            x = self.convs[2 * i - 1](x, ws[:, 2 * i - 1], noise_mode)   # upsample x2
            x = self.convs[2 * i](x, ws[:, 2 * i], noise_mode)
            img = F.interpolate(img, scale_factor=2.0, mode="bilinear", align_corners=False)
            img = img + self.torgbs[i](x, ws[:, 2 * i + 1])          # (B, 4, res, res)
        return img


class Generator(nn.Module):
    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, mixing_prob: float = 0.0,
                noise_mode: str = "random", update_w_avg: bool = False) -> torch.Tensor:
        w = self.mapping(z, c, update_w_avg=update_w_avg)           # (B, W)
        ws = w[:, None].repeat(1, self.cfg.num_ws, 1)                # (B, L, W)
        if mixing_prob > 0 and torch.rand(()) < mixing_prob:
            # Style-mixing regularisation: from a random layer on, use the w of another z.
            cut = int(torch.randint(1, self.cfg.num_ws, ()))
            w2 = self.mapping(torch.randn_like(z), c)
            ws[:, cut:] = w2[:, None]
        return self.synthesis(ws, noise_mode)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ----------------------------------------------------------------------------- discriminator


class DBlock(nn.Module):
    """Two 3x3 convs and a 2x average-pool, with a 1x1 residual skip (scaled by 1/sqrt 2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3)
        self.conv1 = EqualConv2d(cin, cout, 3)
        self.skip = EqualConv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(self.skip(x), 2)
        x = F.leaky_relu(self.conv0(x), 0.2) * math.sqrt(2)
        x = F.avg_pool2d(F.leaky_relu(self.conv1(x), 0.2) * math.sqrt(2), 2)
        return (x + y) / math.sqrt(2)


class Discriminator(nn.Module):
    """image (B, C, H, W) [, c] -> score (B,). With a condition, score += <embed(c), features>."""

    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = lambda r: cfg.channels_at(r, discriminator=True)  # noqa: E731
        self.fromrgb = EqualConv2d(cfg.channels, ch(cfg.img_size), 1)
        self.blocks = nn.ModuleList(DBlock(ch(2**lv), ch(2 ** (lv - 1))) for lv in range(cfg.log2, 2, -1))
        c4 = ch(4)
        self.conv = EqualConv2d(c4 + 1, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)
        self.cond = EqualLinear(cfg.cond_features, c4) if cfg.cond_features else None

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.cfg.mbstd_group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)                                # (G, B/G, C, H, W)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/G,)
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)                # (B, 1, H, W)
        return torch.cat([x, y], dim=1)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = F.leaky_relu(self.fromrgb(img), 0.2) * math.sqrt(2)
        for block in self.blocks:
            x = block(x)                                             # halves the resolution
        x = F.leaky_relu(self.conv(self.minibatch_std(x)), 0.2) * math.sqrt(2)  # (B, C4, 4, 4)
        h = self.fc(x.flatten(1))                                    # (B, C4)
        score = self.out(h).squeeze(1)                               # (B,)
        if self.cond is not None and c is not None:
            score = score + (self.cond(c) * h).sum(1) / math.sqrt(h.shape[1])
        return score


# ----------------------------------------------------------------------------- losses


def d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic loss for the discriminator: softplus(D(fake)) + softplus(-D(real))."""
    return F.softplus(d_fake).mean() + F.softplus(-d_real).mean()


def g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-d_fake).mean()


def r1_penalty(D: Discriminator, real: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """E ||∇_x D(x)||² on real images (Mescheder et al. 2018); the caller multiplies by γ/2."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real, c).sum(), real, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()
