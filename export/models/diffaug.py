"""Differentiable augmentation for GAN training on small datasets (DiffAugment, Zhao et al. 2020).

With a few thousand images the discriminator memorises the real set within a few epochs and stops
telling the generator anything useful. DiffAugment applies the same random, differentiable transforms
to real and generated images every time the discriminator sees them (its own step, the generator's step
and the R1 penalty), so the discriminator cannot memorise, while the generator, whose gradients flow
through the transforms, still learns the untransformed distribution (the transforms are not leaked into
the samples because they are applied to both sides).

Images here are RGBA in [-1, 1] with RGB premultiplied by alpha, so "nothing" is -1 in every channel
(transparent black): translation pads with it and cutout fills with it; the colour transforms change RGB
only and keep the alpha channel.

    aug = DiffAugment("color,translation,cutout")
    d_out = D(aug(images, generator), c)
"""

from __future__ import annotations

import torch

POLICIES = ("color", "translation", "cutout")
EMPTY = -1.0  # transparent black, RGB premultiplied by alpha, in [-1, 1]


def parse_policy(policy: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}; known: {', '.join(POLICIES)}")
    return names


def _rand(n: int, g: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, generator=g, device="cpu").to(device)


def color(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness (±0.5), saturation (×0..2) and contrast (×0.5..1.5) of the RGB channels."""
    n, dev = x.shape[0], x.device
    rgb, alpha = x[:, :3], x[:, 3:]
    rgb = rgb + (_rand(n, g, dev) - 0.5)
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * (_rand(n, g, dev) * 2) + mean
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (_rand(n, g, dev) + 0.5) + mean
    return torch.cat([rgb, alpha], dim=1)


def translation(x: torch.Tensor, g: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in x and y; the uncovered border is empty."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=g).to(x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=g).to(x.device)
    iy = torch.arange(h, device=x.device)[None, :, None] - dy + 1   # source row, in the padded image
    ix = torch.arange(w, device=x.device)[None, None, :] - dx + 1
    iy, ix = iy.clamp(0, h + 1), ix.clamp(0, w + 1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=EMPTY)     # row/column 0 and h+1 are empty
    flat = padded.permute(0, 2, 3, 1)                                  # (N, H+2, W+2, C)
    out = flat[torch.arange(n, device=x.device)[:, None, None], iy.expand(n, h, w), ix.expand(n, h, w)]
    return out.permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, g: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Empty one square of `ratio` of the size per image, at a random place (it may overlap the edge)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=g).to(x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=g).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy).abs() < ch / 2) & ((xs - cx).abs() < cw / 2)   # (N, H, W)
    return torch.where(inside[:, None], torch.full_like(x, EMPTY), x)


_FUNCS = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment:
    """Callable applying the policy's transforms in order; an empty policy is the identity."""

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        self.policy = parse_policy(policy)

    def __bool__(self) -> bool:
        return bool(self.policy)

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        for name in self.policy:
            x = _FUNCS[name](x, g)
        return x
