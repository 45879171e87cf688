"""`gansweep report --filter`: a small grammar of its own, never Python.

Filters get pasted from shared notes, so they must not run code: pandas'
``DataFrame.query`` evaluates Python (method calls, attributes; ``model.to_csv(...)``
writes a file). The grammar here is column, comparison, literal, joined by and/or/not:

    expr    := term (("or" | "|") term)*
    term    := factor (("and" | "&") factor)*
    factor  := "not" factor | "(" expr ")" | operand OP operand
    operand := column | `column with.dots` | number | 'text' | "text" | true | false
    OP      := == != < <= > >=

Each comparison needs a column on at least one side. A missing value compares false,
as in pandas.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any, Callable

import pandas as pd

from gansweep.errors import ReportError

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
    | (?P<text>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<quoted>`[^`]+`)
    | (?P<op>==|!=|<=|>=|<|>|\(|\)|&|\|)
    | (?P<name>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_CONSTANTS = {"true": True, "false": False}
_AND, _OR = ("and", "&"), ("or", "|")


class _Column(str):
    """A token that names a column."""


def _tokens(expr: str) -> list[Any]:
    """Column names, literals and operators; ReportError at the first character that is none."""
    out: list[Any] = []
    at = 0
    while expr[at:].strip():
        match = _TOKEN.match(expr, at)
        if match is None:
            raise ReportError(f"bad --filter expression {expr!r}: cannot read {expr[at:].strip()[:20]!r}")
        at = match.end()
        kind, text = match.lastgroup, match.group(match.lastgroup)
        if kind == "number":
            out.append(float(text) if any(c in text for c in ".eE") else int(text))
        elif kind == "text":
            out.append(ast.literal_eval(text))  # a string literal only: the regex admits nothing else
        elif kind == "quoted":
            out.append(_Column(text[1:-1]))
        elif kind == "name" and text.lower() in _CONSTANTS:
            out.append(_CONSTANTS[text.lower()])
        elif kind == "name" and text in ("and", "or", "not"):
            out.append(("op", text))
        elif kind == "name":
            out.append(_Column(text))
        else:
            out.append(("op", text))
    return out


class _Parser:
    """Recursive descent over the tokens, evaluating to a boolean mask of the runs."""

    def __init__(self, runs: pd.DataFrame, expr: str):
        self.runs, self.expr, self.tokens, self.at = runs, expr, _tokens(expr), 0

    def fail(self, why: str) -> ReportError:
        return ReportError(f"bad --filter expression {self.expr!r}: {why}")

    def peek_op(self, *ops: str) -> bool:
        token = self.tokens[self.at] if self.at < len(self.tokens) else None
        return isinstance(token, tuple) and token[1] in ops

    def next(self) -> Any:
        if self.at >= len(self.tokens):
            raise self.fail("it ends too soon")
        self.at += 1
        return self.tokens[self.at - 1]

    def parse(self) -> pd.Series:
        mask = self.expr_()
        if self.at < len(self.tokens):
            raise self.fail(f"unexpected {self.describe(self.tokens[self.at])}")
        return mask

    def expr_(self) -> pd.Series:
        mask = self.term()
        while self.peek_op(*_OR):
            self.at += 1
            mask = mask | self.term()
        return mask

    def term(self) -> pd.Series:
        mask = self.factor()
        while self.peek_op(*_AND):
            self.at += 1
            mask = mask & self.factor()
        return mask

    def factor(self) -> pd.Series:
        if self.peek_op("not"):
            self.at += 1
            return ~self.factor()
        if self.peek_op("("):
            self.at += 1
            mask = self.expr_()
            if not self.peek_op(")"):
                raise self.fail("a '(' is not closed")
            self.at += 1
            return mask
        left, op, right = self.next(), self.next(), self.next()
        if not (isinstance(op, tuple) and op[1] in _COMPARE):
            raise self.fail(f"expected a comparison (== != < <= > >=) after {self.describe(left)}, got {self.describe(op)}")
        if not (isinstance(left, _Column) or isinstance(right, _Column)):
            raise self.fail(f"{self.describe(left)} {op[1]} {self.describe(right)} compares no column")
        try:
            result = _COMPARE[op[1]](self.value(left), self.value(right))
        except TypeError as exc:
            raise self.fail(f"{self.describe(left)} {op[1]} {self.describe(right)}: {str(exc).splitlines()[0]}") from None
        return result if isinstance(result, pd.Series) else pd.Series(bool(result), index=self.runs.index)

    def value(self, token: Any) -> Any:
        if isinstance(token, _Column):
            if token not in self.runs.columns:
                raise self.fail(f"no column {token!r}")
            return self.runs[token]
        if isinstance(token, tuple):
            raise self.fail(f"expected a column or a value, got {token[1]!r}")
        return token

    @staticmethod
    def describe(token: Any) -> str:
        return repr(token[1]) if isinstance(token, tuple) else (f"column {str(token)!r}" if isinstance(token, _Column) else repr(token))


def filter_mask(runs: pd.DataFrame, expr: str) -> pd.Series:
    """The boolean mask of the runs matching a --filter expression; ReportError (one line) for a bad one."""
    return _Parser(runs, expr).parse().fillna(False).astype(bool)
