"""DiffAugment: the transforms do what they say on RGBA-premultiplied images and let gradients through."""

from __future__ import annotations

import pytest
import torch

from export.models.diffaug import EMPTY, DiffAugment, color, cutout, parse_policy, translation


def _dot_images(n: int = 6, size: int = 16) -> torch.Tensor:
    """Transparent images (-1 everywhere) with one opaque white pixel in the middle."""
    x = torch.full((n, 4, size, size), EMPTY)
    x[:, :, size // 2, size // 2] = 1.0
    return x


def test_policy_parsing_and_identity() -> None:
    assert parse_policy(" color, cutout ") == ("color", "cutout")
    with pytest.raises(ValueError, match="unknown DiffAugment policy blur"):
        parse_policy("color,blur")
    aug = DiffAugment("")
    x = torch.randn(2, 4, 8, 8)
    assert not aug and torch.equal(aug(x), x)
    assert DiffAugment("translation")


def test_translation_moves_content_and_pads_with_empty() -> None:
    g = torch.Generator().manual_seed(1)
    x = _dot_images(n=32)
    y = translation(x, g, ratio=0.25)
    assert y.shape == x.shape
    shifts = set()
    for img in y:
        opaque = (img[3] > 0).nonzero()
        assert len(opaque) == 1                                    # the dot moved, nothing else appeared
        dy, dx = (opaque[0] - 8).tolist()
        assert abs(dy) <= 4 and abs(dx) <= 4
        shifts.add((dy, dx))
        assert torch.equal(img[:, 8 + dy, 8 + dx], torch.ones(4))
        assert (img[3] == EMPTY).sum() == 16 * 16 - 1
    assert len(shifts) > 5                                         # random per image
    # a full image shifted right by the maximum leaves an empty (transparent) border column
    full = torch.ones(64, 4, 16, 16)
    moved = translation(full, torch.Generator().manual_seed(0), ratio=0.25)
    assert (moved == EMPTY).any() and set(moved.unique().tolist()) <= {EMPTY, 1.0}


def test_cutout_empties_one_square() -> None:
    x = torch.ones(8, 4, 16, 16)
    y = cutout(x, torch.Generator().manual_seed(0), ratio=0.5)
    for img in y:
        hole = (img[3] == EMPTY)
        assert torch.equal(hole, (img == EMPTY).all(0))            # all four channels together
        rows, cols = hole.any(1).sum().item(), hole.any(0).sum().item()
        assert 0 < hole.sum() <= 64 and rows <= 8 and cols <= 8
        assert hole.sum() == rows * cols                           # a rectangle (clipped at the edge)


def test_color_changes_rgb_only_and_passes_gradients() -> None:
    x = torch.rand(4, 4, 8, 8).mul(2).sub(1).requires_grad_(True)
    y = color(x, torch.Generator().manual_seed(0))
    assert torch.equal(y[:, 3], x[:, 3])
    assert not torch.allclose(y[:, :3], x[:, :3])
    full = DiffAugment("color,translation,cutout")(x, torch.Generator().manual_seed(0))
    full.square().sum().backward()
    assert x.grad is not None and x.grad[:, :3].abs().sum() > 0 and torch.isfinite(x.grad).all()
