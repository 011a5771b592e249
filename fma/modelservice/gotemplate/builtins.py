"""Go's predefined template functions (``and`` ... ``printf``), with Go's results and errors.

``and`` and ``or`` are listed here so the parser knows them; the executor evaluates them
lazily, as Go 1.18+ does.
"""

import re
from typing import Final

from fma.modelservice.gotemplate.gostrings import format_float, format_operand, quote
from fma.modelservice.gotemplate.values import Function, equal, kind_name, less, truth


def _and(*args: object) -> object:
    for arg in args:
        if not truth(arg):
            return arg
    return args[-1]


def _or(*args: object) -> object:
    for arg in args:
        if truth(arg):
            return arg
    return args[-1]


def sprint(*args: object) -> str:
    """``fmt.Sprint``: a space between operands when neither side is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_operand(arg))
    return "".join(out)


def _println(*args: object) -> str:
    return " ".join(format_operand(a) for a in args) + "\n"


def _len(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | dict):
        return len(value)
    raise ValueError(f"len of type {kind_name(value)}")


def _index(value: object, *keys: object) -> object:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(str(key)) if not isinstance(key, str) else value.get(key)
        elif isinstance(value, list | tuple | str) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise ValueError(f"index out of range: {key}")
            value = value[key]
        else:
            raise ValueError(f"can't index item of type {kind_name(value)}")
    return value


def _eq(first: object, *others: object) -> bool:
    return any(equal(first, other) for other in others)


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _format_one(
    flags: str, width: str | None, precision: str | None, verb: str, arg: object
) -> str:
    spec = flags.replace("#", "") + (width or "") + (f".{precision}" if precision else "")
    if verb == "s" and arg is None:
        return "%!s(<nil>)"
    if verb in "vs":
        text = format_operand(arg)
        if precision:
            text = text[: int(precision)]
        return f"{text:{'<' if '-' in flags else '>'}{width or ''}}"
    if verb == "q" and isinstance(arg, str):
        return quote(arg)
    if verb == "t" and isinstance(arg, bool):
        return "true" if arg else "false"
    if verb in "dxXobc" and isinstance(arg, int) and not isinstance(arg, bool):
        if verb == "c":
            return chr(arg)
        return ("%" + spec + ("d" if verb == "d" else verb)) % arg
    if verb in "feEgG" and isinstance(arg, int | float) and not isinstance(arg, bool):
        if verb == "g" and not precision:
            return format_float(float(arg))
        return ("%" + spec + verb) % float(arg)
    return f"%!{verb}({kind_name(arg)}={format_operand(arg)})"


def sprintf(template: str, *args: object) -> str:
    """``fmt.Sprintf`` for the common verbs; bad or missing operands print as Go prints them."""
    out: list[str] = []
    used = 0
    last = 0
    for match in _VERB.finditer(template):
        out.append(template[last : match.start()])
        last = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(flags, width, precision, verb, args[used]))
        used += 1
    out.append(template[last:])
    if used < len(args):
        extra = ", ".join(f"{kind_name(a)}={format_operand(a)}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


BUILTINS: Final[dict[str, Function]] = {
    "and": Function(_and, 1, None),
    "or": Function(_or, 1, None),
    "not": Function(lambda value: not truth(value), 1, 1),
    "len": Function(_len, 1, 1),
    "index": Function(_index, 1, None),
    "print": Function(sprint, 0, None),
    "printf": Function(sprintf, 1, None),
    "println": Function(_println, 0, None),
    "eq": Function(_eq, 2, None),
    "ne": Function(lambda a, b: not equal(a, b), 2, 2),
    "lt": Function(less, 2, 2),
    "le": Function(lambda a, b: less(a, b) or equal(a, b), 2, 2),
    "gt": Function(lambda a, b: less(b, a), 2, 2),
    "ge": Function(lambda a, b: less(b, a) or equal(a, b), 2, 2),
}
"""Go's predefined functions that base configs might use (``html``, ``js``, ``call`` ... are
not offered)."""
