"""The feature space of domain FID/KID: a small classifier trained on the emoji labels, as a package.

    python -m export.eval.fid --sources fluent,noto --size 64 --out resources/models/emoji-features

No Inception weights can be had offline, so the features come from a CNN trained here on what the images
are: the emojibase subgroup of each emoji ("face-smiling", "animal-mammal", "food-fruit", ...; a rare
subgroup falls back to its group). Its 256-d pooled penultimate layer is the feature space. Scores in it
are called *domain* FID and *domain* KID: they rank generators of these images, and are not comparable
with Inception FID figures from papers.

1. Split the real images by emoji label (both renderings of an emoji fall on the same side): 80 %
   reference, 20 % held out. The classifier trains on the labelled reference images only.
2. Export `features.onnx` (image (B, 4, H, W) premultiplied RGBA in [-1, 1] -> features (B, 256),
   logits (B, K)) and validate it through `aigc_studio.runtime.features` against PyTorch.
3. Write `reference.npz` (features of the reference and held-out images, computed through the runtime
   from the uint8 images, exactly as generated images are) and the manifest with the floor: the held-out
   real images scored against the reference, the best a generator can reach with that many samples.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from aigc_studio.runtime.features import FeatureExtractor, from_rgba_uint8
from aigc_studio.runtime.package import load_package, write_package
from export.data.images import load_dataset

FEATURE_TOL = 1e-3   # max |feature difference| between onnxruntime and PyTorch
OPSET = 17
MIN_CLASS = 10       # a subgroup with fewer reference images is replaced by its group


@dataclass
class FeatureNetConfig:
    img_size: int = 64          # input side in pixels
    channels: int = 4           # RGBA, premultiplied
    width: int = 32             # channels of the first stage; doubled per stage
    stages: int = 4             # stride-2 stages: 64 -> 4
    feature_dim: int = 256      # channels of the last stage = the feature vector
    n_classes: int = 10


class FeatureNet(nn.Module):
    """Conv-BN-ReLU stages, global average pooling (= the features), a linear classifier."""

    def __init__(self, cfg: FeatureNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        cin = cfg.channels
        for i in range(cfg.stages):
            cout = cfg.feature_dim if i == cfg.stages - 1 else cfg.width * 2 ** i
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                       nn.Conv2d(cout, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cfg.feature_dim, cfg.n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x).mean(dim=(2, 3))                               # (B, D)
        return f, self.head(F.dropout(f, 0.2, self.training))            # (B, D), (B, K)


def split_by_label(metas: list[dict], heldout_share: int = 5) -> np.ndarray:
    """Boolean mask of the held-out images: a stable hash of the label, so a split never changes."""
    return np.array([int(hashlib.sha1(m["label"].encode()).hexdigest(), 16) % heldout_share == 0 for m in metas])


def class_names(metas: list[dict]) -> list[str]:
    sub = Counter(m.get("subgroup") or "" for m in metas if m.get("group") not in (None, "", "unmatched"))
    return [(m.get("subgroup") if sub[m.get("subgroup") or ""] >= MIN_CLASS else m.get("group")) or ""
            for m in metas]


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 4 px (transparent fill) and horizontal flips."""
    b = x.shape[0]
    pad = F.pad(x, (4, 4, 4, 4), value=-1.0)
    dx, dy = torch.randint(0, 9, (2,), generator=g).tolist()
    x = pad[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
    flip = torch.rand(b, generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def train(x: torch.Tensor, y: torch.Tensor, cfg: FeatureNetConfig, epochs: int, batch: int = 64,
          seed: int = 0, log=print) -> FeatureNet:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = FeatureNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.15)
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            _, logits = net(augment(x[idx], g))
            loss = F.cross_entropy(logits, y[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            total += len(idx)
        log(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.3f}, train accuracy {correct / total:.3f} "
            f"({time.time() - t0:.0f} s)")
    return net.eval()


def label_classes(metas: list[dict], names: list[str], classes: list[str]) -> list[list]:
    """[label, class index] of every distinct label of `metas` whose class the classifier knows."""
    index = {c: k for k, c in enumerate(classes)}
    seen: dict[str, int] = {}
    for m, n in zip(metas, names):
        if n in index:
            seen.setdefault(m["label"], index[n])
    return [[label, k] for label, k in seen.items()]


def export_package(net: FeatureNet, out: Path, *, name: str, classes: list[str], reference: np.ndarray,
                   heldout: np.ndarray, extra: dict, verbose: bool = True,
                   labels: list[list] | None = None) -> dict:
    """Export, validate and write the feature package; `reference`/`heldout` are uint8 RGBA images,
    `labels` the [label, class] pairs that `aigc-studio eval condition` asks a generator for."""
    say = print if verbose else (lambda *a, **k: None)
    net = net.eval()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / name
        stage.mkdir()
        dummy = torch.from_numpy(from_rgba_uint8(reference[:2]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (dummy,), str(stage / "features.onnx"), dynamo=False, input_names=["image"],
                              output_names=["features", "logits"], opset_version=OPSET,
                              dynamic_axes={"image": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}})
        # placeholder reference so the package loads for validation; replaced below
        np.savez(stage / "reference.npz", reference=np.zeros((2, net.cfg.feature_dim), np.float32),
                 heldout=np.zeros((2, net.cfg.feature_dim), np.float32))
        if labels:
            (stage / "labels.json").write_text(json.dumps({"heldout": labels}, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
            extra = {**extra, "labels": "labels.json"}
        cfg = {**asdict(net.cfg), "classes": classes, "input": "rgba-premultiplied", "range": [-1, 1],
               "parameters": sum(p.numel() for p in net.parameters())}
        m = {"name": name, "kind": "image-features", "config": cfg,
             "graphs": {"variants": {"features": "features.onnx"}, "default": "features", "opset": OPSET},
             "features": {"variants": {"features": "features.onnx"}, "inputs": ["image"],
                          "outputs": ["features", "logits"]},
             "reference": "reference.npz", **extra}
        write_package(stage, m)
        fx = FeatureExtractor(load_package(stage))
        with torch.no_grad():
            probe = reference[:: max(1, len(reference) // 64)][:64]
            ref = net(torch.from_numpy(from_rgba_uint8(probe)))[0].numpy()
        diff = float(np.abs(fx.features(probe) - ref).max())
        say(f"validation: max |feature diff| {diff:.2e} (tol {FEATURE_TOL}) on {len(probe)} images")
        if diff > FEATURE_TOL:
            raise SystemExit(f"validation failed: features differ by {diff:.2e}")
        np.savez(stage / "reference.npz", reference=fx.features(reference).astype(np.float32),
                 heldout=fx.features(heldout).astype(np.float32))
        write_package(stage, m)
        fx = FeatureExtractor(load_package(stage))
        floor = fx.heldout_scores().as_dict()
        say(f"floor (held-out real images): domain FID {floor['fid']:.2f}, domain KID {floor['kid']:.4f} "
            f"± {floor['kid_std']:.4f} ({floor['samples']} vs {floor['reference_samples']} images)")
        m.update(floor=floor, validation={"max_abs_feature_diff": diff, "tolerance": FEATURE_TOL})
        write_package(stage, m)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(stage, out)
    say(f"wrote {out} ({sum(p.stat().st_size for p in out.iterdir()) / 1e6:.1f} MB)")
    return floor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.eval.fid", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/data/images"))
    ap.add_argument("--sources", default="fluent,noto")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", default="emoji-features")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sources = [s for s in args.sources.split(",") if s]
    images, metas = load_dataset(args.data, sources, args.size)
    held = split_by_label(metas)
    names = class_names(metas)
    train_idx = [i for i in range(len(metas)) if not held[i] and names[i]]
    classes = sorted({names[i] for i in train_idx})
    cls = {c: k for k, c in enumerate(classes)}
    x = torch.from_numpy(from_rgba_uint8(images[train_idx]))
    y = torch.tensor([cls[names[i]] for i in train_idx])
    print(f"{len(images)} images from {', '.join(sources)}: {int((~held).sum())} reference, {int(held.sum())} "
          f"held out; classifier on {len(train_idx)} labelled reference images, {len(classes)} classes")
    cfg = FeatureNetConfig(img_size=args.size, n_classes=len(classes))
    t0 = time.time()
    net = train(x, y, cfg, args.epochs, seed=args.seed)
    test_idx = [i for i in range(len(metas)) if held[i] and names[i] in cls]
    with torch.no_grad():
        logits = torch.cat([net(torch.from_numpy(from_rgba_uint8(images[test_idx[i:i + 256]])))[1]
                            for i in range(0, len(test_idx), 256)])
    acc = float((logits.argmax(1).numpy() == np.array([cls[names[i]] for i in test_idx])).mean())
    print(f"held-out accuracy {acc:.3f} on {len(test_idx)} images ({len(classes)} classes)")
    info = {k: json.loads((args.data / k / "index.json").read_text(encoding="utf-8"))["source"] for k in sources}
    extra = {"description": "Feature space of domain FID/KID: a CNN trained on emojibase subgroups of "
                            f"{', '.join(sources)} emoji at {args.size} px.",
             "licence": "Apache-2.0 (weights); images MIT / Apache-2.0 (see sources)",
             "sources": [{"id": k, **{f: s.get(f) for f in ("package", "registry", "version", "licence")}}
                         for k, s in info.items()],
             "training": {"epochs": args.epochs, "images": len(train_idx), "classes": len(classes),
                          "heldout_accuracy": round(acc, 4), "minutes": round((time.time() - t0) / 60, 1),
                          "split": "sha1(label) % 5 == 0 is held out"}}
    heldout_metas = [m for m, h in zip(metas, held) if h]
    export_package(net, args.out, name=args.name, classes=classes, reference=images[~held], heldout=images[held],
                   extra=extra, labels=label_classes(heldout_metas, [n for n, h in zip(names, held) if h], classes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
