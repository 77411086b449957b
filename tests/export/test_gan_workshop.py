"""The GAN workshop end to end on tiny data: dataset folder, training, checkpoints, resume, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aigc_studio.runtime.image_generator import Controls, ImageGenerator
from aigc_studio.runtime.package import load_package
from export.data import images as data_images
from export.data.images import Item, SourceInfo, write_source
from export.onnx.gan import export_package, tiny_generator
from export.train import gan as train_gan

torch.set_num_threads(1)


def _disc(size: int, colour: tuple[int, int, int], r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    inside = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 < (r * size) ** 2
    img = np.zeros((size, size, 4), np.uint8)
    img[inside] = (*colour, 255)
    return img


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder in export.data.images' layout: coloured discs at 16 and 32 px, labelled by colour."""
    out = tmp_path_factory.mktemp("images")
    src = SourceInfo("discs", "test-discs", "none", "0", "CC0")
    colours = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220)}
    rendered = [(Item(id=f"{name}-{i}", label=f"{name} circle", tags=[name, "round"], group=name),
                 [_disc(s, rgb, 0.2 + 0.05 * i) for s in (16, 32)])
                for name, rgb in colours.items() for i in range(4)]
    write_source(src, iter(rendered), len(rendered), out, (16, 32))
    (out / "sources.json").write_text(json.dumps({"sources": {"discs": {"package": "test-discs"}}}))
    return out


def test_dataset_layout_and_loader(tiny_dataset: Path) -> None:
    meta = json.loads((tiny_dataset / "discs" / "meta" / "red-0.json").read_text())
    assert meta["label"] == "red circle" and meta["source"]["package"] == "test-discs" and meta["licence"] == "CC0"
    assert (tiny_dataset / "contact_sheet_discs.png").is_file()
    images, metas = data_images.load_dataset(tiny_dataset, ["discs"], 16, groups=["red", "blue"])
    assert images.shape == (8, 16, 16, 4) and {m["group"] for m in metas} == {"red", "blue"}
    with pytest.raises(data_images.DataError, match="missing"):
        data_images.load_dataset(tiny_dataset, ["nope"], 16)
    with pytest.raises(data_images.DataError, match="sizes"):
        data_images.load_dataset(tiny_dataset, ["discs"], 64)


def test_label_matching_and_svg_rendering() -> None:
    eb = {"artist": {"label": "artist", "tags": ["art"], "group": "people-body", "subgroup": "p", "emoji": "x"},
          "artist-dark-skin-tone": {"label": "artist: dark skin tone", "tags": ["art"], "group": "people-body",
                                    "subgroup": "p", "emoji": "y"}}
    assert data_images.label_slug("A button (blood type)") == "a-button-blood-type"
    assert data_images.match_emojibase("artist-dark", eb)["emoji"] == "y"
    assert data_images.match_emojibase("artist-medium-light", eb)["label"] == "artist medium light"
    assert data_images.match_emojibase("spaceship", eb) is None
    render = data_images.svg_renderer()
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
           '<rect x="0" y="0" width="5" height="10" fill="#ff0000"/></svg>')
    img = render(svg, 16)
    assert img.shape == (16, 16, 4)
    assert tuple(img[8, 2]) == (255, 0, 0, 255) and img[8, 13, 3] == 0
    assert render("<not svg", 16) is None


def test_skin_tone_variants_are_recognised() -> None:
    assert train_gan.is_skin_tone_variant({"label": "waving hand: medium skin tone"})
    assert train_gan.is_skin_tone_variant({"label": "kiss: woman, man, light skin tone, dark skin tone"})
    assert not train_gan.is_skin_tone_variant({"label": "waving hand"})
    assert not train_gan.is_skin_tone_variant({"label": "skin tone"})  # no modifier after a colon
    assert not train_gan.is_skin_tone_variant({})


def test_premultiplied_round_trip() -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rgba[..., 3] < 30, 0, rgba[..., 3])
    back = train_gan.to_rgba_uint8(train_gan.to_training_tensor(rgba))
    assert np.array_equal(back[..., 3], rgba[..., 3])
    visible = rgba[..., 3] > 0
    assert np.abs(back[visible][:, :3].astype(int) - rgba[visible][:, :3].astype(int)).max() <= 2
    assert not back[~visible][:, :3].any()


@pytest.mark.parametrize("arch", ["stylegan", "dcgan", "wgan-gp"])
def test_training_checkpoint_resume_and_export(arch: str, tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / arch
    small = ('{"z_dim": 16, "w_dim": 16, "mapping_layers": 2, "channel_base": 256, "channel_max": 16, '
             '"d_channel_base": 256, "d_channel_max": 16}'
             if arch == "stylegan" else '{"z_dim": 16, "ngf": 8, "ndf": 8}')
    common = ["--arch", arch, "--data", str(tiny_dataset), "--sources", "discs", "--size", "16", "--out", str(out),
              "--batch-size", "4", "--sample-every", "2", "--sample-seeds", "3", "--ckpt-every", "2",
              "--config", small, "--threads", "1", "--n-critic", "2", "--r1-every", "2"]
    if arch != "dcgan":  # the R1 and gradient penalties through the augmentation (double backward)
        common += ["--diffaug", "color,translation,cutout"]
    assert train_gan.main(common + ["--steps", "2"]) == 0
    ck = torch.load(out / "ckpt.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 2 and ck["arch"] == arch and ck["config"]["img_size"] == 16
    grid = Image.open(out / "samples" / "latest.png")
    rows = len(train_gan.SAMPLE_PROMPTS) if arch == "stylegan" else 1
    assert grid.mode == "RGBA" and grid.size == (3 * 16, rows * 16)
    assert (out / "samples" / "step_0000002.png").is_file()
    assert train_gan.main(common + ["--steps", "3", "--resume"]) == 0
    ck = torch.load(out / "ckpt.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 3 and len(json.loads(ck["history"])) == 2
    a, G, _ = train_gan.generator_from_checkpoint(out / "ckpt.pt")
    rep = export_package(a, G, tmp_path / "pkg", name=f"tiny-{arch}", ganspace_samples=200, directions=3,
                         verbose=False)
    assert rep["ok"] and rep["max_uint8_diff"] <= 1
    gen = ImageGenerator(load_package(tmp_path / "pkg"), device="cpu")
    assert gen.images([0, 1]).shape == (2, 16, 16, 4)


def test_export_refuses_a_graph_that_disagrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from export.onnx import gan as export_gan

    G = tiny_generator("dcgan")
    real_export = export_gan._export

    def broken_export(module, args, path, inputs, outputs):  # export a different generator
        real_export(tiny_generator("dcgan", seed=1), args, path, inputs, outputs)

    monkeypatch.setattr(export_gan, "_export", broken_export)
    with pytest.raises(SystemExit, match="validation failed"):
        export_package("dcgan", G, tmp_path / "bad", name="bad", verbose=False)
    assert not (tmp_path / "bad").exists()


def test_exported_manifest(tmp_path: Path) -> None:
    export_package("stylegan", tiny_generator("stylegan", True), tmp_path / "p", name="p", ganspace_samples=300,
                   directions=5, verbose=False, sources=[{"id": "x", "package": "pkg", "version": "1"}])
    m = load_package(tmp_path / "p").manifest
    assert m["kind"] == "image-gan" and m["architecture"] == "stylegan"
    assert m["config"]["num_ws"] == 6 and m["config"]["layer_resolutions"] == [4, 4, 8, 8, 16, 16]
    assert m["mapping"]["inputs"] == ["z", "c"] and m["synthesis"]["outputs"] == ["image"]
    assert set(m["files"]) == {"mapping.onnx", "synthesis.onnx", "latents.npz", "reference.npz"}
    assert m["validation"]["ok"] and m["sources"][0]["package"] == "pkg"
    with np.load(tmp_path / "p" / "latents.npz") as z:
        assert z["directions"].shape == (5, 16) and z["w_avg"].shape == (16,)
    _ = Controls  # the runtime's controls are exercised in tests/runtime/test_image_generator.py


def test_torchrun_two_processes_average_their_gradients(tiny_dataset: Path, tmp_path: Path) -> None:
    """Two CPU ranks on gloo: both run, their generators stay identical (checked by the trainer at every
    checkpoint), and rank 0 alone writes the checkpoint and the samples."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "export.train.gan", "--arch", "stylegan", "--data", str(tiny_dataset), "--sources", "discs",
           "--size", "16", "--out", str(out), "--batch-size", "2", "--steps", "2", "--ckpt-every", "1",
           "--sample-every", "2", "--sample-seeds", "2", "--threads", "1", "--r1-every", "1",
           "--config", '{"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 128, "channel_max": 8, '
                       '"d_channel_base": 128, "d_channel_max": 8}']
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("ranks 2 (batch 2 each)") == 1          # rank 0 alone reports
    ck = torch.load(out / "ckpt.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 2 and len(json.loads(ck["history"])) == 2
    assert (out / "samples" / "step_0000002.png").is_file()
