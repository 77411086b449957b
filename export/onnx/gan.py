"""Export a trained image GAN as a model package (kind `image-gan`): export, validate, write.

    python -m export.onnx.gan --checkpoint runs/gan-emoji-style/ckpt.pt --out resources/models/emoji-style \
        --name emoji-style

1. Export the EMA generator to ONNX (opset 17, standard ops, dynamic batch):
   StyleGAN-style: `mapping.onnx` (z (B, Z) [, c (B, C)] -> w (B, W)) and `synthesis.onnx`
   (ws (B, L, W) -> image (B, 4, H, W), the exported fixed noise); DCGAN/WGAN-GP: `generator.onnx`
   (z (B, Z) -> image).
2. GANSpace: map many seeds (with and without conditions drawn from the sample prompts) and keep the
   average w and the top principal directions of w with their standard deviations in `latents.npz`.
3. Validate through `aigc_studio.runtime.ImageGenerator` (the code the app uses) against PyTorch for
   several seeds, batch sizes and controls: w within W_TOL, images within IMAGE_TOL (on the [-1, 1]
   scale), and the runtime's uint8 pixels within one level. A failure stops the export.
4. Write `reference.npz` (seeds, text features, expected w and images) for runtime parity tests without
   torch, and the manifest with config, io names, sources and the validation figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc_studio.core import latents as L
from aigc_studio.runtime.image_generator import Controls, ImageGenerator, to_rgba_uint8
from aigc_studio.runtime.package import load_package, write_package
from export.models import stylegan
from export.train.gan import SAMPLE_PROMPTS, generator_from_checkpoint

W_TOL = 1e-4          # max |w difference| between onnxruntime and PyTorch
IMAGE_TOL = 2e-3      # max |image difference| on the [-1, 1] scale (~1/4 of a uint8 level)
OPSET = 17


class _Synthesis(torch.nn.Module):
    def __init__(self, G: stylegan.Generator) -> None:
        super().__init__()
        self.synthesis = G.synthesis

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        return self.synthesis(ws, noise_mode="const")


class _Mapping(torch.nn.Module):
    def __init__(self, G: stylegan.Generator) -> None:
        super().__init__()
        self.mapping = G.mapping

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.mapping(z, c)


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    axes = {n: {0: "batch"} for n in inputs + outputs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)


def graph_io(arch: str, conditional: bool) -> dict[str, dict[str, list[str]]]:
    if arch == "stylegan":
        return {"mapping": {"inputs": ["z", "c"] if conditional else ["z"], "outputs": ["w"]},
                "synthesis": {"inputs": ["ws"], "outputs": ["image"]}}
    return {"generator": {"inputs": ["z"], "outputs": ["image"]}}


@torch.no_grad()
def ganspace(G: stylegan.Generator, n: int, k: int, seed: int = 123) -> L.PrincipalDirections:
    """Average w and principal directions from `n` sampled w (half unconditional, half under the
    sample prompts when the model is conditional)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.cfg.z_dim, generator=g)
    c = None
    if G.cfg.cond_features:
        prompts = [p for p in SAMPLE_PROMPTS if p]
        feats = np.stack([L.condition_features(prompts[i % len(prompts)], G.cfg.cond_features)
                          if i % 2 else np.zeros(G.cfg.cond_features, np.float32) for i in range(n)])
        c = torch.from_numpy(feats)
    ws = torch.cat([G.mapping(z[i:i + 1024], None if c is None else c[i:i + 1024]) for i in range(0, n, 1024)])
    pd = L.principal_directions(ws.numpy(), k)
    if G.cfg.cond_features:  # the average w for truncation is that of the unconditional half
        pd = L.PrincipalDirections(ws[0::2].mean(0).numpy().astype(np.float32), pd.directions, pd.stds, pd.explained)
    return pd


def manifest(arch: str, G: torch.nn.Module, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    cfg = G.cfg
    conditional = arch == "stylegan" and cfg.cond_features > 0
    io = graph_io(arch, conditional)
    config: dict[str, Any] = {**cfg.to_dict(), "parameters": sum(p.numel() for p in G.parameters()),
                              "color": "rgba-premultiplied", "range": [-1, 1]}
    if arch == "stylegan":
        config.update(num_ws=cfg.num_ws, layer_resolutions=cfg.layer_resolutions(),
                      condition="core.latents.condition_features" if conditional else "none")
    m = {"name": name, "kind": "image-gan", "architecture": "stylegan" if arch == "stylegan" else "dcgan",
         "training_arch": arch, "config": config,
         "graphs": {"variants": {g: f"{g}.onnx" for g in io}, "default": list(io)[-1], "opset": OPSET},
         **{g: {"variants": {g: f"{g}.onnx"}, **spec} for g, spec in io.items()},
         "reference": "reference.npz", **extra}
    if arch == "stylegan":
        m["latents"] = "latents.npz"
    return m


def uint8_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Max difference of two (N, H, W, 4) uint8 straight-RGBA batches as they are seen: alpha, and colour
    times alpha. Straight colour alone is no measure: where alpha is small it is premultiplied colour
    divided by that alpha, and a 1e-5 difference that moves alpha by one level can move it by many."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    pa, pb = a[..., :3] * a[..., 3:] / 255.0, b[..., :3] * b[..., 3:] / 255.0
    return int(np.ceil(max(np.abs(a[..., 3] - b[..., 3]).max(), np.abs(pa - pb).max()) - 1e-9))


@torch.no_grad()
def validate(folder: Path, arch: str, G: torch.nn.Module) -> dict[str, Any]:
    """Compare the package at `folder`, run through the runtime, with PyTorch."""
    gen = ImageGenerator(load_package(folder), device="cpu")
    rep: dict[str, Any] = {"provider": gen.provider}
    w_diff = img_diff = 0.0
    u8_diff = 0
    for seeds in ([0], [1, 2, 3], list(range(10, 17))):
        z = L.z_from_seeds(seeds, gen.z_dim)
        if arch == "stylegan":
            for text in (["", "red heart"] if gen.conditional else [""]):
                c = torch.from_numpy(np.repeat(gen.condition(text)[None], len(seeds), 0)) if gen.conditional else None
                w_ref = G.mapping(torch.from_numpy(z), c)
                w_got = gen.mapping(z, text)
                w_diff = max(w_diff, float(np.abs(w_got - w_ref.numpy()).max()))
                ws = L.broadcast_w(w_got, gen.num_ws)
                ws = L.style_mix(ws, ws[::-1].copy(), L.mixing_layers("coarse", gen.num_ws, gen.layer_resolutions))
                ref = G.synthesis(torch.from_numpy(ws), noise_mode="const").numpy()
                got = gen.synthesis(ws)
                img_diff = max(img_diff, float(np.abs(got - ref).max()))
                u8 = gen.images(seeds, Controls(text=text))
                u8_ref = to_rgba_uint8(G.synthesis(torch.from_numpy(L.broadcast_w(w_ref.numpy(), gen.num_ws)),
                                                   noise_mode="const").numpy())
                u8_diff = max(u8_diff, uint8_diff(u8, u8_ref))
        else:
            ref = G(torch.from_numpy(z)).numpy()
            got = gen.sessions["generator"].session.run(["image"], {"z": z})[0]
            img_diff = max(img_diff, float(np.abs(got - ref).max()))
            u8_diff = max(u8_diff, uint8_diff(gen.images(seeds), to_rgba_uint8(ref)))
    rep.update(max_abs_w_diff=w_diff, max_abs_image_diff=img_diff, max_uint8_diff=u8_diff,
               ok=w_diff <= W_TOL and img_diff <= IMAGE_TOL and u8_diff <= 1)
    return rep


@torch.no_grad()
def export_package(arch: str, G: torch.nn.Module, out: Path, *, name: str, description: str = "",
                   licence: str = "unspecified", sources: Any = (), training: dict | None = None,
                   ganspace_samples: int = 10_000, directions: int = 16, verbose: bool = True) -> dict[str, Any]:
    """Export, validate and write the package folder `out`; return the validation report.
    Raises SystemExit when the runtime disagrees with PyTorch beyond the tolerances."""
    say = print if verbose else (lambda *a, **k: None)
    G = G.eval()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / name
        stage.mkdir()
        ref_seeds = [0, 1, 2, 3]
        z = torch.from_numpy(L.z_from_seeds(ref_seeds, G.cfg.z_dim))
        ref: dict[str, np.ndarray] = {"seeds": np.asarray(ref_seeds, np.int64)}
        if arch == "stylegan":
            cond = G.cfg.cond_features > 0
            c = (torch.from_numpy(np.repeat(L.condition_features("red heart", G.cfg.cond_features)[None], 4, 0))
                 if cond else None)
            _export(_Mapping(G), (z, c) if cond else (z,), stage / "mapping.onnx",
                    *graph_io(arch, cond)["mapping"].values())
            ws = G.mapping(z, c)[:, None].repeat(1, G.cfg.num_ws, 1)
            _export(_Synthesis(G), (ws,), stage / "synthesis.onnx", ["ws"], ["image"])
            pd = ganspace(G, ganspace_samples, directions)
            np.savez(stage / "latents.npz", w_avg=pd.mean, directions=pd.directions, stds=pd.stds,
                     explained=pd.explained)
            ref.update(text=np.asarray("red heart" if cond else ""), w=G.mapping(z, c).numpy(),
                       image=G.synthesis(ws, noise_mode="const").numpy())
        else:
            _export(G, (z,), stage / "generator.onnx", ["z"], ["image"])
            ref.update(image=G(z).numpy())
        ref["tolerance"] = np.asarray([W_TOL, IMAGE_TOL], np.float32)
        np.savez(stage / "reference.npz", **ref)
        extra = {"description": description, "licence": licence, "sources": sources, "training": training or {}}
        write_package(stage, manifest(arch, G, name, extra))
        rep = validate(stage, arch, G)
        say(f"validation: max |w diff| {rep['max_abs_w_diff']:.2e} (tol {W_TOL}), max |image diff| "
            f"{rep['max_abs_image_diff']:.2e} (tol {IMAGE_TOL}), "
            f"max uint8 diff (alpha, premultiplied colour) {rep['max_uint8_diff']} "
            f"on {rep['provider']}")
        if not rep["ok"]:
            raise SystemExit(f"validation failed: {rep}")
        extra["validation"] = {**rep, "tolerance": {"w": W_TOL, "image": IMAGE_TOL, "uint8_premultiplied": 1}}
        write_package(stage, manifest(arch, G, name, extra))
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(stage, out)
    say(f"wrote {out} ({sum(p.stat().st_size for p in out.iterdir()) / 1e6:.1f} MB)")
    return rep


def tiny_generator(arch: str = "stylegan", conditional: bool = True, img_size: int = 16,
                   seed: int = 0) -> torch.nn.Module:
    """A small randomly initialised generator (for tests and benchmarks), in eval mode. Its noise
    strengths and biases are made non-zero so every part of the graph matters in a parity check."""
    from export.models import dcgan

    torch.manual_seed(seed)
    if arch == "stylegan":
        cfg = stylegan.StyleGANConfig(img_size=img_size, z_dim=16, w_dim=16, mapping_layers=2,
                                          cond_features=L.CONDITION_DIM if conditional else 0, cond_embed=8,
                                          channel_base=32 * img_size, channel_max=16)
        G: torch.nn.Module = stylegan.Generator(cfg)
        with torch.no_grad():
            for name, p in G.named_parameters():
                if "noise_strength" in name or name.endswith("bias"):
                    p.normal_(0, 0.1)
    else:
        G = dcgan.Generator(dcgan.DCGANConfig(img_size=img_size, z_dim=16, ngf=8,
                                                      loss="wgan-gp" if arch == "wgan-gp" else "ns",
                                                      d_norm="layer" if arch == "wgan-gp" else "batch"))
    return G.eval()


def _sources_from_checkpoint(ck: dict) -> list[dict[str, Any]]:
    data = json.loads(ck.get("data", "{}") or "{}")
    args = json.loads(ck.get("args", "{}") or "{}")
    root = Path(args.get("data", "runs/data/images"))
    for key in [s for s in str(args.get("sources", "")).split(",") if s]:
        index = root / key / "index.json"   # each built source records its own package and version
        if key not in data.get("sources", {}) and index.is_file():
            src = json.loads(index.read_text(encoding="utf-8"))["source"]
            count = len(json.loads(index.read_text(encoding="utf-8"))["items"])
            data.setdefault("sources", {})[key] = {**src, "images": count}
    data["sources"] = {k: v for k, v in data.get("sources", {}).items()
                       if not args.get("sources") or k in str(args["sources"]).split(",")}
    out = [{"id": k, "package": s.get("package"), "registry": s.get("registry"), "version": s.get("version"),
            "licence": s.get("licence"), "images": s.get("images")} for k, s in data.get("sources", {}).items()]
    if data.get("labels"):
        lab = data["labels"]
        out.append({"id": "labels", "package": lab.get("package"), "registry": lab.get("registry"),
                    "version": lab.get("version"), "licence": lab.get("licence")})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.onnx.gan", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--licence", default="Apache-2.0 (weights); training images MIT / Apache-2.0 (see sources)")
    ap.add_argument("--ganspace-samples", type=int, default=10_000)
    ap.add_argument("--directions", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    arch, G, ck = generator_from_checkpoint(args.checkpoint)
    history = json.loads(ck.get("history", "[]"))
    training = {"arch": arch, "steps": int(ck["step"]), "minutes": round(float(ck.get("minutes", 0)), 1),
                "history": history[-3:], "args": json.loads(ck.get("args", "{}"))}
    export_package(arch, G, args.out, name=args.name, description=args.description, licence=args.licence,
                   sources=_sources_from_checkpoint(ck), training=training,
                   ganspace_samples=args.ganspace_samples, directions=args.directions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
