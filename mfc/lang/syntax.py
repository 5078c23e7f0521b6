"""Stage 1: text → AST. An LALR parse of the grammar (grammar/mfc.lark) fed by our own
lexer, with the AST built by callbacks during the parse (no parse tree, no recursion).

lark analyses the grammar into tables (mfc.lang.tables, cached); the parse itself is
the short loop below, so a run does not import lark. Its callbacks get what lark's
would give them: punctuation dropped unless the rule is marked !, `_rule`s spliced,
`?rule`s of one child replaced by it. A mistake is translated here, at one boundary,
into `SpecError` with a span and an "expected ..." hint in the user's words.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple

from mfc.lang import ast, tables
from mfc.diagnostics import Diagnostic, Span, SpecError

# Brackets as the error report sees them: a `{` left open is as much a mistake as a `(`.
_OPEN, _CLOSE = {"(": ")", "[": "]", "{": "}"}, {")": "(", "]": "[", "}": "{"}
_ESCAPES = {"n": "\n", "t": "\t"}
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "AT", "POW"}
_INFIX = {"PLUS": "Add", "MINUS": "Sub", "STAR": "Mul", "SLASH": "Div", "AT": "MatMul"}
_WORDS = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string",
          "_NL": "end of line", "$END": "end of file"}


def parse(text: str) -> ast.Module:
    """Parse spec text into an `ast.Module`; raise `SpecError` (E001–E003) on bad syntax."""
    try:
        return _parser().parse(text)
    except _Unexpected as err:
        raise SpecError([_syntax_diagnostic(err, text)], text) from None


@functools.lru_cache(maxsize=1)
def _parser() -> _Parser:
    return _Parser(tables.load(_grammar_path().read_text(encoding="utf-8")))


def _grammar_path() -> Path:
    package = Path(__file__).resolve().parent.parent  # mfc/, installed or in the repository
    for candidate in (package / "grammar" / "mfc.lark", package.parent / "grammar" / "mfc.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("mfc's grammar file mfc.lark is missing from the installation")


class Token(NamedTuple):
    """A token: its terminal's name, its text, and where it starts and ends."""

    type: str
    value: str
    line: int
    column: int
    end_line: int
    end_column: int


# Token(...) without the Python frame of a named tuple's __new__: a spec is made of
# hundreds of thousands of tokens.
_new_token = functools.partial(tuple.__new__, Token)


class _Unexpected(Exception):
    """The parse stopped: a character no token starts with, or a token out of place."""


class _BadCharacter(_Unexpected):
    def __init__(self, char: str, line: int, column: int):
        self.char, self.line, self.column = char, line, column


class _UnexpectedToken(_Unexpected):
    """`token` where the parser, in the states `stack`, cannot take it."""

    def __init__(self, token: Token, stack: list):
        self.token, self.stack = token, stack


class _Parser:
    """The LALR parse of lark's tables, the AST built by `_ToAst` at each reduction."""

    def __init__(self, parsed: tables.Tables):
        self.tables = parsed
        self.pattern = re.compile(parsed.pattern)
        builder = _ToAst()
        self.reductions = [(r.origin, r.size, _reduction(r, builder)) for r in parsed.rules]

    def parse(self, text: str) -> ast.Module:
        """The module `text` holds; raises `_Unexpected` at the first mistake. (The
        reductions are written out here, not called: this loop runs a million times
        at 100k nodes.)"""
        states, reductions = self.tables.states, self.reductions
        state_stack, value_stack = [self.tables.start], []
        actions = states[self.tables.start]  # the current state's
        token = None
        for token in self.tokens(text):
            kind = token.type
            action = actions.get(kind)
            while action is not None and action < 0:  # reduce by rule -1 - action
                origin, size, reduce = reductions[-1 - action]
                if size:
                    children = value_stack[-size:]
                    del value_stack[-size:], state_stack[-size:]
                else:
                    children = []
                value_stack.append(reduce(children))
                state = states[state_stack[-1]][origin]
                state_stack.append(state)
                actions = states[state]
                action = actions.get(kind)
            if action is None:
                raise self.unexpected(token, state_stack)
            state_stack.append(action)  # shift
            value_stack.append(token)
            actions = states[action]
        return self.finish(token, state_stack, value_stack)

    def finish(self, last: Token | None, state_stack: list, value_stack: list) -> ast.Module:
        """Reduce at the end of the text, up to the start rule's value."""
        states, end = self.tables.states, self.tables.end
        where = (1, 1, 1, 1) if last is None else \
            (last.line, last.column, last.end_line, last.end_column)
        token = Token("$END", "", *where)
        while True:
            action = states[state_stack[-1]].get("$END")
            if action is None or action >= 0:
                raise self.unexpected(token, state_stack)
            origin, size, reduce = self.reductions[-1 - action]
            children = value_stack[-size:] if size else []
            if size:
                del value_stack[-size:], state_stack[-size:]
            value_stack.append(reduce(children))
            state_stack.append(states[state_stack[-1]][origin])
            if state_stack[-1] == end:
                return value_stack[-1]

    def unexpected(self, token: Token, state_stack: list) -> _UnexpectedToken:
        return _UnexpectedToken(token, list(state_stack))

    def accepts(self, stack: list) -> set[str]:
        """The terminals the parser in the states `stack` would shift: LALR's list of the
        state is too wide, as a reduction may lead where the terminal does not fit."""
        actions = self.tables.states[stack[-1]]
        return {t for t in actions if t.isupper() and self.shifts(list(stack), t)}

    def shifts(self, stack: list, terminal: str) -> bool:
        states, rules = self.tables.states, self.tables.rules
        while True:
            action = states[stack[-1]].get(terminal)
            if action is None:
                return False
            if action >= 0:
                return True
            rule = rules[-1 - action]
            if rule.size:
                del stack[-rule.size:]
            stack.append(states[stack[-1]][rule.origin])

    def tokens(self, text: str):
        """The tokens, found by one regular expression that `re.finditer` runs over the
        whole text: lark's own lexer makes several Python calls per token.

        The keywords ('train', 'fragment', 'use', 'return') are keywords only where a
        statement starts: at the start, after a newline or ';', at the start of a
        fragment's body (elsewhere they are names, as in `x = Sigmoid(train)`). Newlines
        inside ( ) are dropped: a bracket left open continues the statement.
        """
        chars, keywords = self.tables.chars, self.tables.keywords
        line, line_start, depth = 1, 0, 0  # line_start: the offset where the line starts
        statement_start, previous = True, None
        for match in self.pattern.finditer(text):
            kind = match.lastgroup
            start, end = match.start(kind), match.end()  # (span() costs more)
            value, first_line, column = text[start:end], line, start - line_start + 1
            end_line, end_column = line, column + end - start
            if kind == "CHAR":
                kind = chars[value]
                if kind == "LPAR":
                    depth += 1
                elif kind == "RPAR":
                    depth = max(depth - 1, 0)
            elif kind == "_NL":
                line, line_start = line + 1, end
                end_line, end_column = line, 1
                if depth:
                    continue
            elif kind == "NAME":
                if statement_start and value in keywords:
                    kind = keywords[value]
            elif kind == "END":
                return
            elif kind == "BAD":
                raise _BadCharacter(text[start], line, column)
            # A fragment's body starts statements too: `) {`, where a train block's `{`
            # follows the keyword (whose settings may be named anything, even `train`).
            statement_start = (kind == "_NL" or kind == "SEMICOLON"
                               or (kind == "LBRACE" and previous == "RPAR"))
            previous = kind
            yield _new_token((kind, value, first_line, column, end_line, end_column))


def _reduction(rule: tables.Rule, builder: _ToAst):
    """What a reduction by `rule` makes of the values it pops: its callback's value,
    given the children lark would give it."""
    callback = getattr(builder, rule.callback, None) or _spliced
    if rule.single:
        callback = functools.partial(_single_or, callback)
    if rule.include is not None:
        return functools.partial(_filtered, rule.include, callback)
    return callback


def _spliced(children: list) -> list:
    """A `_rule`'s value: its children, to be spliced into the rule that holds it."""
    return children


def _single_or(callback, children: list):
    return children[0] if len(children) == 1 else callback(children)


def _filtered(include: tuple, callback, children: list):
    kept = []
    for i, splice in include:
        if splice:
            kept += children[i]
        else:
            kept.append(children[i])
    return callback(kept)


# Span(...) without the Python frame of a named tuple's __new__: a spec makes a span for
# every name, call and statement.
_new_span = functools.partial(tuple.__new__, Span)


def _token_span(token: Token) -> Span:
    return _new_span((token.line, token.column, token.end_line, token.end_column, None))


def _literal(value) -> ast.Literal:
    if isinstance(value, ast.Number):
        return ast.Literal(value.value, "number", value.span)
    return value


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _number(token: Token) -> int | float:
    text = token.value
    return int(text) if text.isdigit() else float(text)


def _span(first, last) -> Span:
    """From the start of `first` to the end of `last` (tokens or AST nodes; a token has
    a span's fields)."""
    a = first if isinstance(first, Token) else first.span
    b = last if isinstance(last, Token) else last.span
    return _new_span((a.line, a.column, b.end_line, b.end_column, None))


def _position_of(kind: str, items: list) -> int:
    """Where the token of terminal `kind` is among a rule's children (only tokens come
    before it)."""
    return next(i for i, item in enumerate(items) if item.type == kind)


class _ToAst:
    """Builds AST nodes only, during the parse (no tree is built first); every semantic
    check happens in later stages. Spans come from the first and last child. The rules
    marked ! in the grammar pass their punctuation too; their comments show the children."""

    def start(self, items):  # [statements] or [statements, the last one, unterminated]
        statements = items[0] + items[1:]
        return ast.Module(*(tuple(i for i in statements if type(i) is kind) for kind in
                            (ast.Assign, ast.TrainBlock, ast.Fragment, ast.Use, ast.Return)))

    def fragment(self, items):  # FRAGMENT NAME param* (assign | ret)* RBRACE
        keyword, name, close = items[0], items[1], items[-1]
        params = tuple(i for i in items if type(i) is ast.Parameter)
        body = tuple(i for i in items if type(i) is ast.Assign)
        returns = tuple(i for i in items if type(i) is ast.Return)
        return ast.Fragment(name.value, params, body, returns, _span(keyword, close),
                            _token_span(name))

    def param(self, items):  # NAME ["=" literal]
        name = items[0]
        default = _literal(items[1]) if len(items) > 1 else None
        return ast.Parameter(name.value, default, _span(name, default or name))

    def ret(self, items):  # RETURN value+
        return ast.Return(tuple(items[1:]), _span(items[0], items[-1]))

    def use(self, items):  # USE (STRING | NAME)
        keyword, target = items
        kind = "string" if target.type == "STRING" else "word"
        text = _unescape(target.value[1:-1]) if kind == "string" else target.value
        return ast.Use(text, kind, _span(keyword, target))

    def lines(self, items):  # [], [statements, sep] or [statements, statement, sep]
        if not items:
            return []
        statements = items[0]  # one list, grown in place
        if len(items) == 3:
            statements.append(items[1])
        return statements

    def assign(self, items):  # NAME ("," NAME)* "=" value ("," value)*
        equals = 1 if len(items) == 3 else _position_of("EQUAL", items)
        targets = tuple(ast.Name(n.value, _token_span(n)) for n in items[:equals:2])
        values = tuple(items[equals + 1::2])
        return ast.Assign(targets, values, _span(targets[0], values[-1]))

    def train(self, items):
        return ast.TrainBlock(tuple(items[1:]), _token_span(items[0]))

    def setting(self, items):
        key, *values = items
        value = _literal(values[0]) if len(values) == 1 else \
            ast.Literal(tuple(_literal(v) for v in values), "list", _span(values[0], values[-1]))
        return ast.Setting(key.value, value, _span(key, values[-1]), _token_span(key))

    def number(self, items):
        return ast.Number(_number(items[0]), _token_span(items[0]))

    def name(self, items):
        return ast.Name(items[0].value, _token_span(items[0]))

    def negative(self, items):
        return ast.Number(-_number(items[1]), _span(items[0], items[1]))

    def string(self, items):
        text = items[0].value[1:-1]
        return ast.Literal(_unescape(text), "string", _token_span(items[0]))

    def word(self, items):
        return ast.Literal(items[0].value, "word", _token_span(items[0]))

    def keyword(self, items):
        name, value = items
        return ast.Keyword(name.value, _literal(value), _span(name, value))

    def args(self, items):  # [arg] or [args, ",", arg]
        if len(items) == 1:
            return items
        items[0].append(items[2])  # one list, grown in place
        return items[0]

    def call(self, items):  # NAME "(" [args [","]] RPAR
        op, close = items[0], items[-1]
        args = items[2] if len(items) > 3 else ()
        if ast.Keyword in map(type, args):
            keywords = tuple(a for a in args if type(a) is ast.Keyword)
            positional = tuple(a for a in args if type(a) is not ast.Keyword)
        else:
            keywords, positional = (), tuple(args)
        return ast.Call(op.value, positional, keywords, _span(op, close), _token_span(op))

    def paren(self, items):  # "(" expression ")"
        return items[1]

    def neg(self, items):
        minus, operand = items
        return ast.Call("Neg", (operand,), (), _span(minus, operand), _token_span(minus), True)

    def sum(self, items):  # left, the operator's token, right
        left, op, right = items
        span = _span(left, right)
        return ast.Call(_INFIX[op.type], (left, right), (), span, span, True)

    product = sum

    def pow(self, items):
        left, _, right = items
        span = _span(left, right)
        return ast.Call("Pow", (left, right), (), span, span, True)


def _syntax_diagnostic(err: _Unexpected, text: str) -> Diagnostic:
    if isinstance(err, _BadCharacter):
        return _bad_character(err, text)
    token = err.token
    where = _token_position(token, text)
    unclosed = _unclosed_bracket(text, where)
    expected = _expected_words(err)
    found = _describe_token(token)
    if unclosed is not None and (unclosed[0] < where[0] or found == "end of file"):
        line, col, char = unclosed
        return Diagnostic("E002", f"'{char}' is never closed", Span.point(line, col),
                          help=f"expected {expected} before {found} at {where[0]}:{where[1]}")
    return Diagnostic("E001", f"expected {expected}, found {found}",
                      Span.point(where[0], where[1], len(token.value) or 1),
                      help=_reserved_help(token, expected))


_KEYWORDS = {"TRAIN": "starts the train block", "FRAGMENT": "starts a fragment",
             "USE": "brings in another file's fragments", "RETURN": "ends a fragment's body"}


def _reserved_help(token: Token, expected: str) -> str | None:
    """A keyword written where a statement starts, as a name: say what it is for."""
    kind = token.type
    if expected == "'{'":  # `train` as a name, the parser then wanting its block
        kind = "TRAIN"
    elif kind not in _KEYWORDS or "a name" not in expected:
        return None
    return f"'{kind.lower()}' {_KEYWORDS[kind]}; it cannot be a name"


def _bad_character(err: _BadCharacter, text: str) -> Diagnostic:
    span = Span.point(err.line, err.column)
    if err.char == '"':
        return Diagnostic("E003", "unterminated string", span,
                          help='close the string with " on the same line')
    shown = repr(err.char) if err.char.isprintable() else f"U+{ord(err.char):04X}"
    return Diagnostic("E001", f"unexpected character {shown}", span)


def _token_position(token: Token, text: str) -> tuple[int, int]:
    if token.type != "$END":
        return token.line, token.column
    lines = text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():  # on the last line with text on it
        lines.pop()
    return len(lines), len(lines[-1]) + 1


def _describe_token(token: Token) -> str:
    return _WORDS[token.type] if token.type in ("_NL", "$END") else repr(token.value)


def _expected_words(err: _UnexpectedToken) -> str:
    accepted = _accepted(err)
    if accepted == {"STRING", "NAME"}:  # after `use`
        return 'a file in quotes or a library\'s name (use "layers.mf", use std)'
    if "STRING" in accepted:
        return "a value (a number, a string or a word)"
    if "TRAIN" in accepted:  # where any statement may start: the rarer keywords go unsaid
        accepted -= {"FRAGMENT", "USE", "RETURN"}
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
    literal = _parser().tables.literals.get(name)
    return f"'{literal}'" if literal is not None else name


def _accepted(err: _UnexpectedToken) -> set:
    """The terminals the parser would really take here."""
    return _parser().accepts(err.stack)


def _unclosed_bracket(text: str, upto: tuple[int, int]) -> tuple[int, int, str] | None:
    """The innermost bracket open at position `upto` that is never closed, skipping
    comments and strings (a fragment's `{` open around a mistake in its body is closed
    later: the mistake is what is reported)."""
    stack, open_at, closed = [], None, set()
    for line_no, line in enumerate(text.split("\n"), start=1):
        in_string = escaped = False
        for col, char in enumerate(line, start=1):
            if open_at is None and (line_no, col) >= upto:
                open_at = list(stack)
            if in_string:  # as the STRING terminal reads it: \" does not end a string
                in_string, escaped = escaped or char != '"', not escaped and char == "\\"
            elif char == '"':
                in_string = True
            elif char == "#":
                break
            elif char in _OPEN:
                stack.append((line_no, col, char))
            elif char in _CLOSE and stack:
                closed.add(stack.pop())
    never = [b for b in (open_at if open_at is not None else stack) if b not in closed]
    return never[-1] if never else None
