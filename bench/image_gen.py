"""Speed of the image models: PyTorch eager against the app's onnxruntime path, and slider latency.

    python bench/image_gen.py                          # the shipped image models, 1 and 2 threads (~1 min)
    python bench/image_gen.py --models emoji-style --threads 2 --reps 50 --json out.json

For every model package (a registry name or a folder) and thread count, on the CPU:

  batch-1 latency     median ms for one image from a seed: PyTorch eager (the package's config with
                      random weights: speed does not depend on the values; noise constant) against
                      `ImageGenerator.images([seed])`, the app's call (mapping, controls, synthesis and
                      the conversion to uint8 RGBA included)
  batch-16 throughput images/s for 16 seeds at once, the same two paths
  slider change       (StyleGAN-style models) p50 and p95 ms from a direction slider's new value to the
                      new uint8 image: `ImageGenerator.images([seed], Controls(directions={0: v}))` with a
                      new v each time, as the design canvas asks for it

torch `set_num_threads` and onnxruntime's intra-op threads get the same value. Each cell is warmed up,
then repeated; medians. Speed-ups are eager / onnxruntime in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

SLIDER_TARGET_MS = 16.0   # issue 4: a slider change gives a new 64x64 image within 16 ms (p50)
DEFAULT_MODELS = ("emoji-style", "emoji-dcgan")


def _timeit(fn, reps: int, budget_s: float = 10.0) -> list[float]:
    fn()  # warm-up
    out, start = [], time.perf_counter()
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
        if time.perf_counter() - start > budget_s:
            break
    return out


def torch_twin(manifest: dict):
    """The package's generator in PyTorch with random weights, eval mode (noise constant for StyleGAN)."""

    from export.models import dcgan, stylegan

    cfg = manifest["config"]
    if manifest["architecture"] == "stylegan":
        fields = {f.name for f in dataclasses.fields(stylegan.StyleGANConfig)}
        G = stylegan.Generator(stylegan.StyleGANConfig(**{k: v for k, v in cfg.items() if k in fields}))

        def run(z, c):
            return G.synthesis(G.mapping(z, c)[:, None].repeat(1, G.cfg.num_ws, 1), noise_mode="const")
    else:
        fields = {f.name for f in dataclasses.fields(dcgan.DCGANConfig)}
        G = dcgan.Generator(dcgan.DCGANConfig(**{k: v for k, v in cfg.items() if k in fields}))

        def run(z, c):
            return G(z)
    G.eval()
    return G, run


def bench_model(name: str, threads: int, reps: int) -> dict:
    import torch

    from aigc_studio.core import latents as L
    from aigc_studio.runtime.image_generator import Controls, ImageGenerator
    from aigc_studio.runtime.package import load_package
    from aigc_studio.runtime.registry import ModelRegistry

    path = Path(name) if Path(name).is_dir() else ModelRegistry().find(name)
    pkg = load_package(path)
    gen = ImageGenerator(pkg, device="cpu", threads=threads)
    torch.set_num_threads(threads)
    G, run = torch_twin(pkg.manifest)
    res = {"model": pkg.name, "threads": threads, "architecture": gen.architecture,
           "parameters": sum(p.numel() for p in G.parameters()), "img_size": gen.img_size}
    cond = gen.conditional
    text = "red heart" if cond else ""
    controls = Controls(text=text)
    for batch in (1, 16):
        z = torch.from_numpy(L.z_from_seeds(list(range(batch)), gen.z_dim))
        c = torch.from_numpy(np.repeat(gen.condition(text)[None], batch, 0)) if cond else None
        with torch.inference_mode():
            eager = statistics.median(_timeit(lambda z=z, c=c: run(z, c), reps if batch == 1 else max(3, reps // 8)))
        ort = statistics.median(_timeit(lambda batch=batch: gen.images(list(range(batch)), controls),
                                        reps if batch == 1 else max(3, reps // 8)))
        res[f"eager_b{batch}_ms"], res[f"ort_b{batch}_ms"] = eager, ort
    if gen.is_style_based and gen.num_directions:
        values = iter(np.linspace(-3, 3, 10_000).tolist())
        times = _timeit(lambda: gen.images([7], Controls(directions={0: next(values)}, text=text)), reps * 2)
        res["slider_p50_ms"] = statistics.median(times)
        res["slider_p95_ms"] = float(np.percentile(times, 95))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="registry names or package folders")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from aigc_studio.runtime.package import PackageError

    rows, notes = [], []
    for name in [m for m in args.models.split(",") if m]:
        for t in [int(x) for x in args.threads.split(",")]:
            try:
                rows.append(bench_model(name, t, args.reps))
            except (PackageError, FileNotFoundError, KeyError) as exc:
                notes.append(f"{name}: skipped ({exc})")
                break
            print(f"measured {name} at {t} thread(s)", file=sys.stderr, flush=True)
    head = ("model", "params", "threads", "eager b1 ms", "ort b1 ms", "speed-up", "eager b16 img/s",
            "ort b16 img/s", "speed-up", "slider p50 ms", "slider p95 ms")
    table = [head]
    for r in rows:
        table.append((r["model"], f"{r['parameters'] / 1e6:.2f}M", str(r["threads"]), f"{r['eager_b1_ms']:.1f}",
                      f"{r['ort_b1_ms']:.1f}", f"{r['eager_b1_ms'] / r['ort_b1_ms']:.2f}x",
                      f"{16e3 / r['eager_b16_ms']:.0f}", f"{16e3 / r['ort_b16_ms']:.0f}",
                      f"{r['eager_b16_ms'] / r['ort_b16_ms']:.2f}x",
                      f"{r['slider_p50_ms']:.1f}" if "slider_p50_ms" in r else "-",
                      f"{r['slider_p95_ms']:.1f}" if "slider_p95_ms" in r else "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table[1:]:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")
    for r in rows:
        if "slider_p50_ms" in r:
            ok = "meets" if r["slider_p50_ms"] <= SLIDER_TARGET_MS else "MISSES"
            print(f"{r['model']} at {r['threads']} thread(s): slider change p50 {r['slider_p50_ms']:.1f} ms "
                  f"{ok} the {SLIDER_TARGET_MS:.0f} ms target")
    for n in notes:
        print(n)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "notes": notes}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
