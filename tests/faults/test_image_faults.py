"""One regression test per defect found by probing `aigc-studio generate` (image output, --from-png,
bounded inputs, seeds and option checks). Each docstring names its finding."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aigc_studio.cli import main
from aigc_studio.core import latents as L
from aigc_studio.core import png_record as P


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two builds of the model 'tiny-cond' (other weights, same name), each in its own models folder."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from export.onnx.gan import export_package, tiny_generator

    out = {}
    for key, seed in (("v1", 0), ("v2", 1)):
        root = tmp_path_factory.mktemp(f"models-{key}")
        export_package("stylegan", tiny_generator("stylegan", True, seed=seed), root / "tiny-cond", name="tiny-cond",
                       ganspace_samples=100, directions=2, verbose=False)
        out[key] = root
    return out


@pytest.fixture
def v1(builds: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(builds["v1"]))
    return builds["v1"]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    """A PNG chunk written by hand (length, type, payload, CRC)."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def _manifest_sha(root: Path) -> str:
    import hashlib

    return hashlib.sha256((root / "tiny-cond" / "manifest.json").read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- finding 7: --from-png


def test_from_png_with_another_build_of_the_model_says_so_and_records_the_true_hash(
        builds: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7: with the installed model changed, --from-png printed only "DIFFERENT pixels" and wrote
    a PNG whose record still claimed the old model's hash."""
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(builds["v1"]))
    old = tmp_path / "old.png"
    assert main(["generate", "--model", "tiny-cond", "--seed", "3", "-o", str(old)]) == 0
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(builds["v2"]))
    capsys.readouterr()
    new = tmp_path / "new.png"
    assert main(["generate", "--from-png", str(old), "-o", str(new)]) == 1
    out, err = capsys.readouterr()
    sha1, sha2 = _manifest_sha(builds["v1"]), _manifest_sha(builds["v2"])
    assert (f"this image was made with model tiny-cond sha256 {sha1[:16]}…, the installed tiny-cond is "
            f"{sha2[:16]}…: the pixels will differ") in err
    assert "DIFFERENT pixels" in out and "the model differs" in out
    rec = P.read_record(new.read_bytes())
    assert rec.model_sha256 == sha2 and rec.seed == 3
    assert rec.pixels_sha256 == P.pixels_sha256(_pixels(new))


def test_from_png_bit_exact_comes_from_the_pixels_not_the_record(
        builds: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7: a record whose model hash (and pixel hash) was edited by hand, with its digest recomputed,
    was reported "bit-exact" although the file's pixels came from another model."""
    from aigc_studio.runtime.image_generator import ImageGenerator
    from aigc_studio.runtime.package import load_package

    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(builds["v1"]))
    old = tmp_path / "old.png"
    assert main(["generate", "--model", "tiny-cond", "--seed", "5", "-o", str(old)]) == 0
    # Make the record claim what the installed v2 would draw: its hash and its pixels' hash.
    v2 = ImageGenerator(load_package(builds["v2"] / "tiny-cond"), device="cpu", threads=1)
    v2_img, v2_rec = v2.generate(5)
    rec = replace(P.read_record(old.read_bytes()), model_sha256=v2.model_sha256, pixels_sha256=v2_rec.pixels_sha256)
    forged = tmp_path / "forged.png"
    forged.write_bytes(P.with_text(old.read_bytes(), rec.text_chunks()))  # with its digest recomputed
    assert P.read_record(forged.read_bytes()) == rec
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(builds["v2"]))
    capsys.readouterr()
    assert main(["generate", "--from-png", str(forged), "-o", str(tmp_path / "again.png")]) == 1
    out, err = capsys.readouterr()
    assert "bit-exact" not in out and "DIFFERENT pixels" in out
    assert "were changed after its record was written" in err
    assert np.array_equal(_pixels(tmp_path / "again.png"), v2_img)


def test_from_png_same_model_is_bit_exact_by_the_pixels(v1: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7 (the other side): an untouched PNG of the installed model is bit-exact, with no note,
    and a grid is compared whole."""
    png = tmp_path / "g.png"
    assert main(["generate", "--model", "tiny-cond", "--grid", "2x3", "--text", "red heart", "-o", str(png)]) == 0
    capsys.readouterr()
    assert main(["generate", "--from-png", str(png), "-o", str(tmp_path / "again.png")]) == 0
    out, err = capsys.readouterr()
    assert "regenerated bit-exact" in out and err == ""
    assert np.array_equal(_pixels(tmp_path / "again.png"), _pixels(png))


# ----------------------------------------------------------------------------- finding 9: image output


def test_gif_has_no_speckles_where_the_image_is_transparent(v1: Path, tmp_path: Path) -> None:
    """Finding 9: interpolation GIFs had opaque coloured speckles where the background is transparent
    (nearly transparent pixels kept their noise colour and became opaque)."""
    from PIL import Image

    from aigc_studio.cli import GIF_ALPHA_THRESHOLD, GIF_MATTE
    from aigc_studio.runtime.image_generator import ImageGenerator
    from aigc_studio.runtime.package import load_package

    gif = tmp_path / "i.gif"
    assert main(["generate", "--model", "tiny-cond", "--interpolate", "1", "2", "--frames", "5", "-o", str(gif)]) == 0
    gen = ImageGenerator(load_package(v1 / "tiny-cond"), device="cpu", threads=1)
    source = gen.interpolate(1, 2, 5)
    alphas = np.stack(source)[..., 3]
    assert ((alphas > 0) & (alphas < GIF_ALPHA_THRESHOLD)).any()  # the case that showed speckles
    with Image.open(gif) as im:
        assert im.n_frames == 5
        for i, src in enumerate(source):
            im.seek(i)
            got = np.asarray(im.convert("RGBA"))
            keep = src[..., 3] >= GIF_ALPHA_THRESHOLD
            assert (got[..., 3][~keep] == 0).all(), f"frame {i}: opaque where the image is transparent"
            assert (got[..., 3][keep] == 255).all()
            a = src[..., 3:].astype(float) / 255
            matted = src[..., :3] * a + np.asarray(GIF_MATTE, float) * (1 - a)
            assert np.abs(got[..., :3][keep].astype(float) - matted[keep]).max() <= 48  # 255 colours


@pytest.mark.parametrize("name, magic", [("a.jpg", b"\xff\xd8\xff"), ("a.JPEG", b"\xff\xd8\xff"),
                                         ("a.webp", b"RIFF"), ("a.gif", b"GIF89a"), ("a.png", b"\x89PNG")])
def test_output_format_follows_the_extension(v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             name: str, magic: bytes) -> None:
    """Finding 9: `-o image.jpg` wrote PNG bytes into a .jpg; the extension now chooses the format, and
    only PNG keeps the record (said plainly)."""
    out = tmp_path / name
    assert main(["generate", "--model", "tiny-cond", "--seed", "2", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    err = capsys.readouterr().err
    if name.endswith(".png"):
        assert P.read_record(out.read_bytes()).seed == 2 and err == ""
    else:
        assert "keeps no generation record (only .png does" in err
    if name.lower().endswith((".jpg", ".jpeg")):
        assert "JPEG has no transparency: the image is composited onto white" in err


@pytest.mark.parametrize("args, msg", [
    (["-o", "a.txt"], "unknown image type '.txt'; the extension chooses the format: .png, .webp, .gif, .jpg/.jpeg"),
    (["-o", "a"], "no file extension"),
    (["--interpolate", "1", "2", "-o", "a.png"], ("--interpolate makes an animation, which .png cannot hold here; "
                                                  "use .gif or .webp")),
    (["--interpolate", "1", "2", "-o", "a.jpg"], "which .jpg cannot hold"),
])
def test_output_formats_that_cannot_hold_the_image_are_refused(v1: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str], args: list[str],
                                                               msg: str) -> None:
    """Finding 9: an animation written as .png, or any image written under an unknown extension, is refused
    with the supported extensions, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--model", "tiny-cond", *args]) == 2
    assert msg in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_animated_webp_keeps_every_frame_and_alpha(v1: Path, tmp_path: Path) -> None:
    """Finding 9: --interpolate to .webp writes an animated, lossless WebP (full alpha)."""
    from PIL import Image

    out = tmp_path / "i.webp"
    assert main(["generate", "--model", "tiny-cond", "--interpolate", "1", "2", "--frames", "3", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.format == "WEBP" and im.n_frames == 3
        im.seek(2)
        last = np.asarray(im.convert("RGBA"))
    from aigc_studio.runtime.image_generator import ImageGenerator
    from aigc_studio.runtime.package import load_package

    want = ImageGenerator(load_package(v1 / "tiny-cond"), device="cpu", threads=1).images([2])[0]
    assert np.array_equal(last[..., 3], want[..., 3])


# ----------------------------------------------------------------------------- finding 4: bounded inputs


def test_frames_are_bounded_before_anything_is_generated(v1: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 4: `--interpolate 1 2 --frames 100000` took over 8 GB; frames are now limited to MAX_FRAMES."""
    for frames in ("100000", str(L.MAX_FRAMES + 1)):
        assert main(["generate", "--model", "tiny-cond", "--interpolate", "1", "2", "--frames", frames,
                     "-o", str(tmp_path / "i.gif")]) == 2
        assert f"an interpolation has 2 to {L.MAX_FRAMES} frames, not {frames}" in capsys.readouterr().err
    assert not (tmp_path / "i.gif").exists()


def test_compressed_text_bomb_is_refused_without_inflating_it(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 4: a small PNG whose zTXt record inflates to gigabytes took 2.2 GB as --from-png; the text is
    now inflated to at most MAX_TEXT_CHUNK bytes, and the refusal says why."""
    inflate = 64 * 2**20
    z = zlib.compressobj(9)
    bomb = b"".join([z.compress(b"\0" * 2**20) for _ in range(inflate // 2**20)] + [z.flush()])
    png = P.encode_png(np.zeros((4, 4, 4), np.uint8))
    at = png.rindex(b"IEND") - 4
    f = tmp_path / "bomb.png"
    f.write_bytes(png[:at] + _chunk(b"zTXt", P.RECORD_KEY.encode() + b"\0\0" + bomb) + png[at:])
    assert f.stat().st_size < inflate // 500
    assert main(["generate", "--from-png", str(f), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "PNG text chunk zTXt 'aigc-studio.record' inflates to more than" in err and "1 MiB a chunk" in err


def test_from_png_reads_a_bounded_number_of_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 4: --from-png read the whole file into memory, whatever its size (/dev/zero never ends)."""
    monkeypatch.setattr(P, "MAX_PNG_BYTES", 4096)
    big = tmp_path / "big.png"
    big.write_bytes(P.encode_png(np.random.default_rng(0).integers(0, 256, (64, 64, 4), dtype=np.uint8)))
    assert big.stat().st_size > 4096
    assert main(["generate", "--from-png", str(big), "-o", str(tmp_path / "x.png")]) == 2
    assert "is larger than 4096 bytes, more than any image AIGC Studio writes" in capsys.readouterr().err


def test_deeply_nested_record_is_an_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 4 / option check: a record of 100 000 nested '[' made json raise RecursionError, a traceback."""
    f = tmp_path / "deep.png"
    f.write_bytes(P.encode_png(np.zeros((2, 2, 4), np.uint8), {P.RECORD_KEY: "[" * 100_000}))
    assert main(["generate", "--from-png", str(f), "-o", str(tmp_path / "x.png")]) == 2
    assert "not valid JSON (nested too deeply)" in capsys.readouterr().err


# ----------------------------------------------------------------------------- finding 10 and option checks


def test_seed_boundaries(v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 10: the largest seed the message names is accepted, one more and negatives are refused with
    a message that states the real range, and a grid that would run past it names the seed given."""
    out = tmp_path / "a.png"
    assert main(["generate", "--model", "tiny-cond", "--seed", str(L.SEED_MAX), "-o", str(out)]) == 0
    assert P.read_record(out.read_bytes()).seed == L.SEED_MAX
    for seed in (L.SEED_MAX + 1, -1, 2**63 - 1):
        assert main(["generate", "--model", "tiny-cond", "--seed", str(seed), "-o", str(out)]) == 2
        assert (f"seed {seed} is out of range: seeds are whole numbers from 0 to {L.SEED_MAX} (2**32 - 1), both "
                "included") in capsys.readouterr().err
    assert main(["generate", "--model", "tiny-cond", "--seed", str(L.SEED_MAX), "--grid", "1x2", "-o", str(out)]) == 2
    assert (f"seed {L.SEED_MAX} is too large for 2 consecutive seeds: the last would be {L.SEED_MAX + 1}, past "
            f"{L.SEED_MAX}; use a seed of at most {L.SEED_MAX - 1}") in capsys.readouterr().err
    assert main(["generate", "--model", "tiny-cond", "--mix-seed", str(L.SEED_MAX + 1), "--mix-layers", "fine",
                 "-o", str(out)]) == 2
    assert f"mix seed {L.SEED_MAX + 1} is out of range" in capsys.readouterr().err


@pytest.mark.parametrize("args, msg", [
    (["--direction", "0=1", "--direction", "0=2"], "--direction 0 is given twice"),
    (["--grid", "²x2"], "--grid '²x2': use RxC"),
    (["--grid", "2x2", "--interpolate", "1", "2"], "--interpolate and --grid cannot be combined"),
])
def test_generate_options_are_checked(v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      args: list[str], msg: str) -> None:
    """Option checks: a repeated --direction silently kept the last value, a non-ASCII digit in --grid gave
    Python's "invalid literal for int()", and --grid with --interpolate silently ignored the grid."""
    out = tmp_path / ("a.gif" if "--interpolate" in args else "a.png")
    assert main(["generate", "--model", "tiny-cond", *args, "-o", str(out)]) == 2
    assert msg in capsys.readouterr().err
    assert not out.exists()


def test_from_png_with_damaged_pixels_says_so(v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7 (pixels are now read): a PNG whose record is sound but whose image data is cut short is
    refused with its name and "damaged", not compared."""
    png = tmp_path / "a.png"
    assert main(["generate", "--model", "tiny-cond", "-o", str(png)]) == 0
    chunks = P.iter_chunks(png.read_bytes())
    cut = tmp_path / "cut.png"
    cut.write_bytes(P.PNG_SIGNATURE + b"".join(_chunk(k, p[:len(p) // 2] if k == b"IDAT" else p) for k, p in chunks))
    capsys.readouterr()
    assert main(["generate", "--from-png", str(cut), "-o", str(tmp_path / "x.png")]) == 2
    assert f"{cut}: its pixels cannot be read" in capsys.readouterr().err
