"""Reading user input (scenario files, custom resources) with one clear error line.

A bad file never produces a traceback: :class:`InputError` carries a single line that names the
file and the field, for example ``demo.yaml: demand[0].rate_per_h: Input should be greater than
or equal to 0``. The CLI prints it and exits non-zero.
"""

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from fma.api.demand import TraceFileError, read_trace_csv
from fma.api.scenario import Scenario

M = TypeVar("M", bound=BaseModel)


class InputError(Exception):
    """Bad user input; ``str(error)`` is one line naming the source and the field."""


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("demand", 0, "model")`` -> ``"demand[0].model"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _where(loc: tuple[int | str, ...]) -> str:
    return field_path(
        tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
    )


def describe(error: ValidationError) -> str:
    """The first validation error as ``field: message``, then the other fields at fault.

    A check of the whole file already names its field in the message (``demand[0].model:
    unknown model 'x'``), which is then printed as it is.
    """
    errors = error.errors(include_url=False)
    first = errors[0]
    where = _where(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    text = f"{where}: {message}" if where else message
    others = [_where(e["loc"]) or "(the file)" for e in errors[1:]]
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        text += f" (also wrong: {shown})"
    return text


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}:{where} not valid YAML") from None


def parse(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; raise :class:`InputError` naming ``source`` and the field."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InputError(f"{source}: {describe(error)}") from None


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file (version 1), with its trace files read in.

    A demand's trace ``file`` is relative to the scenario file; its rows become ``points``,
    so the returned scenario needs no file any more (it can be shipped to another process).
    """
    scenario = parse(Scenario, read_yaml(path), str(path))
    return with_trace_points(scenario, path.parent, str(path))


def with_trace_points(scenario: Scenario, base_dir: Path, source: str) -> Scenario:
    """Read every trace demand's ``file`` (relative to ``base_dir``) into its ``points``."""
    demand = list(scenario.demand)
    for i, d in enumerate(demand):
        if d.file is None or d.points is not None:
            continue
        try:
            points = read_trace_csv(base_dir / d.file)
        except TraceFileError as error:
            raise InputError(f"{source}: demand[{i}].file: {error}") from None
        demand[i] = d.model_copy(update={"points": points})
    if demand == scenario.demand:
        return scenario
    return scenario.model_copy(update={"demand": demand})
