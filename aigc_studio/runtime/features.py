"""Domain FID/KID: image features from an `image-features` package, compared with its real-image features.

An `image-features` package (written by `export/eval/fid.py`) holds `features.onnx`, a small classifier trained
on the emoji/icon labels whose penultimate layer is the feature space, and `reference.npz` with the
features of the real images it was fitted on (`reference`) and of real images it never saw (`heldout`).
The held-out set against the reference set gives the *floor*: the score of real images, which a
generator can only approach. Everything here is numpy and onnxruntime.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from aigc_studio.core.metrics import feature_stats, frechet_distance, kernel_distance
from aigc_studio.runtime.package import ModelPackage, PackageError
from aigc_studio.runtime.session import create_session


def from_rgba_uint8(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 4) uint8 straight RGBA -> (N, 4, H, W) float32 premultiplied RGBA in [-1, 1], the
    layout the GANs are trained on and generate (the inverse of `image_generator.to_rgba_uint8`)."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 4 or x.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, 4) uint8 RGBA, not {x.dtype} {x.shape}")
    f = x.astype(np.float32) / 255.0
    f[..., :3] *= f[..., 3:]
    return np.ascontiguousarray((f * 2.0 - 1.0).transpose(0, 3, 1, 2))


@dataclass(frozen=True)
class Scores:
    fid: float
    kid: float
    kid_std: float
    samples: int
    reference_samples: int

    def as_dict(self) -> dict:
        return asdict(self)


class FeatureExtractor:
    """Features of RGBA images and domain FID/KID against the package's real-image features."""

    def __init__(self, package: ModelPackage, *, device: str = "cpu", threads: int = 0) -> None:
        if package.kind != "image-features":
            raise PackageError(f"{package.path}: kind '{package.kind}' is not an image feature extractor")
        spec = package.spec.features
        assert spec is not None  # an image-features manifest always has one
        self.spec = spec
        self.package = package
        self.name = package.name
        self.img_size, self.feature_dim = spec.img_size, spec.feature_dim
        self.session = create_session(package, device=device, threads=threads, variant="features",
                                      graph_key="features", spin=False).session  # runs beside a generator
        name = package.spec.reference or "reference.npz"
        try:
            with np.load(package.file(name), allow_pickle=False) as z:
                self.reference = z["reference"].astype(np.float64)
                self.heldout = z["heldout"].astype(np.float64)
        except (OSError, ValueError, KeyError) as exc:
            raise PackageError(f"{package.path}: {name} cannot be read ({exc})") from None
        for what, f in (("reference", self.reference), ("heldout", self.heldout)):
            if f.ndim != 2 or f.shape[1] != self.feature_dim or len(f) < 2 or not np.isfinite(f).all():
                raise PackageError(f"{package.path}: {name}: '{what}' must be finite (N>=2, {self.feature_dim}) "
                                   f"features, not shape {f.shape}")
        self._reference_stats = feature_stats(self.reference)

    @property
    def floor(self) -> dict:
        """The scores of the held-out real images, as stored at export."""
        return dict(self.spec.floor)

    def features(self, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """(N, D) features of (N, H, W, 4) uint8 RGBA images of the package's size."""
        return self._run("features", images, batch).astype(np.float64)

    def logits(self, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """(N, K) class scores of the classifier behind the features (classes: `self.classes`)."""
        return self._run("logits", images, batch)

    def _run(self, output: str, images: np.ndarray, batch: int) -> np.ndarray:
        x = from_rgba_uint8(images)
        if x.shape[2:] != (self.img_size, self.img_size):
            raise ValueError(f"the feature extractor '{self.name}' takes {self.img_size}x{self.img_size} "
                             f"images, not {x.shape[3]}x{x.shape[2]}")
        return np.concatenate([self.session.run([output], {"image": x[i:i + batch]})[0]
                               for i in range(0, len(x), batch)])

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    def labels(self) -> list[tuple[str, int]]:
        """(label, class index) of held-out emoji, for measuring how a text condition steers a generator;
        empty when the package has none."""
        name = self.spec.labels
        if not name:
            return []
        try:
            pairs = json.loads(self.package.file(name).read_text(encoding="utf-8"))["heldout"]
            out = [(str(label), int(k)) for label, k in pairs]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PackageError(f"{self.package.path}: {name} cannot be read ({exc})") from None
        if any(not 0 <= k < len(self.classes) for _, k in out):
            raise PackageError(f"{self.package.path}: {name} names a class outside 0..{len(self.classes) - 1}")
        return out

    def scores(self, features: np.ndarray, *, kid_subsets: int = 50, kid_subset_size: int = 1000) -> Scores:
        """Domain FID and KID of `features` against the reference features."""
        fid = frechet_distance(feature_stats(features), self._reference_stats)
        kid, kid_std = kernel_distance(features, self.reference, subsets=kid_subsets, subset_size=kid_subset_size)
        return Scores(fid, kid, kid_std, len(features), len(self.reference))

    def heldout_scores(self, samples: int | None = None) -> Scores:
        """The floor: held-out real images (the first `samples`) against the reference."""
        return self.scores(self.heldout[:samples] if samples else self.heldout)

    def evaluate(self, batches: Iterable[np.ndarray], progress: Callable[[int], None] | None = None) -> Scores:
        """Scores of images arriving in batches of (n, H, W, 4) uint8 (for a generator)."""
        feats = []
        done = 0
        for images in batches:
            feats.append(self.features(images))
            done += len(images)
            if progress:
                progress(done)
        if not feats:
            raise ValueError("no images to evaluate")
        return self.scores(np.concatenate(feats))

