"""A tiny, safe expression language for objectives, compiled to Polars expressions.

Values (``"-(amount + 15)"``) allow column names, numbers, ``+ - * /`` and
parentheses. Predicates (``"amount >= 1000 and channel == 'web'"``) add string
literals, the comparisons ``== != < <= > >=``, and ``and``, ``or``, ``not``.
A column whose name is not a plain identifier is written in backticks:
```account age```. Nothing else parses: no calls, no attributes, no indexing,
and the text is never handed to ``eval``.

Grammar (recursive descent, one function per rule)::

    disjunction := conjunction ("or" conjunction)*
    conjunction := negation ("and" negation)*
    negation    := "not" negation | comparison
    comparison  := sum (CMP sum)?
    sum         := product (("+" | "-") product)*
    product     := unary (("*" | "/") unary)*
    unary       := ("-" | "+") unary | atom
    atom        := NUMBER | STRING | NAME | "(" disjunction ")"
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from shipyard.errors import EvaluationError, ObjectivesError

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | `(?P<quoted>[^`]+)`
    | '(?P<single>[^']*)' | "(?P<double>[^"]*)"
    | (?P<op>==|!=|<=|>=|<|>|[-+*/()])
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}
_HINTS = {
    ".": "attribute access is not allowed",
    "[": "indexing is not allowed",
    "=": "use == to compare",
    "&": "use `and`",
    "|": "use `or`",
    "!": "use `not` or !=",
}
_ALLOWED = "column names, numbers, + - * / and parentheses"
_ALLOWED_PREDICATE = f"{_ALLOWED}, 'strings', == != < <= > >=, and, or, not"


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, the Polars expression, and the columns it reads."""

    text: str
    expr: pl.Expr
    columns: frozenset[str]


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "string", "op", "end"
    text: str
    position: int


@dataclass(frozen=True)
class _Node:
    expr: pl.Expr
    kind: str  # "number", "string", "bool", or "column" (type known only from the data)


def parse_value(text: str) -> Expression:
    """Parse a numeric expression over columns, e.g. ``"-(amount + 15)"``.

    Raises:
        ObjectivesError: naming the position and what is not allowed there.
    """
    return _Parser(text, _ALLOWED).parse({"number", "column"}, "a number")


def parse_predicate(text: str) -> Expression:
    """Parse a condition on rows, e.g. ``"amount >= 1000 and channel == 'web'"``.

    Raises:
        ObjectivesError: naming the position and what is not allowed there.
    """
    return _Parser(text, _ALLOWED_PREDICATE).parse({"bool", "column"}, "a condition")


def _tokenize(text: str, allowed: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None:
            at = len(text) - len(text[position:].lstrip())
            char = text[at]
            hint = _HINTS.get(char, f"only {allowed} are allowed")
            raise ObjectivesError(
                f"cannot parse {text!r}: unexpected {char!r} at position {at} ({hint}). "
                f"Write it with {allowed}."
            )
        kind = match.lastgroup or "op"
        value = match.group(kind)
        kind = {"quoted": "name", "single": "string", "double": "string"}.get(kind, kind)
        if kind == "name" and value in _KEYWORDS and match.group("quoted") is None:
            kind = "op"
        tokens.append(_Token(kind, value, match.end() - len(match.group(0).lstrip())))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, allowed: str) -> None:
        self.text = text
        self.allowed = allowed
        self.tokens = _tokenize(text, allowed)
        self.index = 0
        self.columns: set[str] = set()

    def parse(self, kinds: set[str], wanted: str) -> Expression:
        node = self.disjunction()
        if self.peek.kind != "end":
            raise self.error(f"expected an operator or the end, got {self.peek.text!r}")
        if node.kind not in kinds:
            raise ObjectivesError(
                f"{self.text!r} is {_DESCRIBE[node.kind]}, but {wanted} is expected here."
            )
        return Expression(self.text, node.expr, frozenset(self.columns))

    @property
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self, *ops: str) -> str | None:
        token = self.peek
        if token.kind == "op" and token.text in ops:
            self.index += 1
            return token.text
        return None

    def error(self, problem: str) -> ObjectivesError:
        return ObjectivesError(
            f"cannot parse {self.text!r} at position {self.peek.position}: {problem}. "
            f"Only {self.allowed} are allowed."
        )

    def disjunction(self) -> _Node:
        node = self.conjunction()
        while self.take("or"):
            node = _logic(node, self.conjunction(), "or", self.text)
        return node

    def conjunction(self) -> _Node:
        node = self.negation()
        while self.take("and"):
            node = _logic(node, self.negation(), "and", self.text)
        return node

    def negation(self) -> _Node:
        if self.take("not"):
            operand = self.negation()
            _expect(operand, {"bool", "column"}, "not", self.text)
            return _Node(~operand.expr, "bool")
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.sum()
        op = self.take(*_COMPARE)
        if op is None:
            return left
        right = self.sum()
        if "bool" in (left.kind, right.kind) or {left.kind, right.kind} == {"number", "string"}:
            raise ObjectivesError(
                f"cannot parse {self.text!r}: {op} compares {_DESCRIBE[left.kind]} with "
                f"{_DESCRIBE[right.kind]}. Compare a column with a number or a 'string'."
            )
        if self.peek.text in _COMPARE:
            raise self.error("comparisons cannot be chained; join them with `and`")
        return _Node(_OPERATORS[op](left.expr, right.expr), "bool")

    def sum(self) -> _Node:
        node = self.product()
        while op := self.take("+", "-"):
            node = _arithmetic(node, self.product(), op, self.text)
        return node

    def product(self) -> _Node:
        node = self.unary()
        while op := self.take("*", "/"):
            node = _arithmetic(node, self.unary(), op, self.text)
        return node

    def unary(self) -> _Node:
        if op := self.take("-", "+"):
            operand = self.unary()
            _expect(operand, {"number", "column"}, op, self.text)
            return _Node(-operand.expr if op == "-" else operand.expr, "number")
        return self.atom()

    def atom(self) -> _Node:
        token = self.peek
        self.index += 1
        if token.kind == "number":
            return _Node(pl.lit(_number(token.text)), "number")
        if token.kind == "string":
            return _Node(pl.lit(token.text), "string")
        if token.kind == "name":
            if self.peek.text == "(":
                self.index -= 1
                raise self.error(f"{token.text}(...) is a function call, which is not allowed")
            if token.text == "*" or (token.text.startswith("^") and token.text.endswith("$")):
                self.index -= 1
                raise self.error(f"`{token.text}` would select many columns; name one column")
            self.columns.add(token.text)
            return _Node(pl.col(token.text), "column")
        if token.text == "(":
            node = self.disjunction()
            if not self.take(")"):
                raise self.error(f"expected ')', got {self.peek.text or 'the end'!r}")
            return node
        self.index -= 1
        raise self.error(f"expected a column, a number or '(', got {token.text or 'the end'!r}")


_DESCRIBE = {
    "number": "a number",
    "string": "a string",
    "bool": "a condition",
    "column": "a column",
}
_OPERATORS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def _number(text: str) -> int | float:
    return int(text) if text.isdigit() else float(text)


def _expect(node: _Node, kinds: set[str], op: str, text: str) -> None:
    if node.kind not in kinds:
        wanted = " or ".join(sorted(_DESCRIBE[k] for k in kinds))
        raise ObjectivesError(
            f"cannot parse {text!r}: {op!r} needs {wanted}, got {_DESCRIBE[node.kind]}."
        )


def _logic(left: _Node, right: _Node, op: str, text: str) -> _Node:
    for node in (left, right):
        _expect(node, {"bool", "column"}, op, text)
    return _Node(left.expr & right.expr if op == "and" else left.expr | right.expr, "bool")


def _arithmetic(left: _Node, right: _Node, op: str, text: str) -> _Node:
    for node in (left, right):
        _expect(node, {"number", "column"}, op, text)
    return _Node(_OPERATORS[op](left.expr, right.expr), "number")


def evaluate(expression: Expression, frame: pl.DataFrame, label: str) -> pl.Series:
    """Compute ``expression`` on every row of ``frame`` (a constant is repeated).

    Raises:
        EvaluationError: a column it reads is missing, or Polars cannot compute it.
    """
    missing = sorted(expression.columns - set(frame.columns))
    if missing:
        raise EvaluationError(
            f"{label} = {expression.text!r} reads {_names(missing)}, which the evaluation data "
            f"does not have. Columns present: {_names(frame.columns)}. Add the column to the "
            "evaluation data, or change the expression in [objectives]."
        )
    try:
        series = frame.select(expression.expr.alias(label)).to_series()
    except pl.exceptions.PolarsError as exc:
        raise EvaluationError(
            f"{label} = {expression.text!r} cannot be computed on the evaluation data: {exc}. "
            "Check the types of the columns it reads."
        ) from exc
    if series.len() != frame.height:
        series = pl.repeat(series[0], frame.height, eager=True, dtype=series.dtype).alias(label)
    return series


def _names(columns: list[str]) -> str:
    return ", ".join(map(repr, columns)) or "none"
