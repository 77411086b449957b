"""Undo commands of the canvas: every user action is one :class:`ChangeLayersCommand`."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtGui import QUndoCommand

from aigc_studio.core.project_schema import Layer

__all__ = ["CanvasSizeCommand", "ChangeLayersCommand", "LayerHost"]

MERGE_ID = 0x4C59  # QUndoCommand.id of mergeable changes (-1, the default, never merges)


class LayerHost(Protocol):
    """What the commands change: the canvas view."""

    def insert_layers(self, layers: list[Layer]) -> None: ...

    def remove_layers_now(self, ids: list[str]) -> None: ...

    def apply_layers(self, layers: list[Layer]) -> None: ...

    def resize_canvas_now(self, width: int, height: int) -> None: ...


class ChangeLayersCommand(QUndoCommand):
    """Layers from ``before`` to ``after``: a layer only in ``after`` is added, one only in ``before``
    removed, one in both set to its ``after`` state. Undo goes back.

    A non-empty ``merge_key`` lets the next change of the same layers with the same key join this one,
    so that a spin box's arrow steps or a slider drag are one undo step."""

    def __init__(self, host: LayerHost, before: list[Layer], after: list[Layer], text: str,
                 merge_key: str = "") -> None:
        super().__init__(text)
        self._host = host
        self._before = list(before)
        self._after = list(after)
        self._merge_key = merge_key

    def id(self) -> int:
        return MERGE_ID if self._merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if (not isinstance(other, ChangeLayersCommand) or other._merge_key != self._merge_key
                or [layer.id for layer in other._before] != [layer.id for layer in self._after]):
            return False
        self._after = other._after
        self.setObsolete(self._after == self._before)  # changed and changed back: no step at all
        return True

    def _change(self, old: list[Layer], new: list[Layer]) -> None:
        new_ids = {layer.id for layer in new}
        old_ids = {layer.id for layer in old}
        gone = [layer.id for layer in old if layer.id not in new_ids]
        if gone:
            self._host.remove_layers_now(gone)
        added = [layer for layer in new if layer.id not in old_ids]
        if added:
            self._host.insert_layers(added)
        self._host.apply_layers([layer for layer in new if layer.id in old_ids])

    def redo(self) -> None:
        self._change(self._before, self._after)

    def undo(self) -> None:
        self._change(self._after, self._before)


class CanvasSizeCommand(QUndoCommand):
    """The canvas resized (layers stay where they are)."""

    def __init__(self, host: LayerHost, before: tuple[int, int], after: tuple[int, int]) -> None:
        super().__init__(f"Canvas size {after[0]} x {after[1]}")
        self._host, self._before, self._after = host, before, after

    def redo(self) -> None:
        self._host.resize_canvas_now(*self._after)

    def undo(self) -> None:
        self._host.resize_canvas_now(*self._before)
