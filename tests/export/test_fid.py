"""The classifier behind domain FID/KID: the split, the classes, the augmentation, and learning."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from export.eval.fid import FeatureNet, FeatureNetConfig, augment, class_names, split_by_label, train  # noqa: E402


def _meta(label: str, group: str = "g", subgroup: str | None = "s") -> dict:
    return {"label": label, "group": group, "subgroup": subgroup}


def test_split_keeps_both_renderings_of_an_emoji_together_and_is_stable() -> None:
    metas = [_meta(f"emoji {i}") for i in range(200)]
    held = split_by_label(metas + metas)
    assert (held[:200] == held[200:]).all()
    assert 20 <= held[:200].sum() <= 60                       # about one in five
    assert (split_by_label(metas) == held[:200]).all()


def test_rare_subgroups_fall_back_to_their_group() -> None:
    metas = [_meta(f"a{i}", "animals", "mammal") for i in range(12)] + [_meta("b", "animals", "bird")]
    metas.append(_meta("c", "unmatched", None))
    names = class_names(metas)
    assert names[:12] == ["mammal"] * 12 and names[12] == "animals" and names[13] == "unmatched"


def test_augment_keeps_shape_and_fills_with_transparency() -> None:
    x = torch.ones(6, 4, 8, 8)
    y = augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert set(torch.unique(y).tolist()) <= {-1.0, 1.0}


def test_classifier_learns_a_separable_task() -> None:
    torch.manual_seed(0)
    n = 64
    x = -torch.ones(n, 4, 16, 16)
    y = torch.arange(n) % 2
    x[y == 0, :, :8] = 1.0            # class 0: opaque top half; class 1: opaque bottom half
    x[y == 1, :, 8:] = 1.0
    net = train(x, y, FeatureNetConfig(img_size=16, width=4, stages=2, feature_dim=8, n_classes=2), epochs=8,
                batch=16, log=lambda *_: None)
    with torch.no_grad():
        feats, logits = net(x)
    assert feats.shape == (n, 8)
    assert (logits.argmax(1) == y).float().mean() > 0.9
    assert isinstance(net, FeatureNet) and not net.training
