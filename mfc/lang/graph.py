"""Stage 2: AST → `Node` records (mfc.ir) and the graph of who reads whom, with every
fragment call expanded, and the checks local to one definition or call.

`Node.inputs` keeps argument order and repeats (`Mul(x, x)`); the graph's edges only say
who reads whom, and its nodes carry no attributes. Checked here: names (undefined,
defined twice), ops (unknown, argument count, keywords), dims of Input and Param, and
fragment calls (arguments, recursion, return values).
Anonymous sub-expressions become nodes named `owner.opN` (`cost.pow1`) with the span of
their sub-expression.

A fragment call is expanded where it is lowered: its body is read in a `Scope` of its
own, whose nodes are named after the call (`h1.W`, `scores.dense1.W` for a call inside
an expression, `h.2.W` for a repeat's second), whose parameters are bound to the call's
arguments (`mfc.lang.fragments.Arg`), and whose spans are at a `Site` naming the call,
so that a diagnostic in the body carries the chain of calls that led there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

from mfc.diagnostics import (E101, E102, E103, E104, E105, E106, E107, E108, E109, E110,
                             E111, E113, E114, E115, E130, E131, E203, W007, Note, Report,
                             Site, Span, did_you_mean)
from mfc.ir import Call, Node
from mfc.lang import ast
from mfc.lang.fragments import (REPEAT, Arg, Definition, bind, callable_names, describe,
                                literal_arg, shadowing)
from mfc.ops import OPS, USER_OPS
from mfc.text import large_count, plural

HOLE = "_"  # a dim to infer
# Past these a repeat is a typo, not a network: expanding it would not end in a session.
MAX_REPEAT = 10_000  # calls in one repeat (a 10,000-layer chain checks in about a second)
MAX_NODES = 200_000  # nodes a spec's repeats may grow it to, nested ones included
#                     (twice the largest spec bench/check_bench.py checks, in 4 s)


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


class Target(NamedTuple):
    """The node an expression defines: its full name and where that name is declared.
    `owner` (by default the name) is what the nodes and calls inside the expression are
    named after (`cost.pow1`); `returned`: a fragment's return value, named by its
    caller, so that a call there is named after the call it returns from (`h2.dense1`)."""

    name: str
    decl: Span
    owner: str | None = None
    returned: bool = False

    @property
    def prefix(self) -> str:
        return self.owner or self.name


class Plan(NamedTuple):
    """How a call is lowered: `kind` is 'op', 'leaf' (Input, Param), 'fragment',
    'repeat', 'unknown' (reported), 'placeholder' (a fragment checked without its
    arguments); `callee` the op or the fragment's Definition; `lowered`, the args that
    are expressions, lowered before the call."""

    kind: str
    callee: object
    lowered: tuple


@dataclass
class Scope:
    """Where names are read: the spec's top level, or one call's instance of a fragment
    body. A name defined here is `prefix + name`; `args` binds the fragment's
    parameters; spans of its text are at `site`; `call` names the call (None at the top
    level); `stack`, the fragments being expanded, outermost first."""

    prefix: str
    locals: set[str]
    args: dict[str, Arg]
    site: Site | None = None
    call: str | None = None
    stack: tuple[str, ...] = ()

    def at(self, span: Span) -> Span:
        return span if self.site is None else span.at(self.site)

    def visible(self) -> list[str]:
        return [*self.locals, *self.args]


class Built(NamedTuple):
    """What `build` returns: the nodes in definition order, who reads whom, and each
    fragment call by name, in the order they were expanded."""

    nodes: dict[str, Node]
    graph: Graph
    calls: dict[str, Call]


def build(module: ast.Module, source: str, report: Report,
          library: dict[str, Definition] | None = None) -> Built:
    """The nodes of a parsed spec, by name in definition order, with every fragment call
    expanded (`library`: the fragments it may call, its own included), the graph of who
    reads whom, and the calls; problems found on the way go to `report`."""
    library = library if library is not None else {}
    builder = _Builder(source, report, library)
    top = Scope("", {t.id for a in module.assigns for t in a.targets}, {})
    for assign in module.assigns:
        builder.assign(assign, top)
    for ret in module.returns:
        report(E131, "'return' outside a fragment", ret.span,
               help="a spec's top level defines nodes with `name = ...`; `return` ends a "
               "fragment's body")
    builder.resolve_names()
    builder.check_uncalled()
    return Built(builder.nodes, builder.graph, builder.calls)


class _Builder:
    def __init__(self, source: str, report: Report, library: dict[str, Definition],
                 sandbox: bool = False):
        self.source, self.report, self.library = source, report, library
        self.sandbox = sandbox  # checking a fragment without a call: nested calls not expanded
        self.lines: dict = {None: source.splitlines()}  # by Source, for labels
        self.nodes: dict[str, Node] = {}
        self.graph = Graph()
        self.calls: dict[str, Call] = {}
        self.called: set[str] = set()  # fragments expanded (or, in a sandbox, named)
        self.anon_counts: dict[tuple[str, str], int] = {}
        self.refs: list[tuple[str, Span, Scope]] = []  # names read, checked at the end
        self.locals: dict[str, tuple[set, set]] = {}  # fragment → (its locals, shadowed)

    # -- definitions

    def assign(self, assign: ast.Assign, scope: Scope) -> None:
        targets, values = assign.targets, assign.values
        if len(targets) > 1 and len(values) == 1 and \
                self.plan(values[0], scope).kind == "fragment":
            self.define_several(assign, scope)  # h, c = Cell(x, h0, c0)
            return
        if len(targets) != len(values):
            self.report(E104, f"{plural(len(targets), 'name')} but "
                        f"{plural(len(values), 'value')}",
                        scope.at(assign.span), help="write one value for each name, as in "
                        "`X, y = Input(), Input()`")
        for target, value in zip(targets, values):
            name = self.target(target, scope)
            if name is not None:
                self.lower(value, scope, Target(name, scope.at(target.span)))

    def target(self, target: ast.Name, scope: Scope) -> str | None:
        """The full name `target` defines, or None when it cannot be defined."""
        if target.id == HOLE:
            self.report(E108, "'_' stands for a dim to infer; it cannot be defined",
                        scope.at(target.span))
            return None
        if target.id in scope.args:
            return None  # a fragment's body defining a parameter: reported once, by fragments
        name = scope.prefix + target.id
        if name in self.nodes:
            self.report(E103, f"'{target.id}' is defined twice", scope.at(target.span),
                        notes=[Note(f"'{target.id}' first defined here", self.nodes[name].decl)])
            return None
        return name

    # -- expressions, lowered without recursion (nesting depth is the user's to choose)

    def lower(self, expr: ast.Expr, scope: Scope, target: Target | None,
              owner: Target | None = None) -> str | None:
        """Lower `expr`, read in `scope`, to nodes; its own node is named `target` (None:
        anonymous), its sub-expressions after `owner` (by default the target: `cost.pow1`).
        Returns the name of the node holding its value, None after an error."""
        owner = owner or target
        results: list[str | None] = []
        stack: list[tuple[ast.Expr, Plan | None]] = [(expr, None)]
        while stack:
            item, plan = stack.pop()
            if type(item) is not ast.Call:
                results.append(self.leaf(item, scope, target if item is expr else None, owner))
                continue
            if plan is None:
                plan = self.plan(item, scope)
                if plan.lowered:
                    stack.append((item, plan))
                    stack.extend([(arg, None) for arg in reversed(plan.lowered)])
                    continue
            count = len(plan.lowered)
            inputs = results[len(results) - count:] if count else []
            del results[len(results) - count:]
            results.append(self.call(item, plan, inputs, scope,
                                     target if item is expr else None, owner))
        return results[0]

    def plan(self, call, scope: Scope) -> Plan:
        """How `call` is lowered (see `Plan`); a call whose op is a parameter calls what
        the parameter is given."""
        if type(call) is not ast.Call:
            return Plan("value", None, ())
        name = call.op
        given = None
        if name in scope.args and not call.infix:
            given = scope.args[name]
            if given.kind != "word":
                kind = "placeholder" if given.kind == "unknown" else "unknown"
                return Plan(kind, given, call.args)
            name = given.value
        if name in self.library:
            return Plan("fragment", self.library[name], _expressions(call.args))
        if name == REPEAT:
            return Plan("repeat", None, _expressions(call.args[2:]))
        op = _user_op(name)
        if op is None:
            return Plan("unknown", given or name, call.args)
        if op.operands is None:
            return Plan("leaf", op, ())
        return Plan("op", op, call.args[:len(op.operands)])

    def leaf(self, item, scope: Scope, target: Target | None, owner: Target) -> str | None:
        if type(item) is ast.Number:
            if not math.isfinite(item.value):
                self.report(E111, "this number is too large to represent", scope.at(item.span))
            return self.add(OPS["Const"], scope.at(item.span), (), {"value": item.value},
                            scope, target, owner, "Const")
        if item.id == HOLE:
            self.report(E108, "'_' stands for a dim to infer; it is not a value here",
                        scope.at(item.span), help="'_' goes in the dims of Input(...) or "
                        "Param(...)")
            return None
        if item.id in scope.args:
            return self.parameter(item, scope.args[item.id], scope, target, owner)
        name = self.read(item, scope)
        if name is None or target is None:
            return name
        return self.add(OPS["Identity"], scope.at(item.span), (name,), {}, scope, target,
                        owner, "Identity")

    def read(self, name: ast.Name, scope: Scope) -> str | None:
        """The node a name in `scope` stands for (checked once every node is known)."""
        if name.id not in scope.locals:
            self.report(E101, f"undefined name '{name.id}'", scope.at(name.span),
                        help=did_you_mean(name.id, scope.visible()))
            return None
        full = scope.prefix + name.id
        self.refs.append((full, name.span, scope))
        return full

    def parameter(self, name: ast.Name, arg: Arg, scope: Scope, target, owner) -> str | None:
        """A fragment's parameter read as a value: the node it is given, or a constant."""
        if arg.kind == "number":
            return self.add(OPS["Const"], arg.span, (), {"value": arg.value}, scope, target,
                            owner, "Const")
        if arg.kind == "unknown":
            return self.add(None, scope.at(name.span), (), {}, scope, target, owner, name.id)
        if arg.kind == "word" and self.names_nothing(arg.value):
            self.report(E101, f"undefined name '{arg.value}'", arg.span, help=arg.hint)
            return None
        if arg.kind == "word":
            self.report(E113, f"'{name.id}' is given {arg.value}, which is not a value; here "
                        "it is read as one", arg.span,
                        help=f"give '{name.id}' a node or a number")
            return None
        if target is None:
            return arg.value
        return self.add(OPS["Identity"], scope.at(name.span), (arg.value,), {}, scope,
                        target, owner, "Identity")

    def call(self, call: ast.Call, plan: Plan, inputs, scope: Scope, target, owner) -> str | None:
        if plan.kind == "op":
            return self.op_call(call, plan.callee, inputs, scope, target, owner)
        if plan.kind == "leaf":
            errors = self.report.errors
            attrs = self.dims_attrs(call, plan.callee, scope)
            op = plan.callee if self.report.errors == errors else None
            return self.add(op, scope.at(call.span), (), attrs, scope, target, owner, call.op)
        if plan.kind == "fragment":
            return self.fragment_call(call, plan.callee, inputs, scope, target, owner)
        if plan.kind == "repeat":
            return self.repeat(call, inputs, scope, target, owner)
        if plan.kind == "unknown":
            self.unknown_callee(call, plan.callee, scope)
        inputs = tuple(i for i in inputs if i is not None)
        return self.add(None, scope.at(call.span), inputs, {}, scope, target, owner, call.op)

    def unknown_callee(self, call: ast.Call, callee, scope: Scope) -> None:
        if isinstance(callee, Arg) and callee.kind != "word":
            self.report(E113, f"'{call.op}' is given {callee.value}, which is not an op or a "
                        "fragment; here it is called", callee.span,
                        help=f"give '{call.op}' an op's or a fragment's name, as "
                        f"{call.op} = ReLU")
            return
        if isinstance(callee, Arg):  # a word given for a parameter the body calls
            self.report(E102, f"unknown op '{callee.value}'", callee.span,
                        help=did_you_mean(callee.value, callable_names(self.library)))
            return
        help = did_you_mean(callee, callable_names(self.library))
        if callee[:1].islower() and callee in scope.locals:
            help = f"'{callee}' is a node, not an op: only ops and fragments are called"
        self.report(E102, f"unknown op '{callee}'", scope.at(call.op_span),
                    help=help or f"the ops are: {', '.join(USER_OPS)}")

    def op_call(self, call: ast.Call, op, inputs, scope: Scope, target, owner) -> str | None:
        operands = call.args[:len(op.operands)]
        extras = call.args[len(operands):]
        fits = _arity_fits(op, len(operands), len(extras))
        if not fits:
            self.report(E105, _arity_message(op, len(call.args)), scope.at(call.span))
        attrs = self.keyword_attrs(call, op, extras, scope)
        usable = fits and None not in inputs
        return self.add(op if usable else None, scope.at(call.span),
                        tuple(i for i in inputs if i is not None), attrs, scope, target,
                        owner, op.name)  # `act(x)` given ReLU: act's node is `relu1`

    def add(self, op, span: Span, inputs, attrs, scope: Scope, target, owner, what: str) -> str:
        """Add a node (`span`: its expression, already at its site). An op that is
        unknown or wrongly called is kept as op None, so that names inside it are still
        checked but no later stage trusts it."""
        name = target.name if target else self.anonymous_name(owner.prefix, what, scope)
        self.nodes[name] = Node(
            name, op, tuple(inputs), attrs, span=span,
            decl=target.decl if target else span,
            label=name if target else self.source_text(span),
            anonymous=target is None, index=len(self.nodes), call=scope.call)
        self.graph.add_node(name)
        return name

    def anonymous_name(self, owner: str, what: str, scope: Scope) -> str:
        """`owner.whatN`, skipping a name the scope defines (`h1.linear1` for the body's
        own `linear1`)."""
        key = (owner, what.lower())
        while True:
            self.anon_counts[key] = count = self.anon_counts.get(key, 0) + 1
            name = f"{owner}.{key[1]}{count}"
            local = name[len(scope.prefix):] if name.startswith(scope.prefix) else None
            if name not in self.nodes and local not in scope.locals:
                return name

    def source_text(self, span: Span) -> str:
        lines = self.lines.get(span.source)
        if lines is None:
            lines = self.lines[span.source] = span.source.text.splitlines()
        if span.line != span.end_line or span.line > len(lines):
            return "(expression)"
        text = lines[span.line - 1][span.column - 1:span.end_column - 1]
        return text if len(text) <= 32 else text[:29] + "..."

    def names_nothing(self, word) -> bool:
        return word not in self.library and _user_op(str(word)) is None

    # -- arguments of ops

    def keyword_attrs(self, call: ast.Call, op, extras, scope: Scope) -> dict:
        """The call's keyword values, those given by position after the operands
        (`Dropout(h, 0.5)`) first; for an op with trailing dims (`Reshape(x, _, 64)`),
        those dims."""
        attrs: dict = {}
        if not extras and not call.keywords and not op.trailing_dims:  # most calls
            return attrs
        if op.trailing_dims:
            attrs.update(self.trailing_dims(extras, scope))
            extras = ()
        given = [*((name, self.positional_keyword(name, e, scope), e)
                   for name, e in zip(op.keywords, extras)),
                 *((k.name, self.written_keyword(k, scope), k) for k in call.keywords)]
        for name, keyword, written in given:
            spec = op.keywords.get(name)
            if spec is None:
                self.report(E106, f"{op.name} takes no keyword '{name}'",
                            scope.at(written.span), help=did_you_mean(name, op.keywords) or
                            _keywords_help(op))
            elif name in attrs:
                self.report(E109, f"keyword '{name}' given twice", scope.at(written.span))
            elif keyword is _UNKNOWN:
                attrs[name] = spec.default
            elif keyword is not None:
                attrs[name] = self.keyword_value(op, keyword, spec)
            else:
                self.report(E107, f"{op.name}: '{name}' takes a value written out (a "
                            "number or a word), not an expression", scope.at(written.span),
                            help=f"'{name}' takes {spec.hint}")
        return attrs

    def written_keyword(self, keyword: ast.Keyword, scope: Scope):
        """`name = literal` at its site; a bare word naming a parameter takes its value."""
        literal = keyword.value
        if literal.kind == "word" and literal.value in scope.args:
            return _keyword_of(keyword.name, scope.args[literal.value])
        if scope.site is None:
            return keyword
        located = ast.Literal(literal.value, literal.kind, scope.at(literal.span))
        return ast.Keyword(keyword.name, located, scope.at(keyword.span))

    def positional_keyword(self, name: str, expr, scope: Scope):
        """A keyword value given by position, as the keyword it stands for: a number or a
        word (a parameter's value); None for an expression."""
        if type(expr) is ast.Name and expr.id in scope.args:
            return _keyword_of(name, scope.args[expr.id])
        value = _literal_number(expr)
        span = scope.at(expr.span)
        if value is not None:
            return ast.Keyword(name, ast.Literal(value, "number", span), span)
        if type(expr) is ast.Name:
            return ast.Keyword(name, ast.Literal(expr.id, "word", span), span)
        return None

    def keyword_value(self, op, keyword: ast.Keyword, spec):
        literal = keyword.value
        try:
            return spec.parse(literal.value, literal.kind)
        except ValueError as err:
            self.report(E107, f"{op.name}: bad value for '{keyword.name}': {err}",
                        literal.span, help=f"'{keyword.name}' takes {spec.hint}")
            return spec.default

    def dims_attrs(self, call: ast.Call, op, scope: Scope) -> dict:
        if op.needs_dims and not call.args:
            self.report(E105, f"{op.name} needs at least one dim, as in {op.name}(10) or "
                        f"{op.name}(_, 10)", scope.at(call.span))
        return {**self.trailing_dims(call.args, scope),
                **self.keyword_attrs(call, op, (), scope)}

    def trailing_dims(self, dims, scope: Scope) -> dict:
        located = [self.dim(arg, scope) for arg in dims]
        return {"dims": tuple(d for d, _ in located), "dim_spans": tuple(s for _, s in located)}

    def dim(self, arg, scope: Scope) -> tuple[int | None, Span]:
        """A dim's value (None: `_`, or wrong) and where it is written: a parameter's
        value is written at the call."""
        span = scope.at(arg.span)
        if type(arg) is ast.Name and arg.id == HOLE:
            return None, span
        value = _literal_number(arg)
        if type(arg) is ast.Name and arg.id in scope.args:
            given = scope.args[arg.id]
            if given.kind == "unknown":
                return None, span
            span, value = given.span, given.value if given.kind == "number" else None
        if value is None or not float(value).is_integer():
            self.report(E110, "a dim is a whole number, or '_' to infer it", span,
                        help=self.dim_name_help(arg, scope))
            return None, span
        if value <= 0:
            self.report(E203, f"a dim must be positive, not {int(value)}", span)
            return None, span
        return int(value), span

    @staticmethod
    def dim_name_help(arg, scope: Scope) -> str | None:
        """For a name written as a dim: the fragment's dim parameters it may mean."""
        if type(arg) is not ast.Name or arg.id in scope.args:
            return None
        dims = [name for name, given in scope.args.items() if given.kind == "number"]
        near = did_you_mean(arg.id, dims)
        if near:
            return near
        return f"'{arg.id}' is not a parameter of this fragment" if scope.call else None

    # -- fragment calls

    def fragment_call(self, call: ast.Call, definition: Definition, inputs, scope: Scope,
                      target, owner) -> str:
        prefix = self.call_name(definition.name, scope, target, owner)
        result = Target(target.name if target else prefix,
                        target.decl if target else scope.at(call.span))
        names = self.expand(call, definition, self.call_args(call, inputs, scope), scope,
                            prefix, [result])
        return names[0] if names else self.placeholder(result, call, scope)

    def call_name(self, what: str, scope: Scope, target, owner) -> str:
        """The name of a call (its nodes' prefix): its target's, or anonymous after its
        owner, as for a call inside an expression or a fragment's return value."""
        if target is not None and not target.returned:
            return target.name
        return self.anonymous_name((target or owner).prefix, what, scope)

    def define_several(self, assign: ast.Assign, scope: Scope) -> None:
        """`h, c = Cell(x, h0, c0)`: a call whose return values the names take apart."""
        targets, call = assign.targets, assign.values[0]
        definition = self.plan(call, scope).callee
        returns = definition.fragment.returns
        if len(returns) == 1 and len(returns[0].values) != len(targets):
            self.called.add(definition.name)
            self.report(E104, f"{plural(len(targets), 'name')} but {definition.name} "
                        f"returns {plural(len(returns[0].values), 'value')}",
                        scope.at(assign.span))
        names = [self.target(t, scope) for t in targets]
        if None in names:
            return
        results = [Target(n, scope.at(t.span)) for n, t in zip(names, targets)]
        inputs = [self.lower(arg, scope, None, owner=results[0])
                  for arg in _expressions(call.args)]
        if not self.expand(call, definition, self.call_args(call, inputs, scope), scope,
                           names[0], results):
            for result in results:
                self.placeholder(result, call, scope)

    def expand(self, call: ast.Call, definition: Definition, given, scope: Scope,
               prefix: str, results: list[Target], repeat=None) -> list | None:
        """Instantiate `definition` for one call: its body's nodes named `prefix.name`,
        its return values named as `results`. None when the call is wrong (reported)."""
        fragment, call_span = definition.fragment, scope.at(call.span)
        self.called.add(definition.name)
        if definition.name in scope.stack:
            path = " -> ".join(scope.stack[scope.stack.index(definition.name):] +
                               (definition.name,))
            self.report(E130, f"{definition.name} calls itself ({path}): a fragment cannot "
                        "be expanded inside its own expansion", call_span,
                        help="repeat(N, Fragment, x, ...) chains calls")
            return None
        site = Site(definition.source, definition.name, call_span)
        positional, keywords = given
        bound = bind(definition, call, positional, keywords, site, call_span, self.report)
        if bound is None or len(fragment.returns) != 1:
            return None  # wrong arguments, reported; a fragment without one return, too
        values = fragment.returns[0].values
        if len(values) != len(results):
            self.wrong_count(definition, len(values), len(results), call_span)
            return None
        if self.sandbox:
            return [self.add(None, call_span, (), {}, scope, r, r, definition.name)
                    for r in results]
        locals_, shadowed = self.fragment_locals(definition)
        inner = Scope(prefix + ".", locals_, bound, site, prefix,
                      scope.stack + (definition.name,))
        self.calls[prefix] = Call(prefix, definition.name, describe(bound, fragment.params),
                                  scope.call, call_span, repeat=repeat)
        for assign in fragment.body:
            self.assign(assign, inner)
        names = [self.lower(value, inner, Target(result.name, result.decl, prefix, True))
                 for value, result in zip(values, results)]
        self.calls[prefix] = replace(self.calls[prefix], outputs=tuple(
            n for n in names if n is not None))
        return names if None not in names else None

    def wrong_count(self, definition: Definition, given: int, wanted: int, span: Span) -> None:
        if wanted == 1:  # (a tuple of names is checked against the count before)
            self.report(E115, f"{definition.name} returns {given} values; a call inside an "
                        "expression stands for one", span,
                        help=f"take them apart first: `a, b = {definition.name}(...)`")

    def fragment_locals(self, definition: Definition) -> tuple[set, set]:
        found = self.locals.get(definition.name)
        if found is None:
            shadowed = shadowing(definition)
            names = {t.id for a in definition.fragment.body for t in a.targets} - shadowed
            found = self.locals[definition.name] = (names, shadowed)
        return found

    def placeholder(self, result: Target, call: ast.Call, scope: Scope) -> str:
        """A node standing for a call that went wrong (reported), so that its name is
        still defined and nothing downstream reports again."""
        if result.name in self.nodes:
            return result.name
        return self.add(None, scope.at(call.span), (), {}, scope, result, result, call.op)

    def call_args(self, call: ast.Call, inputs, scope: Scope) -> tuple[list, list]:
        """(positional Args, (name, Arg, span) per keyword) of a fragment call; `inputs`
        are the nodes of its arguments that are expressions, in order."""
        lowered = iter(inputs)
        positional = [self.arg(expr, scope) if _is_plain(expr) else
                      _node_arg(next(lowered), scope.at(expr.span)) for expr in call.args]
        keywords = [(k.name, self.keyword_arg(k.value, scope), scope.at(k.span))
                    for k in call.keywords]
        return positional, keywords

    def arg(self, expr, scope: Scope) -> Arg | None:
        """A number or a name given to a fragment, as an Arg."""
        span = scope.at(expr.span)
        number = _literal_number(expr)
        if number is not None:
            if not math.isfinite(number):
                self.report(E111, "this number is too large to represent", span)
                return None
            return Arg("number", number, span)
        name = expr.id
        if name == HOLE:
            self.report(E108, "'_' stands for a dim to infer; it is not a value here", span)
            return None
        if name in scope.args:
            return scope.args[name]
        if name in scope.locals:
            return Arg("node", self.read(expr, scope), span, word=name)
        hint = None if not self.names_nothing(name) else \
            did_you_mean(name, scope.visible() + callable_names(self.library))
        return Arg("word", name, span, word=name, hint=hint)  # `init` given by position

    def keyword_arg(self, literal: ast.Literal, scope: Scope) -> Arg | None:
        """A keyword's value given to a fragment: a bare word is a parameter's value,
        an op or a fragment, a node, or else itself (`init = xavier`)."""
        word = literal.value
        if literal.kind == "word" and word == HOLE:
            self.report(E108, "'_' stands for a dim to infer; it is not a value here",
                        scope.at(literal.span))
            return None
        if literal.kind != "word" or word in self.library or _user_op(word) is not None:
            return literal_arg(literal, scope.site)
        if word in scope.args:
            return scope.args[word]
        if word in scope.locals:
            name = ast.Name(word, literal.span)
            return Arg("node", self.read(name, scope), scope.at(literal.span), word=word)
        arg = literal_arg(literal, scope.site)
        return replace(arg, hint=did_you_mean(word, scope.visible() +
                                              callable_names(self.library)))

    def repeat(self, call: ast.Call, inputs, scope: Scope, target, owner) -> str:
        """`repeat(N, Fragment, x, ...)`: N calls, each one's value the next one's first
        argument; the calls are `name.1` ... `name.N`, the last one's value `name`."""
        name = self.call_name(REPEAT, scope, target, owner)
        result = Target(target.name if target else name,
                        target.decl if target else scope.at(call.span))
        steps = self.repeat_steps(call, scope)
        if steps is None:
            return self.placeholder(result, call, scope)
        count, definition = steps
        positional, keywords = self.call_args(ast.Call(call.op, call.args[2:], call.keywords,
                                                       call.span, call.op_span), inputs, scope)
        value = positional[0]
        for i in range(1, count + 1):
            if len(self.nodes) > MAX_NODES:
                self.report(E114, f"repeat({count}, {definition.name}, ...) would grow the "
                            f"spec past {MAX_NODES:,} nodes", scope.at(call.args[0].span),
                            help="a network this large is a typo in a count")
                return self.placeholder(result, call, scope)
            step = Target(result.name if i == count else f"{name}.{i}", result.decl)
            names = self.expand(call, definition, ([value, *positional[1:]], keywords),
                                scope, f"{name}.{i}", [step], repeat=(name, i, count))
            if not names:
                return self.placeholder(result, call, scope)
            value = Arg("node", names[0], scope.at(call.span))
        return result.name

    def repeat_steps(self, call: ast.Call, scope: Scope) -> tuple[int, Definition] | None:
        """(N, the fragment) of a repeat, or None (reported)."""
        if len(call.args) < 3:
            self.report(E105, "repeat takes a count, a fragment and the fragment's first "
                        "argument, as in repeat(3, Dense, x, 64)", scope.at(call.span))
            return None
        count = self.arg(call.args[0], scope) if _is_plain(call.args[0]) else None
        callee = self.arg(call.args[1], scope) if _is_plain(call.args[1]) else None
        ok = True
        if count is None or count.kind != "number" or not float(count.value).is_integer() \
                or count.value < 1:
            where = count.span if count is not None else scope.at(call.args[0].span)
            self.report(E114, "repeat's count is a whole number of 1 or more", where)
            ok = False
        elif count.value > MAX_REPEAT:
            self.report(E114, f"repeat's count is at most {MAX_REPEAT:,}, not "
                        f"{large_count(int(count.value))}", count.span,
                        help="a chain this deep is a typo in the count")
            ok = False
        if callee is not None and callee.value in self.library:
            self.called.add(callee.value)
        if callee is None or callee.kind != "word" or callee.value not in self.library:
            where = callee.span if callee is not None else scope.at(call.args[1].span)
            what = f"'{callee.value}' is an op" if callee is not None and \
                _user_op(str(callee.value)) else "it is not a fragment"
            self.report(E114, f"repeat chains calls of a fragment; {what}", where,
                        help="define one: fragment Layer(x, n) { ... return ... }")
            ok = False
        if not ok:
            return None
        definition = self.library[callee.value]
        self.called.add(definition.name)
        returns = definition.fragment.returns
        if len(returns) == 1 and len(returns[0].values) != 1:
            self.report(E114, f"repeat chains a fragment that returns one value; "
                        f"{definition.name} returns {len(returns[0].values)}",
                        scope.at(call.args[1].span))
            return None
        return int(count.value), definition

    # -- names, once every definition is known (a name may be used before its line)

    def resolve_names(self) -> None:
        defined = self.nodes
        for name, span, scope in self.refs:
            if name not in defined:
                local = name[len(scope.prefix):]
                self.report(E101, f"undefined name '{local}'", scope.at(span),
                            help=did_you_mean(local, scope.visible()))
        edges = [(source, node.name) for node in defined.values()
                 for source in node.inputs if source in defined]
        self.graph.add_edges_from(edges)

    def check_uncalled(self) -> None:
        """A fragment no call expanded is checked as far as it can be without arguments
        (its names, ops, arguments and dims; not shapes), and, if the spec itself defines
        it and nothing names it, warned of."""
        if self.sandbox:
            return
        named = set(self.called)
        for definition in self.library.values():
            if definition.name in self.called or definition.std:
                continue
            sandbox = _Builder(self.source, self.report, self.library, sandbox=True)
            sandbox.check(definition)
            named |= sandbox.called - {definition.name}
        for definition in self.library.values():
            if definition.name not in named and definition.source is None:
                self.report(W007, f"fragment {definition.name} is never called",
                            definition.fragment.name_span)

    def check(self, definition: Definition) -> None:
        """Expand `definition` once with its defaults, other parameters unknown."""
        site = Site(definition.source) if definition.source is not None else None
        args = {p.name: literal_arg(p.default, site) if p.default is not None else
                Arg("unknown", None, definition.at(p.span)) for p in definition.fragment.params}
        fragment = definition.fragment
        if len(fragment.returns) != 1:
            return
        locals_, _ = self.fragment_locals(definition)
        prefix = f"<{definition.name}>"
        inner = Scope(prefix + ".", locals_, args, site, prefix, (definition.name,))
        for assign in fragment.body:
            self.assign(assign, inner)
        for i, value in enumerate(fragment.returns[0].values):
            self.lower(value, inner, Target(f"{prefix}#{i}", definition.at(value.span)))
        self.resolve_names()


_UNKNOWN = object()  # a keyword given a parameter that a check without a call cannot know


def _keyword_of(name: str, arg: Arg):
    """A parameter's value given to an op's keyword, as the keyword literal it stands for."""
    if arg.kind == "unknown":
        return _UNKNOWN
    if arg.kind == "number":
        return ast.Keyword(name, ast.Literal(arg.value, "number", arg.span), arg.span)
    word = arg.word if arg.word is not None else arg.value
    return ast.Keyword(name, ast.Literal(word, "word", arg.span), arg.span)


def _node_arg(name: str | None, span: Span) -> Arg | None:
    return None if name is None else Arg("node", name, span)


def _is_plain(expr) -> bool:
    """A name or a number, given to a fragment as it is (not lowered to a node)."""
    return type(expr) is ast.Name or _literal_number(expr) is not None


def _expressions(args) -> tuple:
    """The args of a fragment call that are lowered to nodes first."""
    return tuple(a for a in args if not _is_plain(a))


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


def _arity_fits(op, operands: int, extras: int) -> bool:
    if operands < len(op.operands) - op.optional:
        return False
    return extras >= 1 if op.trailing_dims else extras <= len(op.keywords)


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
