"""Image-model subcommands: `generate` (and how its files are written), and the image evaluations
(fid, condition)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from aigc_studio.runtime.image_files import GIF_ALPHA_THRESHOLD, GIF_MATTE, GIF_TRANSPARENT_INDEX  # noqa: F401 (re-exported by cli)

from .common import _fail
from .progress import _Progress


def _add_image_eval_parsers(esub: Any) -> None:
    fid = esub.add_parser("fid", help="domain FID and KID of an image model: its images against real ones, "
                          "in the feature space of an image-features package")
    fid.add_argument("--model", help="image model package name (default: the default image model)")
    fid.add_argument("--features", help="image-features package (default: emoji-features)")
    fid.add_argument("--samples", type=int, default=0,
                     help="images to generate (default: as many as the held-out real set, so the floor compares)")
    fid.add_argument("--seed", type=int, default=0, help="first seed; seeds seed .. seed+N-1 are used")
    fid.add_argument("--truncation", type=float, default=1.0, help="truncation psi (StyleGAN-style models)")
    fid.add_argument("--text", default="", help="condition text (conditional models; default none)")
    fid.add_argument("--threads", type=int, default=0)
    fid.add_argument("--json", action="store_true", help="print a JSON record")
    cond = esub.add_parser("condition", help="how a text condition steers an image model: the share of images "
                           "made for an emoji's label that the feature classifier puts in that emoji's class, "
                           "against the same seeds without the text")
    cond.add_argument("--model", help="image model package name (default: the default image model)")
    cond.add_argument("--features", help="image-features package with labels (default: emoji-features)")
    cond.add_argument("--seeds", type=int, default=4, help="images per label (seeds 0..N-1)")
    cond.add_argument("--max-labels", type=int, default=0, help="use only the first N labels (0: all)")
    cond.add_argument("--truncation", type=float, default=1.0)
    cond.add_argument("--threads", type=int, default=0)
    cond.add_argument("--json", action="store_true", help="print a JSON record")


def _load_image_eval(args: argparse.Namespace) -> tuple[Any, Any]:
    """(ImageGenerator, FeatureExtractor) of --model and --features, or ValueError."""
    from aigc_studio.runtime.features import FeatureExtractor
    from aigc_studio.runtime.image_generator import ImageGenerator
    from aigc_studio.runtime.registry import ModelRegistry

    registry = ModelRegistry()
    name = args.model or registry.default_name("image-gan")
    fname = args.features or registry.default_name("image-features")
    if name is None:
        raise ValueError("no image model is installed (see `aigc-studio models`)")
    if fname is None:
        raise ValueError("no image-features package is installed; build one with `python -m export.eval.fid`")
    gen = ImageGenerator(registry.load(name), device="cpu", threads=args.threads)
    fx = FeatureExtractor(registry.load(fname), threads=args.threads)
    if gen.img_size != fx.img_size:
        raise ValueError(f"model '{name}' makes {gen.img_size}px images; '{fname}' scores {fx.img_size}px images")
    return gen, fx


def _eval_condition(args: argparse.Namespace) -> int:
    """Top-1/top-5 class accuracy of images made for held-out emoji labels, with and without the text."""
    import numpy as np

    from aigc_studio.runtime.image_generator import Controls

    gen, fx = _load_image_eval(args)
    if not gen.conditional:
        return _fail(f"model '{gen.name}' is not conditioned on text")
    labels = fx.labels()[: args.max_labels or None]
    if not labels:
        return _fail(f"'{fx.name}' holds no labels to condition on (re-export it with python -m export.eval.fid)")
    if args.seeds < 1:
        return _fail("--seeds must be at least 1")
    seeds = list(range(args.seeds))
    scores = {}
    progress = _Progress("condition", 2 * len(labels) * len(seeds), "images")  # with and without text
    for mode in ("text", "none"):
        hits1 = hits5 = 0
        for label, k in labels:
            text = label.split(":")[0][:150] if mode == "text" else ""
            logits = fx.logits(gen.images(seeds, Controls(psi=args.truncation, text=text)))
            top5 = np.argsort(-logits, axis=1)[:, :5]
            hits1 += int((top5[:, 0] == k).sum())
            hits5 += int((top5 == k).any(axis=1).sum())
            progress.advance(len(seeds))
        n = len(labels) * len(seeds)
        scores[mode] = {"top1": hits1 / n, "top5": hits5 / n}
    progress.close()
    record = {"model": gen.name, "features": fx.name, "labels": len(labels), "seeds": len(seeds),
              "classes": len(fx.classes), "psi": args.truncation, "with_text": scores["text"],
              "without_text": scores["none"]}
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    t, u = scores["text"], scores["none"]
    print(f"model {gen.name}: {len(labels)} held-out emoji labels x {len(seeds)} seeds, {len(fx.classes)} classes "
          f"of '{fx.name}': class accuracy with the label as text top-1 {t['top1']:.1%}, top-5 {t['top5']:.1%}; "
          f"the same seeds without text top-1 {u['top1']:.1%}, top-5 {u['top5']:.1%}")
    return 0


def _eval_fid(args: argparse.Namespace) -> int:
    """Domain FID/KID of generated images against the real reference images of a feature package."""
    import time

    import numpy as np

    from aigc_studio.runtime.image_generator import Controls

    gen, fx = _load_image_eval(args)
    name, fname = gen.name, fx.name
    n = args.samples or len(fx.heldout)
    if n < 2:
        return _fail("--samples must be at least 2")
    controls = Controls(psi=args.truncation, text=args.text) if gen.is_style_based else Controls()
    if not gen.is_style_based and (args.truncation != 1.0 or args.text):
        return _fail(f"model '{name}' is a {gen.architecture} model: no truncation or text condition")
    started = time.perf_counter()
    progress = _Progress("fid", n, "images")
    features = []
    for i in range(0, n, 64):
        features.append(fx.features(gen.images(range(args.seed + i, args.seed + min(n, i + 64)), controls)))
        progress.advance(min(n, i + 64) - i)
    progress.close()
    scores = fx.scores(np.concatenate(features))
    seconds = time.perf_counter() - started
    floor = fx.floor
    record = {"model": name, "features": fname, **scores.as_dict(), "psi": args.truncation, "text": args.text,
              "first_seed": args.seed, "floor": floor, "seconds": round(seconds, 1)}
    if args.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
        return 0
    print(f"model {name}: domain FID {scores.fid:.2f}, domain KID {scores.kid:.4f} ± {scores.kid_std:.4f} "
          f"({scores.samples} generated images, seeds {args.seed}..{args.seed + n - 1}, psi {args.truncation}"
          f"{', text ' + repr(args.text) if args.text else ''}; against {scores.reference_samples} real images; "
          f"features '{fname}'; {seconds:.1f} s)")
    if floor:
        print(f"floor, held-out real images: domain FID {floor['fid']:.2f}, domain KID {floor['kid']:.4f} "
              f"± {floor['kid_std']:.4f} ({floor['samples']} images)")
    return 0


# ----------------------------------------------------------------------------- generate (image models)

# Output formats of `generate`, by extension (Pillow's format names); animations only as GIF or WebP
# (APNG is left out on purpose: few viewers play it, and a PNG here means "an image with its record").
_IMAGE_FORMATS = {".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".jpg": "JPEG", ".jpeg": "JPEG"}
_ANIMATION_FORMATS = (".gif", ".webp")
_FORMATS_TEXT = ".png, .webp, .gif, .jpg/.jpeg (an --interpolate animation: .gif or .webp)"
# GIF_ALPHA_THRESHOLD, GIF_MATTE, GIF_TRANSPARENT_INDEX: the GIF rules live with the encoder shared with
# the Design workspace (runtime/image_files.py, which imports Pillow only when it writes).


def _add_generate_parser(sub: Any) -> None:
    from aigc_studio.core.latents import MAX_FRAMES, SEED_MAX
    from aigc_studio.runtime.image_generator import GRID_MAX

    g = sub.add_parser("generate", help="generate images with an image model (PNG with its record, WebP, GIF "
                       "or JPEG)")
    g.add_argument("--model", help="image model package name (default: the first installed)")
    g.add_argument("--seed", type=int, default=0, help=f"0 .. {SEED_MAX} (default 0)")
    g.add_argument("--truncation", type=float, default=1.0, help="ψ: 1 = none, 0 = the average image")
    g.add_argument("--mix-seed", type=int)
    g.add_argument("--mix-layers", help="coarse, middle, fine or A:B")
    g.add_argument("--direction", action="append", default=[], metavar="K=V",
                   help="offset along principal direction K, in standard deviations (repeatable)")
    g.add_argument("--text", default="", help="condition text, e.g. 'red heart'")
    g.add_argument("--grid", help=f"RxC: a grid of consecutive seeds from --seed, as one image (1 .. {GRID_MAX} "
                   "rows and columns)")
    g.add_argument("--interpolate", nargs=2, type=int, metavar=("S1", "S2"),
                   help="frames from S1 to S2, as an animated GIF or WebP")
    g.add_argument("--frames", type=int, default=16, help=f"frames of --interpolate: 2 .. {MAX_FRAMES} (default 16)")
    g.add_argument("--space", choices=("w", "z"), default="w", help="interpolate linearly in w or spherically in z")
    g.add_argument("--from-png", help="regenerate from the record in this PNG, and compare the pixels with it")
    g.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    g.add_argument("--threads", type=int, default=0)
    g.add_argument("-o", "--out", required=True,
                   help="output file; its extension chooses the format: " + _FORMATS_TEXT + ". Only PNG keeps the "
                   "generation record (for --from-png); JPEG has no transparency, so the image is composited "
                   f"onto white; GIF has none but on/off, so alpha >= {GIF_ALPHA_THRESHOLD} is kept, composited "
                   "onto white, and the rest is transparent")


def cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aigc_studio.core import latents as L
    from aigc_studio.core.png_record import read_png_file, read_record
    from aigc_studio.runtime.image_generator import Controls, ImageGenerator
    from aigc_studio.runtime.registry import ModelRegistry

    # Everything that can be checked without a model is checked before one is loaded.
    modes = [flag for flag, on in (("--from-png", args.from_png), ("--interpolate", args.interpolate),
                                   ("--grid", args.grid)) if on]
    if len(modes) > 1:
        return _fail(f"{' and '.join(modes)} cannot be combined: choose one")
    out = Path(args.out)
    fmt = _output_format(out, animated=bool(args.interpolate))
    if args.interpolate:
        L.check_frames(args.frames)
    grid = _parse_grid(args.grid) if args.grid else None
    directions = _parse_directions(args.direction)
    source = read_png_file(args.from_png) if args.from_png else None
    record = read_record(source) if source is not None else None

    registry = ModelRegistry()
    name = record.model if record else args.model or registry.default_name("image-gan")
    if name is None:
        return _fail("no image model is installed (see `aigc-studio models`)")
    gen = ImageGenerator(registry.load(name), device=args.device, threads=args.threads)
    if record is not None and source is not None:
        return _regenerate(gen, record, source, args.from_png, out, fmt)
    controls = Controls(psi=args.truncation, mix_seed=args.mix_seed, mix_layers=args.mix_layers,
                        directions=directions or None, text=args.text)
    if args.interpolate:
        frames = gen.interpolate(*args.interpolate, args.frames, space=args.space, controls=controls)
        _save_animation(out, fmt, frames)
        print(f"{out}: {len(frames)} frames from seed {args.interpolate[0]} to {args.interpolate[1]}")
        return 0
    if grid:
        img, rec = gen.grid(args.seed, grid[0], grid[1], controls)
    else:
        img, rec = gen.generate(args.seed, controls)
    _save_image(gen, out, fmt, img, rec)
    print(f"{out}: " + " | ".join(line for line in rec.parameters_line().splitlines() if line))
    return 0


def _output_format(out: Any, animated: bool) -> str:
    """Pillow's format name for the output path `out` (by its extension), or a ValueError that lists the
    supported extensions when it is unknown or cannot hold an animation."""
    ext = out.suffix.lower()
    if ext not in _IMAGE_FORMATS:
        raise ValueError(f"-o {out}: {'unknown image type ' + repr(ext) if ext else 'no file extension'}; "
                         f"the extension chooses the format: {_FORMATS_TEXT}")
    if animated and ext not in _ANIMATION_FORMATS:
        raise ValueError(f"-o {out}: --interpolate makes an animation, which {ext} cannot hold here; use .gif or "
                         ".webp")
    return _IMAGE_FORMATS[ext]


def _parse_grid(text: str) -> tuple[int, int]:
    """'RxC' as (rows, columns); ValueError for anything else (the sizes are checked by the generator)."""
    import re

    m = re.fullmatch(r"\s*(\d{1,9})\s*[xX]\s*(\d{1,9})\s*", text, re.ASCII)
    if not m:
        raise ValueError(f"--grid {text!r}: use RxC, e.g. 4x4")
    return int(m.group(1)), int(m.group(2))


def _parse_directions(items: Sequence[str]) -> dict[str, str]:
    """--direction K=V items as {K: V} (checked against the model later); ValueError for a malformed or
    repeated K."""
    directions: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--direction {item!r}: use K=V, e.g. 0=1.5")
        if key.strip() in directions:
            raise ValueError(f"--direction {key.strip()} is given twice; give each direction once")
        directions[key.strip()] = value.strip()
    return directions


def _regenerate(gen: Any, record: Any, source: bytes, source_name: str, out: Any, fmt: str) -> int:
    """--from-png: say first when the installed model is another build than the record's, make the image
    again, write it with its true record, and judge "bit-exact" by the pixels of the original file."""
    import io

    from PIL import Image

    if record.model_sha256 != gen.model_sha256:
        print(f"aigc-studio: note: this image was made with model {record.model} sha256 "
              f"{record.model_sha256[:16] or '(none recorded)'}…, the installed {gen.name} is "
              f"{gen.model_sha256[:16]}…: the pixels will differ", file=sys.stderr)
    original = None
    try:
        with Image.open(io.BytesIO(source)) as im:
            rows, cols = record.grid or (1, 1)
            if im.size == (cols * gen.img_size, rows * gen.img_size):  # else no need to decode: they differ
                import numpy as np

                original = np.asarray(im.convert("RGBA"))
    except OSError as exc:
        raise ValueError(f"{source_name}: its pixels cannot be read ({exc}); the file is damaged") from None
    result = gen.regenerate(record, original)
    _save_image(gen, out, fmt, result.image, result.record)
    if result.original_edited:
        print(f"aigc-studio: note: the pixels of {source_name} were changed after its record was written",
              file=sys.stderr)
    if result.same_pixels:
        print(f"{out}: regenerated bit-exact (the same pixels as {source_name})")
        return 0
    why = "the model differs" if result.model_changed else "another runtime or provider, or edited pixels?"
    print(f"{out}: regenerated with DIFFERENT pixels from {source_name} ({why})")
    return 1


def _save_image(gen: Any, out: Any, fmt: str, img: Any, record: Any) -> None:
    """One image in the format `fmt`; the generation record goes into PNG only (a note says so otherwise)."""
    from PIL import Image

    if fmt == "PNG":
        out.write_bytes(gen.png(img, record))
        return
    if fmt == "GIF":
        _save_animation(out, fmt, [img])
    elif fmt == "JPEG":
        Image.fromarray(_composite(img, GIF_MATTE), "RGB").save(out, format="JPEG", quality=95)
        print("aigc-studio: note: JPEG has no transparency: the image is composited onto white", file=sys.stderr)
    else:
        Image.fromarray(img, "RGBA").save(out, format=fmt, lossless=True)
    print(f"aigc-studio: note: {out.suffix} keeps no generation record (only .png does, for --from-png)",
          file=sys.stderr)


def _save_animation(out: Any, fmt: str, frames: Sequence[Any]) -> None:
    """Frames (H, W, 4) uint8 RGBA as an animated GIF or lossless WebP (`runtime.image_files`)."""
    from aigc_studio.runtime.image_files import save_animation

    save_animation(out, fmt, frames)


def _composite(img: Any, matte: tuple[int, int, int]) -> Any:
    """(..., 4) uint8 straight RGBA composited onto the colour `matte`: (..., 3) uint8 RGB."""
    from aigc_studio.runtime.image_files import composite

    return composite(img, matte)
