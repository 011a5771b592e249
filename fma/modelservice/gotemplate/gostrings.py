"""Go's spelling of constants and values: string literals in, ``fmt`` output out.

Templates print values the way Go's ``fmt.Print`` does (``true``, ``1e+21``, ``[a b]``,
``map[k:v]``), so a base config renders to the same text it renders to upstream.
"""

from decimal import Decimal
from typing import Final

_SIMPLE_ESCAPES: Final = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}
_HEX_ESCAPE_DIGITS: Final = {"x": 2, "u": 4, "U": 8}


def unquote(literal: str) -> str:
    """Decode a Go string (``"..."``), raw string (backquoted) or char constant (``'x'``).

    Raises ``ValueError`` naming the bad escape.
    """
    quote, body = literal[0], literal[1:-1]
    if quote == "`":
        return body.replace("\r", "")
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        code = body[i + 1 : i + 2]
        if code in _SIMPLE_ESCAPES and not (code == "'" and quote == '"'):
            out.append(_SIMPLE_ESCAPES[code])
            i += 2
        elif code in _HEX_ESCAPE_DIGITS:
            digits = body[i + 2 : i + 2 + _HEX_ESCAPE_DIGITS[code]]
            if len(digits) != _HEX_ESCAPE_DIGITS[code] or not _is_hex(digits):
                raise ValueError(f"invalid escape \\{code} in {literal}")
            out.append(chr(int(digits, 16)))
            i += 2 + len(digits)
        elif code.isdigit() and code in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise ValueError(f"invalid octal escape in {literal}")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError(f"invalid escape \\{code} in {literal}")
    text = "".join(out)
    if quote == "'" and len(text) != 1:
        raise ValueError(f"malformed character constant: {literal}")
    return text


def _is_hex(digits: str) -> bool:
    return all(d in "0123456789abcdefABCDEF" for d in digits)


def quote(text: str) -> str:
    """Go's ``strconv.Quote`` (what ``%q`` and sprig's ``quote`` print) for printable text."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif not char.isprintable():
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def format_float(value: float) -> str:
    """A float as ``fmt`` prints it with ``%v``: shortest digits, an exponent past 1e21."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(str(d) for d in digits)
    power = len(mantissa) + exponent - 1  # the decimal exponent of the leading digit
    prefix = "-" if sign else ""
    if power < -4 or power >= 21:
        tail = f".{mantissa[1:]}" if len(mantissa) > 1 else ""
        return f"{prefix}{mantissa[0]}{tail}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if exponent >= 0:
        return prefix + mantissa + "0" * exponent
    point = len(mantissa) + exponent
    if point > 0:
        return f"{prefix}{mantissa[:point]}.{mantissa[point:]}"
    return f"{prefix}0.{'0' * -point}{mantissa}"


def format_value(value: object) -> str:
    """``fmt.Print`` of a template value; ``None`` is ``<no value>`` as Go's executor prints."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_operand(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{format_operand(k)}:{format_operand(v)}" for k, v in items) + "]"
    return str(value)


def format_operand(value: object) -> str:
    """``fmt`` of a function's operand (and inside lists and maps): nil is ``<nil>``; only
    the executor prints a missing value as ``<no value>``."""
    return "<nil>" if value is None else format_value(value)
