"""Train an image GAN (DCGAN, WGAN-GP or the StyleGAN-style model) on the emoji/icon datasets.

    python -m export.train.gan --arch stylegan --data runs/data/images --sources fluent,noto --size 64 \
        --out runs/gan-emoji-style --batch-size 32 --max-minutes 85 --threads 1
    python -m export.train.gan --arch dcgan   --sources fluent,noto --out runs/gan-emoji-dcgan ...
    python -m export.train.gan --arch wgan-gp --sources fluent,noto --out runs/gan-emoji-wgan ...

- Images: RGBA, RGB premultiplied by alpha, scaled to [-1, 1]; optional horizontal flips; optional
  DiffAugment (`--diffaug color,translation,cutout`, export/models/diffaug.py) of everything the discriminator sees,
  which keeps it from memorising a few thousand images.
- StyleGAN: non-saturating loss, lazy R1 on reals, style-mixing regularisation, tracked average w,
  text condition = `core.latents.condition_features(label [+ some tags])` with condition dropout (zeros =
  unconditional), so the same function builds the condition in training and in the app.
- An exponential moving average of the generator weights (half-life in images) is what gets exported.
- Sample grids at intervals from fixed seeds (`core.latents.z_from_seeds`: a seed is an identity), kept in
  OUT/samples/ with OUT/samples/latest.png; checkpoints with their config (`torch.load(weights_only=True)`),
  resume from OUT/ckpt.pt, a fixed seed, a progress bar with losses and images/s.
- Several GPUs (or CPU processes on gloo): `torchrun --nproc_per_node N -m export.train.gan ...`. Every rank
  starts from the same weights, draws its own batches (the batch size is per rank) and averages gradients
  with all-reduce; rank 0 writes samples and checkpoints, after checking that the ranks still agree.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from tqdm import tqdm

from aigc_studio.core.latents import CONDITION_DIM, condition_features, z_from_seeds
from export.data.images import load_dataset
from export.models import dcgan, stylegan
from export.models.diffaug import DiffAugment

tqdm.monitor_interval = 0
ARCHS = ("stylegan", "dcgan", "wgan-gp")
SAMPLE_PROMPTS = ("red heart", "cat face", "grinning face", "star", "house", "dog", "flower", "")


# ----------------------------------------------------------------------------- images


def to_training_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 4) uint8 straight RGBA -> (N, 4, H, W) float32 in [-1, 1], RGB premultiplied."""
    x = torch.from_numpy(images).float().div_(255.0).permute(0, 3, 1, 2).contiguous()
    x[:, :3] *= x[:, 3:4]
    return x.mul_(2.0).sub_(1.0)


def to_rgba_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, 4, H, W) premultiplied in [-1, 1] -> (N, H, W, 4) uint8 straight RGBA (the runtime's rule)."""
    from aigc_studio.runtime.image_generator import to_rgba_uint8 as convert

    return convert(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)


def save_grid(images: np.ndarray, rows: int, path: Path) -> None:
    """(N, H, W, 4) uint8 in a grid of `rows` rows, transparent background."""
    n, h, w, c = images.shape
    cols = -(-n // rows)
    grid = np.zeros((rows * h, cols * w, c), np.uint8)
    for i, img in enumerate(images):
        grid[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w] = img
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(grid, "RGBA").save(tmp)
    os.replace(tmp, path)


def is_skin_tone_variant(meta: dict) -> bool:
    """An emoji recoloured with a skin-tone modifier: 'waving hand: medium skin tone'."""
    _, _, modifiers = meta.get("label", "").partition(":")
    return "skin tone" in modifiers


def condition_text(meta: dict, rng: np.random.Generator) -> str:
    """The label, and with probability 1/2 a random half of the tags (so short prompts work too)."""
    words = [meta["label"].split(":")[0]]
    tags = [t for t in meta.get("tags", []) if t]
    if tags and rng.random() < 0.5:
        words += [t for t in tags if rng.random() < 0.5]
    return " ".join(words)[:150]


# ----------------------------------------------------------------------------- models and checkpoints


def build_models(arch: str, config: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    if arch == "stylegan":
        cfg = stylegan.StyleGANConfig(**config)
        return stylegan.Generator(cfg), stylegan.Discriminator(cfg)
    cfg = dcgan.DCGANConfig(**config)
    return dcgan.Generator(cfg), dcgan.Discriminator(cfg)


def generator_from_checkpoint(path: Path, ema: bool = True) -> tuple[str, torch.nn.Module, dict]:
    """(arch, generator in eval mode, checkpoint) from a training checkpoint."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    G, _ = build_models(ck["arch"], ck["config"])
    G.load_state_dict(ck["G_ema" if ema else "G"])
    return ck["arch"], G.eval(), ck


@torch.no_grad()
def ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    for pe, p in zip(G_ema.parameters(), G.parameters()):
        pe.lerp_(p, 1.0 - beta)
    for be, b in zip(G_ema.buffers(), G.buffers()):
        be.copy_(b)


@torch.no_grad()
def sample_grid(arch: str, G: torch.nn.Module, z_dim: int, conditional: bool, seeds: int) -> tuple[np.ndarray, int]:
    """Images of the fixed seeds 0..seeds-1 (a row per sample prompt when conditional), uint8 RGBA."""
    z = torch.from_numpy(z_from_seeds(list(range(seeds)), z_dim))
    if arch != "stylegan":
        return to_rgba_uint8(G(z)), 1
    if not conditional:
        return to_rgba_uint8(G(z, noise_mode="const")), 1
    rows = []
    for prompt in SAMPLE_PROMPTS:
        c = torch.from_numpy(condition_features(prompt, G.cfg.cond_features)).expand(seeds, -1)
        rows.append(to_rgba_uint8(G(z, c, noise_mode="const")))
    return np.concatenate(rows), len(SAMPLE_PROMPTS)


# ----------------------------------------------------------------------------- training


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m export.train.gan", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=ARCHS, default="stylegan")
    ap.add_argument("--data", type=Path, default=Path("runs/data/images"))
    ap.add_argument("--sources", default="fluent,noto", help="datasets built by export.data.images")
    ap.add_argument("--groups", default="", help="keep only these groups (comma-separated)")
    ap.add_argument("--drop-skin-tones", action="store_true",
                    help="leave out the skin-tone variants ('...: medium skin tone'), recolourings of the same "
                         "design that are 46%% of the emoji sets; the default-coloured design stays")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    ap.add_argument("--config", default="{}", help="model config overrides as JSON, e.g. '{\"channel_max\": 128}'")
    ap.add_argument("--unconditional", action="store_true", help="StyleGAN without the text condition")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100_000, help="generator steps")
    ap.add_argument("--max-minutes", type=float, default=0.0, help="stop (and save) after this much time")
    ap.add_argument("--lr", type=float, default=0.0, help="0 = the architecture's usual value")
    ap.add_argument("--r1-gamma", type=float, default=0.2)
    ap.add_argument("--r1-every", type=int, default=16)
    ap.add_argument("--mixing-prob", type=float, default=0.9)
    ap.add_argument("--cond-dropout", type=float, default=0.1)
    ap.add_argument("--n-critic", type=int, default=5, help="critic steps per generator step (wgan-gp)")
    ap.add_argument("--gp-lambda", type=float, default=10.0)
    ap.add_argument("--ema-half-life", type=float, default=5000.0, help="EMA half-life in images")
    ap.add_argument("--xflip", action="store_true", help="random horizontal flips")
    ap.add_argument("--diffaug", default="", help="DiffAugment policy for what the discriminator sees, "
                    "e.g. 'color,translation,cutout' (export/models/diffaug.py); empty = none")
    ap.add_argument("--sample-every", type=int, default=500)
    ap.add_argument("--sample-seeds", type=int, default=8)
    ap.add_argument("--ckpt-every", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    return ap.parse_args(argv)


def default_config(args: argparse.Namespace) -> dict[str, Any]:
    if args.arch == "stylegan":
        cfg: dict[str, Any] = {"img_size": args.size,
                               "cond_features": 0 if args.unconditional else CONDITION_DIM}
    else:
        cfg = {"img_size": args.size, "loss": "wgan-gp" if args.arch == "wgan-gp" else "ns",
               "d_norm": "layer" if args.arch == "wgan-gp" else "batch"}
    return {**cfg, **json.loads(args.config)}


def sync_gradients(module: torch.nn.Module, world: int) -> None:
    """Average the gradients over the ranks. Done by hand rather than with DistributedDataParallel, which
    cannot take the double backward of the R1 and gradient penalties (StyleGAN2-ADA does the same)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if world > 1 and grads:
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= world
        torch.nn.utils.vector_to_parameters(flat, grads)  # copies back into the .grad tensors


def replicas_agree(module: torch.nn.Module) -> bool:
    """Whether every rank holds the same parameters (checked at each checkpoint)."""
    v = torch.nn.utils.parameters_to_vector(module.parameters()).detach().double()
    lo, hi = v.clone(), v.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(torch.equal(lo, hi))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    rng = np.random.default_rng(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # Launched by torchrun: one process per GPU (or CPU process on gloo); the batch size is per rank.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = 0
    if world > 1:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        rank = dist.get_rank()
        if device == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    master = rank == 0
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "ckpt.pt"

    sources = [s for s in args.sources.split(",") if s]
    images, metas = load_dataset(args.data, sources, args.size, [g for g in args.groups.split(",") if g] or None)
    if args.drop_skin_tones:
        keep = [i for i, m in enumerate(metas) if not is_skin_tone_variant(m)]
        images, metas = images[keep], [metas[i] for i in keep]
    data = to_training_tensor(images)
    data_info = json.loads((args.data / "sources.json").read_text()) if (args.data / "sources.json").is_file() else {}

    step, history, minutes_before, ck = 0, [], 0.0, None
    if args.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if ck["arch"] != args.arch:
            raise SystemExit(f"{ckpt_path} is a {ck['arch']} checkpoint, not {args.arch}")
        config = ck["config"]
        step, history, minutes_before = int(ck["step"]), json.loads(ck["history"]), float(ck["minutes"])
    else:
        config = default_config(args)
    G, D = build_models(args.arch, config)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    is_stylegan = args.arch == "stylegan"
    conditional = is_stylegan and G.cfg.cond_features > 0
    if is_stylegan:
        lr, betas = args.lr or 2e-3, (0.0, 0.99)
        # Lazy R1: the penalty runs every r1_every steps, so Adam's moments are rescaled (StyleGAN2).
        c = args.r1_every / (args.r1_every + 1)
        opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
        opt_d = torch.optim.Adam(D.parameters(), lr=lr * c, betas=(betas[0] ** c, betas[1] ** c))
    else:
        lr, betas = (args.lr or 1e-4, (0.0, 0.9)) if args.arch == "wgan-gp" else (args.lr or 2e-4, (0.5, 0.999))
        opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
        opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    if ck is not None:
        G.load_state_dict(ck["G"])
        D.load_state_dict(ck["D"])
        G_ema.load_state_dict(ck["G_ema"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        torch.manual_seed(args.seed + step)
        rng = np.random.default_rng(args.seed + step)
    if world > 1:  # each rank draws its own batches and latents
        torch.manual_seed(args.seed + step + 1000 * (rank + 1))
        rng = np.random.default_rng(args.seed + step + 1000 * (rank + 1))
    G.to(device), D.to(device), G_ema.to(device)
    data = data.to(device)
    z_dim = G.cfg.z_dim
    say = print if master else (lambda *a, **k: None)
    aug = DiffAugment(args.diffaug)
    # What the discriminator sees: real and generated images through the same random, differentiable
    # transforms, in its own step, the generator's step and the penalties alike.
    D_seen = (lambda x, *rest: D(aug(x), *rest)) if aug else D
    say(f"{args.arch}: G {sum(p.numel() for p in G.parameters()) / 1e6:.2f}M, "
        f"D {sum(p.numel() for p in D.parameters()) / 1e6:.2f}M parameters; {json.dumps(config)}")
    say(f"data: {len(data)} images of {args.size}px from {', '.join(sources)}; device {device}, "
        f"threads {torch.get_num_threads()}, ranks {world} (batch {args.batch_size} each)")

    def batch() -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = rng.integers(0, len(data), args.batch_size)
        x = data[torch.from_numpy(idx).to(device)]
        if args.xflip:
            flip = torch.from_numpy(rng.random(args.batch_size) < 0.5).to(device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if not conditional:
            return x, None
        feats = np.stack([condition_features(condition_text(metas[i], rng), G.cfg.cond_features)
                          if rng.random() >= args.cond_dropout else np.zeros(G.cfg.cond_features, np.float32)
                          for i in idx])
        return x, torch.from_numpy(feats).to(device)

    def save(final: bool = False) -> None:
        state = {"arch": args.arch, "config": config, "G": G.state_dict(), "D": D.state_dict(),
                 "G_ema": G_ema.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                 "step": step, "history": json.dumps(history), "minutes": minutes_before + (time.time() - t0) / 60,
                 "args": json.dumps({k: str(v) for k, v in vars(args).items()}), "data": json.dumps(data_info)}
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, ckpt_path)

    def samples() -> None:
        grid, rows = sample_grid(args.arch, G_ema, z_dim, conditional, args.sample_seeds)
        save_grid(grid, rows, args.out / "samples" / f"step_{step:07d}.png")
        save_grid(grid, rows, args.out / "samples" / "latest.png")

    t0 = time.time()
    bar = tqdm(total=args.steps, initial=step, unit="step", dynamic_ncols=True, disable=not master,
               mininterval=0.5 if sys.stderr.isatty() else 30)
    ema_beta = 0.5 ** (args.batch_size / max(args.ema_half_life, 1e-8))
    t_last, logs = time.time(), {}
    while step < args.steps:
        # --- discriminator / critic
        for _ in range(args.n_critic if args.arch == "wgan-gp" else 1):
            real, c = batch()
            z = torch.randn(args.batch_size, z_dim, device=device)
            with torch.no_grad():
                fake = G(z, c, mixing_prob=args.mixing_prob) if is_stylegan else G(z)
            if is_stylegan:
                loss_d = stylegan.d_loss(D_seen(real, c), D_seen(fake, c))
                if step % args.r1_every == 0:
                    r1 = stylegan.r1_penalty(D_seen, real, c)
                    loss_d = loss_d + args.r1_gamma / 2 * r1 * args.r1_every
                    logs["r1"] = r1.item()
            elif args.arch == "wgan-gp":
                gp = dcgan.gradient_penalty(D_seen, real, fake)
                loss_d = dcgan.d_loss_wgan(D_seen(real), D_seen(fake)) + args.gp_lambda * gp
                logs["gp"] = gp.item()
            else:
                loss_d = dcgan.d_loss_ns(D_seen(real), D_seen(fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            sync_gradients(D, world)
            opt_d.step()
        # --- generator
        _, c = batch()
        z = torch.randn(args.batch_size, z_dim, device=device)
        if is_stylegan:
            fake = G(z, c, mixing_prob=args.mixing_prob, update_w_avg=True)
            loss_g = stylegan.g_loss(D_seen(fake, c))
        else:
            fake = G(z)
            loss_g = dcgan.g_loss_wgan(D_seen(fake)) if args.arch == "wgan-gp" else dcgan.g_loss_ns(D_seen(fake))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        sync_gradients(G, world)
        opt_g.step()
        ema_update(G_ema, G, ema_beta)
        step += 1
        now = time.time()
        logs.update(d=loss_d.item(), g=loss_g.item())
        bar.update(1)
        bar.set_postfix(**{k: f"{v:.3f}" for k, v in logs.items()}, img_s=f"{args.batch_size / (now - t_last):.0f}")
        t_last = now
        out_of_time = bool(args.max_minutes) and minutes_before + (now - t0) / 60 >= args.max_minutes
        if world > 1:  # every rank stops at the same step: rank 0's clock decides
            flag = torch.tensor([float(out_of_time)], device=device)
            dist.broadcast(flag, 0)
            out_of_time = bool(flag.item())
        if master and (step % args.sample_every == 0 or step == args.steps or out_of_time):
            samples()
        if step % args.ckpt_every == 0 or step == args.steps or out_of_time:
            if world > 1 and not replicas_agree(G):
                raise RuntimeError(f"step {step}: the ranks' generators differ; gradient averaging failed")
            history.append({"step": step, **{k: round(v, 4) for k, v in logs.items()},
                            "minutes": round(minutes_before + (now - t0) / 60, 2)})
            if master:
                save()
        if out_of_time:
            break
    bar.close()
    say(f"done at step {step}; checkpoint {ckpt_path}, samples {args.out / 'samples' / 'latest.png'}")
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
