"""Remembering what was derived from a frozen value, per object.

Snapshots are frozen, and an adapter hands out the same object for a Pod or an instance until
it changes, so much of one reconcile repeats the last one's work on the same objects. A
:class:`PerObject` memo keeps a result per object (by identity, holding the object so that its
ID is not reused while remembered) and forgets everything when it is full. It only saves work:
the result must depend on the object alone, or on what the caller checks itself.
"""

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

MAX_ENTRIES = 1 << 14
"""Entries kept before a memo starts again: several cluster-fulls of a simulated node's
providers, a few hundred kilobytes."""


class PerObject(Generic[K, V]):
    """A result per object, by identity."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[int, tuple[K, V]] = {}

    def get(self, key: K) -> V | None:
        """What was put for this very object, or None."""
        seen = self._seen.get(id(key))
        if seen is not None and seen[0] is key:
            return seen[1]
        return None

    def put(self, key: K, value: V) -> V:
        if len(self._seen) >= MAX_ENTRIES:
            self._seen.clear()
        self._seen[id(key)] = (key, value)
        return value

    def of(self, key: K, derive: Callable[[K], V]) -> V:
        """``derive(key)``, computed once per object."""
        seen = self._seen.get(id(key))
        if seen is not None and seen[0] is key:
            return seen[1]
        return self.put(key, derive(key))
