"""A klip's `compute` expressions (SPEC §13): arithmetic over columns and numbers.

The grammar is small on purpose, and parsed here by hand: user text never reaches `eval` nor
Python's own parser, so nothing but what is listed below can ever run.

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | column | call | "(" expr ")"
    call    := ("round" | "abs" | "coalesce") "(" expr ("," expr)* ")"
    column  := identifier (letters, digits, _) | '"' any text but '"' '"'

`round(x)` and `round(x, n)` (n a whole number from 0 to 10), `abs(x)`, `coalesce(a, b, ...)`.
A null anywhere in arithmetic gives null, and so does a division by zero, and a whole-number
result past what 64 bits hold: a klip shows a gap rather than failing, or showing a number wrapped
round to the other sign, over one odd row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

FUNCTIONS = ("round", "abs", "coalesce")
_MAX_DEPTH = 50


class ExprError(ValueError):
    """What is wrong with an expression, and where (0-based character index)."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"at position {position}: {message}")
        self.position = position
        self.message = message


class Node:
    """What every expression can do: list the columns it reads, and be evaluated over a row."""

    __slots__ = ()

    def columns(self) -> list[str]:
        return columns(self)  # type: ignore[arg-type]

    def evaluate(self, row: Mapping[str, Any]) -> float | int | None:
        return evaluate(self, row)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Number(Node):
    value: float | int


@dataclass(frozen=True)
class Col(Node):
    name: str


@dataclass(frozen=True)
class Neg(Node):
    operand: Expr


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # one of + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call(Node):
    fn: str  # one of FUNCTIONS
    args: tuple[Expr, ...]


Expr = Number | Col | Neg | BinOp | Call


def columns(expr: Expr) -> list[str]:
    """The column names an expression reads, in order of first appearance."""
    seen: dict[str, None] = {}
    for node in _walk(expr):
        if isinstance(node, Col):
            seen.setdefault(node.name, None)
    return list(seen)


def _walk(expr: Expr) -> Iterator[Expr]:
    yield expr
    if isinstance(expr, Neg):
        yield from _walk(expr.operand)
    elif isinstance(expr, BinOp):
        yield from _walk(expr.left)
        yield from _walk(expr.right)
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from _walk(arg)


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def evaluate(expr: Expr, row: Mapping[str, Any]) -> float | int | None:
    """The expression's value over one row (plain Python; the engine translates instead).
    Anything that is not a number (text, a missing column) counts as null."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Col):
        return _number(row.get(expr.name))
    if isinstance(expr, Neg):
        value = evaluate(expr.operand, row)
        return None if value is None else _in_64_bits(-value)
    if isinstance(expr, BinOp):
        left, right = evaluate(expr.left, row), evaluate(expr.right, row)
        if left is None or right is None:
            return None
        if expr.op == "+":
            return _in_64_bits(left + right)
        if expr.op == "-":
            return _in_64_bits(left - right)
        if expr.op == "*":
            return _in_64_bits(left * right)
        return None if right == 0 else left / right
    if expr.fn == "coalesce":
        for arg in expr.args:
            value = evaluate(arg, row)
            if value is not None:
                return value
        return None
    value = evaluate(expr.args[0], row)
    if value is None:
        return None
    if expr.fn == "abs":
        return _in_64_bits(abs(value))
    digits = int(expr.args[1].value) if len(expr.args) > 1 and isinstance(expr.args[1], Number) else 0
    return round_half_away(value, digits)


def _in_64_bits(value: float | int) -> float | int | None:
    """A whole number that 64 bits hold, or None (a float as it is)."""
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return None
    return value


def round_half_away(value: float, digits: int) -> float:
    """Rounding as people (and spreadsheets) do it: 2.5 → 3, -2.5 → -3 (Python's `round` would
    give 2, which reads as a bug on a dashboard)."""
    scale = 10.0**digits
    rounded = math.floor(abs(value) * scale + 0.5) / scale
    return math.copysign(rounded, value) if rounded else 0.0


# Tokens: (kind, text, position). Kinds: num, name, quoted, op, end.
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)
      | (?P<name>[^\W\d]\w*)
      | (?P<quoted>"[^"]*")
      | (?P<op>[-+*/(),])""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """The tokens of `text`; text that is no token ends the list as a `bad` token carrying its
    message, so that the parser reports problems in reading order."""
    found: list[tuple[str, str, int]] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            char = text[at]
            if char == '"':
                return [*found, ("bad", "this quoted column name is never closed", at)]
            return [*found, ("bad", f"{char!r} is not allowed (only + - * / ( ), numbers and columns)", at)]
        kind = match.lastgroup or ""
        if kind == "op" and text.startswith("**", at):
            return [*found, ("bad", "** is not allowed (only + - * /)", at)]
        if kind == "quoted" and match.group() == '""':
            return [*found, ("bad", "a quoted column name cannot be empty", at)]
        if kind != "space":
            found.append((kind, match.group(), at))
        at = match.end()
    found.append(("end", "", len(text)))
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int]:
        kind, text, position = token = self.tokens[self.at]
        if kind == "bad":
            raise ExprError(position, text)
        return token

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        self.at += 1
        return token

    def expect(self, text: str) -> None:
        kind, found, position = self.take()
        if found != text or kind != "op":
            raise ExprError(position, f"expected {text!r} here, found {_describe(kind, found)}")

    def expr(self) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ExprError(self.peek()[2], "this expression is nested too deeply")
        node = self.term()
        while self.peek()[:2] in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            node = BinOp(op, node, self.term())
        self.depth -= 1
        return node

    def term(self) -> Expr:
        node = self.unary()
        while self.peek()[:2] in (("op", "*"), ("op", "/")):
            op = self.take()[1]
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Expr:
        if self.peek()[:2] == ("op", "-"):
            self.take()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise ExprError(self.peek()[2], "this expression is nested too deeply")
            operand = self.unary()
            self.depth -= 1
            if isinstance(operand, Number):
                return Number(-operand.value)
            return Neg(operand)
        return self.atom()

    def atom(self) -> Expr:
        kind, text, position = self.take()
        if kind == "num":
            value = float(text)
            if not math.isfinite(value):
                raise ExprError(position, f"{text} is too large a number")
            return Number(int(value) if value.is_integer() and abs(value) < 2**53 else value)
        if kind == "quoted":
            return Col(text[1:-1])
        if kind == "name":
            if self.peek()[:2] == ("op", "("):
                return self.call(text, position)
            if text in FUNCTIONS:
                raise ExprError(position, f"{text} is a function: write {text}(...)")
            return Col(text)
        if (kind, text) == ("op", "("):
            node = self.expr()
            kind, text, position = self.peek()
            if (kind, text) != ("op", ")"):
                raise ExprError(position, f"expected ')' here, found {_describe(kind, text)}")
            self.take()
            return node
        raise ExprError(position, f"expected a number, a column or '(' here, found {_describe(kind, text)}")

    def call(self, name: str, position: int) -> Expr:
        if name not in FUNCTIONS:
            raise ExprError(position, f"unknown function {name!r} (only round, abs and coalesce)")
        self.take()  # "("
        args = [self.expr()]
        while self.peek()[:2] == ("op", ","):
            self.take()
            args.append(self.expr())
        kind, text, end = self.peek()
        if (kind, text) != ("op", ")"):
            raise ExprError(end, f"expected ',' or ')' here, found {_describe(kind, text)}")
        self.take()
        if name == "abs" and len(args) != 1:
            raise ExprError(position, "abs takes one argument")
        if name == "round":
            if len(args) > 2:
                raise ExprError(position, "round takes one or two arguments")
            if len(args) == 2:
                digits = args[1]
                if not (
                    isinstance(digits, Number)
                    and float(digits.value).is_integer()
                    and 0 <= digits.value <= 10
                ):
                    raise ExprError(position, "round's second argument is a whole number from 0 to 10")
                args[1] = Number(int(digits.value))
        return Call(name, tuple(args))


def _describe(kind: str, text: str) -> str:
    return "the end" if kind == "end" else repr(text)


def parse(text: str) -> Expr:
    """The expression `text` means, or ExprError naming the position of the first problem."""
    if not text.strip():
        raise ExprError(0, "the expression is empty")
    parser = _Parser(text)
    node = parser.expr()
    kind, found, position = parser.peek()
    if kind != "end":
        if (kind, found) == ("op", ")"):
            raise ExprError(position, "this ')' has no matching '('")
        raise ExprError(position, f"expected an operator here, found {_describe(kind, found)}")
    return node
