"""vLLM's log lines that tools read: their format, and the patterns that find them.

vLLM (0.32) formats every line as ``(<process> pid=<pid>) <LEVEL> <MM-DD HH:MM:SS> [<file>:<line>]
<message>``, in local time, without a year. The lines that matter to measurements:

- ``non-default args: {...}`` when the API server starts (a Python dict: ``port`` among them);
- ``Sleep mode freed X GiB memory, Y GiB memory is still in use.`` and
  ``It took X seconds to fall asleep.`` at the end of a level-1 sleep;
- ``It took X seconds to wake up tags {...}.`` at the end of a wake.

llm-d-benchmark's harness finds the timestamp with :data:`STAMP_RE` (the first match on a
line; milliseconds optional) and a sleep or wake by the message text with a leading space.
The stub engine writes these lines (:func:`vllm_line`); the launcher orders its instances by
the wakes it finds (:mod:`fma.launcher.activity`); ``fma bench`` reads them.
"""

import os
import re
import time
from typing import Final

STAMP_RE: Final = re.compile(r"\d{2}-\d{2}\s\d{2}:\d{2}:\d{2}(?:\.\d{3})?")
"""``MM-DD HH:MM:SS[.mmm]``: the harness's ``DATE_PATTERN``."""
SLEEP_RE: Final = re.compile(r" It took ([-+]?\d*\.?\d+) seconds to fall asleep")
WAKE_RE: Final = re.compile(r" It took ([-+]?\d*\.?\d+) seconds to wake up")
START_MARKER: Final = "non-default args:"
STAMP_FORMAT: Final = "%m-%d %H:%M:%S"


def vllm_line(
    message: str,
    *,
    process: str = "EngineCore",
    where: str = "abstract.py:391",
    at_s: float | None = None,
) -> str:
    """One line as vLLM formats it (INFO, local time ``at_s``, default now)."""
    stamp = time.strftime(STAMP_FORMAT, time.localtime(at_s))
    return f"({process} pid={os.getpid()}) INFO {stamp} [{where}] {message}"


def sleep_lines(took_s: float, *, at_s: float | None = None) -> list[str]:
    """What vLLM logs at the end of a level-1 sleep (the stub frees no GPU memory)."""
    return [
        vllm_line(
            "Sleep mode freed 0.00 GiB memory, 0.00 GiB memory is still in use.",
            process="Worker",
            where="gpu_worker.py:327",
            at_s=at_s,
        ),
        vllm_line(f"It took {took_s:.6f} seconds to fall asleep.", at_s=at_s),
    ]


def wake_line(took_s: float, *, at_s: float | None = None) -> str:
    """What vLLM logs at the end of a wake."""
    message = f"It took {took_s:.6f} seconds to wake up tags {{'weights', 'kv_cache'}}."
    return vllm_line(message, where="abstract.py:409", at_s=at_s)


def start_line(args: dict[str, object], *, at_s: float | None = None) -> str:
    """What vLLM's API server logs first: its non-default arguments."""
    return vllm_line(
        f"{START_MARKER} {args!r}", process="APIServer", where="utils.py:233", at_s=at_s
    )
