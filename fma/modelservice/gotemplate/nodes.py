"""The parse tree of a template: what the parser builds and the executor walks."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldChain:
    """``.A.B`` (``receiver`` None: from dot) or ``$x.A``/``(pipe).A`` (from a receiver)."""

    names: tuple[str, ...]
    receiver: "Operand | None" = None


@dataclass(frozen=True)
class Dot:
    """``.``: the current value."""


@dataclass(frozen=True)
class Variable:
    """``$name`` (``$`` alone is the data the template was executed with)."""

    name: str


@dataclass(frozen=True)
class Identifier:
    """A function name."""

    name: str


@dataclass(frozen=True)
class Constant:
    """A string, number, boolean, character or ``nil`` constant."""

    value: object


@dataclass(frozen=True)
class SubPipeline:
    """``( pipeline )``."""

    pipeline: "Pipeline"


Operand = FieldChain | Dot | Variable | Identifier | Constant | SubPipeline


@dataclass(frozen=True)
class Command:
    """One stage of a pipeline: a function and its arguments, or a single value."""

    operands: tuple[Operand, ...]


@dataclass(frozen=True)
class Pipeline:
    """Commands joined by ``|``, optionally declaring (``:=``) or assigning (``=``) variables."""

    commands: tuple[Command, ...]
    variables: tuple[str, ...] = ()
    assign: bool = False
    line: int = 0


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Action:
    """``{{ pipeline }}``: prints the value unless the pipeline declares variables."""

    pipeline: Pipeline


@dataclass(frozen=True)
class If:
    pipeline: Pipeline
    body: "tuple[Node, ...]"
    orelse: "tuple[Node, ...]" = ()


@dataclass(frozen=True)
class With:
    pipeline: Pipeline
    body: "tuple[Node, ...]"
    orelse: "tuple[Node, ...]" = ()


@dataclass(frozen=True)
class Range:
    pipeline: Pipeline
    body: "tuple[Node, ...]"
    orelse: "tuple[Node, ...]" = ()


@dataclass(frozen=True)
class Break:
    line: int


@dataclass(frozen=True)
class Continue:
    line: int


Node = Text | Action | If | With | Range | Break | Continue
