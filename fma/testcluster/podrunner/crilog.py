"""A container's output, as a container runtime records it for the kubelet.

Each run's stdout and stderr are pipes read on the runner's event loop. Every chunk read is
appended as it is to the run's raw log (``<run>.log``: what ``kubectl logs`` prints), and
as lines of the CRI logging format to ``<run>.cri``, the file the kubelet API serves (KWOK
reads it with the kubelet's own parser)::

    2026-01-02T03:04:05.123456789Z stdout F a whole line
    2026-01-02T03:04:05.123456789Z stderr P a line cut short

``F`` ends a line (its newline is not written), ``P`` is part of one: a piece longer than
:data:`MAX_LINE` or what is left when the stream closes without a final newline.

``current.cri`` and ``previous.cri`` beside the runs are symbolic links to the newest run's
file and the one before it (:func:`rotate`), so the kubelet API's configuration names fixed
paths.
"""

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

MAX_LINE: Final = 16 * 1024
"""As containerd: a longer line is split into partial lines of this many bytes."""
CURRENT: Final = "current.cri"
PREVIOUS: Final = "previous.cri"


def timestamp(at: datetime) -> str:
    """RFC 3339 with nanoseconds in UTC, as CRI log lines start."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class LineSplitter:
    """Turns one stream's chunks into CRI log lines (pure: the caller gives the time)."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self._pending = b""

    def _line(self, at: str, tag: str, content: bytes) -> bytes:
        return f"{at} {self.stream} {tag} ".encode() + content + b"\n"

    def feed(self, data: bytes, at: str) -> bytes:
        """The complete lines ``data`` finishes (``at`` is their time stamp)."""
        self._pending += data
        out = []
        while True:
            end = self._pending.find(b"\n")
            if 0 <= end <= MAX_LINE:
                out.append(self._line(at, "F", self._pending[:end]))
                self._pending = self._pending[end + 1 :]
            elif len(self._pending) > MAX_LINE:
                out.append(self._line(at, "P", self._pending[:MAX_LINE]))
                self._pending = self._pending[MAX_LINE:]
            else:
                return b"".join(out)

    def close(self, at: str) -> bytes:
        """What is left when the stream ends: a partial line, or nothing."""
        rest, self._pending = self._pending, b""
        return self._line(at, "P", rest) if rest else b""


def rotate(container_dir: Path, run_file: Path) -> None:
    """Point ``current.cri`` at ``run_file`` and ``previous.cri`` at what it pointed to."""
    current = container_dir / CURRENT
    with contextlib.suppress(OSError):
        _replace_link(container_dir / PREVIOUS, current.readlink())
    _replace_link(current, run_file)


def _replace_link(link: Path, target: Path) -> None:
    staging = link.with_name(link.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    staging.symlink_to(target)
    staging.replace(link)


class OutputPipes:
    """The stdout and stderr pipes of one run, drained into its raw and CRI logs.

    Give :attr:`stdout` and :attr:`stderr` to the child, then call :meth:`started` (which
    closes the parent's copies of the write ends). :attr:`closed` resolves once both
    streams reached their end, that is once every process holding them has exited.
    """

    def __init__(self, raw: Path, cri: Path, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._raw: BinaryIO = raw.open("ab")
        self._cri: BinaryIO = cri.open("ab")
        self._readers: dict[int, LineSplitter] = {}
        self.stdout, self.stderr = -1, -1
        for stream in ("stdout", "stderr"):
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            self._readers[read_end] = LineSplitter(stream)
            if stream == "stdout":
                self.stdout = write_end
            else:
                self.stderr = write_end
        self.closed: asyncio.Future[None] = loop.create_future()

    def started(self) -> None:
        """The child has its copies of the write ends: read until they are all closed."""
        os.close(self.stdout)
        os.close(self.stderr)
        for fd in self._readers:
            self._loop.add_reader(fd, self._drain, fd)

    def abandon(self) -> None:
        """The child never started: close everything."""
        os.close(self.stdout)
        os.close(self.stderr)
        for fd in list(self._readers):
            self._finish(fd)

    def _drain(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        at = timestamp(datetime.now(UTC))
        splitter = self._readers[fd]
        if data:
            self._raw.write(data)
            self._raw.flush()
            self._cri.write(splitter.feed(data, at))
        else:
            self._cri.write(splitter.close(at))
            self._loop.remove_reader(fd)
            self._finish(fd)
        self._cri.flush()

    def _finish(self, fd: int) -> None:
        os.close(fd)
        del self._readers[fd]
        if not self._readers:
            self._raw.close()
            self._cri.close()
            if not self.closed.done():
                self.closed.set_result(None)
