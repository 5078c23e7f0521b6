"""The train block: key = value settings, checked against one table.

An unknown key or an ill-typed value is an error (with "did you mean" for near misses).
Enumerated values may be bare words or strings; node names are bare words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from mfc.lang import ast
from mfc.diagnostics import Diagnostic, Note, Span, did_you_mean

OPTIMIZERS = ("sgd", "momentum", "adam")
SAMPLINGS = ("shuffle", "resample")
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class TrainSettings:
    data: str | None = None
    target_column: str | None = None
    features: str = "X"
    targets: str = "y"
    loss: str | None = None
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    seed: int = 0
    sampling: str = "shuffle"
    standardize: bool = True
    validation: float | None = None
    dtype: str = "float64"
    spans: dict = field(default_factory=dict, compare=False, repr=False)

    def with_overrides(self, **overrides) -> "TrainSettings":
        """These settings with some replaced (flags on the command line, API keywords);
        None means "not given". Values are checked as the block's own are."""
        given = {k: v for k, v in overrides.items() if v is not None}
        problems = [f"{key}: {p}" for key, value in given.items()
                    for p in [_check_override(key, value)] if p]
        if problems:
            raise ValueError("; ".join(problems))
        spans = {k: v for k, v in self.spans.items() if k not in given}  # not in the file now
        return replace(self, **given, spans=spans)


def _positive_int(value):
    return value if _is_int(value) and value > 0 else None


def _count(value):
    return value if _is_int(value) and value >= 0 else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_number(value):
    return float(value) if _is_number(value) and value > 0 else None


def _fraction(value):
    return float(value) if _is_number(value) and 0 < value < 1 else None


def _momentum(value):
    return float(value) if _is_number(value) and 0 <= value < 1 else None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# key -> (value kind: path | node | choice | number | bool, checker or choices, wording)
SCHEMA = {
    "data": ("path", None, "a dataset name or a path to a .csv or .npz file"),
    "target_column": ("path", None, "a CSV column name"),
    "features": ("node", None, "the name of the Input fed the features"),
    "targets": ("node", None, "the name of the Input fed the targets"),
    "loss": ("node", None, "the name of the node to minimise"),
    "epochs": ("number", _positive_int, "a whole number, at least 1"),
    "batch_size": ("number", _positive_int, "a whole number, at least 1"),
    "learning_rate": ("number", _positive_number, "a number greater than 0"),
    "optimizer": ("choice", OPTIMIZERS, "one of sgd, momentum, adam"),
    "momentum": ("number", _momentum, "a number from 0 up to (not including) 1"),
    "seed": ("number", _count, "a whole number, 0 or more"),
    "sampling": ("choice", SAMPLINGS, "shuffle or resample"),
    "standardize": ("bool", None, "true or false"),
    "validation": ("number", _fraction, "a fraction between 0 and 1, such as 0.2"),
    "dtype": ("choice", DTYPES, "float64 or float32"),
}


def read(module: ast.Module) -> tuple[TrainSettings | None, list[Diagnostic]]:
    """The settings of the spec's train block (None without one), and its problems."""
    diagnostics = [Diagnostic("E403", "a spec has at most one train block", block.span,
                              notes=(Note("the first train block", module.trains[0].span),))
                   for block in module.trains[1:]]
    if not module.trains:
        return None, diagnostics
    values, spans, seen = {}, {}, {}
    for setting in module.trains[0].settings:
        problem = _setting_problem(setting, seen)
        seen.setdefault(setting.key, setting.key_span)
        if problem:
            diagnostics.append(problem)
            continue
        values[setting.key] = _value(setting)
        spans[setting.key] = setting.value.span
    return TrainSettings(**values, spans=spans), diagnostics


def _setting_problem(setting: ast.Setting, seen: dict) -> Diagnostic | None:
    if setting.key not in SCHEMA:
        return Diagnostic("E400", f"unknown train setting '{setting.key}'", setting.key_span,
                          help=did_you_mean(setting.key, SCHEMA) or
                          f"the settings are: {', '.join(SCHEMA)}")
    if setting.key in seen:
        return Diagnostic("E402", f"'{setting.key}' is set twice", setting.key_span,
                          notes=(Note("first set here", seen[setting.key]),))
    kind, check, wording = SCHEMA[setting.key]
    literal = setting.value
    message = _type_problem(kind, check, literal)
    if message is None:
        return None
    near = did_you_mean(str(literal.value), check) if kind == "choice" else None
    return Diagnostic("E401", f"'{setting.key}' {message}", literal.span,
                      help=near or f"'{setting.key}' takes {wording}")


def _type_problem(kind: str, check, literal: ast.Literal) -> str | None:
    value, written = literal.value, literal.kind
    if kind == "path":
        return None if written in ("string", "word") else "takes a name or a path, not a number"
    if kind == "node":
        if written == "word":
            return None
        return "names a node: write it as a bare word" if written == "string" else \
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
    if kind == "bool":
        return setting.value.value == "true"
    if kind == "number":
        return check(setting.value.value)
    return setting.value.value


def _check_override(key: str, value) -> str | None:
    """What is wrong with a value given from Python or a flag (the block's own values are
    checked as literals, with their spans, by `_setting_problem`)."""
    if key not in SCHEMA:
        return "unknown setting" + (f"; {hint}" if (hint := did_you_mean(key, SCHEMA)) else "")
    kind, check, wording = SCHEMA[key]
    valid = {"number": lambda: check(value) is not None,
             "choice": lambda: value in check,
             "bool": lambda: isinstance(value, bool),
             "path": lambda: isinstance(value, str) and value != "",
             "node": lambda: isinstance(value, str) and value.isidentifier()}[kind]()
    return None if valid else f"must be {wording}, not {value!r}"


def setting_span(settings: TrainSettings | None, key: str) -> Span | None:
    return settings.spans.get(key) if settings else None
