"""The history of the Design workspace's generated images: entries, lineage and their JSON form.

An entry is the settings that made an image (not its pixels, which the settings make again), the
model's name and the entries it was bred from. The project file stores :func:`history_to_json`'s text;
:func:`history_from_json` reads it back or raises ValueError naming the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from aigc_studio.services.image_models import ImageSettings
from aigc_studio.services.image_service import GeneratedImage

__all__ = ["HISTORY_VERSION", "HistoryEntry", "history_from_json", "history_to_json"]

HISTORY_VERSION = 1


@dataclass(frozen=True)
class HistoryEntry:
    """One image of the history: ``entry_id`` (unique in the history), the model, the settings and the
    ids of the entries it was bred from (``parents``: empty, or two). ``image`` is the generated image,
    or None until it is made again (after loading a project)."""

    entry_id: int
    model: str
    settings: ImageSettings
    parents: tuple[int, ...] = ()
    image: GeneratedImage | None = field(default=None, compare=False, repr=False)

    def with_image(self, image: GeneratedImage | None) -> HistoryEntry:
        """A copy showing ``image``."""
        return replace(self, image=image)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no pixels)."""
        return {"id": self.entry_id, "model": self.model, "settings": self.settings.to_dict(),
                "parents": list(self.parents)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HistoryEntry:
        """The inverse of :meth:`to_dict` (KeyError, TypeError or ValueError when malformed)."""
        return cls(entry_id=int(d["id"]), model=str(d["model"]), settings=ImageSettings.from_dict(d["settings"]),
                   parents=tuple(int(p) for p in d.get("parents", [])))


def history_to_json(entries: list[HistoryEntry]) -> str:
    """The history as JSON text for the project file."""
    return json.dumps({"history_version": HISTORY_VERSION, "entries": [e.to_dict() for e in entries]},
                      ensure_ascii=False)


def history_from_json(text: str) -> list[HistoryEntry]:
    """The entries of :func:`history_to_json`'s text; ValueError that says what is wrong."""
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the image history is not valid JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("history_version") != HISTORY_VERSION:
        raise ValueError(f"the image history has no 'history_version' {HISTORY_VERSION}; it was not written "
                         "by this version of AIGC Studio")
    try:
        entries = [HistoryEntry.from_dict(e) for e in d.get("entries", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"an entry of the image history is malformed ({type(exc).__name__}: {exc})") from None
    if len({e.entry_id for e in entries}) != len(entries):
        raise ValueError("the image history repeats an entry id")
    return entries
