"""Stage 2: AST → `Node` records (mfc.ir) and the networkx DiGraph of who reads whom,
with the checks local to one definition or call.

`Node.inputs` keeps argument order and repeats (`Mul(x, x)`); the graph's edges only say
who reads whom, and its nodes carry no attributes. Checked here: names (undefined,
defined twice), ops (unknown, argument count, keywords), dims of Input and Param.
Anonymous sub-expressions become nodes named `owner.opN` (`cost.pow1`) with the span of
their sub-expression.
"""

from __future__ import annotations

import math


from mfc.diagnostics import (E101, E102, E103, E104, E105, E106, E107, E108, E109, E110,
                             E111, E203, Note, Report, Span, did_you_mean)
from mfc.ir import Node
from mfc.lang import ast
from mfc.ops import OPS, USER_OPS, Const
from mfc.text import plural

HOLE = "_"  # a dim to infer


class Graph:
    """Who reads whom: for each node, the nodes that read it (each once, in the order
    the edges came). The front end's checks need no more; networkx, whose import alone
    costs more than checking a small spec, is built from the records only to name the
    nodes of a cycle (mfc.lang.order) and to draw (`Program.graph`). Reads like the
    part of networkx's DiGraph it stands for."""

    def __init__(self):
        self._readers: dict[str, dict[str, None]] = {}
        self._read: dict[str, int] = {}  # name → how many distinct nodes it reads

    def add_node(self, name: str) -> None:
        if name not in self._readers:
            self._readers[name], self._read[name] = {}, 0

    def add_edges_from(self, edges) -> None:
        for source, reader in edges:
            self.add_node(source)
            self.add_node(reader)
            if reader not in self._readers[source]:
                self._readers[source][reader] = None
                self._read[reader] += 1

    def successors(self, name: str):
        return iter(self._readers[name])

    def out_degree(self, name: str) -> int:
        return len(self._readers[name])

    def in_degree(self, name: str) -> int:
        return self._read[name]

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(s, r) for s, readers in self._readers.items() for r in readers]

    def __iter__(self):
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


def build(module: ast.Module, source: str, report: Report) -> tuple[dict[str, Node], Graph]:
    """The nodes of a parsed spec, by name in definition order, and the graph of who
    reads whom; problems found on the way go to `report`."""
    builder = _Builder(source.splitlines(), report)
    for assign in module.assigns:
        builder.assign(assign)
    builder.resolve_names()
    return builder.nodes, builder.graph


class _Builder:
    def __init__(self, lines: list[str], report: Report):
        self.lines, self.report = lines, report
        self.nodes: dict[str, Node] = {}
        self.graph = Graph()
        self.anon_counts: dict[tuple[str, str], int] = {}
        self.refs: list[ast.Name] = []  # every name used as an operand, to resolve at the end

    # -- definitions

    def assign(self, assign: ast.Assign) -> None:
        targets, values = assign.targets, assign.values
        if len(targets) != len(values):
            self.report(E104, f"{plural(len(targets), 'name')} but "
                        f"{plural(len(values), 'value')}",
                        assign.span, help="write one value for each name, as in "
                        "`X, y = Input(), Input()`")
        for target, value in zip(targets, values):
            self.define(target, value)

    def define(self, target: ast.Name, value: ast.Expr) -> None:
        if target.id == HOLE:
            self.report(E108, "'_' stands for a dim to infer; it cannot be defined",
                        target.span)
            return
        if target.id in self.nodes:
            first = self.nodes[target.id].decl
            self.report(E103, f"'{target.id}' is defined twice", target.span,
                        notes=[Note(f"'{target.id}' first defined here", first)])
            return
        self.lower(value, owner=target)

    # -- expressions, lowered without recursion (nesting depth is the user's to choose)

    def lower(self, expr: ast.Expr, owner: ast.Name) -> None:
        results: list[str | None] = []
        stack: list[tuple[ast.Expr, bool]] = [(expr, False)]
        while stack:
            item, expanded = stack.pop()
            if isinstance(item, ast.Call) and not expanded and not _takes_dims(item):
                stack.append((item, True))
                stack.extend([(arg, False) for arg in reversed(_operands(item))])
                continue
            if isinstance(item, ast.Call) and not _takes_dims(item):
                count = len(_operands(item))
                inputs = results[len(results) - count:] if count else []
                del results[len(results) - count:]
                results.append(self.call(item, inputs, owner if item is expr else None, owner))
            else:
                results.append(self.leaf(item, owner if item is expr else None, owner))

    def leaf(self, item, target: ast.Name | None, owner: ast.Name) -> str | None:
        if isinstance(item, ast.Call):  # Input(...) or Param(...)
            errors = self.report.errors
            attrs = self.dims_attrs(item)
            return self.add(item, target, owner, (), attrs, usable=self.report.errors == errors)
        if isinstance(item, ast.Number):
            if not math.isfinite(item.value):
                self.report(E111, "this number is too large to represent", item.span)
            call = ast.Call(Const.name, (), (), item.span, item.span)
            return self.add(call, target, owner, (), {"value": item.value})
        if item.id == HOLE:
            self.report(E108, "'_' stands for a dim to infer; it is not a value here",
                        item.span, help="'_' goes in the dims of Input(...) or Param(...)")
            return None
        if target is None:
            return item.id
        call = ast.Call("Identity", (item,), (), item.span, item.span)
        return self.add(call, target, owner, (item.id,), {}, refs=[item])

    def call(self, call: ast.Call, inputs, target, owner) -> str | None:
        op = _user_op(call.op)
        operands, extras = _operands(call), call.args[len(_operands(call)):]
        if op is None:
            self.report(E102, f"unknown op '{call.op}'", call.op_span,
                        help=did_you_mean(call.op, USER_OPS) or
                        f"the ops are: {', '.join(USER_OPS)}")
        elif not _arity_fits(op, len(operands), len(extras)):
            self.report(E105, _arity_message(op, len(call.args)), call.span)
        attrs = self.keyword_attrs(call, op, extras) if op else {}
        refs = [a for a in operands if isinstance(a, ast.Name)]
        usable = (op is not None and _arity_fits(op, len(operands), len(extras))
                  and None not in inputs)
        return self.add(call, target, owner, tuple(i for i in inputs if i is not None),
                        attrs, refs, usable)

    def add(self, call, target, owner, inputs, attrs, refs=(), usable=True) -> str:
        """Add a node; an op that is unknown or wrongly called is kept as op None, so
        that names inside it are still checked but no later stage trusts it."""
        name = target.id if target else self.anonymous_name(owner.id, call.op)
        self.nodes[name] = Node(
            name, OPS[call.op] if usable else None, tuple(inputs), attrs, span=call.span,
            decl=target.span if target else call.span,
            label=name if target else self.source_text(call.span),
            anonymous=target is None, index=len(self.nodes))
        self.graph.add_node(name)
        self.refs.extend(refs)
        return name

    def anonymous_name(self, owner: str, op: str) -> str:
        key = (owner, op.lower())
        self.anon_counts[key] = self.anon_counts.get(key, 0) + 1
        return f"{owner}.{key[1]}{self.anon_counts[key]}"

    def source_text(self, span: Span) -> str:
        if span.line != span.end_line or span.line > len(self.lines):
            return "(expression)"
        text = self.lines[span.line - 1][span.column - 1:span.end_column - 1]
        return text if len(text) <= 32 else text[:29] + "..."

    # -- arguments

    def keyword_attrs(self, call: ast.Call, op, extras=()) -> dict:
        """The call's keyword values, those given by position after the operands
        (`Dropout(h, 0.5)`) first; for an op with trailing dims (`Reshape(x, _, 64)`),
        those dims."""
        attrs: dict = {}
        if op.trailing_dims:
            attrs.update(self.trailing_dims(call, op, extras))
            extras = ()
        keywords = [*zip(op.keywords, extras), *((k.name, k) for k in call.keywords)]
        for name, given in keywords:
            keyword = given if isinstance(given, ast.Keyword) else _positional_keyword(name, given)
            spec = op.keywords.get(name)
            if spec is None:
                self.report(E106, f"{op.name} takes no keyword '{name}'",
                            keyword.span, help=did_you_mean(name, op.keywords) or
                            _keywords_help(op))
            elif name in attrs:
                self.report(E109, f"keyword '{name}' given twice", keyword.span)
            elif keyword is not None:
                attrs[name] = self.keyword_value(op, keyword, spec)
            else:
                self.report(E107, f"{op.name}: '{name}' takes a value written out (a "
                            "number or a word), not an expression", given.span,
                            help=f"'{name}' takes {spec.hint}")
        return attrs

    def trailing_dims(self, call: ast.Call, op, dims) -> dict:
        return {"dims": tuple(self.dim(arg) for arg in dims),
                "dim_spans": tuple(arg.span for arg in dims)}

    def keyword_value(self, op, keyword: ast.Keyword, spec):
        literal = keyword.value
        try:
            return spec.parse(literal.value, literal.kind)
        except ValueError as err:
            self.report(E107, f"{op.name}: bad value for '{keyword.name}': {err}",
                        literal.span, help=f"'{keyword.name}' takes {spec.hint}")
            return spec.default

    def dims_attrs(self, call: ast.Call) -> dict:
        op = OPS[call.op]
        if op.needs_dims and not call.args:
            self.report(E105, f"{op.name} needs at least one dim, as in {op.name}(10) or "
                        f"{op.name}(_, 10)", call.span)
        dims = tuple(self.dim(arg) for arg in call.args)
        return {"dims": dims, "dim_spans": tuple(a.span for a in call.args),
                **self.keyword_attrs(call, op)}

    def dim(self, arg) -> int | None:
        if isinstance(arg, ast.Name) and arg.id == HOLE:
            return None
        value = _literal_number(arg)
        if value is None or not float(value).is_integer():
            self.report(E110, "a dim is a whole number, or '_' to infer it", arg.span)
            return None
        if value <= 0:
            self.report(E203, f"a dim must be positive, not {int(value)}", arg.span)
            return None
        return int(value)

    # -- names, once every definition is known (a name may be used before its line)

    def resolve_names(self) -> None:
        defined = self.nodes
        for ref in self.refs:
            if ref.id != HOLE and ref.id not in defined:
                self.report(E101, f"undefined name '{ref.id}'", ref.span,
                            help=did_you_mean(ref.id, list(defined)))
        edges = [(source, node.name) for node in defined.values()
                 for source in node.inputs if source in defined]
        self.graph.add_edges_from(edges)


def _literal_number(expr) -> int | float | None:
    """The value of `3` or `-3`; None for anything else."""
    if isinstance(expr, ast.Number):
        return expr.value
    if isinstance(expr, ast.Call) and expr.op == "Neg" and isinstance(expr.args[0], ast.Number):
        return -expr.args[0].value
    return None


def _user_op(name: str):
    """The op a spec may call by `name`, or None (a Const is written as a number)."""
    op = OPS.get(name)
    return op if op is not None and op.user else None


def _takes_dims(call: ast.Call) -> bool:
    op = OPS.get(call.op)
    return op is not None and op.operands is None


def _operands(call: ast.Call) -> tuple:
    """The positional args of a call that are operands, lowered as expressions: all of
    an unknown op's (their names are still checked); the rest are dims or keyword
    values given by position."""
    op = _user_op(call.op)
    return call.args if op is None else call.args[:len(op.operands)]


def _arity_fits(op, operands: int, extras: int) -> bool:
    if operands < len(op.operands) - op.optional:
        return False
    return extras >= 1 if op.trailing_dims else extras <= len(op.keywords)


def _positional_keyword(name: str, expr) -> ast.Keyword | None:
    """A keyword value given by position, as the keyword it stands for: a number or a
    word; None for an expression."""
    value = _literal_number(expr)
    if value is not None:
        return ast.Keyword(name, ast.Literal(value, "number", expr.span), expr.span)
    if isinstance(expr, ast.Name):
        return ast.Keyword(name, ast.Literal(expr.id, "word", expr.span), expr.span)
    return None


def _arity_message(op, given: int) -> str:
    least = len(op.operands) - op.optional
    count = (f"{least} or {len(op.operands)}" if op.optional == 1 else
             f"{least} to {len(op.operands)}" if op.optional else str(least))
    wanted_text = f"{count} argument{'' if count == '1' else 's'}"
    names = ", ".join(op.operands)
    if op.trailing_dims:
        wanted_text += " and dims"
    elif op.keywords:
        names += "; then " + ", ".join(op.keywords) + ", by position or by name"
    verb = "was" if given == 1 else "were"
    return f"{op.name} takes {wanted_text} ({names}) but {given} {verb} given"


def _keywords_help(op) -> str:
    if not op.keywords:
        return f"{op.name} takes no keywords"
    return f"{op.name} takes: {', '.join(op.keywords)}"
