"""Find model packages by name.

Search order (first match wins, so a user's package can replace a shipped one of the same name):
1. the folders in the environment variable `AIGC_STUDIO_MODELS` (separated by os.pathsep);
2. the user's data folder, `platformdirs.user_data_dir("aigc-studio") / "models"`;
3. the shipped packages in `resources/models/` beside the `aigc_studio` package.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from aigc_studio.runtime.manifest import parse_manifest
from aigc_studio.runtime.package import MANIFEST, ModelPackage, PackageError, load_package, read_manifest

APP_NAME = "aigc-studio"
DEFAULT_MODELS = {"text-lm": ("writer", "writer-tiny"), "image-gan": ("emoji-style",),
                  "image-features": ("emoji-features",)}
"""The default model of each kind, in order of preference; otherwise the first installed."""
ENV_VAR = "AIGC_STUDIO_MODELS"
log = logging.getLogger(__name__)
_warned: set[str] = set()


def shipped_models_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "resources" / "models"


LIBRARY_ENV_VAR = "AIGC_STUDIO_LIBRARY"


def shipped_library_dir() -> Path:
    """The Design workspace's asset library (runtime/library.py): `AIGC_STUDIO_LIBRARY` if set (tests,
    a rebuilt library), else `resources/library/` beside the `aigc_studio` package."""
    override = os.environ.get(LIBRARY_ENV_VAR)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "resources" / "library"


def user_models_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "models"


def default_search_paths() -> list[Path]:
    env = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    return [*env, user_models_dir(), shipped_models_dir()]


@dataclass(frozen=True)
class PackageInfo:
    """What the model list shows of a package, read from its manifest without verifying checksums.
    `error` is set (and the other fields may be partial) for a package whose manifest cannot be read."""

    name: str
    kind: str
    path: Path
    size_bytes: int
    licence: str
    source: str
    description: str = ""
    error: str = ""


class ModelRegistry:
    """Finds packages by name in a list of folders (see the module docstring)."""

    def __init__(self, search_paths: list[Path] | None = None) -> None:
        self.search_paths = [Path(p) for p in (search_paths if search_paths is not None
                                               else default_search_paths())]

    def _candidates(self) -> list[Path]:
        found = []
        for root in self.search_paths:
            try:
                if root.is_dir():
                    found += sorted(p for p in root.iterdir() if (p / MANIFEST).is_file())
            except OSError as exc:  # an unreadable folder hides its packages, not every package
                log.warning("model folder %s cannot be read: %s", root, exc)
        return found

    def list(self, kind: str | None = None) -> list[PackageInfo]:
        """Installed packages, one per name (the first found wins), broken ones with their error."""
        seen: dict[str, PackageInfo] = {}
        for p in self._candidates():
            try:
                m = read_manifest(p)
            except PackageError as exc:
                info = PackageInfo(p.name, "?", p, 0, "?", "?", error=str(exc))
                if str(exc) not in _warned:  # once per process, however often the list is read
                    _warned.add(str(exc))
                    log.warning("skipping a broken model package: %s", exc)
            else:
                spec = parse_manifest(m)
                info = PackageInfo(name=spec.name, kind=spec.kind, path=p, size_bytes=spec.size_bytes,
                                   licence=spec.licence, source=", ".join(map(str, spec.sources)) or "unknown",
                                   description=spec.description)
            if kind is None or info.kind == kind:
                seen.setdefault(info.name, info)
        return list(seen.values())

    def names(self, kind: str | None = None) -> list[str]:
        return [i.name for i in self.list(kind) if not i.error]

    def default_name(self, kind: str = "text-lm") -> str | None:
        """The package the app uses when none is chosen: the first preferred name that is installed,
        else the first installed package of that kind, else None."""
        names = self.names(kind)
        for preferred in DEFAULT_MODELS.get(kind, ()):
            if preferred in names:
                return preferred
        return names[0] if names else None

    def find(self, name: str) -> Path:
        for info in self.list():
            if info.name == name:
                if info.error:
                    raise PackageError(info.error)
                return info.path
        known = ", ".join(self.names()) or "none"
        where = ", ".join(str(p) for p in self.search_paths)
        raise PackageError(f"no model package named '{name}' (installed: {known}; searched {where})")

    def load(self, name: str, verify: bool = True) -> ModelPackage:
        return load_package(self.find(name), verify=verify)
