"""The train block of a spec: `key = value` settings, checked against the table of
mfc.settings, each value with its span.

An unknown key or an ill-typed value is an error (with "did you mean" for near misses).
Enumerated values may be bare words or strings; node names too (a fragment call's
scoped name, `h1.W`, is written as a string: it is not a word).
"""

from __future__ import annotations

from mfc.diagnostics import E400, E401, E402, E403, Note, Report, did_you_mean
from mfc.lang import ast
from mfc.settings import SCHEMA, TrainSettings, is_node_name


def read(module: ast.Module, report: Report) -> TrainSettings | None:
    """The settings of the spec's train block (None without one); problems go to
    `report`."""
    for block in module.trains[1:]:
        report(E403, "a spec has at most one train block", block.span,
               notes=[Note("the first train block", module.trains[0].span)])
    if not module.trains:
        return None
    values, spans, seen = {}, {}, {}
    for setting in module.trains[0].settings:
        valid = _check_setting(setting, seen, report)
        seen.setdefault(setting.key, setting.key_span)
        if valid:
            values[setting.key] = _value(setting)
            spans[setting.key] = setting.value.span
            if setting.value.kind == "list":  # each name's own place: `output[1]`
                spans.update((f"{setting.key}[{i}]", item.span)
                             for i, item in enumerate(setting.value.value))
    return TrainSettings(**values, spans=spans)


def _check_setting(setting: ast.Setting, seen: dict, report: Report) -> bool:
    if setting.key not in SCHEMA:
        report(E400, f"unknown train setting '{setting.key}'", setting.key_span,
               help=did_you_mean(setting.key, SCHEMA) or f"the settings are: {', '.join(SCHEMA)}")
        return False
    if setting.key in seen:
        report(E402, f"'{setting.key}' is set twice", setting.key_span,
               notes=[Note("first set here", seen[setting.key])])
        return False
    kind, check, wording = SCHEMA[setting.key]
    literal, message = _first_problem(kind, check, setting.value)
    if message is None:
        return True
    near = did_you_mean(str(literal.value), check) if kind == "choice" else None
    report(E401, f"'{setting.key}' {message}", literal.span,
           help=near or f"'{setting.key}' takes {wording}")
    return False


def _first_problem(kind: str, check, literal: ast.Literal) -> tuple[ast.Literal, str | None]:
    """The first value of a setting that is ill-typed (one of several, for a list of node
    names), and what is wrong with it; None when all are fine."""
    if kind == "nodes":
        for item in literal.value if literal.kind == "list" else (literal,):
            if (message := _type_problem("node", None, item)) is not None:
                return item, message
        return literal, None
    return literal, _type_problem(kind, check, literal)


def _type_problem(kind: str, check, literal: ast.Literal) -> str | None:
    value, written = literal.value, literal.kind
    if written == "list":
        return "takes one value, not a list"
    if kind == "path":
        return None if written in ("string", "word") else "takes a name or a path, not a number"
    if kind == "node":
        if written == "word" or (written == "string" and is_node_name(value)):
            return None
        return f"cannot be {value!r}: it names a node" if written == "string" else \
            "names a node, not a number"
    if kind == "choice":
        return None if written != "number" and value in check else f"cannot be {value!r}"
    if kind == "bool":
        return None if written == "word" and value in ("true", "false") else \
            f"cannot be {value!r}"
    if written != "number" or check(value) is None:
        return f"cannot be {value!r}"
    return None


def _value(setting: ast.Setting):
    kind, check, _ = SCHEMA[setting.key]
    if kind == "nodes":
        value = setting.value
        return tuple(item.value for item in (value.value if value.kind == "list" else (value,)))
    if kind == "bool":
        return setting.value.value == "true"
    if kind == "number":
        return check(setting.value.value)
    return setting.value.value
