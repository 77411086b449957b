"""ImageGenerator on tiny packages built by the workshop's export code (built once per module)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aigc_studio.core import latents as L
from aigc_studio.core.png_record import RECORD_KEY, RecordError, read_record, read_text
from aigc_studio.runtime.image_generator import Controls, ImageGenerator, to_rgba_uint8
from aigc_studio.runtime.package import PackageError, load_package, write_package


@pytest.fixture(scope="module")
def packages(tiny_image_packages: dict[str, Path]) -> dict[str, Path]:
    return tiny_image_packages  # built once per session in tests/conftest.py (the services' tests use them too)


@pytest.fixture(scope="module")
def cond(packages: dict[str, Path]) -> ImageGenerator:
    return ImageGenerator(load_package(packages["cond"]), device="cpu", threads=1)


@pytest.fixture(scope="module")
def uncond(packages: dict[str, Path]) -> ImageGenerator:
    return ImageGenerator(load_package(packages["uncond"]), device="cpu", threads=1)


@pytest.fixture(scope="module")
def dcgan(packages: dict[str, Path]) -> ImageGenerator:
    return ImageGenerator(load_package(packages["dcgan"]), device="cpu", threads=1)


def test_reference_parity_without_torch(packages: dict[str, Path], cond: ImageGenerator) -> None:
    with np.load(packages["cond"] / "reference.npz") as ref:
        z = L.z_from_seeds(ref["seeds"].tolist(), cond.z_dim)
        w = cond.mapping(z, str(ref["text"]))
        w_tol, img_tol = ref["tolerance"]
        assert np.abs(w - ref["w"]).max() <= w_tol
        img = cond.synthesis(L.broadcast_w(w, cond.num_ws))
        assert np.abs(img - ref["image"]).max() <= img_tol


def test_seed_is_an_identity(cond: ImageGenerator) -> None:
    a = cond.images([5, 6])
    assert a.shape == (2, 16, 16, 4) and a.dtype == np.uint8
    assert np.array_equal(a, cond.images([5, 6])) and np.array_equal(a[1], cond.images([6])[0])
    assert not np.array_equal(a[0], a[1])


def test_truncation(uncond: ImageGenerator) -> None:
    avg = uncond.images([1, 2, 3], Controls(psi=0.0))
    assert np.array_equal(avg[0], avg[1]) and np.array_equal(avg[0], avg[2])
    assert not np.array_equal(uncond.images([1], Controls(psi=0.5)), uncond.images([1]))
    ws = uncond.ws_for([1], Controls(psi=0.0))
    assert np.allclose(ws, uncond.w_avg)


def test_conditional_truncation_keeps_the_condition(cond: ImageGenerator) -> None:
    heart = cond.ws_for([1], Controls(psi=0.0, text="red heart"))
    cat = cond.ws_for([1], Controls(psi=0.0, text="cat face"))
    assert not np.allclose(heart, cat)


def test_style_mixing(uncond: ImageGenerator) -> None:
    base = uncond.ws_for([1])
    other = uncond.ws_for([9])
    mixed = uncond.ws_for([1], Controls(mix_seed=9, mix_layers="fine"))
    fine = uncond.layer_groups()["fine"]
    for i in range(uncond.num_ws):
        assert np.array_equal(mixed[0, i], other[0, i] if i in fine else base[0, i])
    with pytest.raises(ValueError, match="both"):
        uncond.ws_for([1], Controls(mix_seed=9))
    with pytest.raises(ValueError, match="out of range"):
        uncond.ws_for([1], Controls(mix_seed=9, mix_layers="3:99"))


def test_text_condition(cond: ImageGenerator, uncond: ImageGenerator) -> None:
    plain = cond.images([3])
    heart = cond.images([3], Controls(text="red heart"))
    assert not np.array_equal(plain, heart)
    assert not np.array_equal(heart, cond.images([3], Controls(text="cat face")))
    assert np.array_equal(plain, cond.images([3], Controls(text="   ")))
    with pytest.raises(ValueError, match="characters"):
        cond.images([3], Controls(text="x" * 1000))
    with pytest.raises(ValueError, match="no words"):
        cond.images([3], Controls(text="!!!"))
    with pytest.raises(ValueError, match="not conditioned"):
        uncond.images([3], Controls(text="red heart"))


def test_directions(cond: ImageGenerator) -> None:
    assert cond.num_directions == 4
    assert not np.array_equal(cond.images([2], Controls(directions={0: 3.0})), cond.images([2]))
    for bad, msg in [({7: 1.0}, "unknown direction 7"), ({0: float("nan")}, "finite"), ({0: 1e9}, "too far")]:
        with pytest.raises(ValueError, match=msg):
            cond.images([2], Controls(directions=bad))


@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolation_endpoints(cond: ImageGenerator, space: str) -> None:
    frames = cond.interpolate(4, 8, 5, space=space, controls=Controls(text="star"))
    assert len(frames) == 5
    assert np.array_equal(frames[0], cond.images([4], Controls(text="star"))[0])
    assert np.array_equal(frames[-1], cond.images([8], Controls(text="star"))[0])
    with pytest.raises(ValueError, match="frames"):
        cond.interpolate(4, 8, 1)


@pytest.mark.parametrize("space", ["w", "z"])
def test_long_interpolation_runs_in_batches_with_the_same_frames(uncond: ImageGenerator, dcgan: ImageGenerator,
                                                                 space: str) -> None:
    from aigc_studio.runtime.image_generator import BATCH

    n = 2 * BATCH + 3
    for gen in (uncond, dcgan):
        frames = gen.interpolate(4, 8, n, space=space)
        assert len(frames) == n
        assert np.array_equal(frames[0], gen.images([4])[0]) and np.array_equal(frames[-1], gen.images([8])[0])
        # a frame of the third batch is the one a short interpolation through the same t gives
        t = np.linspace(0.0, 1.0, n)[2 * BATCH + 1]
        assert np.allclose(frames[2 * BATCH + 1].astype(int), _frame_at(gen, 4, 8, t, space).astype(int), atol=1)


def _frame_at(gen: ImageGenerator, a: int, b: int, t: float, space: str) -> np.ndarray:
    if not gen.is_style_based or space == "z":
        z = L.slerp(L.z_from_seed(a, gen.z_dim), L.z_from_seed(b, gen.z_dim), t)[None]
        if not gen.is_style_based:
            return to_rgba_uint8(gen.sessions["generator"].session.run(["image"], {"z": z})[0])[0]
        return to_rgba_uint8(gen.synthesis(L.broadcast_w(gen.mapping(z), gen.num_ws)))[0]
    ends = gen.ws_for([a, b])
    return to_rgba_uint8(gen.synthesis(L.lerp(ends[0], ends[1], t)[None]))[0]


def test_grid(uncond: ImageGenerator) -> None:
    grid, rec = uncond.grid(10, 2, 3, batch=4)
    assert grid.shape == (32, 48, 4) and rec.grid == (2, 3)
    singles = uncond.images(list(range(10, 16)))
    assert np.array_equal(grid[16:32, 0:16], singles[3]) and np.array_equal(grid[0:16, 32:48], singles[2])
    with pytest.raises(ValueError, match="grid"):
        uncond.grid(0, 0, 3)


def test_png_record_round_trip_regenerates_the_same_pixels(cond: ImageGenerator, tmp_path: Path) -> None:
    controls = Controls(psi=0.7, mix_seed=11, mix_layers="coarse", directions={1: -1.5}, text="red heart")
    img, rec = cond.generate(42, controls)
    data = cond.png(img, rec)
    back = read_record(data)
    assert back.model == "tiny-cond" and back.model_sha256 == cond.model_sha256 and back.provider
    result = cond.regenerate(back, img)
    assert result.same_pixels and np.array_equal(result.image, img) and result.record == rec
    assert not result.model_changed and not result.original_edited
    grid, grec = cond.grid(3, 2, 2, controls)
    result = cond.regenerate(read_record(cond.png(grid, grec)), grid)
    assert result.same_pixels and np.array_equal(result.image, grid)
    # The verdict comes from the pixels given, not from the record's pixel hash.
    other = grid.copy()
    other[0, 0, 3] ^= 1
    result = cond.regenerate(grec.with_pixels(grid), other)
    assert not result.same_pixels and result.original_edited
    assert not cond.regenerate(grec.with_pixels(grid), None).same_pixels
    # Edited by hand: refused with a message; accepted explicitly, it makes a different image.
    d = json.loads(read_text(data)[RECORD_KEY])
    d["seed"] = 43
    from aigc_studio.core.png_record import with_text

    edited = with_text(data, {RECORD_KEY: json.dumps(d)})
    with pytest.raises(RecordError, match="edited"):
        read_record(edited)
    result = cond.regenerate(read_record(edited, allow_edited=True), img)
    assert not result.same_pixels and result.record.seed == 43


def test_record_of_another_model(cond: ImageGenerator, uncond: ImageGenerator) -> None:
    _, rec = uncond.generate(1)
    with pytest.raises(RecordError, match="tiny-uncond"):
        cond.regenerate(rec, None)


def test_dcgan(dcgan: ImageGenerator) -> None:
    assert not dcgan.is_style_based and dcgan.num_directions == 0
    a = dcgan.images([1, 2])
    assert a.shape == (2, 16, 16, 4) and np.array_equal(a[0], dcgan.images([1])[0])
    frames = dcgan.interpolate(1, 2, 3)
    assert np.array_equal(frames[0], a[0]) and np.array_equal(frames[-1], a[1])
    for controls in (Controls(psi=0.5), Controls(text="cat"), Controls(directions={0: 1.0})):
        with pytest.raises(ValueError, match="StyleGAN-style"):
            dcgan.images([1], controls)
    img, rec = dcgan.generate(7)
    assert dcgan.regenerate(read_record(dcgan.png(img, rec)), img).same_pixels


def test_bad_seeds(cond: ImageGenerator) -> None:
    for seed in (-1, 2**32, 1.5):
        with pytest.raises(ValueError, match="seed"):
            cond.images([seed])  # type: ignore[list-item]
    assert cond.images([L.SEED_MAX]).shape == (1, 16, 16, 4)
    with pytest.raises(ValueError,
                       match=f"mix seed {2**32} is out of range: seeds are whole numbers from 0 to {L.SEED_MAX}"):
        cond.images([1], Controls(mix_seed=2**32, mix_layers="fine"))
    grid, rec = cond.grid(L.SEED_MAX - 1, 1, 2)
    assert rec.seed == L.SEED_MAX - 1 and np.array_equal(grid[:, 16:], cond.images([L.SEED_MAX])[0])
    with pytest.raises(ValueError, match=f"seed {L.SEED_MAX - 1} is too large for 3 consecutive seeds.*at most "
                                         f"{L.SEED_MAX - 2}"):
        cond.grid(L.SEED_MAX - 1, 1, 3)


def test_to_rgba_uint8() -> None:
    x = np.full((1, 4, 2, 2), -1.0, np.float32)           # fully transparent
    x[0, :, 0, 0] = [0.0, -1.0, -1.0, 1.0]                # opaque, half red (premultiplied)
    x[0, :, 1, 1] = [-0.5, -0.5, -0.5, 0.0]               # half alpha, colour 0.25 premultiplied -> 0.5
    out = to_rgba_uint8(x)[0]
    assert tuple(out[0, 0]) == (128, 0, 0, 255) and tuple(out[0, 1]) == (0, 0, 0, 0)
    assert out[1, 1, 3] == 128 and abs(int(out[1, 1, 0]) - 127) <= 1


def test_broken_packages(packages: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(packages["cond"], bad)
    with np.load(bad / "latents.npz") as z:
        d = dict(z)
    d["directions"][0, 0] = np.nan
    np.savez(bad / "latents.npz", **d)
    with pytest.raises(PackageError, match="sha256"):
        load_package(bad)
    m = json.loads((bad / "manifest.json").read_text())
    write_package(bad, {k: v for k, v in m.items() if k not in ("files", "format_version")})
    with pytest.raises(PackageError, match="NaN"):
        ImageGenerator(load_package(bad), device="cpu")
    m = json.loads((bad / "manifest.json").read_text())
    base = {k: v for k, v in m.items() if k not in ("files", "format_version")}
    # the manifest checks refuse these at load (write_package loads what it wrote)
    with pytest.raises(PackageError, match="num_ws"):
        write_package(bad, {**base, "config": {k: v for k, v in m["config"].items() if k != "num_ws"}})
    with pytest.raises(PackageError, match="unknown architecture"):
        write_package(bad, {**base, "architecture": "vqgan"})
    with pytest.raises(PackageError, match="graph 'synthesis' is not declared"):
        write_package(bad, {k: v for k, v in base.items() if k != "synthesis"})
    with pytest.raises(PackageError, match="'latents.npz'.* not listed"):
        (bad / "latents.npz").rename(bad / "moved.npz")
        write_package(bad, base)
    (bad / "moved.npz").rename(bad / "latents.npz")
    (bad / "synthesis.onnx").write_bytes(b"not a graph")
    write_package(bad, base)
    with pytest.raises(PackageError, match="could not be loaded"):
        ImageGenerator(load_package(bad), device="cpu")


def test_runtime_image_path_loads_neither_torch_nor_qt() -> None:
    code = ("import sys, aigc_studio.runtime.image_generator, aigc_studio.core.png_record; "
            "print('\\n'.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert not [m for m in out if m == "torch" or m.startswith(("torch.", "PySide6"))]


def test_cli_generate(packages: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from aigc_studio.cli import main

    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(packages["cond"].parent))
    png = tmp_path / "a.png"
    assert main(["generate", "--model", "tiny-cond", "--seed", "5", "--truncation", "0.7", "--mix-seed", "2",
                 "--mix-layers", "fine", "--direction", "1=2", "--text", "red heart", "-o", str(png)]) == 0
    rec = read_record(png.read_bytes())
    assert (rec.seed, rec.psi, rec.mix_layers, rec.directions, rec.text) == (5, 0.7, "fine", {1: 2.0}, "red heart")
    again = tmp_path / "b.png"
    assert main(["generate", "--from-png", str(png), "-o", str(again)]) == 0
    assert "bit-exact" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(png)))
    grid = tmp_path / "g.png"
    assert main(["generate", "--model", "tiny-uncond", "--grid", "2x3", "-o", str(grid)]) == 0
    assert Image.open(grid).size == (48, 32)
    gif = tmp_path / "i.gif"
    assert main(["generate", "--model", "tiny-cond", "--interpolate", "1", "2", "--frames", "4", "-o", str(gif)]) == 0
    assert Image.open(gif).n_frames == 4
    for bad, msg in [(["--direction", "9=1"], "unknown direction 9"), (["--direction", "0=nan"], "finite"),
                     (["--truncation", "nan"], "ψ"), (["--grid", "2by3"], "RxC"),
                     (["--text", "x" * 500], "characters")]:
        assert main(["generate", "--model", "tiny-cond", *bad, "-o", str(tmp_path / "x.png")]) == 2
        assert msg in capsys.readouterr().err
    plain = tmp_path / "plain.png"
    Image.new("RGBA", (4, 4)).save(plain)
    assert main(["generate", "--from-png", str(plain), "-o", str(tmp_path / "y.png")]) == 2
    assert "no generation record" in capsys.readouterr().err
