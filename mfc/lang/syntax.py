"""Stage 1: text → AST. The lark grammar (grammar/mfc.lark), LALR, with the AST built
by callbacks during the parse (no parse tree, no recursion).

lark's exceptions are translated here, at one boundary, into `SpecError` with a span and
an "expected ..." hint in the user's words.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from mfc.lang import ast
from mfc.diagnostics import Diagnostic, Span, SpecError

# Brackets as the error report sees them: a `{` left open is as much a mistake as a `(`.
_OPEN, _CLOSE = {"(": ")", "[": "]", "{": "}"}, {")": "(", "]": "[", "}": "{"}
_ESCAPES = {"n": "\n", "t": "\t"}
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "AT", "POW"}
_WORDS = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string",
          "_NL": "end of line", "$END": "end of file"}


def parse(text: str) -> ast.Module:
    """Parse spec text into an `ast.Module`; raise `SpecError` (E001–E003) on bad syntax."""
    try:
        return _parser().parse(text)
    except UnexpectedInput as err:
        raise SpecError([_syntax_diagnostic(err, text)], text) from None


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_grammar_path().read_text(encoding="utf-8"), parser="lalr",
                postlex=_ContinueInBrackets(), transformer=_ToAst(),
                maybe_placeholders=False)


def _grammar_path() -> Path:
    package = Path(__file__).resolve().parent.parent  # mfc/, installed or in the repository
    for candidate in (package / "grammar" / "mfc.lark", package.parent / "grammar" / "mfc.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("mfc's grammar file mfc.lark is missing from the installation")


class _ContinueInBrackets:
    """Drop newlines inside ( ) and [ ]: a bracket left open continues the statement."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(depth - 1, 0)
            elif token.type == "_NL" and depth:
                continue
            yield token


def _token_span(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column)


def _literal(value) -> ast.Literal:
    if isinstance(value, ast.Number):
        return ast.Literal(value.value, "number", value.span)
    return value


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _number(token: Token) -> int | float:
    text = str(token)
    return int(text) if text.isdigit() else float(text)


def _span(first, last) -> Span:
    """From the start of `first` to the end of `last` (tokens or AST nodes)."""
    a = _token_span(first) if isinstance(first, Token) else first.span
    b = _token_span(last) if isinstance(last, Token) else last.span
    return Span(a.line, a.column, b.end_line, b.end_column)


class _ToAst(Transformer):
    """Builds AST nodes only, during the parse (no tree is built first); every semantic
    check happens in later stages. Spans come from the first and last child."""

    def start(self, items):
        assigns = tuple(i for i in items if isinstance(i, ast.Assign))
        trains = tuple(i for i in items if isinstance(i, ast.TrainBlock))
        return ast.Module(assigns, trains)

    def assign(self, items):
        targets, values = items
        return ast.Assign(targets, values, _span(targets[0], values[-1]))

    def targets(self, names):
        return tuple(ast.Name(str(n), _token_span(n)) for n in names)

    def values(self, exprs):
        return tuple(exprs)

    def train(self, items):
        return ast.TrainBlock(tuple(items[1:]), _token_span(items[0]))

    def setting(self, items):
        key, *values = items
        value = _literal(values[0]) if len(values) == 1 else \
            ast.Literal(tuple(_literal(v) for v in values), "list", _span(values[0], values[-1]))
        return ast.Setting(str(key), value, _span(key, values[-1]), _token_span(key))

    def number(self, items):
        return ast.Number(_number(items[0]), _token_span(items[0]))

    def name(self, items):
        return ast.Name(str(items[0]), _token_span(items[0]))

    def negative(self, items):
        return ast.Number(-_number(items[1]), _span(items[0], items[1]))

    def string(self, items):
        text = str(items[0])[1:-1]
        return ast.Literal(_unescape(text), "string", _token_span(items[0]))

    def word(self, items):
        return ast.Literal(str(items[0]), "word", _token_span(items[0]))

    def keyword(self, items):
        name, value = items
        return ast.Keyword(str(name), _literal(value), _span(name, value))

    def call(self, items):
        op, args = items[0], items[1:-1]
        keywords = tuple(a for a in args if type(a) is ast.Keyword)
        positional = tuple(a for a in args if type(a) is not ast.Keyword) if keywords else tuple(args)
        return ast.Call(str(op), positional, keywords, _span(op, items[-1]), _token_span(op))

    def neg(self, items):
        minus, operand = items
        return ast.Call("Neg", (operand,), (), _span(minus, operand), _token_span(minus), True)

    def _infix(self, op, left, right):
        span = _span(left, right)
        return ast.Call(op, (left, right), (), span, span, True)

    def add(self, items):
        return self._infix("Add", *items)

    def sub(self, items):
        return self._infix("Sub", *items)

    def mul(self, items):
        return self._infix("Mul", *items)

    def div(self, items):
        return self._infix("Div", *items)

    def matmul(self, items):
        return self._infix("MatMul", *items)

    def pow(self, items):
        return self._infix("Pow", items[0], items[2])


def _syntax_diagnostic(err: UnexpectedInput, text: str) -> Diagnostic:
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(err, text)
    token = err.token if isinstance(err, UnexpectedToken) else None
    where = _token_position(token, text)
    unclosed = _unclosed_bracket(text, where)
    expected = _expected_words(err)
    found = _describe_token(token)
    if unclosed is not None and (unclosed[0] < where[0] or found == "end of file"):
        line, col, char = unclosed
        return Diagnostic("E002", f"'{char}' is never closed", Span.point(line, col),
                          help=f"expected {expected} before {found} at {where[0]}:{where[1]}")
    reserved = "'train' starts the train block; it cannot be a name" if expected == "'{'" else None
    return Diagnostic("E001", f"expected {expected}, found {found}",
                      Span.point(where[0], where[1], len(str(token or "")) or 1), help=reserved)


def _bad_character(err: UnexpectedCharacters, text: str) -> Diagnostic:
    span = Span.point(err.line, err.column)
    if err.char == '"':
        return Diagnostic("E003", "unterminated string", span,
                          help='close the string with " on the same line')
    shown = repr(err.char) if err.char.isprintable() else f"U+{ord(err.char):04X}"
    return Diagnostic("E001", f"unexpected character {shown}", span)


def _token_position(token: Token | None, text: str) -> tuple[int, int]:
    if token is not None and token.type != "$END" and token.line is not None:
        return token.line, token.column
    lines = text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():  # on the last line with text on it
        lines.pop()
    return len(lines), len(lines[-1]) + 1


def _describe_token(token: Token | None) -> str:
    if token is None or token.type in ("_NL", "$END"):
        return _WORDS[token.type if token is not None else "$END"]
    return repr(str(token))


def _expected_words(err: UnexpectedInput) -> str:
    accepted = _accepted(err)
    if "STRING" in accepted:
        return "a value (a number, a string or a word)"
    words = []
    if {"NAME", "NUMBER", "LPAR"} <= accepted:
        accepted -= {"NAME", "NUMBER", "LPAR", "MINUS"}
        words.append("an expression")
    if "RPAR" in accepted:  # inside brackets: say how they go on
        accepted &= {"COMMA", "RPAR"}
        words = []
    elif "NAME" in accepted or words:  # a new statement or operand was due
        accepted -= {"_NL", "SEMICOLON", "$END"}
    if "_NL" in accepted:
        accepted.discard("$END")
    if accepted & _OPERATORS:
        accepted -= _OPERATORS
        words.append("an operator")
    words += [_terminal_word(name) for name in accepted]
    words = sorted(set(words), key=lambda w: (not w.startswith("'"), w))
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _terminal_word(name: str) -> str:
    if name in _WORDS:
        return _WORDS[name]
    pattern = {t.name: t.pattern for t in _parser().terminals}[name]
    return f"'{pattern.value}'" if pattern.type == "str" else name


def _accepted(err: UnexpectedInput) -> set:
    """The terminals the parser would really take here (LALR's own list is too wide)."""
    parser = getattr(err, "interactive_parser", None)
    try:
        return set(parser.accepts()) if parser is not None else set(err.expected or ())
    except Exception:  # accepts() replays the parser; fall back to lark's own list
        return set(getattr(err, "expected", None) or ())


def _unclosed_bracket(text: str, upto: tuple[int, int]) -> tuple[int, int, str] | None:
    """The innermost bracket still open at position `upto`, skipping comments and strings."""
    stack = []
    for line_no, line in enumerate(text.split("\n"), start=1):
        in_string = escaped = False
        for col, char in enumerate(line, start=1):
            if (line_no, col) >= upto:
                return stack[-1] if stack else None
            if in_string:  # as the STRING terminal reads it: \" does not end a string
                in_string, escaped = escaped or char != '"', not escaped and char == "\\"
            elif char == '"':
                in_string = True
            elif char == "#":
                break
            elif char in _OPEN:
                stack.append((line_no, col, char))
            elif char in _CLOSE and stack:
                stack.pop()
    return stack[-1] if stack else None
