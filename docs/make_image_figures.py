"""Make the README's figures of the shipped image models, through the app's runtime (no torch).

    python docs/make_image_figures.py            # -> docs/emoji-*.png

- emoji-style-seeds.png    seeds 0..31, no condition, psi 0.7
- emoji-style-prompts.png  a row per condition text, the same 8 seeds in every row, psi 0.7
- emoji-style-controls.png one seed: truncation, style mixing and the first direction sliders
- emoji-style-interp.png   frames between two seeds (linear in w)
- emoji-dcgan-seeds.png    seeds 0..31 of the DCGAN baseline
Images are composited on a light background so that transparency reads on any page.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from aigc_studio.runtime.image_generator import Controls, ImageGenerator
from aigc_studio.runtime.registry import ModelRegistry

DOCS = Path(__file__).resolve().parent
PROMPTS = ("red heart", "cat face", "grinning face", "star", "house", "dog", "flower", "")
SCALE = 2          # 64 px images shown at 128 px
LABEL_W = 160


def on_background(rgba: np.ndarray) -> Image.Image:
    im = Image.fromarray(rgba, "RGBA")
    bg = Image.new("RGBA", im.size, (246, 246, 242, 255))
    bg.alpha_composite(im)
    return bg.convert("RGB")


def tile(images: list[np.ndarray], cols: int) -> np.ndarray:
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    out = np.zeros((rows * h, cols * w, 4), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return out


def labelled_rows(rows: list[tuple[str, list[np.ndarray]]]) -> Image.Image:
    size = rows[0][1][0].shape[0] * SCALE
    cols = max(len(r[1]) for r in rows)
    sheet = Image.new("RGB", (LABEL_W + cols * size, len(rows) * size), (246, 246, 242))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    for i, (label, imgs) in enumerate(rows):
        draw.text((8, i * size + size // 2 - 8), label, fill=(40, 40, 40), font=font)
        for j, img in enumerate(imgs):
            sheet.paste(on_background(img).resize((size, size), Image.NEAREST), (LABEL_W + j * size, i * size))
    return sheet


def save(im: Image.Image, name: str) -> None:
    im.save(DOCS / name, optimize=True)
    print(f"docs/{name} {im.size[0]}x{im.size[1]}")


def main() -> int:
    reg = ModelRegistry()
    style = ImageGenerator(reg.load("emoji-style"), device="cpu")
    psi = 0.7
    seeds = on_background(tile(list(style.images(range(32), Controls(psi=psi))), 8))
    save(seeds.resize((seeds.width * SCALE, seeds.height * SCALE), Image.NEAREST), "emoji-style-seeds.png")
    rows = [(text or "(no text)", list(style.images(range(8), Controls(psi=psi, text=text)))) for text in PROMPTS]
    save(labelled_rows(rows), "emoji-style-prompts.png")
    seed = 3
    controls = [("psi 1.0 / 0.7 / 0.4 / 0", [style.images([seed], Controls(psi=p))[0] for p in (1.0, 0.7, 0.4, 0.0)])]
    for layers in ("coarse", "middle", "fine"):
        controls.append((f"{layers} from seed 11", [style.images([seed], Controls(psi=psi))[0],
                                                    style.images([11], Controls(psi=psi))[0],
                                                    style.images([seed], Controls(psi=psi, mix_seed=11,
                                                                                  mix_layers=layers))[0]]))
    for k in range(min(3, style.num_directions)):
        controls.append((f"direction {k}: -3 to 3", [style.images([seed], Controls(psi=psi, directions={k: v}))[0]
                                                   for v in (-3, -1.5, 0, 1.5, 3)]))
    save(labelled_rows(controls), "emoji-style-controls.png")
    frames = style.interpolate(3, 11, 8, controls=Controls(psi=psi))
    save(labelled_rows([("seed 3 -> 11", frames)]), "emoji-style-interp.png")
    dc = ImageGenerator(reg.load("emoji-dcgan"), device="cpu")
    grid = on_background(tile(list(dc.images(range(32))), 8))
    save(grid.resize((grid.width * SCALE, grid.height * SCALE), Image.NEAREST), "emoji-dcgan-seeds.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
