"""A subset of the Sprig functions upstream registers (``sprig.TxtFuncMap``).

Only functions that make sense in a base config are offered: string handling, defaults,
lists and integer arithmetic. Argument order is Sprig's, with the operand last so that it
pipes: ``{{ .ModelName | replace "/" "-" }}`` is ``replace "/" "-" .ModelName``.
"""

from typing import Final

from fma.modelservice.gotemplate.builtins import sprint
from fma.modelservice.gotemplate.gostrings import format_operand, quote
from fma.modelservice.gotemplate.values import Function, kind_name


def empty(value: object) -> bool:
    """Sprig's ``empty``: nil, false, 0, and empty strings, lists and maps."""
    if value is None or value is False:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) == 0
    return False


def to_string(value: object) -> str:
    """Sprig's ``strval``: strings as they are, anything else as ``fmt`` prints it."""
    return value if isinstance(value, str) else format_operand(value)


def to_int(value: object) -> int:
    """Sprig's ``int``: numbers truncated, numeric strings parsed, anything else 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value)) if value.strip() else 0
        except ValueError:
            return 0
    return 0


def _number(value: object) -> int:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return to_int(value)
    raise ValueError(f"expected a number, got {kind_name(value)}")


def _default(fallback: object, *given: object) -> object:
    return fallback if not given or empty(given[0]) else given[0]


def _coalesce(*values: object) -> object:
    return next((v for v in values if not empty(v)), None)


def _quote(*values: object) -> str:
    return " ".join(quote(to_string(v)) for v in values if v is not None)


def _squote(*values: object) -> str:
    return " ".join(f"'{to_string(v)}'" for v in values if v is not None)


def _join(separator: str, values: object) -> str:
    if isinstance(values, list | tuple):
        return separator.join(to_string(v) for v in values if v is not None)
    return to_string(values)


def _indent(width: int, text: str) -> str:
    pad = " " * width
    return pad + text.replace("\n", "\n" + pad)


def _title(text: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def _div(left: object, right: object) -> int:
    divisor = _number(right)
    if divisor == 0:
        raise ValueError("integer divide by zero")
    numerator = _number(left)
    quotient = abs(numerator) // abs(divisor)
    return quotient if (numerator >= 0) == (divisor >= 0) else -quotient  # Go truncates


SPRIG: Final[dict[str, Function]] = {
    "default": Function(_default, 1, 2),
    "empty": Function(empty, 1, 1),
    "coalesce": Function(_coalesce, 0, None),
    "ternary": Function(lambda yes, no, condition: yes if condition else no, 3, 3),
    "quote": Function(_quote, 0, None),
    "squote": Function(_squote, 0, None),
    "toString": Function(to_string, 1, 1),
    "int": Function(to_int, 1, 1),
    "upper": Function(lambda s: to_string(s).upper(), 1, 1),
    "lower": Function(lambda s: to_string(s).lower(), 1, 1),
    "title": Function(lambda s: _title(to_string(s)), 1, 1),
    "trim": Function(lambda s: to_string(s).strip(), 1, 1),
    "trimAll": Function(lambda cut, s: to_string(s).strip(to_string(cut)), 2, 2),
    "trimPrefix": Function(lambda p, s: to_string(s).removeprefix(to_string(p)), 2, 2),
    "trimSuffix": Function(lambda p, s: to_string(s).removesuffix(to_string(p)), 2, 2),
    "replace": Function(
        lambda old, new, s: to_string(s).replace(to_string(old), to_string(new)), 3, 3
    ),
    "contains": Function(lambda sub, s: to_string(sub) in to_string(s), 2, 2),
    "hasPrefix": Function(lambda p, s: to_string(s).startswith(to_string(p)), 2, 2),
    "hasSuffix": Function(lambda p, s: to_string(s).endswith(to_string(p)), 2, 2),
    "cat": Function(lambda *v: " ".join(sprint(x) for x in v if x is not None), 0, None),
    "join": Function(lambda sep, values: _join(to_string(sep), values), 2, 2),
    "splitList": Function(lambda sep, s: to_string(s).split(to_string(sep)), 2, 2),
    "list": Function(lambda *values: list(values), 0, None),
    "indent": Function(lambda n, s: _indent(_number(n), to_string(s)), 2, 2),
    "nindent": Function(lambda n, s: "\n" + _indent(_number(n), to_string(s)), 2, 2),
    "add": Function(lambda *n: sum(_number(x) for x in n), 0, None),
    "add1": Function(lambda n: _number(n) + 1, 1, 1),
    "sub": Function(lambda a, b: _number(a) - _number(b), 2, 2),
    "mul": Function(lambda first, *rest: _product(first, *rest), 1, None),
    "div": Function(_div, 2, 2),
    "max": Function(lambda first, *rest: max(_number(x) for x in (first, *rest)), 1, None),
    "min": Function(lambda first, *rest: min(_number(x) for x in (first, *rest)), 1, None),
}
"""The Sprig functions offered, by name."""


def _product(first: object, *rest: object) -> int:
    result = _number(first)
    for value in rest:
        result *= _number(value)
    return result
