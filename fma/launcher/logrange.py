"""Byte ranges of an instance's log: the ``Range`` header of ``GET .../log``, as pure logic.

Accepted: ``bytes=S-E``, ``bytes=S-`` and (beyond upstream) the suffix form ``bytes=-N``,
the last N bytes, which is what tailing a log needs. One range per request. Every response
carries at most ``chunk_bytes_max`` bytes; a client pages on with the next ``Range``.
"""

import re
from dataclasses import dataclass
from typing import Final

_RANGE_RE: Final = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class BadRange(ValueError):
    """The header is not a single byte range this server understands (400)."""


class UnsatisfiableRange(ValueError):
    """The range starts at or after the end of the log (416)."""


@dataclass(frozen=True, slots=True)
class ByteSpan:
    """Inclusive byte positions ``start..end`` of a log of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def select(header: str | None, *, size: int, chunk_bytes_max: int) -> ByteSpan | None:
    """The span to send for ``header`` and a log of ``size`` bytes; None for an empty log
    read without ``Range``. Raises ``BadRange`` or ``UnsatisfiableRange``."""
    if header is None:
        if size == 0:
            return None
        return ByteSpan(0, min(size, chunk_bytes_max) - 1, size)
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None:
        raise BadRange(f"unsupported Range {header[:100]!r}: use bytes=S-E, bytes=S- or bytes=-N")
    first, last = match.group(1), match.group(2)
    if not first and not last:
        raise BadRange("Range bytes=- names no bytes")
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRange(f"the log has {size} bytes")
        start, end = max(0, size - suffix), size - 1
    else:
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            raise BadRange(f"Range end {end} is before its start {start}")
        if start >= size:
            raise UnsatisfiableRange(f"Range starts at {start}; the log has {size} bytes")
    end = min(end, size - 1, start + chunk_bytes_max - 1)
    return ByteSpan(start, end, size)
