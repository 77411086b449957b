"""The object model of export.data.rdata: the Python values that R objects become.

* character vector -> :class:`RVector` (a ``list`` of ``str | None``; ``None`` is ``NA``)
* logical / integer / double / complex vector -> :class:`RVector` of ``bool``/``int``/``float``/``complex``
  (``None`` for ``NA``); a raw vector holds ints 0..255
* list (VECSXP) -> :class:`RVector` of values
* pairlist -> :class:`RPairlist` (ordered ``(tag, value)`` pairs)
* symbol -> :class:`RSymbol`; ``NULL`` -> ``None``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class RDataError(ValueError):
    """The bytes are not R serialization data this reader understands."""


class RVector(list):
    """An R atomic vector or list: a Python list plus the R attributes (``names``, ``class``...)."""

    def __init__(self, values: Any = (), rtype: str = "", attributes: dict[str, Any] | None = None):
        super().__init__(values)
        self.rtype = rtype
        self.attributes: dict[str, Any] = attributes or {}

    @property
    def names(self) -> list[str | None] | None:
        """The ``names`` attribute, if any."""
        names = self.attributes.get("names")
        return list(names) if names is not None else None

    def as_dict(self) -> dict[str, Any]:
        """A named list as a dict (names must be present)."""
        names = self.names
        if names is None:
            raise RDataError(f"{self.rtype} has no names attribute")
        return {str(k): v for k, v in zip(names, self)}


@dataclass(frozen=True)
class RSymbol:
    """An R symbol (a name)."""

    name: str


@dataclass
class RPairlist:
    """An R pairlist (LISTSXP/LANGSXP...): ordered (tag, value) pairs with optional attributes."""

    items: list[tuple[str | None, Any]]
    rtype: str = "LISTSXP"
    attributes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Tagged items as a dict (untagged items are skipped)."""
        return {tag: value for tag, value in self.items if tag is not None}


def attributes_dict(attrs: Any) -> dict[str, Any]:
    if attrs is None:
        return {}
    if not isinstance(attrs, RPairlist):
        raise RDataError(f"attributes should be a pairlist, got {type(attrs).__name__}")
    return {tag or "": value for tag, value in attrs.items}
