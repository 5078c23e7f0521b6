"""The parse tables of grammar/mfc.lark as plain data: the LALR states, the rules with
what each hands its callback, and the lexer's regular expression.

lark analyses the grammar (here, and nowhere else); the result is kept as JSON in the
user's cache folder, so that later runs load it without importing lark, whose import
alone weighs more than the rest of the front end (5 MB, with logging, inspect and
hashlib). mfc.lang.syntax runs the parse on these tables with a loop of its own.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from pathlib import Path
from typing import NamedTuple

FORMAT = 1  # of the cache file; a change of what is saved changes it


class Rule(NamedTuple):
    """A grammar rule as the parser reduces it: its left side, how many values it pops,
    the name of its callback (its alias or its left side; a rule without a callback
    gives its children as a list, spliced into the rule that holds it: lark's
    `_rule`), which children the callback gets (None: all; else (index, splice) pairs:
    lark drops punctuation and splices `_rule`s), and whether a single child stands for
    itself (lark's `?rule`)."""

    origin: str
    size: int
    callback: str
    include: tuple | None
    single: bool


class Tables(NamedTuple):
    """What the lexer and the parse loop need. `states[s][symbol]` is the action: a
    shift to (or, for a rule's left side, a goto to) state n as n >= 0, a reduction
    by rule r as -1 - r. `literals`: each literal terminal's text ('RPAR' -> ')')."""

    pattern: str
    chars: dict
    keywords: dict
    literals: dict
    states: list
    rules: list
    start: int
    end: int


def load(grammar: str) -> Tables:
    """The tables of `grammar` (the text of mfc.lark): from the cache when it holds
    them, else built by lark and saved there (when the cache folder can be used)."""
    path = cache_file(grammar)
    if path is not None:
        saved = _read(path, grammar)
        if saved is not None:
            return saved
    data = build(grammar)
    if path is not None:
        _write(path, {"format": FORMAT, "grammar": grammar, "tables": data})
    return _tables(data)


def cache_file(grammar: str) -> Path | None:
    """Where the tables of `grammar` are kept: the user's own cache folder, a file
    named after the grammar (other versions of mfc keep theirs), which holds the
    grammar too, to be sure. Not the shared temp folder, where anyone could put a file
    of that name. None without a usable folder: the tables are then built at every
    start."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    try:
        folder = (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "mfc"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return None
    return folder / f"grammar-{zlib.crc32(grammar.encode()):08x}-{FORMAT}.json"


def _read(path: Path, grammar: str) -> Tables | None:
    try:
        saved = json.loads(path.read_bytes())
        if saved["format"] == FORMAT and saved["grammar"] == grammar:
            return _tables(saved["tables"])
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or not ours: rebuilt
        pass
    return None


def _write(path: Path, saved: dict) -> None:
    """Written whole under another name, then renamed: a run reading it at the same
    time never sees half a file."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(json.dumps(saved, separators=(",", ":")), encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)


def _tables(data: dict) -> Tables:
    rules = [Rule(o, n, c, tuple(map(tuple, i)) if i is not None else None, s)
             for o, n, c, i, s in data["rules"]]
    return Tables(data["pattern"], data["chars"], data["keywords"], data["literals"],
                  data["states"], rules, data["start"], data["end"])


# ---------------------------------------------------------------- built by lark

def build(grammar: str) -> dict:
    """The tables of `grammar`, analysed by lark (LALR), as JSON-ready data."""
    from lark import Lark

    lark = Lark(grammar, parser="lalr", lexer="basic", maybe_placeholders=False)
    # The analysed table, states numbered 0..n-1 (lark's own attribute, the same from
    # lark 0.8 to 1.3; a test builds the tables from the grammar).
    table = lark.parser.parser._parse_table
    index = {rule: i for i, rule in enumerate(lark.rules)}
    states = [None] * len(table.states)
    for state, actions in table.states.items():
        states[state] = {symbol: (arg if action.name == "Shift" else -1 - index[arg])
                         for symbol, (action, arg) in actions.items()}
    pattern, chars, keywords = token_pattern(lark.terminals, lark.lexer_conf.ignore)
    literals = {t.name: t.pattern.value for t in lark.terminals if t.pattern.type == "str"}
    return {"pattern": pattern, "chars": chars, "keywords": keywords, "literals": literals,
            "states": states, "rules": [_rule(r) for r in lark.rules],
            "start": table.start_states["start"], "end": table.end_states["start"]}


def _rule(rule) -> list:
    """A rule as lark's tree builder would call its callback (parse_tree_builder.py,
    without placeholders): punctuation dropped unless the rule keeps it (!rule),
    `_rule`s spliced, a `?rule` of one child replaced by that child."""
    include = [[i, not sym.is_term and sym.name.startswith("_")]
               for i, sym in enumerate(rule.expansion)
               if rule.options.keep_all_tokens or not (sym.is_term and sym.filter_out)]
    filtered = len(include) < len(rule.expansion) or any(splice for _, splice in include)
    return [rule.origin.name, len(rule.expansion), rule.alias or rule.origin.name,
            include if filtered else None, bool(rule.options.expand1 and not rule.alias)]


def token_pattern(terminals, ignore) -> tuple[str, dict[str, str], dict[str, str]]:
    """One regular expression for the grammar's terminals, each a named group except the
    one-character literals, which share the group CHAR (one character class is tried
    much faster than a dozen alternatives); then the terminal of each such character,
    and the keywords: literals that NAME matches too ('train' -> 'TRAIN'), left to NAME.

    Ignored text (blanks, comments) is skipped at the start of each match. Then the groups
    are tried in the order lark's lexer tries them: patterns first, then literals, the
    longest first ('**' before '*'). BAD takes a character no token starts with, and END
    the end of the text after trailing blanks, so a match never backtracks into them.
    """
    by_name = {t.name: t for t in terminals}
    name = re.compile(by_name["NAME"].pattern.to_regexp())
    literals = {t.pattern.value: t.name for t in terminals if t.pattern.type == "str"}
    keywords = {text: kind for text, kind in literals.items() if name.fullmatch(text)}
    chars = {text: kind for text, kind in literals.items() if len(text) == 1}
    grouped = {*ignore, *keywords.values(), *chars.values()}
    tokens = [t for t in terminals if t.name not in grouped]
    tokens.sort(key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
    skip = "|".join(by_name[n].pattern.to_regexp() for n in ignore)
    groups = [f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in tokens]
    groups.append(f"(?P<CHAR>[{re.escape(''.join(chars))}])")
    return f"(?:{skip})*(?:{'|'.join(groups)}|(?P<BAD>.)|(?P<END>\\Z))", chars, keywords

