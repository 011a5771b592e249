"""Kubernetes' ``$(VAR)`` expansion, as the kubelet applies it to env values, command and args.

A line-by-line port of ``k8s.io/kubernetes/third_party/forked/golang/expansion``:
``$(NAME)`` is replaced by the variable's value when it is defined and left as written when
not; ``$$`` is an escaped ``$``; a ``$`` not followed by ``(`` or ``$``, and an unterminated
``$(``, are kept literally. Nothing is ever handed to a shell.
"""

from collections.abc import Callable, Mapping

_OPERATOR = "$"
_OPENER = "("
_CLOSER = ")"


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """A lookup through ``contexts`` in order; an unknown name maps back to ``$(name)``."""

    def lookup(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"{_OPERATOR}{_OPENER}{name}{_CLOSER}"

    return lookup


def _read_variable(text: str) -> tuple[str, bool, int]:
    """After a ``$``: (what to write, whether it is a variable name, characters consumed)."""
    first = text[0]
    if first == _OPERATOR:
        return _OPERATOR, False, 1  # "$$": an escaped operator
    if first == _OPENER:
        end = text.find(_CLOSER, 1)
        if end != -1:
            return text[1:end], True, end + 1
        return _OPERATOR + _OPENER, False, 1  # incomplete reference, kept as is
    return _OPERATOR + first, False, 1  # a lone operator


def expand(text: str, env: Mapping[str, str] | Callable[[str], str]) -> str:
    """``text`` with every ``$(NAME)`` replaced through ``env`` (a mapping or a lookup)."""
    lookup = env if callable(env) else mapping_for(env)
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == _OPERATOR and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_variable, advance = _read_variable(text[cursor + 1 :])
            out.append(lookup(read) if is_variable else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]
