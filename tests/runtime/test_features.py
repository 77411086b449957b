"""Domain FID/KID through an `image-features` package built by export/eval/fid.py from a tiny classifier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aigc_studio.runtime.features import FeatureExtractor, from_rgba_uint8
from aigc_studio.runtime.image_generator import to_rgba_uint8
from aigc_studio.runtime.package import PackageError, load_package, write_package


def _images(rng: np.random.Generator, n: int, size: int = 16) -> np.ndarray:
    """Coloured discs on transparent backgrounds, with random centre, radius and colour."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size, 4), np.uint8)
    for i in range(n):
        cx, cy, r = rng.uniform(4, size - 4, 2).tolist() + [rng.uniform(2, size / 3)]
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        out[i][disc] = [*rng.integers(0, 256, 3), 255]
    return out


@pytest.fixture(scope="module")
def features_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from export.eval.fid import FeatureNet, FeatureNetConfig, export_package

    torch.manual_seed(0)
    net = FeatureNet(FeatureNetConfig(img_size=16, width=4, stages=2, feature_dim=8, n_classes=3)).eval()
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("features") / "tiny-features"
    export_package(net, out, name="tiny-features", classes=["a", "b", "c"], reference=_images(rng, 120),
                   heldout=_images(rng, 60), extra={"licence": "test"}, verbose=False,
                   labels=[["red heart", 0], ["cat face: smiling", 1], ["star", 2]])
    return out


@pytest.fixture(scope="module")
def fx(features_package: Path) -> FeatureExtractor:
    return FeatureExtractor(load_package(features_package), threads=1)


def test_from_rgba_uint8_inverts_to_rgba_uint8() -> None:
    imgs = _images(np.random.default_rng(1), 8)
    assert np.array_equal(to_rgba_uint8(from_rgba_uint8(imgs)), imgs)
    with pytest.raises(ValueError, match="uint8 RGBA"):
        from_rgba_uint8(imgs[..., :3])


def test_floor_is_stored_and_reproducible(fx: FeatureExtractor) -> None:
    floor = fx.floor
    assert floor["samples"] == 60 and floor["reference_samples"] == 120
    again = fx.heldout_scores()
    assert again.fid == pytest.approx(floor["fid"]) and again.kid == pytest.approx(floor["kid"])


def test_real_images_score_better_than_other_images(fx: FeatureExtractor) -> None:
    rng = np.random.default_rng(5)
    real_like = fx.scores(fx.features(_images(rng, 60)))
    noise = fx.scores(fx.features(rng.integers(0, 256, (60, 16, 16, 4), dtype=np.uint8)))
    blank = fx.scores(fx.features(np.zeros((60, 16, 16, 4), np.uint8) + np.uint8(255)))
    assert real_like.fid < noise.fid and real_like.fid < blank.fid
    assert real_like.kid < noise.kid
    assert real_like.samples == 60 and real_like.reference_samples == 120


def test_features_are_deterministic_and_batch_independent(fx: FeatureExtractor) -> None:
    imgs = _images(np.random.default_rng(2), 10)
    a = fx.features(imgs, batch=3)
    b = fx.features(imgs, batch=10)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.shape == (10, 8)
    with pytest.raises(ValueError, match="16x16"):
        fx.features(np.zeros((2, 32, 32, 4), np.uint8))


def test_broken_feature_packages(features_package: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(features_package, bad)
    m = json.loads((bad / "manifest.json").read_text())
    base = {k: v for k, v in m.items() if k not in ("files", "format_version")}
    np.savez(bad / "reference.npz", reference=np.full((4, 8), np.nan, np.float32), heldout=np.zeros((4, 8), np.float32))
    write_package(bad, base)
    with pytest.raises(PackageError, match="'reference' must be finite"):
        FeatureExtractor(load_package(bad))
    # write_package checks that what it wrote loads
    with pytest.raises(PackageError, match="'reference' is missing"):
        write_package(bad, {k: v for k, v in base.items() if k != "reference"})
    with pytest.raises(PackageError, match="feature_dim"):
        write_package(bad, {**base, "config": {"img_size": 16}})
    with pytest.raises(PackageError, match="features.inputs"):
        write_package(bad, {**base, "features": {"variants": {"features": "features.onnx"}}})
    with pytest.raises(PackageError, match="graph 'features' is not declared"):
        write_package(bad, {**base, "graphs": {"variants": {"other": "features.onnx"}}})


def test_cli_eval_fid(features_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from aigc_studio.cli import main
    from export.onnx.gan import export_package, tiny_generator

    models = tmp_path / "models"
    shutil.copytree(features_package, models / "tiny-features")
    export_package("stylegan", tiny_generator("stylegan", True), models / "tiny-gan", name="tiny-gan",
                   ganspace_samples=200, directions=2, verbose=False)
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(models))
    args = ["eval", "fid", "--model", "tiny-gan", "--features", "tiny-features", "--samples", "40", "--threads", "1"]
    assert main([*args, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["samples"] == 40 and rec["reference_samples"] == 120 and rec["fid"] > 0
    assert rec["floor"]["samples"] == 60
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == rec["fid"]          # deterministic: seeds 0..39
    assert main([*args, "--text", "red heart", "--truncation", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "domain FID" in out and "40 generated images" in out and "floor, held-out real images" in out
    assert main([*args, "--samples", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_labels_and_logits(fx: FeatureExtractor) -> None:
    assert fx.labels() == [("red heart", 0), ("cat face: smiling", 1), ("star", 2)]
    assert fx.classes == ["a", "b", "c"]
    assert fx.logits(_images(np.random.default_rng(3), 5)).shape == (5, 3)


def test_cli_eval_condition(features_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from aigc_studio.cli import main
    from export.onnx.gan import export_package, tiny_generator

    models = tmp_path / "models"
    shutil.copytree(features_package, models / "tiny-features")
    for key, arch, cond in (("tiny-gan", "stylegan", True), ("tiny-dc", "dcgan", False)):
        export_package(arch, tiny_generator(arch, cond), models / key, name=key, ganspace_samples=200,
                       directions=2, verbose=False)
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(models))
    args = ["eval", "condition", "--model", "tiny-gan", "--features", "tiny-features", "--seeds", "3"]
    assert main([*args, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["labels"] == 3 and rec["seeds"] == 3 and rec["classes"] == 3
    for mode in ("with_text", "without_text"):
        assert 0 <= rec[mode]["top1"] <= rec[mode]["top5"] <= 1
    assert main([*args, "--max-labels", "1"]) == 0
    assert "1 held-out emoji labels x 3 seeds" in capsys.readouterr().out
    assert main(["eval", "condition", "--model", "tiny-dc", "--features", "tiny-features"]) == 2
    assert "not conditioned on text" in capsys.readouterr().err


def test_labels_naming_an_unknown_class_are_refused(features_package: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(features_package, bad)
    (bad / "labels.json").write_text(json.dumps({"heldout": [["star", 7]]}))
    m = json.loads((bad / "manifest.json").read_text())
    write_package(bad, {k: v for k, v in m.items() if k not in ("files", "format_version")})
    with pytest.raises(PackageError, match="outside 0..2"):
        FeatureExtractor(load_package(bad)).labels()


def test_cli_refuses_a_feature_space_of_another_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    from aigc_studio.cli import main
    from export.eval.fid import FeatureNet, FeatureNetConfig, export_package
    from export.onnx.gan import export_package as export_gan_package
    from export.onnx.gan import tiny_generator

    models = tmp_path / "models"
    torch.manual_seed(0)
    net = FeatureNet(FeatureNetConfig(img_size=32, width=4, stages=2, feature_dim=8, n_classes=2)).eval()
    rng = np.random.default_rng(0)
    export_package(net, models / "f32", name="f32", classes=["a", "b"], reference=_images(rng, 20, 32),
                   heldout=_images(rng, 10, 32), extra={}, verbose=False)
    export_gan_package("stylegan", tiny_generator("stylegan", True), models / "g16", name="g16",
                       ganspace_samples=100, directions=2, verbose=False)
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(models))
    assert main(["eval", "fid", "--model", "g16", "--features", "f32"]) == 2
    assert "makes 16px images; 'f32' scores 32px images" in capsys.readouterr().err
    assert main(["eval", "condition", "--model", "g16", "--features", "f32"]) == 2
    assert "makes 16px images" in capsys.readouterr().err
