"""Which instances woke lately, as their logs tell: so that listings show the most recently
activated instance last.

The launcher never sees a wake (the controller calls the engine directly), but the engine logs
one: vLLM's ``It took X seconds to wake up`` (:mod:`fma.launcher.vllm_lines`). Before each
listing the service asks :class:`ActivityScanner` what each instance's log gained since it last
looked, and moves the instances that woke meanwhile to the end of its table, in the order of
their wake lines' timestamps. Tools that take the last listed instance as the one in use
(llm-d-benchmark's harness does) then find the instance just woken, not the newest.
"""

from pathlib import Path
from typing import Final

from fma.launcher.vllm_lines import STAMP_RE, WAKE_RE

READ_BYTES_MAX: Final = 1024 * 1024
"""At most this much of a log is read per look; a log that grew more is read from its tail."""


class ActivityScanner:
    """Remembers how far it read each instance's log."""

    def __init__(self, read_bytes_max: int = READ_BYTES_MAX) -> None:
        self._read_bytes_max = read_bytes_max
        self._offsets: dict[str, int] = {}

    def woke(self, instance_id: str, log_path: Path) -> str | None:
        """The timestamp (``MM-DD HH:MM:SS[.mmm]``, "" when the line has none) of the last
        wake line the log gained since the last look; None when it gained none. Only whole
        lines are consumed."""
        offset = self._offsets.get(instance_id, 0)
        try:
            with log_path.open("rb") as log:
                size = log.seek(0, 2)
                if size < offset:  # a new file under the same name
                    offset = 0
                start = max(offset, size - self._read_bytes_max)
                log.seek(start)
                gained = log.read(size - start)
        except OSError:
            return None
        end = gained.rfind(b"\n")
        if end < 0:
            self._offsets[instance_id] = offset if start == offset else start
            return None
        self._offsets[instance_id] = start + end + 1
        last: str | None = None
        for line in gained[: end + 1].decode("utf-8", errors="replace").splitlines():
            if WAKE_RE.search(line):
                stamp = STAMP_RE.search(line)
                last = stamp.group(0) if stamp else ""
        return last

    def forget(self, instance_id: str) -> None:
        self._offsets.pop(instance_id, None)
