"""Fragments: the ones a spec may call (its own and those of the files it uses), the
checks on each definition, and how one call's arguments bind to its parameters.

Expanding a call is the graph builder's (mfc.lang.graph): it reads the body in a scope
of its own, whose names are the call's (`h1.W`) and whose spans carry the call chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfc.diagnostics import (E103, E105, E106, E108, E109, E131, Note, Report, Site, Source,
                             Span, did_you_mean)
from mfc.lang import ast
from mfc.ops import OPS
from mfc.text import plural

REPEAT = "repeat"  # repeat(N, Fragment, x, ...): not an op, and no fragment may take its name
HOLE = "_"


@dataclass(frozen=True)
class Definition:
    """A fragment as written, and where: `source` is its file (None: the spec);
    `std`, whether it comes from mfc's standard library."""

    fragment: ast.Fragment
    source: Source | None = None
    std: bool = False

    @property
    def name(self) -> str:
        return self.fragment.name

    def at(self, span: Span) -> Span:
        """A span of the definition's own text, in its file (not in any call)."""
        return span if self.source is None else span.at(Site(self.source))


@dataclass(frozen=True)
class Arg:
    """A value given for a parameter, as a call wrote it.

    `kind` is 'node' (`value`: the node's name), 'number', 'word' (an op's or a
    fragment's name, or a keyword value such as `xavier`) or 'unknown' (a fragment
    checked without a call). `word` is the bare word it was written as, if it was one
    (a node named by a word may fill a keyword too). `span` is where it is written;
    `hint`, for a word that names nothing, the help to give if it is read as a node
    (then it was a misspelt name).
    """

    kind: str
    value: object
    span: Span
    word: str | None = None
    hint: str | None = None


def check(library: dict[str, Definition], report: Report) -> None:
    """What is wrong with each definition, whatever its calls: its parameters, its
    returns, a body that defines a parameter's name."""
    for definition in library.values():
        _check_params(definition, report)
        _check_returns(definition, report)
        _check_body(definition, report)


def _check_params(definition: Definition, report: Report) -> None:
    at, seen = definition.at, {}
    for param in definition.fragment.params:
        if param.name == HOLE:
            report(E108, "'_' stands for a dim to infer; it cannot name a parameter",
                   at(param.span))
        elif param.name in seen:
            report(E103, f"parameter '{param.name}' is declared twice", at(param.span),
                   notes=[Note(f"'{param.name}' first declared here", at(seen[param.name]))])
        seen.setdefault(param.name, param.span)


def _check_returns(definition: Definition, report: Report) -> None:
    fragment, at = definition.fragment, definition.at
    if not fragment.returns:
        report(E131, f"{fragment.name} returns nothing: a fragment gives its caller what "
               "it returns", at(fragment.name_span),
               help="end the body with `return` and the value, as in `return h`")
    for extra in fragment.returns[1:]:
        report(E131, f"{fragment.name} returns more than once", at(extra.span),
               notes=[Note("its first return", at(fragment.returns[0].span))],
               help="return several values at once: `return h, c`")


def _check_body(definition: Definition, report: Report) -> None:
    params = {p.name: p for p in definition.fragment.params}
    at = definition.at
    for assign in definition.fragment.body:
        for target in assign.targets:
            if target.id in params:
                report(E103, f"'{target.id}' is a parameter of {definition.name}; its body "
                       "cannot define it too", at(target.span),
                       notes=[Note(f"'{target.id}' declared here", at(params[target.id].span))])


def shadowing(definition: Definition) -> set[str]:
    """The body's names that are parameters too (reported by `check`; the body's
    definition of them is left out)."""
    params = {p.name for p in definition.fragment.params}
    return {t.id for a in definition.fragment.body for t in a.targets if t.id in params}


def bind(definition: Definition, call: ast.Call, positional: list, keywords: list,
         site: Site | None, call_span: Span, report: Report) -> dict[str, Arg] | None:
    """Each parameter's value for one call: `positional` (Args, None for one already
    reported as wrong), `keywords` ((name, Arg or None, span) each), then the defaults,
    read at `site` (the call's instance). None when the call is wrong (reported at
    `call_span`, or at the keyword)."""
    params = definition.fragment.params
    names = [p.name for p in params]
    ok = None not in positional
    if len(positional) > len(params):
        report(E105, f"{definition.name} takes at most {plural(len(params), 'argument')} "
               f"({', '.join(names)}) but {len(positional)} were given", call_span)
        return None
    bound = dict(zip(names, positional))
    for name, arg, span in keywords:
        if name not in names:
            report(E106, f"{definition.name} has no parameter '{name}'", span,
                   help=did_you_mean(name, names) or f"its parameters: {', '.join(names)}")
            ok = False
        elif name in bound:
            report(E109, f"'{name}' is given twice", span)
            ok = False
        else:
            bound[name] = arg
            ok = ok and arg is not None
    for param in params:
        if param.name not in bound:
            if param.default is None:
                report(E105, f"{definition.name} needs a value for '{param.name}'", call_span,
                       help=f"pass it by position or as {param.name} = ...")
                ok = False
            else:
                bound[param.name] = literal_arg(param.default, site)
    return bound if ok else None


def literal_arg(literal: ast.Literal, site: Site | None) -> Arg:
    """A default value, or a keyword's value, as an Arg (before any name is looked up)."""
    span = literal.span if site is None else literal.span.at(site)
    if literal.kind == "number":
        return Arg("number", literal.value, span)
    return Arg("word", literal.value, span, word=literal.value if literal.kind == "word" else None)


def describe(args: dict[str, Arg], params) -> str:
    """A call's arguments in a drawing's label: what is not a node (`64, ReLU`), in the
    order of the parameters, defaults left out."""
    shown = []
    for param in params:
        arg = args.get(param.name)
        if arg is None or arg.kind in ("node", "unknown"):
            continue
        if param.default is not None and arg.value == param.default.value:
            continue
        shown.append(f"{arg.value:g}" if isinstance(arg.value, (int, float)) else str(arg.value))
    return ", ".join(shown)


def callable_names(library: dict[str, Definition]) -> list[str]:
    """What a call may name: the ops a spec writes, the fragments, and repeat."""
    return [n for n, op in OPS.items() if op.user] + list(library) + [REPEAT]
