"""PNG generation records: chunk writing and reading, round trip, and every damaged or missing case."""

from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest

from aigc_studio.core import png_record as P


def _record(**kw: object) -> P.GenerationRecord:
    base = dict(model="emoji-style", model_sha256="ab" * 32, seed=42, psi=0.7, mix_seed=7, mix_layers="coarse",
                directions={2: -1.5, 0: 3.0}, text="red heart ❤", width=16, height=16,
                onnxruntime="1.2.3", provider="CPUExecutionProvider", app="aigc-studio 0.1.0")
    base.update(kw)
    return P.GenerationRecord(**base)  # type: ignore[arg-type]


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (16, 12, 4), dtype=np.uint8)


def test_round_trip_and_pillow_reads_it() -> None:
    from PIL import Image

    img = _image()
    rec = _record().with_pixels(img)
    assert (rec.width, rec.height) == (12, 16)
    data = P.encode_png(img, rec.text_chunks())
    back = P.read_record(data)
    assert back == rec and back.directions == {0: 3.0, 2: -1.5}
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), img)
        assert im.info[P.PARAMETERS_KEY] == rec.parameters_line()
        assert json.loads(im.info[P.RECORD_KEY])["seed"] == 42
    assert P.pixels_sha256(img) == rec.pixels_sha256


def test_parameters_line_is_a1111_style() -> None:
    line = _record(text="red\nheart", grid=(2, 3)).parameters_line()
    prompt, params = line.split("\n")
    assert prompt == "red heart"
    assert params.startswith("Seed: 42, Truncation psi: 0.7, Mix seed: 7, Mix layers: coarse, "
                             "Directions: 0=3 2=-1.5, Grid: 2x3, Size: 16x16, Model hash: abababab")
    assert "Model: emoji-style" in params
    minimal = P.GenerationRecord(model="m", model_sha256="", seed=1).parameters_line()
    assert minimal == "\nSeed: 1, Truncation psi: 1, Size: 0x0, Model: m"


def test_with_text_replaces_and_pillow_written_png_is_read() -> None:
    from PIL import Image, PngImagePlugin

    buf = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20", zip=True)  # zTXt, as other tools may write
    info.add_itxt("Comment", "ünïcode", zip=True)
    Image.fromarray(_image()).save(buf, format="PNG", pnginfo=info)
    data = buf.getvalue()
    assert P.read_text(data) == {"parameters": "a cat\nSteps: 20", "Comment": "ünïcode"}
    with pytest.raises(P.RecordError, match="another tool"):
        P.read_record(data)
    rec = _record()
    data2 = P.with_text(data, rec.text_chunks())
    assert P.read_record(data2) == rec
    assert P.read_text(data2)["Comment"] == "ünïcode"
    assert P.read_text(data2)["parameters"] == rec.parameters_line()
    with Image.open(io.BytesIO(data2)) as im:  # still a valid PNG with the same pixels
        assert np.array_equal(np.asarray(im), _image())


def test_missing_record() -> None:
    with pytest.raises(P.RecordError, match="no generation record"):
        P.read_record(P.encode_png(_image()))


def test_hand_edited_record_is_recognised() -> None:
    rec = _record()
    d = json.loads(rec.to_json())
    d["seed"] = 43
    data = P.encode_png(_image(), {P.RECORD_KEY: json.dumps(d)})
    with pytest.raises(P.RecordError, match="edited"):
        P.read_record(data)
    assert P.read_record(data, allow_edited=True).seed == 43


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d.update(seed="42"), "wrong type"),
    (lambda d: d.update(seed=True), "wrong type"),
    (lambda d: d.pop("model"), "no 'model'"),
    (lambda d: d.update(colour="red"), "unknown fields"),
    (lambda d: d.update(record_version=99), "version 99"),
    (lambda d: d.update(directions={"x": 1}), "directions"),
    (lambda d: d.update(psi=float("nan")), "NaN"),
    (lambda d: d.update(grid=[2]), "grid"),
])
def test_bad_records(mutate, msg: str) -> None:
    d = json.loads(_record().to_json())
    mutate(d)
    data = P.encode_png(_image(), {P.RECORD_KEY: json.dumps(d)})
    with pytest.raises(P.RecordError, match=msg):
        P.read_record(data, allow_edited=True)


def test_not_json_and_not_png_and_damaged() -> None:
    with pytest.raises(P.RecordError, match="not valid JSON"):
        P.read_record(P.encode_png(_image(), {P.RECORD_KEY: "{seed: 1"}))
    with pytest.raises(P.RecordError, match="not a PNG"):
        P.read_record(b"GIF89a....")
    data = bytearray(P.encode_png(_image(), _record().text_chunks()))
    at = data.index(b"iTXt") + 10  # the condition text is not Latin-1: iTXt
    data[at] ^= 0xFF
    with pytest.raises(P.RecordError, match="CRC"):
        P.read_record(bytes(data))
    with pytest.raises(P.RecordError, match="truncated"):
        P.read_record(bytes(data[:40]))


def test_encode_png_checks_its_input_and_rgb() -> None:
    from PIL import Image

    rgb = _image()[..., :3].copy()
    with Image.open(io.BytesIO(P.encode_png(rgb))) as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), rgb)
    with pytest.raises(ValueError, match="uint8"):
        P.encode_png(np.zeros((4, 4, 4), np.float32))
    with pytest.raises(ValueError, match="keyword"):
        P.encode_png(rgb, {"": "x"})
    assert zlib.crc32(b"") == 0  # sanity for the chunk helper's use of zlib


def _with_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    """`data` with one more chunk just before IEND (written by hand, CRC right)."""
    import struct

    at = data.rindex(b"IEND") - 4
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:at] + chunk + data[at:]


def _ztxt(key: str, text: bytes) -> bytes:
    return key.encode("latin-1") + b"\0\0" + zlib.compress(text, 9)


def _itxt(key: str, text: bytes) -> bytes:
    return key.encode("latin-1") + b"\0\1\0" + b"\0" + b"\0" + zlib.compress(text, 9)


def test_compressed_text_is_inflated_and_bounded() -> None:
    rec = _record()
    small = _with_chunk(P.encode_png(_image()), b"zTXt", _ztxt(P.RECORD_KEY, rec.to_json().encode("latin-1",
                                                                                                 "replace")))
    assert P.read_text(small)[P.RECORD_KEY].startswith("{")
    for kind, build in ((b"zTXt", _ztxt), (b"iTXt", _itxt)):
        exact = _with_chunk(P.encode_png(_image()), kind, build("big", b"a" * P.MAX_TEXT_CHUNK))
        assert len(P.read_text(exact)["big"]) == P.MAX_TEXT_CHUNK
        over = _with_chunk(P.encode_png(_image()), kind, build("big", b"a" * (P.MAX_TEXT_CHUNK + 1)))
        with pytest.raises(P.RecordError, match="inflates to more than"):
            P.read_text(over)
    plain = _with_chunk(P.encode_png(_image()), b"tEXt", b"big\0" + b"a" * (P.MAX_TEXT_CHUNK + 1))
    with pytest.raises(P.RecordError, match="holds more than"):
        P.read_text(plain)
    # the total over all chunks is bounded too
    data = P.encode_png(_image())
    for i in range(P.MAX_TEXT_TOTAL // P.MAX_TEXT_CHUNK + 1):
        data = _with_chunk(data, b"zTXt", _ztxt(f"k{i}", b"a" * P.MAX_TEXT_CHUNK))
    with pytest.raises(P.RecordError, match="8 MiB in all"):
        P.read_text(data)
    cut = _ztxt("cut", b"abc" * 100)[:-6]
    with pytest.raises(P.RecordError, match="truncated"):
        P.read_text(_with_chunk(P.encode_png(_image()), b"zTXt", cut))
    with pytest.raises(P.RecordError, match="cannot be read"):
        P.read_text(_with_chunk(P.encode_png(_image()), b"zTXt", b"bad\0\0not zlib"))


def test_read_png_file_is_bounded(tmp_path) -> None:
    f = tmp_path / "a.png"
    data = P.encode_png(_image(), _record().text_chunks())
    f.write_bytes(data)
    assert P.read_png_file(f) == data and P.read_png_file(f, limit=len(data)) == data
    with pytest.raises(P.RecordError, match=f"larger than {len(data) - 1} bytes"):
        P.read_png_file(f, limit=len(data) - 1)
    with pytest.raises(OSError):
        P.read_png_file(tmp_path / "missing.png")


@pytest.mark.parametrize("text, msg", [("[" * 100_000, "nested too deeply"),
                                       ('{"seed": ' + "9" * 5000 + "}", "digits")],
                         ids=["deep", "long-number"])
def test_records_python_cannot_parse_are_record_errors(text: str, msg: str) -> None:
    with pytest.raises(P.RecordError, match=msg):
        P.read_record(P.encode_png(_image(), {P.RECORD_KEY: text}))
