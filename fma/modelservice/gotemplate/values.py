"""What Go's template engine decides about values: truth, emptiness, kinds, comparison.

Template values are plain Python data: ``str``, ``int``, ``float``, ``bool``, ``None``,
``list`` and ``dict`` (string keys), as parsed YAML and the template variables are.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    """A function a template may call, with how many arguments it takes."""

    call: Callable[..., object]
    min_args: int
    max_args: int | None  # None: any number from min_args


def truth(value: object) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def kind_name(value: object) -> str:
    """The Go kind a value stands for, for error messages."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "slice"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def _comparable_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return kind_name(value)


def equal(left: object, right: object) -> bool:
    """Go's ``eq`` for two basic values; different kinds are an error, as in Go."""
    if left is None or right is None:
        return left is right
    if _comparable_kind(left) != _comparable_kind(right):
        raise ValueError(
            f"incompatible types for comparison: {kind_name(left)} and {kind_name(right)}"
        )
    if isinstance(left, list | tuple | dict):
        raise ValueError(f"non-comparable type {kind_name(left)}")
    return left == right


def less(left: object, right: object) -> bool:
    """Go's ``lt``: numbers with numbers, strings with strings."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    if numbers and isinstance(left, int | float) and isinstance(right, int | float):
        return left < right
    if isinstance(left, str) and isinstance(right, str):
        return left < right
    raise ValueError(f"incompatible types for comparison: {kind_name(left)} and {kind_name(right)}")
