"""Latent maths of the image generators, between the two halves of a StyleGAN-style model.

The generator is split where its controls act (StyleGAN3's viz/renderer.py works the same way):
`mapping` turns z (and a condition) into w, `synthesis` turns one w per style layer into an image.
Everything in between is a numpy function here, testable without a model:

- `z_from_seed`: a seed is an identity. Training (its fixed sample grid), export validation, the app
  and the CLI all call this one function, so seed 42 is the same latent everywhere.
- `truncate`: pull w toward the average w by ψ (ψ = 1 changes nothing, ψ = 0 gives the average).
- `mixing_layers` and `style_mix`: replace the coarse, middle or fine layers (or a range "A:B") of one
  per-layer w by another's.
- `principal_directions` (GANSpace: PCA of many sampled w) and `apply_directions`: move w along
  principal directions, in units of their standard deviation.
- `lerp`, `slerp`, `interpolation_weights`: frames between two latents; linear in w, spherical in z.

Shapes: z is (Z,) or (N, Z); w is (W,), (N, W), (L, W) or (N, L, W) with L the number of style layers;
"per-layer" functions want the layer axis second to last.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SEED_MAX = 2**32 - 1          # numpy's legacy seeding accepts 0 .. 2**32 - 1
PSI_RANGE = (-1.0, 2.0)       # truncation ψ accepted (StyleGAN3's visualiser offers the same range)
DIRECTION_LIMIT = 20.0        # |offset| along a principal direction, in standard deviations
MAX_FRAMES = 600              # frames of one interpolation (a 64 px frame costs about 1.8 MB on the way)
LAYER_GROUPS = ("coarse", "middle", "fine")


# ----------------------------------------------------------------------------- seeds


def check_seed(seed: object, what: str = "seed") -> int:
    """`seed` as an int in 0..SEED_MAX (both included), or a ValueError that names `what` ("seed",
    "mix seed") and the accepted range."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"a {what} must be a whole number, not {seed!r}")
    if not 0 <= int(seed) <= SEED_MAX:
        raise ValueError(f"{what} {seed} is out of range: seeds are whole numbers from 0 to {SEED_MAX} "
                         "(2**32 - 1), both included")
    return int(seed)


def seed_range(first: object, count: int, what: str = "seed") -> list[int]:
    """The `count` consecutive seeds first, first + 1, ... (a grid), or a ValueError naming the first
    seed when the last one would pass SEED_MAX."""
    start = check_seed(first, what)
    if start + count - 1 > SEED_MAX:
        raise ValueError(f"{what} {start} is too large for {count} consecutive seeds: the last would be "
                         f"{start + count - 1}, past {SEED_MAX}; use a {what} of at most {SEED_MAX - count + 1}")
    return list(range(start, start + count))


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """The latent z of `seed`: (z_dim,) float32 standard normal.

    This is the single definition of "seed -> z" (the same as StyleGAN's
    `np.random.RandomState(seed).randn(z_dim)`). The legacy RandomState stream is frozen by numpy's
    compatibility policy, so a seed keeps its image across numpy versions; `default_rng` is not frozen.
    """
    seed = check_seed(seed)
    if z_dim <= 0:
        raise ValueError(f"z_dim must be positive, not {z_dim}")
    return np.random.RandomState(seed).randn(int(z_dim)).astype(np.float32)


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """(N, z_dim) float32: `z_from_seed` for each seed."""
    if len(seeds) == 0:
        return np.zeros((0, z_dim), np.float32)
    return np.stack([z_from_seed(s, z_dim) for s in seeds])


# ----------------------------------------------------------------------------- w per layer


def broadcast_w(w: np.ndarray, num_layers: int) -> np.ndarray:
    """(..., W) -> (..., L, W): the same w for every style layer (what the mapping network's w means)."""
    w = np.asarray(w, dtype=np.float32)
    return np.repeat(w[..., None, :], num_layers, axis=-2)


def _check_finite(name: str, x: np.ndarray) -> None:
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")


def truncate(w: np.ndarray, w_avg: np.ndarray, psi: float, layers: Sequence[int] | None = None) -> np.ndarray:
    """w_avg + ψ (w − w_avg): the truncation trick.

    ψ = 1 returns w unchanged (bit for bit), ψ = 0 the average. `layers` (with a per-layer w of shape
    (..., L, W)) truncates only those layers (StyleGAN's truncation cutoff); `None` truncates all.
    ψ must be finite and within PSI_RANGE.
    """
    psi = _check_psi(psi)
    w = np.asarray(w, dtype=np.float32)
    w_avg = np.asarray(w_avg, dtype=np.float32)
    if w.shape[-1] != w_avg.shape[-1]:
        raise ValueError(f"w has width {w.shape[-1]} but the average w has {w_avg.shape[-1]}")
    _check_finite("w", w)
    if psi == 1.0:
        return w.copy()
    out = w_avg + np.float32(psi) * (w - w_avg)
    if layers is None:
        return out.astype(np.float32)
    result = w.copy()
    idx = list(layers)
    result[..., idx, :] = out[..., idx, :]
    return result


def _finite(value: object, what: str) -> float:
    """`value` as a finite float, or a ValueError that names `what`."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return number


def _check_psi(psi: float) -> float:
    value = _finite(psi, "truncation ψ")
    lo, hi = PSI_RANGE
    if not lo <= value <= hi:
        raise ValueError(f"truncation ψ {value:g} is out of range: use {lo:g} .. {hi:g} "
                         "(1 = no truncation, 0 = the average image)")
    return value


# ----------------------------------------------------------------------------- style mixing


def layer_groups(layer_resolutions: Sequence[int]) -> dict[str, list[int]]:
    """The style layers of each named group, from the output resolution each layer acts at.

    As in the StyleGAN paper: coarse = 4² to 8² (pose, shape), middle = 16² to 32² (features),
    fine = 64² and up (colours, details). A small model whose layers do not fill all three groups
    (e.g. a 32×32 test model) has its resolution levels split into three consecutive, nearly equal
    parts instead, so every name selects something.
    """
    res = [int(r) for r in layer_resolutions]
    if not res:
        raise ValueError("the model has no style layers")
    groups = {
        "coarse": [i for i, r in enumerate(res) if r <= 8],
        "middle": [i for i, r in enumerate(res) if 16 <= r <= 32],
        "fine": [i for i, r in enumerate(res) if r >= 64],
    }
    if all(groups.values()):
        return groups
    levels = sorted(set(res))
    if len(levels) < 3:
        raise ValueError(f"style layers at resolutions {sorted(set(res))} cannot be split into "
                         "coarse, middle and fine; use a range A:B")
    cuts = np.array_split(np.arange(len(levels)), 3)
    return {name: [i for i, r in enumerate(res) if levels.index(r) in part]
            for name, part in zip(LAYER_GROUPS, cuts)}


_RANGE = re.compile(r"^\s*(\d*)\s*:\s*(\d*)\s*$")


def mixing_layers(spec: str, num_layers: int, layer_resolutions: Sequence[int] | None = None) -> list[int]:
    """The style layers named by `spec`: "coarse", "middle", "fine" (by resolution, see `layer_groups`),
    or a range "A:B" with Python slice meaning (layers A .. B−1; "4:" and ":4" allowed), or a single
    layer "A". Raises ValueError naming the valid choices."""
    text = str(spec).strip().lower()
    if text in LAYER_GROUPS:
        if layer_resolutions is None:
            raise ValueError(f"'{text}' needs the resolution of each style layer; use a range A:B")
        if len(layer_resolutions) != num_layers:
            raise ValueError(f"{len(layer_resolutions)} layer resolutions for {num_layers} style layers")
        return layer_groups(layer_resolutions)[text]
    m = _RANGE.match(text)
    if m:
        a = int(m.group(1)) if m.group(1) else 0
        b = int(m.group(2)) if m.group(2) else num_layers
    elif text.isdigit():
        a, b = int(text), int(text) + 1
    else:
        raise ValueError(f"mixing layers {spec!r} not understood: use coarse, middle, fine or a range "
                         f"A:B of the layers 0..{num_layers - 1}")
    if not 0 <= a < b <= num_layers:
        raise ValueError(f"mixing layers {spec!r} are out of range: the model has style layers "
                         f"0..{num_layers - 1}, so use A:B with 0 <= A < B <= {num_layers}")
    return list(range(a, b))


def style_mix(w: np.ndarray, w_other: np.ndarray, layers: Sequence[int]) -> np.ndarray:
    """A copy of the per-layer `w` (..., L, W) whose `layers` are taken from `w_other` (same shape)."""
    w = np.asarray(w, dtype=np.float32)
    w_other = np.asarray(w_other, dtype=np.float32)
    if w.shape != w_other.shape:
        raise ValueError(f"cannot mix w of shape {w.shape} with w of shape {w_other.shape}")
    num_layers = w.shape[-2]
    bad = [i for i in layers if not 0 <= int(i) < num_layers]
    if bad:
        raise ValueError(f"style layers {bad} do not exist (the model has 0..{num_layers - 1})")
    out = w.copy()
    idx = [int(i) for i in layers]
    out[..., idx, :] = w_other[..., idx, :]
    return out


# ----------------------------------------------------------------------------- directions (GANSpace)


@dataclass(frozen=True)
class PrincipalDirections:
    """GANSpace: principal directions of w. `directions` (K, W) are unit vectors, sorted by the
    standard deviation of w along them, `stds` (K,); `mean` (W,) is the average w; `explained` (K,)
    the fraction of the variance each one explains."""

    mean: np.ndarray
    directions: np.ndarray
    stds: np.ndarray
    explained: np.ndarray


def principal_directions(ws: np.ndarray, k: int) -> PrincipalDirections:
    """PCA of sampled w (N, W) (GANSpace, Härkönen et al. 2020): the top `k` directions.

    Each direction's sign is fixed so that its largest-magnitude component is positive, so the
    result does not depend on the SVD implementation's sign choice."""
    ws = np.asarray(ws, dtype=np.float64)
    if ws.ndim != 2 or ws.shape[0] < 2:
        raise ValueError(f"need at least two sampled w as an (N, W) array, got shape {ws.shape}")
    _check_finite("sampled w", ws)
    k = int(min(k, ws.shape[0] - 1, ws.shape[1]))
    mean = ws.mean(axis=0)
    _, s, vt = np.linalg.svd(ws - mean, full_matrices=False)
    vt = vt[:k]
    signs = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])
    vt = vt * signs[:, None]
    var = s**2 / (ws.shape[0] - 1)
    return PrincipalDirections(mean=mean.astype(np.float32), directions=vt.astype(np.float32),
                               stds=np.sqrt(var[:k]).astype(np.float32),
                               explained=(var[:k] / var.sum()).astype(np.float32))


def check_offsets(offsets: Mapping[int, float], num_directions: int,
                  limit: float = DIRECTION_LIMIT) -> dict[int, float]:
    """Validated direction offsets {index: value in standard deviations}.

    Policy: nothing is silently changed here. An unknown index, a value that is not a finite number,
    or |value| > `limit` raises ValueError with the reason; a slider UI that wants to clamp calls
    `clamp_offset` first (which still refuses NaN)."""
    out: dict[int, float] = {}
    for key, value in offsets.items():
        try:
            idx = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"direction index {key!r} is not a whole number") from None
        if isinstance(key, float) and key != idx:
            raise ValueError(f"direction index {key!r} is not a whole number")
        if not 0 <= idx < num_directions:
            raise ValueError(f"unknown direction {idx}: the model has directions 0..{num_directions - 1}")
        v = _finite(value, f"direction {idx}: the value")
        if abs(v) > limit:
            raise ValueError(f"direction {idx}: {v:g} is too far; use -{limit:g} .. {limit:g} "
                             "(in standard deviations of w along that direction)")
        out[idx] = v
    return out


def clamp_offset(value: float, limit: float = DIRECTION_LIMIT) -> float:
    """A slider value clamped to ±`limit`; NaN still raises ValueError (there is no sensible clamp)."""
    v = float(value)
    if math.isnan(v):
        raise ValueError("a direction value must be a number, not NaN")
    return max(-limit, min(limit, v))


def apply_directions(w: np.ndarray, directions: np.ndarray, stds: np.ndarray,
                     offsets: Mapping[int, float], layers: Sequence[int] | None = None,
                     limit: float = DIRECTION_LIMIT) -> np.ndarray:
    """w + Σ offsets[k] · stds[k] · directions[k], validated by `check_offsets`.

    `w` is (..., W) or per-layer (..., L, W); with a per-layer w, `layers` limits the edit to those
    layers (GANSpace edits often act on a layer range only). No offsets returns a copy of w."""
    w = np.asarray(w, dtype=np.float32)
    directions = np.asarray(directions, dtype=np.float32)
    stds = np.asarray(stds, dtype=np.float32)
    checked = check_offsets(offsets, directions.shape[0], limit)
    out = w.copy()
    if not checked:
        return out
    delta = np.zeros(w.shape[-1], dtype=np.float32)
    for k, v in checked.items():
        delta += np.float32(v) * stds[k] * directions[k]
    if layers is None:
        out += delta
    else:
        out[..., list(layers), :] += delta
    return out


# ----------------------------------------------------------------------------- interpolation


def check_frames(frames: object) -> int:
    """`frames` as an int in 2..MAX_FRAMES, or a ValueError that gives the range."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)):
        raise ValueError(f"the number of frames must be a whole number, not {frames!r}")
    if not 2 <= int(frames) <= MAX_FRAMES:
        raise ValueError(f"an interpolation has 2 to {MAX_FRAMES} frames, not {frames}")
    return int(frames)


def interpolation_weights(frames: int) -> np.ndarray:
    """`frames` weights from 0 to 1 inclusive (the endpoints are the two inputs); 2..MAX_FRAMES frames."""
    return np.linspace(0.0, 1.0, check_frames(frames))


def _ends(a: np.ndarray, b: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """a and b as float32, and a copy of the exact endpoint when t is 0 or 1 (else None)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    return a, b, a.copy() if t == 0 else b.copy() if t == 1 else None


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """(1 − t) a + t b; exactly `a` at t = 0 and exactly `b` at t = 1. Used in w."""
    a, b, end = _ends(a, b, t)
    if end is not None:
        return end
    return (a + np.float32(t) * (b - a)).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation over the last axis; exactly `a` at t = 0 and `b` at t = 1. Used in z,
    where a straight line would pass through the low-density middle of the Gaussian (White 2016).
    Nearly parallel vectors fall back to `lerp`."""
    a, b, end = _ends(a, b, t)
    if end is not None:
        return end
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na = np.linalg.norm(a64, axis=-1, keepdims=True)
    nb = np.linalg.norm(b64, axis=-1, keepdims=True)
    cos = np.clip(np.sum(a64 * b64, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    near = so < 1e-6
    safe = np.where(near, 1.0, so)
    wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    wb = np.where(near, t, np.sin(t * omega) / safe)
    return (wa * a64 + wb * b64).astype(np.float32)


# ----------------------------------------------------------------------------- text condition

CONDITION_DIM = 256            # hashed bag-of-words width (the model's `cond_features`)
MAX_CONDITION_CHARS = 200      # a condition text is a label and a few tags, not a paragraph
_WORD = re.compile(r"[0-9a-z]+")


def condition_words(text: str) -> list[str]:
    """Lower-case words of a condition text ("Red heart!" -> ["red", "heart"])."""
    return _WORD.findall(text.lower())


def condition_features(text: str, dim: int = CONDITION_DIM) -> np.ndarray:
    """(dim,) float32: the text condition the models see, the same in training and in the app.

    A signed hashed bag of words and word pairs (each word and each adjacent pair adds ±1 to a bucket
    chosen by blake2b, so the result does not depend on Python's per-process hash seed), L2-normalised.
    The empty text gives zeros, which the models are trained to read as "no condition" (condition
    dropout), so unconditional generation stays available. A text that is too long, or that has
    characters but no words, raises ValueError.
    """
    if len(text) > MAX_CONDITION_CHARS:
        raise ValueError(f"the condition text has {len(text)} characters; keep it under "
                         f"{MAX_CONDITION_CHARS} (a few words such as 'red heart')")
    vec = np.zeros(dim, dtype=np.float64)
    if not text.strip():
        return vec.astype(np.float32)
    words = condition_words(text)
    if not words:
        raise ValueError(f"the condition text {text!r} has no words (letters or digits) to condition on")
    for token in words + [f"{a}_{b}" for a, b in zip(words, words[1:])]:
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0 if (h >> 63) & 1 else -1.0
    norm = np.linalg.norm(vec)
    return (vec / norm if norm > 0 else vec).astype(np.float32)
