"""``--vary PATH=LO..HI[:STEP]``: which scenario field a plan changes, and over which values.

``PATH`` is a field path as error messages print it, e.g. ``cluster.node_pools[0].count``,
``launchers.per_node`` or ``policy.sleeping_gib_per_gpu_max``. Values run from LO to HI in
steps of STEP (default 1); they are whole numbers when LO, HI and STEP are. Applying a value
re-validates the whole scenario, so a value the scenario cannot take is an error naming it.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

from fma.api.loading import InputError, field_path, parse
from fma.api.scenario import Scenario

VALUES_MAX = 1000
_VARY = re.compile(
    r"^\s*([^=\s]+)\s*=\s*([-+]?[\d.]+)\s*\.\.\s*([-+]?[\d.]+)\s*(?::\s*([\d.]+))?\s*$"
)
_PART = re.compile(r"([A-Za-z_]\w*)|\[(\d+)\]")

Number = int | float


@dataclass(frozen=True)
class Vary:
    path: str
    parts: tuple[str | int, ...]
    values: tuple[Number, ...]


def _number(text: str) -> Number:
    value = float(text)
    return int(value) if re.fullmatch(r"[-+]?\d+", text) else value


def parse_path(path: str) -> tuple[str | int, ...]:
    """``a.b[0].c`` -> ``("a", "b", 0, "c")``; raises InputError when malformed."""
    parts: list[str | int] = []
    position = 0
    for match in _PART.finditer(path):
        gap = path[position : match.start()]
        if gap not in ("", ".") or (gap == "." and not parts):
            break
        parts.append(match.group(1) if match.group(1) else int(match.group(2)))
        position = match.end()
    if position != len(path) or not parts or not isinstance(parts[0], str):
        raise InputError(f"--vary: {path!r} is not a field path like cluster.node_pools[0].count")
    return tuple(parts)


def parse_vary(text: str) -> Vary:
    """Parse ``PATH=LO..HI[:STEP]`` into the path and the list of values to try."""
    match = _VARY.match(text)
    if match is None:
        raise InputError(f"--vary: expected PATH=LO..HI or PATH=LO..HI:STEP, got {text!r}")
    path, lo_text, hi_text, step_text = match.groups()
    try:
        lo, hi = _number(lo_text), _number(hi_text)
        step = _number(step_text) if step_text else 1
    except ValueError:
        raise InputError(f"--vary: not numbers in {text!r}") from None
    if step <= 0 or hi < lo:
        raise InputError(f"--vary: need LO <= HI and STEP > 0, got {text!r}")
    count = math.floor((hi - lo) / step + 1e-9) + 1
    if count > VALUES_MAX:
        raise InputError(f"--vary: {count} values; at most {VALUES_MAX}")
    if all(isinstance(x, int) for x in (lo, hi, step)):
        values: tuple[Number, ...] = tuple(range(int(lo), int(hi) + 1, int(step)))
    else:
        values = tuple(v for v in (round(lo + k * step, 9) for k in range(count)) if v <= hi + 1e-9)
    return Vary(path, parse_path(path), values)


def apply(scenario: Scenario, vary: Vary, value: Number, source: str) -> Scenario:
    """``scenario`` with the field at ``vary.path`` set to ``value``, validated again."""
    data = scenario.model_dump(mode="python")
    node: Any = data
    for depth, part in enumerate(vary.parts):
        last = depth == len(vary.parts) - 1
        try:
            if last:
                node[part]  # the field must exist: a plan never invents one
                node[part] = value
            else:
                node = node[part]
        except (KeyError, IndexError, TypeError):
            where = field_path(vary.parts[: depth + 1])
            raise InputError(f"--vary: the scenario has no field {where}") from None
    return parse(Scenario, data, f"{source} with {vary.path}={value:g}")
