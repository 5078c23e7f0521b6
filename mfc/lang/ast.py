"""The syntax tree of a .mf spec: small frozen dataclasses, each with its source span.

Infix expressions are already op calls here (`a + b` is `Call("Add", (a, b))`, marked
`infix`), so every later stage sees one kind of operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from mfc.diagnostics import Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Literal:
    """A keyword or setting value: `kind` is 'number', 'string', 'word' (a bare word),
    or 'list' (a setting's several values, `output = h, scores`: a tuple of Literals)."""

    value: int | float | str | tuple
    kind: str
    span: Span


@dataclass(frozen=True)
class Keyword:
    name: str
    value: Literal
    span: Span


@dataclass(frozen=True)
class Call:
    op: str
    args: tuple["Expr", ...]
    keywords: tuple[Keyword, ...]
    span: Span
    op_span: Span
    infix: bool = False


Expr = Union[Name, Number, Call]


@dataclass(frozen=True)
class Assign:
    """`A, B = e1, e2`: targets and values pair up by position."""

    targets: tuple[Name, ...]
    values: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Setting:
    key: str
    value: Literal
    span: Span
    key_span: Span


@dataclass(frozen=True)
class TrainBlock:
    settings: tuple[Setting, ...]
    span: Span


@dataclass(frozen=True)
class Module:
    assigns: tuple[Assign, ...]
    trains: tuple[TrainBlock, ...]
