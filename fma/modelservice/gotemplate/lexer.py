"""Split a Go ``text/template`` source into text and action tokens.

Follows Go's lexer for the parts templates of ModelService base configs use: the default
``{{ }}`` delimiters, the trim markers ``{{- `` and `` -}}`` (a dash *and* a space, so
``{{-3}}`` is the number -3), comments ``{{/* */}}``, and inside actions fields, variables,
identifiers, keywords, string/raw-string/char/number constants, ``|``, ``(``, ``)``, ``:=``,
``=`` and ``,``. Trim markers are applied here: the neighbouring text tokens arrive trimmed.
"""

from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from fma.modelservice.gotemplate.errors import TemplateError
from fma.modelservice.gotemplate.gostrings import unquote


class Kind(Enum):
    TEXT = auto()
    LEFT = auto()
    RIGHT = auto()
    FIELD = auto()
    VARIABLE = auto()
    IDENTIFIER = auto()
    KEYWORD = auto()
    STRING = auto()
    NUMBER = auto()
    CHAR = auto()
    BOOL = auto()
    NIL = auto()
    DOT = auto()
    PIPE = auto()
    LPAREN = auto()
    RPAREN = auto()
    DECLARE = auto()
    ASSIGN = auto()
    COMMA = auto()


@dataclass(frozen=True)
class Token:
    """One token; ``spaced`` says whether white space preceded it inside the action."""

    kind: Kind
    value: str
    line: int
    spaced: bool = True


KEYWORDS: Final = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)
_SPACE: Final = " \t\r\n"
_LEFT: Final = "{{"
_RIGHT: Final = "}}"
_RIGHT_TRIM: Final = " -}}"
_PUNCTUATION: Final = {"|": Kind.PIPE, "(": Kind.LPAREN, ")": Kind.RPAREN, ",": Kind.COMMA}


def _is_alnum(char: str) -> bool:
    return char == "_" or char.isalnum()


class _Lexer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.line = 1
        self.tokens: list[Token] = []
        self.trim_next_text = False

    def run(self) -> list[Token]:
        while self.pos < len(self.source):
            start = self.source.find(_LEFT, self.pos)
            if start < 0:
                self._text(self.source[self.pos :])
                break
            self._text(self.source[self.pos : start])
            self._advance_to(start + len(_LEFT))
            self._action()
        return self.tokens

    def _advance_to(self, pos: int) -> None:
        self.line += self.source.count("\n", self.pos, pos)
        self.pos = pos

    def _text(self, text: str) -> None:
        if self.trim_next_text:
            text = text.lstrip(_SPACE)
            self.trim_next_text = False
        if text:
            self.tokens.append(Token(Kind.TEXT, text, self.line))

    def _trim_previous_text(self) -> None:
        if self.tokens and self.tokens[-1].kind is Kind.TEXT:
            last = self.tokens.pop()
            trimmed = last.value.rstrip(_SPACE)
            if trimmed:
                self.tokens.append(Token(Kind.TEXT, trimmed, last.line))

    def _action(self) -> None:
        src = self.source
        if src.startswith("-", self.pos) and src[self.pos + 1 : self.pos + 2] in tuple(_SPACE):
            self._trim_previous_text()
            self._advance_to(self.pos + 2)
        self._skip_space()
        if src.startswith("/*", self.pos):
            self._comment()
            return
        self.tokens.append(Token(Kind.LEFT, _LEFT, self.line))
        spaced = True
        while True:
            if self.pos >= len(src):
                raise TemplateError("unclosed action", self.line)
            if src.startswith(_RIGHT_TRIM, self.pos) or src.startswith(_RIGHT, self.pos):
                self._close(trimmed=src.startswith(_RIGHT_TRIM, self.pos))
                return
            char = src[self.pos]
            if char in _SPACE:
                self._advance_to(self.pos + 1)
                spaced = True
                continue
            self._token(char, spaced)
            spaced = False

    def _close(self, *, trimmed: bool) -> None:
        self.tokens.append(Token(Kind.RIGHT, _RIGHT, self.line))
        self._advance_to(self.pos + (len(_RIGHT_TRIM) if trimmed else len(_RIGHT)))
        self.trim_next_text = trimmed

    def _skip_space(self) -> None:
        while self.pos < len(self.source) and self.source[self.pos] in _SPACE:
            if self.source.startswith(_RIGHT_TRIM, self.pos):
                return
            self._advance_to(self.pos + 1)

    def _comment(self) -> None:
        end = self.source.find("*/", self.pos + 2)
        if end < 0:
            raise TemplateError("unclosed comment", self.line)
        self._advance_to(end + 2)
        if self.source.startswith(_RIGHT_TRIM, self.pos):
            self._advance_to(self.pos + len(_RIGHT_TRIM))
            self.trim_next_text = True
        elif self.source.startswith(_RIGHT, self.pos):
            self._advance_to(self.pos + len(_RIGHT))
        else:
            raise TemplateError("comment ends before closing delimiter", self.line)

    def _emit(self, kind: Kind, value: str, spaced: bool, end: int) -> None:
        self.tokens.append(Token(kind, value, self.line, spaced))
        self._advance_to(end)

    def _token(self, char: str, spaced: bool) -> None:
        src, pos = self.source, self.pos
        nxt = src[pos + 1 : pos + 2]
        if char in _PUNCTUATION:
            self._emit(_PUNCTUATION[char], char, spaced, pos + 1)
        elif char == ":" and nxt == "=":
            self._emit(Kind.DECLARE, ":=", spaced, pos + 2)
        elif char == "=":
            self._emit(Kind.ASSIGN, "=", spaced, pos + 1)
        elif char in "\"`'":
            self._quoted(char, spaced)
        elif char == "$":
            end = self._word_end(pos + 1)
            self._emit(Kind.VARIABLE, src[pos:end], spaced, end)
        elif char == "." and nxt.isdigit():
            self._number(spaced)
        elif char == ".":
            end = self._word_end(pos + 1)
            kind = Kind.FIELD if end > pos + 1 else Kind.DOT
            self._emit(kind, src[pos:end], spaced, end)
        elif char.isdigit() or (char in "+-" and (nxt.isdigit() or nxt == ".")):
            self._number(spaced)
        elif _is_alnum(char):
            end = self._word_end(pos)
            self._emit(self._word_kind(src[pos:end]), src[pos:end], spaced, end)
        else:
            raise TemplateError(f"unexpected {char!r} in command", self.line)

    def _word_end(self, pos: int) -> int:
        while pos < len(self.source) and _is_alnum(self.source[pos]):
            pos += 1
        return pos

    @staticmethod
    def _word_kind(word: str) -> Kind:
        if word in KEYWORDS:
            return Kind.KEYWORD
        if word in ("true", "false"):
            return Kind.BOOL
        if word == "nil":
            return Kind.NIL
        return Kind.IDENTIFIER

    def _number(self, spaced: bool) -> None:
        end = self.pos + 1
        while end < len(self.source):
            char = self.source[end]
            exponent_sign = char in "+-" and self.source[end - 1] in "eEpP"
            if not (_is_alnum(char) or char == "." or exponent_sign):
                break
            end += 1
        self._emit(Kind.NUMBER, self.source[self.pos : end], spaced, end)

    def _quoted(self, quote: str, spaced: bool) -> None:
        src = self.source
        end = self.pos + 1
        while True:
            if end >= len(src) or (quote != "`" and src[end] == "\n"):
                what = {"`": "raw quote", "'": "char constant"}.get(quote, "quoted string")
                raise TemplateError(f"unterminated {what}", self.line)
            if src[end] == "\\" and quote != "`":
                end += 2
                continue
            if src[end] == quote:
                break
            end += 1
        literal = src[self.pos : end + 1]
        try:
            value = unquote(literal)
        except ValueError as error:
            raise TemplateError(str(error), self.line) from None
        kind = Kind.CHAR if quote == "'" else Kind.STRING
        self._emit(kind, value, spaced, end + 1)


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source``: TEXT, and each action as LEFT ... RIGHT."""
    return _Lexer(source).run()
