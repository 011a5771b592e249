"""Durations in scenario files: a number of seconds, or a string with an s/m/h/d suffix."""

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(value: object) -> float:
    """``90``, ``"90s"``, ``"1.5m"``, ``"2h"``, ``"1d"`` -> seconds. Raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '10m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_S[match.group(2)]
    raise ValueError(f"not a duration: {value!r} (use seconds, or a suffix s, m, h or d)")


Duration = Annotated[float, BeforeValidator(parse_duration_s)]
"""A pydantic field type: seconds, accepting ``"10m"``-style strings."""
