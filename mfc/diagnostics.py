"""Spans, diagnostics and the one error type for problems in a spec.

Every problem mfc finds in a spec becomes a `Diagnostic`: a stable code, a message, the
span of the offending text, an optional help line and optional notes pointing at other
places. `SpecError` carries all of a compile's diagnostics at once.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import NamedTuple

from mfc.text import one_line


class Span(NamedTuple):
    """A region of source text: 1-based line and column, end exclusive. (A named tuple:
    a big spec makes hundreds of thousands of them.)"""

    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def point(cls, line: int, column: int, width: int = 1) -> "Span":
        return cls(line, column, line, column + max(width, 1))

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


@dataclass(frozen=True)
class Note:
    message: str
    span: Span | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None
    help: str | None = None
    notes: tuple[Note, ...] = ()

    @property
    def severity(self) -> str:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def line(self) -> int:
        return self.span.line if self.span else 0

    @property
    def column(self) -> int:
        return self.span.column if self.span else 0

    def to_dict(self, filename: str) -> dict:
        return {
            "file": filename,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "end_line": self.span.end_line if self.span else 0,
            "end_column": self.span.end_column if self.span else 0,
            "help": self.help,
            "notes": [
                {"message": n.message, "line": n.span.line if n.span else 0,
                 "column": n.span.column if n.span else 0}
                for n in self.notes
            ],
        }


class SpecError(Exception):
    """A spec has errors. `.diagnostics` holds all of them (warnings included)."""

    def __init__(self, diagnostics, source: str = "", filename: str = "<string>"):
        self.diagnostics = list(diagnostics)
        self.source = source
        self.filename = filename
        super().__init__(render_all(self.diagnostics, source, filename))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class DataError(Exception):
    """Training data that cannot be read or used: one line, said to the user as is."""


def did_you_mean(word: str, candidates) -> str | None:
    """The help line for a near miss, or None when nothing is close: the closest by
    difflib, else a different case, else every name one edit away (`W3`: W1 or W2)."""
    candidates = sorted(set(candidates))
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    close = close or [c for c in candidates if c.lower() == word.lower()]
    close = close or [c for c in candidates if _one_edit_apart(word, c)][:3]
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def _one_edit_apart(a: str, b: str) -> bool:
    """One character replaced, inserted or deleted."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long = sorted((a, b), key=len)
    return len(long) - len(short) == 1 and any(
        long[:i] + long[i + 1:] == short for i in range(len(long)))


def render(diag: Diagnostic, source: str, filename: str) -> str:
    """`file:line:col: error[CODE]: message`, the source line, a caret, help and notes."""
    lines = source.splitlines()
    where = f"{filename}:{diag.span}" if diag.span else filename  # from a flag, say
    out = [one_line(f"{where}: {diag.severity}[{diag.code}]: {diag.message}")]
    out += _excerpt(diag.span, lines)
    for note in diag.notes:
        where = f"{filename}:{note.span}: " if note.span else ""
        out.append(one_line(f"note: {where}{note.message}"))
        out += _excerpt(note.span, lines)
    if diag.help:
        out.append(one_line(f"help: {diag.help}"))
    return "\n".join(out)


def render_all(diagnostics, source: str, filename: str) -> str:
    return "\n\n".join(render(d, source, filename) for d in diagnostics)


_CONTEXT, _SHOWN = 40, 160  # columns shown before the caret, and in all


def _excerpt(span: Span | None, lines: list[str]) -> list[str]:
    if span is None or not 1 <= span.line <= len(lines):
        return []
    text = lines[span.line - 1].expandtabs(1)
    gutter = f"{span.line:>4} | "
    end = span.end_column if span.end_line == span.line else len(text) + 1
    width = max(1, min(end, len(text) + 1) - span.column)
    start = max(0, span.column - 1 - _CONTEXT)  # a long line is shown around the caret
    shown = ("..." if start else "") + text[start:start + _SHOWN]
    shown += "..." if start + _SHOWN < len(text) else ""
    indent = span.column - 1 - start + (3 if start else 0)
    caret = " " * (len(gutter) - 2) + "| " + " " * indent + "^" * min(width, _SHOWN)
    return [gutter + shown, caret]
