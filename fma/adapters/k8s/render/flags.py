"""Reading vLLM command-line flags from an argument list.

Flags are read as argparse reads them: ``--flag value`` or ``--flag=value``, and the last
occurrence wins. Errors are ``ValueError`` with a message naming the flag; callers prefix the
object and field.
"""

import math
from collections.abc import Sequence
from typing import Final

from fma.core.model import GPU_MEMORY_UTILIZATION_DEFAULT

MODEL_FLAGS: Final = ("--model",)
PORT_FLAGS: Final = ("--port",)
TENSOR_PARALLEL_FLAGS: Final = ("--tensor-parallel-size", "-tp")
GPU_MEMORY_UTILIZATION_FLAGS: Final = ("--gpu-memory-utilization",)


def has_flag(args: Sequence[str], flags: Sequence[str]) -> bool:
    """Whether any of ``flags`` appears, alone or as ``flag=value``."""
    return any(arg in flags or arg.startswith(tuple(f + "=" for f in flags)) for arg in args)


def flag_value(args: Sequence[str], flags: Sequence[str]) -> str | None:
    """The value of the last of ``flags`` in ``args``, if any; a flag at the very end with no
    value is a ``ValueError``."""
    found: str | None = None
    for index, arg in enumerate(args):
        for flag in flags:
            if arg == flag:
                if index + 1 >= len(args):
                    raise ValueError(f"{flag} needs a value")
                found = args[index + 1]
            elif arg.startswith(flag + "="):
                found = arg[len(flag) + 1 :]
    return found


def tensor_parallel_size(args: Sequence[str]) -> int:
    """``--tensor-parallel-size`` (or ``-tp``), 1 when absent; a ``ValueError`` unless it is a
    whole number of at least 1."""
    value = flag_value(args, TENSOR_PARALLEL_FLAGS)
    if value is None:
        return 1
    try:
        size = int(value)
    except ValueError:
        raise ValueError(f"--tensor-parallel-size {value!r} is not a whole number") from None
    if size < 1:
        raise ValueError(f"--tensor-parallel-size {value!r} must be at least 1")
    return size


def gpu_memory_utilization(args: Sequence[str]) -> float:
    """``--gpu-memory-utilization``, vLLM's default 0.9 when absent; a ``ValueError`` unless it
    is a number in (0, 1]."""
    value = flag_value(args, GPU_MEMORY_UTILIZATION_FLAGS)
    if value is None:
        return GPU_MEMORY_UTILIZATION_DEFAULT
    try:
        share = float(value)
    except ValueError:
        raise ValueError(f"--gpu-memory-utilization {value!r} is not a number") from None
    if math.isnan(share) or not 0 < share <= 1:
        raise ValueError(f"--gpu-memory-utilization {value!r} must be in (0, 1]")
    return share
