"""Image generation through onnxruntime from an `image-gan` package (no torch, no Qt).

A StyleGAN-style package has two graphs, `mapping` (z [, c] -> w) and `synthesis` (ws -> image); the
controls act between them with the numpy functions of `aigc_studio.core.latents`: seed -> z, text ->
condition features, truncation toward the average w, style mixing, principal-direction offsets,
interpolation. A DCGAN/WGAN-GP package has one graph, `generator` (z -> image): seeds, grids and
interpolation in z only.

Every shape comes from the manifest (`config`: z_dim, w_dim, num_ws, img_size, channels,
cond_features, layer_resolutions) and from `latents.npz` (w_avg, directions, stds). Images leave the
graph as (B, 4, H, W) in [-1, 1] with RGB premultiplied by alpha, and are returned as (H, W, 4) uint8
straight RGBA by `to_rgba_uint8`, one fixed rule, so the same record gives the same bytes.

Not thread-safe: one worker thread owns one generator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from aigc_studio.core import latents as L
from aigc_studio.core.png_record import GenerationRecord, RecordError, encode_png, pixels_sha256
from aigc_studio.runtime.package import MANIFEST, ModelPackage, PackageError
from aigc_studio.runtime.session import SessionInfo, create_session

ARCHITECTURES = {"stylegan": ("mapping", "synthesis"), "dcgan": ("generator",)}
COND_AVG_SAMPLES = 256   # fixed seeds whose mean w is the average w of a condition text
GRID_MAX = 32            # rows and columns of a grid, each (32x32 images of 64 px: a 2048 px square)
BATCH = 16               # images per graph run in grids and interpolations (bounds the activations)


def to_rgba_uint8(x: np.ndarray) -> np.ndarray:
    """(N, 4, H, W) premultiplied RGBA in [-1, 1] -> (N, H, W, 4) uint8 straight RGBA.

    Alpha is rounded first; colour is divided by the *quantised* alpha so an image round-trips through
    premultiplication; fully transparent pixels get colour 0."""
    x = np.clip((np.asarray(x, dtype=np.float32) + 1.0) * 0.5, 0.0, 1.0)
    a8 = np.rint(x[:, 3] * 255.0)                                   # (N, H, W)
    a = (a8 / 255.0)[:, None]
    rgb = np.where(a > 0, np.clip(x[:, :3] / np.maximum(a, 1e-8), 0.0, 1.0), 0.0)
    out = np.concatenate([np.rint(rgb * 255.0), a8[:, None]], axis=1).astype(np.uint8)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


@dataclass(frozen=True)
class Controls:
    """What a slider panel sets. `directions` maps a principal direction to an offset in standard
    deviations; `mix_layers` is "coarse", "middle", "fine" or a range "A:B"."""

    psi: float = 1.0
    mix_seed: int | None = None
    mix_layers: str | None = None
    directions: Mapping[int, float] | None = None
    text: str = ""


@dataclass(frozen=True)
class Regeneration:
    """What `ImageGenerator.regenerate` made from a record read back from a PNG.

    `image` and `record`: the new pixels and their true record (the installed model's sha256, this
    runtime and provider, the new pixels' hash), to be written with them. `recorded_model_sha256` is
    the model hash the old record claims, `model_sha256` the installed package's. `same_pixels` is the
    verdict from comparing the new pixels with the original file's pixels, never from the record
    alone; `original_edited` says the original pixels no longer match the hash in their own record."""

    image: np.ndarray
    record: GenerationRecord
    recorded_model_sha256: str
    model_sha256: str
    same_pixels: bool
    original_edited: bool

    @property
    def model_changed(self) -> bool:
        """The record names another build of the model than the one installed (the pixels will differ)."""
        return self.recorded_model_sha256 != self.model_sha256


class ImageGenerator:
    """Generates images from an `image-gan` package. See the module docstring."""

    def __init__(self, package: ModelPackage, *, device: str = "auto", threads: int = 0) -> None:
        if package.kind != "image-gan":
            raise PackageError(f"{package.path}: kind '{package.kind}' is not an image model")
        spec = package.spec.gan
        assert spec is not None  # an image-gan manifest always has one
        self.package = package
        self.name = package.name
        self.architecture = spec.architecture
        if self.architecture not in ARCHITECTURES:
            raise PackageError(f"{package.path}: {MANIFEST}: unknown architecture {self.architecture!r} "
                               f"(known: {', '.join(ARCHITECTURES)})")
        self.z_dim, self.img_size, self.channels = spec.z_dim, spec.img_size, spec.channels
        if self.channels != 4:
            raise PackageError(f"{package.path}: {MANIFEST}: {self.channels} channels; the app expects RGBA (4)")
        self.sessions: dict[str, SessionInfo] = {}
        for graph in ARCHITECTURES[self.architecture]:
            if graph not in package.spec.graphs or graph not in package.spec.graphs["graphs"].variants:
                raise PackageError(f"{package.path}: {MANIFEST}: graph '{graph}' is not declared")
            # Sleeping threads: the mapping's and the synthesis's pools take turns, and a pool that spins
            # after its run steals the cores from the other (docs/design.md, "Threads: spinning or sleeping").
            self.sessions[graph] = create_session(package, device=device, threads=threads, variant=graph,
                                                  graph_key=graph, spin=False)
        first = next(iter(self.sessions.values()))
        self.provider = first.provider
        self.device_note = first.note
        self.model_sha256 = hashlib.sha256((package.path / MANIFEST).read_bytes()).hexdigest()
        import onnxruntime

        self.onnxruntime_version = onnxruntime.__version__
        self.w_dim, self.num_ws, self.cond_features = spec.w_dim, spec.num_ws, spec.cond_features
        self.layer_resolutions = list(spec.layer_resolutions)
        self.w_avg = np.zeros(self.w_dim, np.float32)
        self.directions = np.zeros((0, self.w_dim), np.float32)
        self.direction_stds = np.zeros(0, np.float32)
        if self.architecture == "stylegan":
            self._load_latents()
        self._cond_avg: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ package data

    def _load_latents(self) -> None:
        name = self.package.spec.gan.latents if self.package.spec.gan else "latents.npz"
        path = self.package.file(name)
        try:
            with np.load(path, allow_pickle=False) as z:
                w_avg, dirs, stds = z["w_avg"], z["directions"], z["stds"]
        except (OSError, ValueError, KeyError) as exc:
            raise PackageError(f"{self.package.path}: {name} cannot be read ({exc})") from None
        if (w_avg.shape != (self.w_dim,) or dirs.ndim != 2 or dirs.shape[1] != self.w_dim
                or stds.shape != dirs.shape[:1]):
            raise PackageError(f"{self.package.path}: {name}: shapes w_avg {w_avg.shape}, directions "
                               f"{dirs.shape}, stds {stds.shape} do not fit w_dim {self.w_dim}")
        if not (np.isfinite(w_avg).all() and np.isfinite(dirs).all() and np.isfinite(stds).all()):
            raise PackageError(f"{self.package.path}: {name} holds NaN or infinite values")
        self.w_avg = w_avg.astype(np.float32)
        self.directions = dirs.astype(np.float32)
        self.direction_stds = stds.astype(np.float32)

    @property
    def is_style_based(self) -> bool:
        return self.architecture == "stylegan"

    @property
    def conditional(self) -> bool:
        return self.cond_features > 0

    @property
    def num_directions(self) -> int:
        return int(self.directions.shape[0])

    def layer_groups(self) -> dict[str, list[int]]:
        return L.layer_groups(self.layer_resolutions)

    # ------------------------------------------------------------------ the two halves

    def condition(self, text: str) -> np.ndarray:
        """(cond_features,) features of `text`; zeros for "" (unconditional)."""
        if not self.conditional:
            if text.strip():
                raise ValueError(f"model '{self.name}' is not conditioned on text; leave the text empty")
            return np.zeros(0, np.float32)
        return L.condition_features(text, self.cond_features)

    def mapping(self, z: np.ndarray, text: str = "") -> np.ndarray:
        """z (N, Z) -> w (N, W) through `mapping.onnx`."""
        self._need_style("the mapping network")
        z = np.asarray(z, dtype=np.float32).reshape(-1, self.z_dim)
        feeds = {"z": z}
        if self.conditional:
            feeds["c"] = np.repeat(self.condition(text)[None], len(z), axis=0)
        else:
            self.condition(text)
        return self.sessions["mapping"].session.run(["w"], feeds)[0]

    def synthesis(self, ws: np.ndarray) -> np.ndarray:
        """ws (N, L, W) -> images (N, 4, H, W) float in [-1, 1] through `synthesis.onnx`."""
        self._need_style("synthesis from w")
        ws = np.asarray(ws, dtype=np.float32)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), not {ws.shape}")
        if not np.isfinite(ws).all():
            raise ValueError("ws contains NaN or infinite values")
        return self.sessions["synthesis"].session.run(["image"], {"ws": ws})[0]

    def _need_style(self, what: str) -> None:
        if not self.is_style_based:
            raise ValueError(f"model '{self.name}' is a {self.architecture} model: {what}, truncation, style "
                             "mixing and directions need a StyleGAN-style model")

    def average_w(self, text: str = "") -> np.ndarray:
        """The average w: the package's for no condition, else the mean w of fixed seeds under the
        condition (so truncation keeps the condition; computed once per text)."""
        if not text.strip() or not self.conditional:
            return self.w_avg
        if text not in self._cond_avg:
            z = L.z_from_seeds(list(range(COND_AVG_SAMPLES)), self.z_dim)
            self._cond_avg = {text: self.mapping(z, text).mean(axis=0).astype(np.float32)}
        return self._cond_avg[text]

    # ------------------------------------------------------------------ controls -> ws

    def ws_for(self, seeds: Sequence[int], controls: Controls = Controls()) -> np.ndarray:
        """Per-layer w (N, L, W) of `seeds` with the controls applied (validated, ValueError if bad)."""
        self._need_style("per-layer w")
        text = controls.text
        w = self.mapping(L.z_from_seeds([L.check_seed(s) for s in seeds], self.z_dim), text)
        ws = L.truncate(L.broadcast_w(w, self.num_ws), self.average_w(text), controls.psi)
        if controls.mix_seed is not None or controls.mix_layers:
            if controls.mix_seed is None or not controls.mix_layers:
                raise ValueError("style mixing needs both a mix seed and the layers to take from it")
            layers = L.mixing_layers(controls.mix_layers, self.num_ws, self.layer_resolutions)
            mix_seed = L.check_seed(controls.mix_seed, "mix seed")
            w2 = self.mapping(L.z_from_seed(mix_seed, self.z_dim)[None], text)
            w2 = L.truncate(L.broadcast_w(w2, self.num_ws), self.average_w(text), controls.psi)
            ws = L.style_mix(ws, np.repeat(w2, len(ws), axis=0), layers)
        if controls.directions:
            ws = L.apply_directions(ws, self.directions, self.direction_stds, dict(controls.directions))
        return ws

    # ------------------------------------------------------------------ images

    def images(self, seeds: Sequence[int], controls: Controls = Controls()) -> np.ndarray:
        """(N, H, W, 4) uint8 RGBA for `seeds` under `controls`."""
        if not self.is_style_based:
            if controls != Controls():
                self._need_style("these controls")
            z = L.z_from_seeds([L.check_seed(s) for s in seeds], self.z_dim)
            return to_rgba_uint8(self.sessions["generator"].session.run(["image"], {"z": z})[0])
        return to_rgba_uint8(self.synthesis(self.ws_for(seeds, controls)))

    def record(self, seed: int, controls: Controls = Controls(),
               grid: tuple[int, int] | None = None) -> GenerationRecord:
        return GenerationRecord(
            model=self.name, model_sha256=self.model_sha256, seed=int(seed), psi=float(controls.psi),
            mix_seed=controls.mix_seed, mix_layers=controls.mix_layers,
            directions={int(k): float(v) for k, v in (controls.directions or {}).items()}, text=controls.text,
            noise="const", grid=grid, onnxruntime=self.onnxruntime_version, provider=self.provider,
            app=_app_version())

    def generate(self, seed: int, controls: Controls = Controls()) -> tuple[np.ndarray, GenerationRecord]:
        """One image (H, W, 4) uint8 and its generation record."""
        img = self.images([seed], controls)[0]
        return img, self.record(seed, controls).with_pixels(img)

    def grid(self, seed: int, rows: int, cols: int, controls: Controls = Controls(),
             batch: int = BATCH) -> tuple[np.ndarray, GenerationRecord]:
        """rows x cols images of the consecutive seeds seed, seed+1, ... (row by row) as one image;
        1..GRID_MAX rows and columns."""
        if not (1 <= rows <= GRID_MAX and 1 <= cols <= GRID_MAX):
            raise ValueError(f"a grid has 1 to {GRID_MAX} rows and 1 to {GRID_MAX} columns, not {rows}x{cols}")
        seeds = L.seed_range(seed, rows * cols)
        imgs = np.concatenate([self.images(seeds[i:i + batch], controls) for i in range(0, len(seeds), batch)])
        h = w = self.img_size
        out = imgs.reshape(rows, cols, h, w, 4).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 4)
        return out, self.record(seed, controls, grid=(rows, cols)).with_pixels(out)

    def interpolate(self, seed_a: int, seed_b: int, frames: int, space: str = "w",
                    controls: Controls = Controls()) -> list[np.ndarray]:
        """`frames` (2..MAX_FRAMES) images from seed_a to seed_b (both included): linear in w (after the
        controls), or spherical in z (before the mapping; the only choice for a DCGAN). The graphs run
        BATCH frames at a time, so memory grows with the frames' pixels only."""
        ts = L.interpolation_weights(frames)
        if space not in ("w", "z"):
            raise ValueError(f"interpolation space must be 'w' or 'z', not {space!r}")
        parts = [ts[i:i + BATCH] for i in range(0, len(ts), BATCH)]
        if not self.is_style_based or space == "z":
            za, zb = (L.z_from_seed(s, self.z_dim) for s in (seed_a, seed_b))
            if not self.is_style_based:
                if controls != Controls():
                    self._need_style("these controls")
                run = self.sessions["generator"].session.run
                return [img for part in parts
                        for img in to_rgba_uint8(
                            run(["image"], {"z": np.stack([L.slerp(za, zb, t) for t in part])})[0])]
            avg = self.average_w(controls.text)
            out = []
            for part in parts:
                w = self.mapping(np.stack([L.slerp(za, zb, t) for t in part]), controls.text)
                ws = L.truncate(L.broadcast_w(w, self.num_ws), avg, controls.psi)
                if controls.directions:
                    ws = L.apply_directions(ws, self.directions, self.direction_stds, dict(controls.directions))
                out += list(to_rgba_uint8(self.synthesis(ws)))
            return out
        ends = self.ws_for([seed_a, seed_b], controls)
        return [img for part in parts
                for img in to_rgba_uint8(self.synthesis(np.stack([L.lerp(ends[0], ends[1], t) for t in part])))]

    def regenerate(self, record: GenerationRecord, original: np.ndarray | None) -> Regeneration:
        """The image of `record` (read back from a PNG) made again, compared bit for bit with
        `original`, the (H, W, 4) uint8 RGBA pixels of that PNG (None: not comparable, e.g. a PNG of
        another size, which then counts as different pixels). A record of another model (by name)
        raises RecordError; another build of the same model is reported by `Regeneration.model_changed`,
        and the new record carries the installed model's sha256, since that model drew the pixels."""
        if record.model != self.name:
            raise RecordError(f"the image was made by model '{record.model}', not '{self.name}'")
        controls = Controls(psi=record.psi, mix_seed=record.mix_seed, mix_layers=record.mix_layers,
                            directions=record.directions or None, text=record.text)
        if record.grid:
            img, new = self.grid(record.seed, record.grid[0], record.grid[1], controls)
        else:
            img, new = self.generate(record.seed, controls)
        same = edited = False
        if original is not None:
            original = np.asarray(original)
            same = original.shape == img.shape and original.dtype == img.dtype and np.array_equal(original, img)
            edited = bool(record.pixels_sha256) and pixels_sha256(original) != record.pixels_sha256
        return Regeneration(image=img, record=new, recorded_model_sha256=record.model_sha256,
                            model_sha256=self.model_sha256, same_pixels=bool(same), original_edited=edited)

    def png(self, image: np.ndarray, record: GenerationRecord) -> bytes:
        """PNG bytes of `image` carrying `record` (pixels hash and size filled in)."""
        return encode_png(image, replace(record.with_pixels(image)).text_chunks())


def _app_version() -> str:
    try:
        from importlib.metadata import version

        return f"aigc-studio {version('aigc-studio')}"
    except Exception:  # not installed as a distribution (running from a checkout)
        return "aigc-studio"
