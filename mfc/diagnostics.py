"""Spans, diagnostics, the table of diagnostic codes, and the error types mfc reports.

Every problem mfc finds in a spec becomes a `Diagnostic`: a stable code from the table
below, a message, the span of the offending text, an optional help line and optional
notes pointing at other places. A stage reports them into a `Report`; `SpecError`
carries all of a compile's diagnostics at once.

A span may lie outside the spec's own text, or in a fragment's body expanded for one
call: its `site` says which file it is in and, call by call, how it was reached (a
macro backtrace). Rendering shows each place in its own file, with a note for each call
on the way ("in Dense, called at net.mf:7:6").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from mfc.text import one_line, plural


class Source(NamedTuple):
    """A file other than the spec whose text a span may point into (`use "layers.mf"`,
    mfc's standard library): its name, as messages show it, and its text."""

    name: str
    text: str


class Site(NamedTuple):
    """Where a span's text lies when it is not the spec's own, written once: in
    `source` (None: the spec), and inside the body of `fragment` as expanded for the
    call at `call`, a span whose own site goes on up the chain of calls."""

    source: Source | None = None
    fragment: str | None = None
    call: "Span | None" = None


class Span(NamedTuple):
    """A region of source text: 1-based line and column, end exclusive, and where that
    text is (`site`; None: in the spec itself). (A named tuple: a big spec makes
    hundreds of thousands of them.)"""

    line: int
    column: int
    end_line: int
    end_column: int
    site: Site | None = None

    @classmethod
    def point(cls, line: int, column: int, width: int = 1) -> "Span":
        return cls(line, column, line, column + max(width, 1))

    def at(self, site: Site | None) -> "Span":
        """The same region, in the text `site` says."""
        return Span(self.line, self.column, self.end_line, self.end_column, site)

    @property
    def source(self) -> Source | None:
        """The file the text is in, when it is not the spec."""
        return self.site.source if self.site is not None else None

    def calls(self) -> list[tuple[str, "Span"]]:
        """(fragment, span of the call) for each call that led here, innermost first."""
        chain, site = [], self.site
        while site is not None and site.call is not None:
            chain.append((site.fragment, site.call))
            site = site.call.site
        return chain

    def anchor(self) -> "Span | None":
        """The place in the spec that led here: the outermost call, or the span itself;
        None for text of another file that no call of the spec reached."""
        calls = self.calls()
        outermost = calls[-1][1] if calls else self
        return outermost if outermost.source is None else None

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}"
        return f"{self.source.name}:{where}" if self.source is not None else where


# ---------------------------------------------------------------- the codes


class Code(str):
    """A diagnostic code ("E200"), with its severity and a short title. A `str`, so that
    it prints, compares and serialises as the code itself."""

    severity: str
    title: str

    def __new__(cls, code: str, title: str) -> "Code":
        self = super().__new__(cls, code)
        self.severity = "warning" if code.startswith("W") else "error"
        self.title = title
        return self


# Each code once: docs/errors.md explains them (tests/test_diagnostics.py holds the two
# together). Adding a diagnostic is one row here plus the check that reports it.
E001 = Code("E001", "syntax error")
E002 = Code("E002", "a bracket is never closed")
E003 = Code("E003", "unterminated string")
E101 = Code("E101", "undefined name")
E102 = Code("E102", "unknown op")
E103 = Code("E103", "a name defined twice")
E104 = Code("E104", "unequal counts of names and values")
E105 = Code("E105", "wrong number of arguments")
E106 = Code("E106", "unknown keyword")
E107 = Code("E107", "bad keyword value")
E108 = Code("E108", "'_' used as a value")
E109 = Code("E109", "a keyword given twice")
E110 = Code("E110", "a dim that is not a whole number")
E111 = Code("E111", "a number too large to represent")
E113 = Code("E113", "a fragment's argument used as what it is not")
E114 = Code("E114", "a repeat that cannot chain")
E115 = Code("E115", "a call of several values used as one")
E120 = Code("E120", "a cycle")
E121 = Code("E121", "a cycle of uses")
E130 = Code("E130", "a fragment that calls itself")
E131 = Code("E131", "a fragment without one return")
E140 = Code("E140", "a used file or library that cannot be read")
E141 = Code("E141", "a used file that defines more than fragments")
E200 = Code("E200", "shape mismatch")
E201 = Code("E201", "wrong number of dims, or an axis out of range")
E202 = Code("E202", "a dim nothing determines")
E203 = Code("E203", "a zero or negative dim")
E204 = Code("E204", "a value too large to allocate")
E300 = Code("E300", "no loss")
E301 = Code("E301", "ambiguous loss")
E302 = Code("E302", "a loss of more than one element")
E400 = Code("E400", "unknown setting")
E401 = Code("E401", "bad setting value")
E402 = Code("E402", "a setting given twice")
E403 = Code("E403", "more than one train block")
E404 = Code("E404", "unusable data")
E405 = Code("E405", "a setting names the wrong node")
E407 = Code("E407", "an Input nothing feeds")
E408 = Code("E408", "a setting that needs another")
E501 = Code("E501", "an op the export format cannot express")
W001 = Code("W001", "a param that never learns")
W002 = Code("W002", "an unused input")
W003 = Code("W003", "an unused result")
W004 = Code("W004", "a data file not found")
W005 = Code("W005", "Softmax before CrossEntropy")
W006 = Code("W006", "two batch dims broadcast together")
W007 = Code("W007", "a fragment never called")
W008 = Code("W008", "no loss yet")

CODES: dict[str, Code] = {c: c for c in (value for value in list(globals().values())
                                        if isinstance(value, Code))}


# ---------------------------------------------------------------- diagnostics


@dataclass(frozen=True)
class Note:
    """Another place a diagnostic points at. `call`: for a note of the call chain (`in
    Dense, called at net.mf:7:6`), the fragment that call expanded."""

    message: str
    span: Span | None = None
    call: str | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: Code
    message: str
    span: Span | None
    help: str | None = None
    notes: tuple[Note, ...] = ()

    def __post_init__(self):
        if self.code not in CODES:  # a bug in mfc, not in the spec
            raise ValueError(f"{self.code!r} is not a diagnostic code of mfc.diagnostics")
        object.__setattr__(self, "code", CODES[self.code])
        if self.span is not None and self.span.calls() and not any(n.call for n in self.notes):
            chain = tuple(Note(f"in {fragment}, called at {call}", call, call=fragment)
                          for fragment, call in self.span.calls())
            object.__setattr__(self, "notes", chain + tuple(self.notes))  # innermost first

    @property
    def severity(self) -> str:
        return self.code.severity

    @property
    def line(self) -> int:
        return self.span.line if self.span else 0

    @property
    def column(self) -> int:
        return self.span.column if self.span else 0

    def to_dict(self, filename: str) -> dict:
        """JSON-able, each place with its file (`filename` for the spec's own text); `calls`
        lists the fragment calls that led to the span, innermost first."""
        return {
            "file": _file(self.span, filename),
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            **_place(self.span),
            "help": self.help,
            "notes": [{"message": _note_message(n, filename), "file": _file(n.span, filename),
                       **_place(n.span)} for n in self.notes],
            "calls": [{"fragment": fragment, "file": _file(call, filename), **_place(call)}
                      for fragment, call in (self.span.calls() if self.span else ())],
        }


def _note_message(note: Note, filename: str) -> str:
    if note.call is None:
        return note.message
    return f"in {note.call}, called at {_file(note.span, filename)}:{note.span}"


def _file(span: Span | None, filename: str) -> str:
    return span.source.name if span is not None and span.source is not None else filename


def _place(span: Span | None) -> dict:
    if span is None:
        return {"line": 0, "column": 0, "end_line": 0, "end_column": 0}
    return {"line": span.line, "column": span.column, "end_line": span.end_line,
            "end_column": span.end_column}


class Report:
    """The diagnostics one compile finds: every stage reports into the same one, as
    `report(E200, message, span, help=..., notes=...)`. `errors` counts the errors so
    far (a stage can tell whether a check of its own failed)."""

    def __init__(self):
        self.diagnostics: list[Diagnostic] = []
        self.errors = 0
        self._seen: dict[tuple, int] = {}  # a diagnostic at one place → its index
        self._again: dict[int, set] = {}  # that index → the other calls it was found in

    def __call__(self, code: Code, message: str, span: Span | None,
                 help: str | None = None, notes=()) -> None:
        self.add(Diagnostic(code, message, span, help, tuple(notes)))

    def add(self, diagnostic: Diagnostic) -> None:
        """Keep `diagnostic`, unless it was found before: the same message at the same
        place, or, in a fragment's body expanded by several calls, the same code at the
        same place of the body (kept once, with the first call's chain; the others are
        counted)."""
        self.errors += diagnostic.severity == "error"
        span = diagnostic.span
        if span is None:
            key = (diagnostic.code, diagnostic.message)
        elif span.site is not None and span.site.call is not None:
            key = (diagnostic.code, span[:4], span.source)
        else:
            key = (diagnostic.code, diagnostic.message, span[:4], span.source)
        if key in self._seen:
            self._again.setdefault(self._seen[key], set()).add(span)
            return
        self._seen[key] = len(self.diagnostics)
        self.diagnostics.append(diagnostic)

    def sorted(self) -> list[Diagnostic]:
        """By position in the spec (of the outermost call, for a place in a fragment's
        body); placeless ones (from a flag, say) and those in other files that no call
        reached first. One found again through other calls says how many."""
        kept = [self._counted(i, d) for i, d in enumerate(self.diagnostics)]
        return sorted(kept, key=_position)

    def _counted(self, index: int, diagnostic: Diagnostic) -> Diagnostic:
        again = self._again.get(index, set()) - {diagnostic.span}
        if not again or diagnostic.span is None or not diagnostic.span.calls():
            return diagnostic
        fragment = diagnostic.span.calls()[0][0]
        note = Note(f"the same in {plural(len(again), 'more call')} of {fragment}")
        return replace(diagnostic, notes=(*diagnostic.notes, note))


def _position(diagnostic: Diagnostic) -> tuple:
    span = diagnostic.span
    anchor = span.anchor() if span is not None else None
    if anchor is None:
        return (0, 0, diagnostic.line, diagnostic.column)
    return (anchor.line, anchor.column, span.line, span.column)


class MfcError(Exception):
    """A problem with what the user gave mfc (a spec, a setting, a file), said to them
    as is. `exit_code` is what the command line ends with: 1 for a spec or a run that
    failed, 2 for usage and I/O. Any other exception escaping mfc is a bug."""

    exit_code = 2


class SpecError(MfcError):
    """A spec has errors. `.diagnostics` holds all of them (warnings included)."""

    exit_code = 1

    def __init__(self, diagnostics, source: str = "", filename: str = "<string>"):
        self.diagnostics = list(diagnostics)
        self.source = source
        self.filename = filename
        super().__init__(render_all(self.diagnostics, source, filename))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class DataError(MfcError):
    """Training data that cannot be read or used: one line."""


class SettingError(MfcError, ValueError):
    """A train setting given on the command line or through the API that is not valid
    (ill-typed, or impossible with the data): one line. A ValueError too, as Python
    callers expect of a bad argument."""


def did_you_mean(word: str, candidates) -> str | None:
    """The help line for a near miss, or None when nothing is close: the closest by
    difflib (and a runner-up nearly as close: `epoks` is 'eps' or 'epochs'), else a
    different case, else every name one edit away (`W3`: W1 or W2)."""
    candidates = sorted(set(candidates))
    close = _closest(word, candidates)
    close = close or [c for c in candidates if c.lower() == word.lower()]
    close = close or [c for c in candidates if _one_edit_apart(word, c)][:3]
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def _closest(word: str, candidates: list[str]) -> list[str]:
    import difflib  # only once a name is wrong

    close = difflib.get_close_matches(word, candidates, n=2, cutoff=0.6)
    ratios = [difflib.SequenceMatcher(None, word, c).ratio() for c in close]
    return close[:2] if len(close) == 2 and ratios[1] >= ratios[0] - 0.05 else close[:1]


def _one_edit_apart(a: str, b: str) -> bool:
    """One character replaced, inserted or deleted."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long = sorted((a, b), key=len)
    return len(long) - len(short) == 1 and any(
        long[:i] + long[i + 1:] == short for i in range(len(long)))


def render(diag: Diagnostic, source: str, filename: str) -> str:
    """`file:line:col: error[CODE]: message`, the source line and a caret; the notes: first
    one for each fragment call that led there (innermost first), then the others; help.
    Each place is shown from its own file: `source` is the spec's text, `filename` its
    name."""
    files = _Files(source, filename)
    where = files.where(diag.span) if diag.span else filename  # from a flag, say
    out = [one_line(f"{where}: {diag.severity}[{diag.code}]: {diag.message}")]
    out += files.excerpt(diag.span)
    for note in diag.notes:
        if note.call is not None:  # the call chain, the spec's own file named too
            out.append(one_line(f"note: in {note.call}, called at {files.where(note.span)}"))
        else:
            where = f"{files.where(note.span)}: " if note.span else ""
            out.append(one_line(f"note: {where}{note.message}"))
        out += files.excerpt(note.span)
    if diag.help:
        out.append(one_line(f"help: {diag.help}"))
    return "\n".join(out)


def render_all(diagnostics, source: str, filename: str) -> str:
    return "\n\n".join(render(d, source, filename) for d in diagnostics)


class _Files:
    """The lines of the spec and of each other file a diagnostic points into."""

    def __init__(self, source: str, filename: str):
        self.filename = filename
        self.lines = {None: source.splitlines()}

    def where(self, span: Span) -> str:
        name = span.source.name if span.source is not None else self.filename
        return f"{name}:{span.line}:{span.column}"

    def excerpt(self, span: Span | None) -> list[str]:
        if span is None:
            return []
        source = span.source
        if source not in self.lines:
            self.lines[source] = source.text.splitlines()
        return _excerpt(span, self.lines[source])


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
