"""The syntax tree of a .mf spec: small frozen dataclasses, each with its source span.

Infix expressions are already op calls here (`a + b` is `Call("Add", (a, b))`, marked
`infix`), so every later stage sees one kind of operation. A call of a fragment, and
`repeat(...)`, are calls too: which name is an op and which a fragment is for the graph
builder to say, once every file is read.
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
class Return:
    """`return h` or `return h, c`: what a fragment gives its caller."""

    values: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Parameter:
    """A fragment's parameter: `n`, or `act = Sigmoid` with its default."""

    name: str
    default: Literal | None
    span: Span


@dataclass(frozen=True)
class Fragment:
    """`fragment Dense(x, n, act = Sigmoid) { ... return ... }`: a reusable block of
    definitions; a well-formed one has exactly one `return`."""

    name: str
    params: tuple[Parameter, ...]
    body: tuple[Assign, ...]
    returns: tuple[Return, ...]
    span: Span  # from `fragment` to the closing brace
    name_span: Span


@dataclass(frozen=True)
class Use:
    """`use "layers.mf"` (a path, relative to the spec) or `use std` (a library
    shipped with mfc): `kind` is 'string' or 'word', as the target is written."""

    target: str
    kind: str
    span: Span


@dataclass(frozen=True)
class Module:
    assigns: tuple[Assign, ...]
    trains: tuple[TrainBlock, ...]
    fragments: tuple[Fragment, ...] = ()
    uses: tuple[Use, ...] = ()
    returns: tuple[Return, ...] = ()  # at the top level: each an error
