"""Scripted stand-ins for the runtime's TextGenerator, ImageGenerator and model registry.

The fake yields words of a script (optionally slowly, to act like a busy model), checks ``cancel``
before every step like the real generator, and records what it was asked. It implements the whole
:class:`~aigc_studio.services.models.GeneratorLike` protocol. Used by the service, view-model and
GUI tests. :class:`FakeImageGenerator` draws a numpy image that depends on every setting (with a
faint, noisy fringe, like a GAN's near-transparent edge) and implements
:class:`~aigc_studio.services.models.ImageGeneratorLike`.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from aigc_studio.core.cancel import Cancel
from aigc_studio.core.png_record import GenerationRecord, encode_png
from aigc_studio.services.models import ImageModelSpec, ImageSettings, ModelChoice, ModelInfo

if TYPE_CHECKING:
    from aigc_studio.services.models import GeneratorLike, ImageGeneratorLike

Script = Callable[[str], str]


@dataclass(frozen=True)
class FakeCompletion:
    text: str
    token_ids: tuple[int, ...]
    score: float


@dataclass
class FakeStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0
    new_tokens: int = 0
    ttft_s: float = 0.0
    total_s: float = 0.0


def default_script(prompt: str) -> str:
    """A continuation that depends on how the prompt ends."""
    if prompt.endswith("wonder"):
        return "ful day in the park, said Emma."
    return " quick brown fox jumps over the lazy dog and runs far away into the night"


def pieces(text: str) -> list[str]:
    """Split text into token-like pieces: a word with its leading space, or punctuation."""
    return re.findall(r"\s*\w+|\s*[^\w\s]|\s+", text)


@dataclass
class Call:
    prompt: str
    config: Any
    steps: int = 0            # model steps taken
    cancelled_at: int | None = None   # the step at which cancel was seen
    done: bool = False
    method: str = "stream"    # which of stream, complete and branches was called
    n: int = 1                # how many results were asked for


class FakeGenerator:
    """Yields the pieces of ``script(prompt)``, ``delay_s`` seconds per step.

    ``ignore_cancel`` makes a stubborn model that never looks at ``cancel`` (to test that stale
    results are dropped by the service). ``fail`` raises that exception from the first step.
    """

    name = "fake-lm"
    provider = "CPUExecutionProvider"
    device_note = "no GPU in the tests"
    context_length = 512

    def __init__(self, script: Script = default_script, *, delay_s: float = 0.0,
                 ignore_cancel: bool = False, fail: Exception | None = None,
                 alternatives: Callable[[str, int], list[str]] | None = None) -> None:
        self.script = script
        self.delay_s = delay_s
        self.ignore_cancel = ignore_cancel
        self.fail = fail
        self.alternatives = alternatives
        self.calls: list[Call] = []
        self.primes: list[str] = []
        self.last_stats = FakeStats()
        self.thread: threading.Thread | None = None
        self.in_step = False  # inside a (delayed) model step right now
        self.terminated = 0   # how many times terminate() was called
        self._lock = threading.Lock()

    # The real generator is not thread-safe; the fake notes which thread uses it.
    def _enter(self, prompt: str, config: Any, method: str = "stream", n: int = 1) -> Call:
        self.thread = threading.current_thread()
        call = Call(prompt, config, method=method, n=n)
        with self._lock:
            self.calls.append(call)
        return call

    def _step(self, call: Call, cancel: Cancel | None) -> bool:
        if not self.ignore_cancel and cancel is not None and cancel():
            call.cancelled_at = call.steps
            return False
        if self.fail is not None:
            raise self.fail
        if self.delay_s:
            self.in_step = True
            time.sleep(self.delay_s)  # stands in for a model step (releases the GIL like onnxruntime)
            self.in_step = False
        call.steps += 1
        return True

    def stream(self, prompt: str, config: Any,
               cancel: Cancel | None = None) -> Iterator[str]:
        call = self._enter(prompt, config)
        started = time.perf_counter()
        limit = config.max_new_tokens
        produced = 0
        try:
            for piece in pieces(self.script(prompt))[:limit]:
                if not self._step(call, cancel):
                    return
                produced += 1
                if produced == 1:
                    self.last_stats = FakeStats(prompt_tokens=len(prompt) // 4,
                                                ttft_s=time.perf_counter() - started)
                yield piece
        finally:
            call.done = True
            self.last_stats = FakeStats(prompt_tokens=len(prompt) // 4, new_tokens=produced,
                                        ttft_s=self.last_stats.ttft_s,
                                        total_s=time.perf_counter() - started)

    def prime(self, prompt: str, config: Any, cancel: Cancel | None = None) -> int:
        """Records the prompt in ``primes`` (not in ``calls``: no suggestion is made)."""
        self.thread = threading.current_thread()
        with self._lock:
            self.primes.append(prompt)
        if self.delay_s:
            time.sleep(self.delay_s)  # stands in for reading the prompt
        return len(prompt) // 4

    def complete(self, prompt: str, config: Any,
                 cancel: Cancel | None = None) -> list[FakeCompletion]:
        return self._several(prompt, config, max(1, config.num_return), cancel, "complete")

    def branches(self, prompt: str, config: Any, n: int, cancel: Cancel | None = None,
                 done: Callable[[str], bool] | None = None) -> list[FakeCompletion]:
        """Like :meth:`complete` with ``n`` results (``done`` is not needed by a script)."""
        return self._several(prompt, config, max(1, n), cancel, "branches")

    def terminate(self) -> None:
        """Counts the calls; the fake's steps are short enough to end by themselves."""
        self.terminated += 1

    def _several(self, prompt: str, config: Any, count: int, cancel: Cancel | None,
                 method: str) -> list[FakeCompletion]:
        if self.alternatives is not None:
            texts = self.alternatives(prompt, count)
        else:
            base = self.script(prompt)
            texts = [base] + [f" variant {i} of the story goes on" for i in range(1, count)]
        call = self._enter(prompt, config, method, count)
        for _ in range(4):
            if not self._step(call, cancel):
                call.done = True
                return []
        call.done = True
        self.last_stats = FakeStats(prompt_tokens=len(prompt) // 4, new_tokens=4)
        return [FakeCompletion(text, tuple(range(len(pieces(text)))), -float(i))
                for i, text in enumerate(texts[:count])]


class FakeImageGenerator:
    """A numpy image model: ``generate`` draws a disc whose colour and size follow a hash of the
    settings, on a transparent background with a fringe of faint (alpha < 64) noisy pixels.

    ``delay_s`` makes each image take that long (a busy model); ``fail`` raises from ``generate``;
    ``words`` is the description vocabulary (None: no word list). ``calls`` records every image made.
    """

    def __init__(self, name: str = "fake-image", *, size: int = 16, delay_s: float = 0.0,
                 conditional: bool = True, words: tuple[str, ...] | None = None,
                 fail: Exception | None = None, directions: int = 8) -> None:
        self.name = name
        self.delay_s = delay_s
        self.fail = fail
        self.calls: list[ImageSettings] = []
        self.threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        groups = (("coarse", (0, 1)), ("middle", (2, 3)), ("fine", (4, 5)))
        self._spec = ImageModelSpec(name=name, architecture="stylegan", img_size=size, style_based=True,
                                    conditional=conditional, num_ws=6, layer_groups=groups,
                                    direction_stds=tuple(1.0 + i / 4 for i in range(directions)),
                                    model_sha256="f" * 64, provider="CPUExecutionProvider", words=words)

    @property
    def spec(self) -> ImageModelSpec:
        return self._spec

    def draw(self, settings: ImageSettings) -> np.ndarray:
        """The image of ``settings`` (no call recorded)."""
        n = self._spec.img_size
        h = zlib.crc32(repr(settings).encode())
        rng = np.random.RandomState(h)
        yy, xx = np.mgrid[:n, :n]
        r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
        img = np.zeros((n, n, 4), np.uint8)
        disc = r < n * (0.25 + (h % 7) / 40)
        img[disc, :3] = rng.randint(0, 256, 3)
        img[disc, 3] = 255
        fringe = (~disc) & (rng.rand(n, n) < 0.3)
        img[fringe] = np.concatenate([rng.randint(0, 256, (int(fringe.sum()), 3)),
                                      rng.randint(1, 64, (int(fringe.sum()), 1))], axis=1)
        return img

    def generate(self, settings: ImageSettings) -> tuple[np.ndarray, GenerationRecord]:
        with self._lock:
            self.calls.append(settings)
            self.threads.add(threading.current_thread())
        if self.fail is not None:
            raise self.fail
        if self.delay_s:
            time.sleep(self.delay_s)  # stands in for the graph run
        img = self.draw(settings)
        record = GenerationRecord(model=self.name, model_sha256=self._spec.model_sha256, seed=settings.seed,
                                  psi=settings.psi, mix_seed=settings.mix_seed, mix_layers=settings.mix_layers,
                                  directions=dict(settings.directions), text=settings.text,
                                  provider=self._spec.provider, app="aigc-studio")
        return img, record.with_pixels(img)

    def interpolate(self, start: ImageSettings, end: ImageSettings, frames: int) -> list[np.ndarray]:
        a, b = self.draw(start).astype(np.float32), self.draw(end).astype(np.float32)
        return [np.rint(a + (b - a) * t).astype(np.uint8) for t in np.linspace(0, 1, frames)]

    def png(self, image: np.ndarray, record: GenerationRecord) -> bytes:
        return encode_png(image, record.with_pixels(image).text_chunks())


class FakeBackend:
    """Lists fake models and creates :class:`FakeGenerator` instances.

    ``error`` makes :meth:`create` raise it (a missing or corrupt package). ``gate`` (an Event), if
    given, holds :meth:`create` until it is set, to test the window while a model loads.
    """

    def __init__(self, generator: FakeGenerator | None = None, *,
                 models: list[str] | None = None, error: Exception | None = None,
                 gate: threading.Event | None = None) -> None:
        self.generator = generator or FakeGenerator()
        self.model_names = models if models is not None else ["fake-lm", "fake-lm-large"]
        self.error = error
        self.gate = gate
        self.choices: list[ModelChoice] = []
        self.created = threading.Event()
        self.image_generators: dict[str, FakeImageGenerator] = {"fake-image": FakeImageGenerator()}
        """The installed image models; add one to "install" it."""
        self.image_loads: list[str] = []

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(name=name, size_bytes=1_000_000) for name in self.model_names]

    def gpu_status(self) -> tuple[bool, str]:
        return False, "no GPU in the tests"

    def create(self, choice: ModelChoice) -> FakeGenerator:
        self.choices.append(choice)
        if self.gate is not None:
            self.gate.wait(10)
        if self.error is not None:
            raise self.error
        self.created.set()
        return self.generator


    def list_image_models(self) -> list[ModelInfo]:
        return [ModelInfo(name=name, kind="image-gan", size_bytes=3_000_000)
                for name in list(self.image_generators)]

    def create_image(self, name: str) -> FakeImageGenerator:
        self.image_loads.append(name)
        name = name or next(iter(self.image_generators), "")
        if name not in self.image_generators:
            raise ValueError(f"unknown image model {name!r} (known: {', '.join(self.image_generators)})")
        return self.image_generators[name]


def _typed(generator: FakeGenerator) -> GeneratorLike:
    return generator  # a type checker checks here that the fake implements the whole protocol


def _typed_image(generator: FakeImageGenerator) -> ImageGeneratorLike:
    return generator  # the same for the image protocol


@dataclass
class Recorder:
    """Collects the arguments of a signal."""

    items: list[Any] = field(default_factory=list)

    def __call__(self, *args: Any) -> None:
        self.items.append(args[0] if len(args) == 1 else args)
