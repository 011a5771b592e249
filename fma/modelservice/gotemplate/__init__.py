"""A Go ``text/template`` interpreter for the subset ModelService base configs use.

``render(source, data, functions, ...)`` parses and executes one template. Supported: text and
actions with the default delimiters, trim markers, comments, pipelines, fields and variables,
``if``/``else if``/``else``, ``with``, ``range`` (with ``break``/``continue``), Go's
predefined functions and a subset of Sprig's. Unknown fields are errors (``missingkey=error``).
Everything is pure: no I/O, no clock.
"""

from collections.abc import Mapping

from fma.modelservice.gotemplate.builtins import BUILTINS
from fma.modelservice.gotemplate.errors import TemplateError
from fma.modelservice.gotemplate.execute import execute
from fma.modelservice.gotemplate.parser import parse
from fma.modelservice.gotemplate.sprig import SPRIG
from fma.modelservice.gotemplate.values import Function

__all__ = ["BUILTINS", "SPRIG", "Function", "TemplateError", "render", "standard_functions"]


def standard_functions() -> dict[str, Function]:
    """Go's predefined functions and the Sprig subset, as upstream registers them."""
    return {**SPRIG, **BUILTINS}


def render(source: str, data: Mapping[str, object], functions: Mapping[str, Function]) -> str:
    """Execute ``source`` with ``data`` as dot; raise :class:`TemplateError` (one line)."""
    if "{{" not in source:
        return source
    return execute(parse(source, functions.keys()), data, functions)
