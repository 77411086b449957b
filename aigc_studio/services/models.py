"""What the services need from a model, and the adapter to the real runtime.

The seam between the services and :mod:`aigc_studio.runtime` is typed here: :class:`GeneratorLike`
declares every method and attribute the completion worker calls on a text generator,
:class:`CompletionLike` and :class:`GenerationStatsLike` what comes back, :class:`ModelState` and
:class:`ModelStatus` where loading stands. The model host never imports onnxruntime itself: it gets a
:class:`ModelBackend` that lists the installed models and creates a generator for one of them.
:class:`RuntimeBackend` is the real one (it imports :mod:`aigc_studio.runtime` only when first used,
in the worker thread, so the window opens without waiting for onnxruntime); tests pass a fake with
the same methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aigc_studio.core.cancel import Cancel

from .image_models import ImageGeneratorLike, ImageModelSpec, ImageSettings, RuntimeImageModel

if TYPE_CHECKING:
    from aigc_studio.core.sampling import SamplingConfig
    from aigc_studio.runtime.registry import ModelRegistry

__all__ = [
    "CompletionLike",
    "GenerationStatsLike",
    "GeneratorLike",
    "ImageGeneratorLike",
    "ImageModelSpec",
    "ImageSettings",
    "ModelBackend",
    "ModelChoice",
    "ModelInfo",
    "ModelState",
    "ModelStatus",
    "RuntimeBackend",
    "provider_label",
]


class GenerationStatsLike(Protocol):
    """Figures of a generator's last call (``GenerationStats`` of the runtime): tokens in the prompt
    window, of which reused from the KV cache, tokens generated, and seconds to the first generated
    token and in all."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def reused_tokens(self) -> int: ...

    @property
    def new_tokens(self) -> int: ...

    @property
    def ttft_s(self) -> float: ...

    @property
    def total_s(self) -> float: ...


class CompletionLike(Protocol):
    """One result of :meth:`GeneratorLike.complete` or :meth:`GeneratorLike.branches` (``Completion``
    of the runtime): the text after the prompt, its token ids and its score."""

    @property
    def text(self) -> str: ...

    @property
    def token_ids(self) -> tuple[int, ...]: ...

    @property
    def score(self) -> float: ...


class GeneratorLike(Protocol):
    """What the services use of :class:`aigc_studio.runtime.text_generator.TextGenerator`.

    A generator is not thread-safe: every call but :meth:`terminate` comes from the model host's
    worker thread. ``cancel`` is checked before every model step; a cancelled call ends early.
    """

    name: str
    provider: str             # the onnxruntime execution provider in use
    device_note: str          # why the GPU is not used, or ""
    context_length: int

    @property
    def last_stats(self) -> GenerationStatsLike: ...

    def stream(self, prompt: str, config: SamplingConfig,
               cancel: Cancel | None = None) -> Iterator[str]:
        """The continuation of ``prompt``, piece by decoded piece."""
        ...

    def complete(self, prompt: str, config: SamplingConfig,
                 cancel: Cancel | None = None) -> Sequence[CompletionLike]:
        """``config.num_return`` continuations (beam search's n-best list, or samples)."""
        ...

    def branches(self, prompt: str, config: SamplingConfig, n: int, cancel: Cancel | None = None,
                 done: Callable[[str], bool] | None = None) -> Sequence[CompletionLike]:
        """Up to ``n`` continuations that start differently; a row stops when ``done(text)``."""
        ...

    def prime(self, prompt: str, config: SamplingConfig, cancel: Cancel | None = None) -> int:
        """Read ``prompt`` into the KV cache; return the prompt tokens the cache holds."""
        ...

    def terminate(self) -> None:
        """Abort the running model call (thread-safe)."""
        ...


class ModelState(str, Enum):
    """Where loading a model stands."""

    NONE = "none"          # no model asked for yet
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"      # ``ModelStatus.error`` says why

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ModelChoice:
    """Which model to load and where: ``name`` "" means the default text model (the registry's
    ``default_name``: writer, else writer-tiny, else the first installed)."""

    name: str = ""
    device: str = "auto"   # "auto" | "cpu" | "gpu"
    threads: int = 0       # 0: onnxruntime chooses
    spin: bool = True      # threads busy-wait between operators (faster on an idle machine)


@dataclass(frozen=True)
class ModelInfo:
    """An installed model package, as the sampling panel lists it."""

    name: str
    kind: str = "text"
    path: str = ""
    size_bytes: int = 0
    licence: str = ""
    source: str = ""
    error: str = ""          # why the package cannot be used (a broken manifest), or ""


@dataclass(frozen=True)
class ModelStatus:
    """Where loading the model stands (``error`` says why it failed)."""

    state: ModelState = ModelState.NONE
    name: str = ""
    provider: str = ""        # the onnxruntime execution provider in use
    device_note: str = ""     # why the GPU is not used, or ""
    error: str = ""
    context_length: int = 0

    @property
    def device(self) -> str:
        """A short device name for the status bar, e.g. "CPU" or "CUDA"."""
        return provider_label(self.provider)


def provider_label(provider: str) -> str:
    """``"CUDAExecutionProvider"`` -> ``"CUDA"``."""
    return provider.removesuffix("ExecutionProvider") or provider


class ModelBackend(Protocol):
    """Lists and creates text generators and image generators; called in the model host's worker
    thread only. Every call lists the installed packages again, so a package installed while the app
    runs appears at the next listing."""

    def list_models(self) -> list[ModelInfo]: ...

    def gpu_status(self) -> tuple[bool, str]: ...

    def create(self, choice: ModelChoice) -> GeneratorLike: ...

    def list_image_models(self) -> list[ModelInfo]:
        """The installed `image-gan` packages (broken ones are left out)."""
        ...

    def create_image(self, name: str) -> ImageGeneratorLike:
        """Load the image model ``name`` (raises with the reason when it cannot)."""
        ...


class RuntimeBackend:
    """The real backend: :class:`aigc_studio.runtime.registry.ModelRegistry` and ``TextGenerator``.

    ``search_paths`` replaces the registry's folders (``None``: its defaults: ``$AIGC_STUDIO_MODELS``,
    the user's data folder, the shipped packages); ``extra_paths`` are searched before them.
    """

    def __init__(self, search_paths: Sequence[str | Path] | None = None, *,
                 extra_paths: Sequence[str | Path] = ()) -> None:
        self._search_paths = list(search_paths) if search_paths is not None else None
        self._extra_paths = [Path(p) for p in extra_paths]
        self._registry: ModelRegistry | None = None

    def _get_registry(self) -> ModelRegistry:
        if self._registry is None:
            from aigc_studio.runtime.registry import ModelRegistry, default_search_paths

            paths = ([Path(p) for p in self._search_paths] if self._search_paths is not None
                     else default_search_paths())
            self._registry = ModelRegistry([*self._extra_paths, *paths])
        return self._registry

    def list_models(self) -> list[ModelInfo]:
        """The installed text models, and packages whose manifest cannot be read (with the error)."""
        infos = []
        for info in self._get_registry().list():
            if info.kind != "text-lm" and not info.error:
                continue  # an image model, listed by the Design workspace
            infos.append(ModelInfo(name=info.name, kind=info.kind, path=str(info.path),
                                   size_bytes=int(info.size_bytes or 0),
                                   licence=info.licence or "", source=info.source or "",
                                   error=info.error))
        return infos

    def gpu_status(self) -> tuple[bool, str]:
        """Whether onnxruntime can use a GPU here, and if not, why."""
        from aigc_studio.runtime.session import gpu_status

        return gpu_status()

    def create(self, choice: ModelChoice) -> GeneratorLike:
        """Load the package and build a generator; raises ``PackageError`` with the reason."""
        from aigc_studio.runtime.package import PackageError
        from aigc_studio.runtime.text_generator import TextGenerator

        name = choice.name
        if not name:
            name = self._get_registry().default_name("text-lm")
            if name is None:
                where = ", ".join(str(p) for p in self._get_registry().search_paths)
                raise PackageError(f"no text model is installed (searched {where})")
        from aigc_studio.runtime.session import max_threads

        package = self._get_registry().load(name)
        threads = min(choice.threads, max_threads())  # a setting made on a bigger machine still loads
        return TextGenerator(package, device=choice.device, threads=threads, spin=choice.spin)

    def list_image_models(self) -> list[ModelInfo]:
        """The installed image models (`image-gan` packages that can be read)."""
        return [ModelInfo(name=info.name, kind=info.kind, path=str(info.path),
                          size_bytes=int(info.size_bytes or 0), licence=info.licence or "",
                          source=info.source or "")
                for info in self._get_registry().list("image-gan") if not info.error]

    def create_image(self, name: str) -> ImageGeneratorLike:
        """Load the image package ``name`` (the first installed if "") on the CPU, two threads
        (a 64-pixel image is too small for a GPU to pay off, and the writer keeps the other cores)."""
        from aigc_studio.runtime.image_generator import ImageGenerator
        from aigc_studio.runtime.package import PackageError

        registry = self._get_registry()
        name = name or registry.default_name("image-gan") or ""
        if not name:
            raise PackageError("no image model is installed")
        return RuntimeImageModel(ImageGenerator(registry.load(name), device="cpu", threads=2))
