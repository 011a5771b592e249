"""Parse tokens into a tree, checking what Go checks at parse time.

Supported: actions with pipelines, ``if``/``else if``/``else``, ``with``/``else with``/``else``,
``range`` (with ``$i, $v :=``), ``break``, ``continue``, variables (``:=`` and ``=``), and
parenthesised pipelines. ``define``, ``template`` and ``block`` are rejected: upstream renders
each base-config value as a single template, so they have nothing to refer to. Unknown
functions and undefined variables are parse errors, as in Go.
"""

from collections.abc import Collection

from fma.modelservice.gotemplate.errors import TemplateError
from fma.modelservice.gotemplate.lexer import Kind, Token, tokenize
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

_CONTROLS = ("if", "with", "range")


def parse_number(text: str) -> int | float:
    """A Go numeric constant: decimal, ``0x``/``0o``/``0b`` integers, ``_`` separators, floats."""
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    body = digits.lstrip("+-")
    lowered = body.lower()
    try:
        if lowered.startswith(("0x", "0o", "0b")) and not ("." in lowered or "p" in lowered):
            return sign * int(body, 0)
        if body.isdigit():
            if len(body) > 1 and body.startswith("0"):
                return sign * int(body, 8)  # Go's legacy octal
            return sign * int(body)
        return sign * float(body)
    except ValueError:
        raise ValueError(f"bad number syntax: {text!r}") from None


class _Parser:
    def __init__(self, tokens: list[Token], functions: Collection[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.functions = functions
        self.scopes: list[set[str]] = [{"$"}]
        self.range_depth = 0

    # --- token helpers ---------------------------------------------------------------------

    def _peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def _next(self) -> Token:
        token = self._peek()
        if token is None:
            line = self.tokens[-1].line if self.tokens else 1
            raise TemplateError("unexpected end of template", line)
        self.pos += 1
        return token

    def _expect(self, kind: Kind, what: str) -> Token:
        token = self._next()
        if token.kind is not kind:
            raise TemplateError(f"unexpected {token.value!r}, expected {what}", token.line)
        return token

    def _at_keyword(self, word: str, offset: int = 0) -> bool:
        token = self._peek(offset)
        return token is not None and token.kind is Kind.KEYWORD and token.value == word

    # --- lists and actions -----------------------------------------------------------------

    def parse_list(self) -> tuple[tuple[Node, ...], str | None, int]:
        """Nodes up to ``{{else}}``/``{{end}}`` (returned, with its line) or the end (None)."""
        nodes: list[Node] = []
        while (token := self._peek()) is not None:
            if token.kind is Kind.TEXT:
                nodes.append(Text(self._next().value))
                continue
            self._expect(Kind.LEFT, "an action")
            head = self._peek()
            if head is not None and head.kind is Kind.KEYWORD:
                if head.value in ("else", "end"):
                    self._next()
                    return tuple(nodes), head.value, head.line
                nodes.append(self._keyword_action(self._next()))
            else:
                pipeline = self._pipeline(declarations_allowed=1)
                self._expect(Kind.RIGHT, "closing delimiter")
                nodes.append(Action(pipeline))
        return tuple(nodes), None, self.tokens[-1].line if self.tokens else 1

    def _keyword_action(self, keyword: Token) -> Node:
        if keyword.value in _CONTROLS:
            return self._control(keyword)
        if keyword.value in ("break", "continue"):
            if self.range_depth == 0:
                raise TemplateError(f"{{{{{keyword.value}}}}} outside {{{{range}}}}", keyword.line)
            self._expect(Kind.RIGHT, "closing delimiter")
            return Break(keyword.line) if keyword.value == "break" else Continue(keyword.line)
        raise TemplateError(
            f"{{{{{keyword.value}}}}} is not supported: a base config value is one template",
            keyword.line,
        )

    def _control(self, keyword: Token) -> Node:
        self.scopes.append(set())
        is_range = keyword.value == "range"
        pipeline = self._pipeline(declarations_allowed=2 if is_range else 1)
        self._expect(Kind.RIGHT, "closing delimiter")
        self.range_depth += is_range
        body, end, line = self.parse_list()
        self.range_depth -= is_range
        orelse: tuple[Node, ...] = ()
        if end == "else":
            chained = self._peek()
            if (
                chained is not None
                and chained.kind is Kind.KEYWORD
                and chained.value == keyword.value != "range"
            ):
                # "{{else if x}}" is "{{else}}{{if x}}...{{end}}" sharing the chain's one end;
                # likewise "{{else with x}}" inside a with.
                self.scopes.pop()
                orelse = (self._control(self._next()),)
                return self._build(keyword.value, pipeline, body, orelse)
            self._expect(Kind.RIGHT, "closing delimiter")
            orelse, end, line = self.parse_list()
            if end == "else":
                raise TemplateError("expected {{end}}, found a second {{else}}", line)
        if end != "end":
            raise TemplateError(f"{{{{{keyword.value}}}}} lacks its {{{{end}}}}", line)
        self._expect(Kind.RIGHT, "closing delimiter")
        self.scopes.pop()
        return self._build(keyword.value, pipeline, body, orelse)

    @staticmethod
    def _build(
        word: str, pipeline: Pipeline, body: tuple[Node, ...], orelse: tuple[Node, ...]
    ) -> Node:
        if word == "if":
            return If(pipeline, body, orelse)
        if word == "with":
            return With(pipeline, body, orelse)
        return Range(pipeline, body, orelse)

    # --- pipelines -------------------------------------------------------------------------

    def _declared_variables(self, allowed: int) -> tuple[tuple[str, ...], bool]:
        """Leading ``$x :=``, ``$x =`` or (range) ``$i, $v :=``; consumed when present."""
        first = self._peek()
        if first is None or first.kind is not Kind.VARIABLE:
            return (), False
        after = self._peek(1)
        if after is not None and after.kind in (Kind.DECLARE, Kind.ASSIGN):
            self.pos += 2
            return self._declare((first.value,), after), after.kind is Kind.ASSIGN
        second = self._peek(2)
        operator = self._peek(3)
        if (
            allowed == 2
            and after is not None
            and after.kind is Kind.COMMA
            and second is not None
            and second.kind is Kind.VARIABLE
            and operator is not None
            and operator.kind in (Kind.DECLARE, Kind.ASSIGN)
        ):
            self.pos += 4
            return self._declare(
                (first.value, second.value), operator
            ), operator.kind is Kind.ASSIGN
        return (), False

    def _declare(self, names: tuple[str, ...], operator: Token) -> tuple[str, ...]:
        for name in names:
            if operator.kind is Kind.ASSIGN:
                self._check_defined(name, operator.line)
            else:
                self.scopes[-1].add(name)
        return names

    def _check_defined(self, name: str, line: int) -> None:
        if not any(name in scope for scope in self.scopes):
            raise TemplateError(f"undefined variable {name!r}", line)

    def _pipeline(self, declarations_allowed: int) -> Pipeline:
        start = self._peek()
        line = start.line if start is not None else 0
        variables, assign = self._declared_variables(declarations_allowed)
        commands: list[Command] = []
        while True:
            commands.append(self._command())
            token = self._peek()
            if token is not None and token.kind is Kind.PIPE:
                self._next()
                continue
            break
        return Pipeline(tuple(commands), variables, assign, line)

    def _command(self) -> Command:
        operands: list[Operand] = []
        while (token := self._peek()) is not None and token.kind not in (
            Kind.RIGHT,
            Kind.RPAREN,
            Kind.PIPE,
        ):
            if operands and not token.spaced and token.kind is not Kind.FIELD:
                raise TemplateError(f"missing space before {token.value!r}", token.line)
            operands.append(self._operand())
        if not operands:
            line = token.line if token is not None else 0
            raise TemplateError("missing value for command", line)
        if len(operands) == 1 and operands[0] == Constant(None):
            raise TemplateError("nil is not a command", token.line if token is not None else 0)
        return Command(tuple(operands))

    def _operand(self) -> Operand:
        token = self._next()
        term: Operand
        if token.kind is Kind.FIELD:
            return FieldChain(self._field_names(token))
        if token.kind is Kind.DOT:
            term = Dot()
        elif token.kind is Kind.VARIABLE:
            self._check_defined(token.value, token.line)
            term = Variable(token.value)
        elif token.kind is Kind.IDENTIFIER:
            if token.value not in self.functions:
                raise TemplateError(f'function "{token.value}" not defined', token.line)
            return Identifier(token.value)
        elif token.kind is Kind.STRING:
            term = Constant(token.value)
        elif token.kind is Kind.CHAR:
            term = Constant(ord(token.value))
        elif token.kind is Kind.BOOL:
            term = Constant(token.value == "true")
        elif token.kind is Kind.NIL:
            term = Constant(None)
        elif token.kind is Kind.NUMBER:
            try:
                term = Constant(parse_number(token.value))
            except ValueError as error:
                raise TemplateError(str(error), token.line) from None
        elif token.kind is Kind.LPAREN:
            inner = self._pipeline(declarations_allowed=0)
            self._expect(Kind.RPAREN, "')'")
            term = SubPipeline(inner)
        else:
            raise TemplateError(f"unexpected {token.value!r} in operand", token.line)
        following = self._peek()
        if following is not None and following.kind is Kind.FIELD and not following.spaced:
            return FieldChain(self._field_names(self._next()), receiver=term)
        return term

    def _field_names(self, first: Token) -> tuple[str, ...]:
        names = [first.value[1:]]
        while (token := self._peek()) is not None and token.kind is Kind.FIELD and not token.spaced:
            names.append(self._next().value[1:])
        return tuple(names)


def parse(source: str, functions: Collection[str]) -> tuple[Node, ...]:
    """The tree of ``source``; ``functions`` are the names a template may call."""
    parser = _Parser(tokenize(source), functions)
    nodes, end, line = parser.parse_list()
    if end is not None:
        raise TemplateError(f"unexpected {{{{{end}}}}}", line)
    return nodes
