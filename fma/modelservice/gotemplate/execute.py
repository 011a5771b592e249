"""Execute a parsed template against data, with ``missingkey=error`` semantics.

A field that the data does not have is an error naming the whole path (``.Foo`` or
``.Spec.Foo``), never ``<no value>``: upstream's data is a Go struct, on which an unknown field
is always an error, and a silently empty value in a Kubernetes object is worse than a stop.
"""

from collections.abc import Mapping
from typing import Final

from fma.modelservice.gotemplate.errors import TemplateError
from fma.modelservice.gotemplate.gostrings import format_value
from fma.modelservice.gotemplate.nodes import (
    Action,
    Break,
    Command,
    Constant,
    Continue,
    Dot,
    FieldChain,
    Identifier,
    If,
    Node,
    Operand,
    Pipeline,
    Range,
    SubPipeline,
    Text,
    Variable,
    With,
)
from fma.modelservice.gotemplate.values import Function, kind_name, truth


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NO_FINAL: Final = object()
"""Marks "no value piped in" (distinct from a piped ``nil``)."""


class _Executor:
    def __init__(self, data: object, functions: Mapping[str, Function]) -> None:
        self.functions = functions
        self.variables: list[tuple[str, object]] = [("$", data)]
        self.out: list[str] = []
        self.line = 0

    def fail(self, message: str) -> TemplateError:
        return TemplateError(message, self.line or None)

    # --- nodes -----------------------------------------------------------------------------

    def run(self, nodes: tuple[Node, ...], dot: object) -> None:
        for node in nodes:
            self.node(node, dot)

    def node(self, node: Node, dot: object) -> None:
        if isinstance(node, Text):
            self.out.append(node.text)
        elif isinstance(node, Action):
            value = self.pipeline(node.pipeline, dot)
            if not node.pipeline.variables:
                self.out.append(format_value(value))
        elif isinstance(node, If | With):
            self.conditional(node, dot)
        elif isinstance(node, Range):
            self.range(node, dot)
        elif isinstance(node, Break):
            raise _Break
        elif isinstance(node, Continue):
            raise _Continue

    def scoped(self, nodes: tuple[Node, ...], dot: object) -> None:
        mark = len(self.variables)
        try:
            self.run(nodes, dot)
        finally:
            del self.variables[mark:]

    def conditional(self, node: If | With, dot: object) -> None:
        mark = len(self.variables)
        try:
            value = self.pipeline(node.pipeline, dot)
            if truth(value):
                self.scoped(node.body, value if isinstance(node, With) else dot)
            else:
                self.scoped(node.orelse, dot)
        finally:
            del self.variables[mark:]

    def range(self, node: Range, dot: object) -> None:
        mark = len(self.variables)
        try:
            value = self.pipeline(node.pipeline, dot, declare=False)
            items = self.range_items(value)
            if not items:
                self.scoped(node.orelse, dot)
                return
            for key, element in items:
                self.bind_range_variables(node.pipeline, key, element)
                try:
                    self.scoped(node.body, element)
                except _Continue:
                    continue
                except _Break:
                    break
        finally:
            del self.variables[mark:]

    def range_items(self, value: object) -> list[tuple[object, object]]:
        if value is None:
            return []
        if isinstance(value, list | tuple):
            return list(enumerate(value))
        if isinstance(value, dict):
            return [(k, value[k]) for k in sorted(value, key=str)]
        if isinstance(value, int) and not isinstance(value, bool):
            return [(i, i) for i in range(value)]
        raise self.fail(f"range can't iterate over {format_value(value)}")

    def bind_range_variables(self, pipeline: Pipeline, key: object, element: object) -> None:
        names = pipeline.variables
        if not names:
            return
        bound = [(names[0], element)] if len(names) == 1 else [(names[0], key), (names[1], element)]
        for name, value in bound:
            self.set_variable(name, value, assign=pipeline.assign)

    # --- pipelines -------------------------------------------------------------------------

    def pipeline(self, pipeline: Pipeline, dot: object, *, declare: bool = True) -> object:
        self.line = pipeline.line or self.line
        value: object = _NO_FINAL
        for command in pipeline.commands:
            value = self.command(command, dot, value)
        if declare and pipeline.variables:
            self.set_variable(pipeline.variables[0], value, assign=pipeline.assign)
        return value

    def set_variable(self, name: str, value: object, *, assign: bool) -> None:
        if assign:
            for i in range(len(self.variables) - 1, -1, -1):
                if self.variables[i][0] == name:
                    self.variables[i] = (name, value)
                    return
        self.variables.append((name, value))

    def command(self, command: Command, dot: object, final: object) -> object:
        first = command.operands[0]
        if isinstance(first, Identifier):
            return self.call(first.name, command.operands[1:], dot, final)
        if len(command.operands) > 1 or final is not _NO_FINAL:
            raise self.fail(f"can't give argument to non-function {self.describe(first)}")
        return self.operand(first, dot)

    def call(self, name: str, operands: tuple[Operand, ...], dot: object, final: object) -> object:
        function = self.functions[name]
        count = len(operands) + (final is not _NO_FINAL)
        if count < function.min_args or (
            function.max_args is not None and count > function.max_args
        ):
            wanted = (
                str(function.min_args)
                if function.max_args == function.min_args
                else f"at least {function.min_args}"
                if function.max_args is None
                else f"{function.min_args} to {function.max_args}"
            )
            raise self.fail(f"wrong number of args for {name}: want {wanted} got {count}")
        if name in ("and", "or"):
            return self.short_circuit(name, operands, dot, final)
        args = [self.operand(o, dot) for o in operands]
        if final is not _NO_FINAL:
            args.append(final)
        try:
            return function.call(*args)
        except TemplateError:
            raise
        except (ValueError, TypeError, AttributeError) as error:
            raise self.fail(f"error calling {name}: {error}") from None

    def short_circuit(
        self, name: str, operands: tuple[Operand, ...], dot: object, final: object
    ) -> object:
        value: object = None
        for operand in operands:
            value = self.operand(operand, dot)
            if truth(value) == (name == "or"):
                return value
        if final is not _NO_FINAL:
            value = final
        return value

    # --- operands --------------------------------------------------------------------------

    def operand(self, operand: Operand, dot: object) -> object:
        if isinstance(operand, Constant):
            return operand.value
        if isinstance(operand, Dot):
            return dot
        if isinstance(operand, Variable):
            return self.variable(operand.name)
        if isinstance(operand, SubPipeline):
            return self.pipeline(operand.pipeline, dot)
        if isinstance(operand, FieldChain):
            if operand.receiver is None:
                return self.fields(dot, operand.names, "")
            receiver = self.operand(operand.receiver, dot)
            return self.fields(receiver, operand.names, self.describe(operand.receiver))
        return self.call(operand.name, (), dot, _NO_FINAL)  # a niladic call, as in Go

    def variable(self, name: str) -> object:
        for bound, value in reversed(self.variables):
            if bound == name:
                return value
        raise self.fail(f"undefined variable {name!r}")

    def fields(self, value: object, names: tuple[str, ...], prefix: str) -> object:
        path = prefix
        for name in names:
            path += "." + name
            if isinstance(value, Mapping):
                if name not in value:
                    raise self.fail(f"unknown key {path} (missingkey=error)")
                value = value[name]
            elif value is None:
                raise self.fail(f"nil pointer evaluating {path}")
            else:
                raise self.fail(f"can't evaluate field {name} in type {kind_name(value)}")
        return value

    @staticmethod
    def describe(operand: Operand) -> str:
        if isinstance(operand, FieldChain):
            return "." + ".".join(operand.names)
        if isinstance(operand, Variable):
            return operand.name
        if isinstance(operand, Constant):
            return format_value(operand.value)
        if isinstance(operand, Dot):
            return "."
        return "(pipeline)"


def execute(nodes: tuple[Node, ...], data: object, functions: Mapping[str, Function]) -> str:
    """The text ``nodes`` produce with ``data`` as dot (and ``$``)."""
    executor = _Executor(data, functions)
    try:
        executor.run(nodes, data)
    except (_Break, _Continue):  # the parser allows them only inside range
        raise executor.fail("break or continue outside range") from None
    return "".join(executor.out)
