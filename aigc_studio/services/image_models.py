"""The seam between the image service and the runtime's image generator.

:class:`ImageSettings` is what the Design workspace's controls set (one frozen value per image),
:class:`ImageModelSpec` what the controls need to know of a model (directions, layer groups, whether it
reads a description), :class:`ImageGeneratorLike` every call the image worker makes.
:class:`RuntimeImageModel` adapts :class:`aigc_studio.runtime.image_generator.ImageGenerator`; it is
created in the model host's worker thread by ``RuntimeBackend.create_image`` (the runtime is imported
there, never by the UI thread). Tests use a numpy fake with the same methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from aigc_studio.core.latents import MAX_CONDITION_CHARS, condition_words
from aigc_studio.core.png_record import GenerationRecord

if TYPE_CHECKING:
    from aigc_studio.runtime.image_generator import Controls, ImageGenerator

__all__ = ["ImageGeneratorLike", "ImageModelSpec", "ImageSettings", "RuntimeImageModel", "describe_message",
           "usable_text"]


@dataclass(frozen=True)
class ImageSettings:
    """Everything that makes one image of a model: the seed, truncation ψ, style mixing (a second seed
    and the layers taken from it: "coarse", "middle", "fine" or "A:B"), offsets along principal
    directions (in standard deviations, sorted by index, zeros left out) and the description."""

    seed: int = 0
    psi: float = 1.0
    mix_seed: int | None = None
    mix_layers: str | None = None
    directions: tuple[tuple[int, float], ...] = ()
    text: str = ""

    def with_(self, **changes: Any) -> ImageSettings:
        """A copy with ``changes``; directions are normalised (sorted, zeros dropped)."""
        if "directions" in changes:
            changes["directions"] = _directions(dict(changes["directions"]))
        return replace(self, **changes)

    def with_direction(self, index: int, value: float) -> ImageSettings:
        """A copy with direction ``index`` set to ``value`` (0 removes it)."""
        return self.with_(directions={**dict(self.directions), int(index): float(value)})

    @property
    def mixing(self) -> bool:
        """Whether style mixing is on (a mix seed and its layers)."""
        return self.mix_seed is not None and bool(self.mix_layers)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (directions keyed by their index as text)."""
        return {"seed": self.seed, "psi": self.psi, "mix_seed": self.mix_seed, "mix_layers": self.mix_layers,
                "directions": {str(k): v for k, v in self.directions}, "text": self.text}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageSettings:
        """The inverse of :meth:`to_dict`; ValueError (or TypeError) for a malformed dict."""
        mix_seed = d.get("mix_seed")
        mix_layers = d.get("mix_layers")
        return cls(seed=int(d["seed"]), psi=float(d.get("psi", 1.0)),
                   mix_seed=None if mix_seed is None else int(mix_seed),
                   mix_layers=None if mix_layers is None else str(mix_layers),
                   directions=_directions({int(k): float(v) for k, v in dict(d.get("directions", {})).items()}),
                   text=str(d.get("text", "")))

    @classmethod
    def from_record(cls, record: GenerationRecord) -> ImageSettings:
        """The settings a generation record (read back from a PNG) describes."""
        return cls(seed=record.seed, psi=record.psi, mix_seed=record.mix_seed, mix_layers=record.mix_layers,
                   directions=_directions(record.directions), text=record.text)


def _directions(d: Mapping[int, float]) -> tuple[tuple[int, float], ...]:
    return tuple((int(k), float(v)) for k, v in sorted(d.items()) if float(v) != 0.0)


@dataclass(frozen=True)
class ImageModelSpec:
    """What the controls need to know of a loaded image model.

    ``words`` is the model's description vocabulary, or None when the package keeps no word list (the
    shipped models hash every word, so no word is "unknown" to them, and none is known either)."""

    name: str
    architecture: str                    # "stylegan" or "dcgan"
    img_size: int
    style_based: bool                    # truncation, mixing and directions need a StyleGAN-style model
    conditional: bool                    # reads a description
    num_ws: int
    layer_groups: tuple[tuple[str, tuple[int, ...]], ...]
    direction_stds: tuple[float, ...]    # one per principal direction (in w units)
    model_sha256: str = ""
    provider: str = ""
    words: tuple[str, ...] | None = None


def describe_message(spec: ImageModelSpec | None, text: str) -> str:
    """What model ``spec`` makes of the description ``text``, for the user ("" when all is well).

    The shipped models hash every word into their condition (``core.latents.condition_features``) and
    keep no word list, so they cannot tell an unknown word; the message says so instead of guessing."""
    if spec is None:
        return ""
    if not spec.conditional:
        return "This model takes no description; the text is ignored." if text.strip() else \
            "This model takes no description."
    words = condition_words(text)
    if len(text) > MAX_CONDITION_CHARS:
        return f"Too long: keep the description under {MAX_CONDITION_CHARS} characters."
    if text.strip() and not words:
        return "No words to describe with (use letters or digits)."
    if spec.words is None:
        return ("This model keeps no word list: every word changes the image, but it cannot tell which "
                "words it learned.") if words else ""
    unknown = [w for w in dict.fromkeys(words) if w not in spec.words]
    if not unknown:
        return ""
    if len(unknown) == len(set(words)):
        return f"No word is known to this model: {', '.join(unknown)}."
    return f"Unknown to this model: {', '.join(unknown)}."


def usable_text(spec: ImageModelSpec | None, text: str) -> str:
    """The description as sent to model ``spec``: "" for a model that takes none, or a text it cannot
    read (too long, no words); the message of :func:`describe_message` tells the user why."""
    if spec is not None and (not spec.conditional or len(text) > MAX_CONDITION_CHARS
                             or not condition_words(text)):
        return ""
    return text


class ImageGeneratorLike(Protocol):
    """What the image worker uses of an image generator; used from the model host's worker thread only."""

    @property
    def spec(self) -> ImageModelSpec: ...

    def generate(self, settings: ImageSettings) -> tuple[np.ndarray, GenerationRecord]:
        """One (H, W, 4) uint8 RGBA image and its record; ValueError for bad settings."""
        ...

    def interpolate(self, start: ImageSettings, end: ImageSettings, frames: int) -> list[np.ndarray]:
        """``frames`` images from ``start`` to ``end`` (both included)."""
        ...

    def png(self, image: np.ndarray, record: GenerationRecord) -> bytes:
        """PNG bytes of ``image`` carrying ``record``."""
        ...


class RuntimeImageModel:
    """:class:`ImageGeneratorLike` over the runtime's ``ImageGenerator`` (see the module docstring)."""

    def __init__(self, generator: ImageGenerator) -> None:
        self._gen = generator
        groups = generator.layer_groups() if generator.is_style_based else {}
        self._spec = ImageModelSpec(
            name=generator.name, architecture=generator.architecture, img_size=generator.img_size,
            style_based=generator.is_style_based, conditional=generator.conditional, num_ws=generator.num_ws,
            layer_groups=tuple((k, tuple(v)) for k, v in groups.items()),
            direction_stds=tuple(float(s) for s in generator.direction_stds),
            model_sha256=generator.model_sha256, provider=generator.provider, words=None)

    @property
    def spec(self) -> ImageModelSpec:
        return self._spec

    def _controls(self, settings: ImageSettings) -> Controls:
        from aigc_studio.runtime.image_generator import Controls

        if not self._gen.is_style_based:
            return Controls()
        return Controls(psi=settings.psi, mix_seed=settings.mix_seed if settings.mixing else None,
                        mix_layers=settings.mix_layers if settings.mixing else None,
                        directions=dict(settings.directions) or None, text=settings.text)

    def generate(self, settings: ImageSettings) -> tuple[np.ndarray, GenerationRecord]:
        return self._gen.generate(settings.seed, self._controls(settings))

    def interpolate(self, start: ImageSettings, end: ImageSettings, frames: int) -> list[np.ndarray]:
        """Linear in w between the two images' per-layer w (each with its own controls); spherical in z
        for a DCGAN (which has no controls)."""
        from aigc_studio.core import latents as L
        from aigc_studio.runtime.image_generator import BATCH, to_rgba_uint8

        gen = self._gen
        if not gen.is_style_based:
            return gen.interpolate(start.seed, end.seed, frames, space="z")
        a = gen.ws_for([start.seed], self._controls(start))[0]
        b = gen.ws_for([end.seed], self._controls(end))[0]
        ts = L.interpolation_weights(frames)
        out: list[np.ndarray] = []
        for i in range(0, len(ts), BATCH):
            ws = np.stack([L.lerp(a, b, t) for t in ts[i:i + BATCH]])
            out += list(to_rgba_uint8(gen.synthesis(ws)))
        return out

    def png(self, image: np.ndarray, record: GenerationRecord) -> bytes:
        return self._gen.png(image, record)
