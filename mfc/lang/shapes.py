"""Stage 4: shape inference, by unification over symbolic dims.

A dim is an int or a `Sym`: the batch (`N`), a width the data will give, a free `_` of an
Input, or a `_` of a Param, which must be resolved by the end. Ops state their rules in
the registry (`Op.shape`) in the vocabulary of `ShapeRules` (`rank`, `same`,
`broadcast`, ...), which unifies dims and reports mismatches naming both operands, their
shapes and where each was declared. A node whose inputs have unknown shapes gets an unknown shape (None), unless its op's
output shape does not depend on them (a loss is one element), and no error of its own,
so one mistake is reported once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple


from mfc.diagnostics import E200, E201, E202, E204, W006, Note, Report
from mfc.ir import Node
from mfc.lang.graph import Graph
from mfc.text import byte_size, format_shape, large_count

MAX_ELEMENTS = 2**28  # 2 GiB of float64: past this, allocation is the user's typo
BATCH, DATA, FREE, PARAM = "batch", "data", "free", "param"


@dataclass(frozen=True)
class Sym:
    id: int


class Dims:
    """Union-find over symbolic dims; a class may be bound to an int."""

    def __init__(self):
        self.parent: list[int] = []
        self.value: list[int | None] = []
        self.kinds: list[set[str]] = []
        self.syms: list[Sym] = []  # each class's Sym, made once (get is called per operand)
        self.batch = self.new(BATCH)

    def new(self, kind: str) -> Sym:
        self.parent.append(len(self.parent))
        self.value.append(None)
        self.kinds.append({kind})
        self.syms.append(Sym(len(self.parent) - 1))
        return self.syms[-1]

    def root(self, sym: Sym) -> int:
        i = sym.id
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def get(self, dim):
        """An int when the dim is known, else the Sym of its class."""
        if isinstance(dim, int):
            return dim
        i = self.root(dim)
        return self.value[i] if self.value[i] is not None else self.syms[i]

    def unify(self, a, b) -> bool:
        a, b = self.get(a), self.get(b)
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        if isinstance(a, int):
            a, b = b, a
        if isinstance(b, int):
            if BATCH in self.kinds[a.id]:
                return False  # the batch size varies; no fixed size can equal it
            self.value[a.id] = b
            return True
        if a != b:
            self.parent[b.id] = a.id
            self.kinds[a.id] |= self.kinds[b.id]
        return True

    def show(self, dim) -> str:
        value = self.get(dim)
        if isinstance(value, int):
            return str(value)
        return "N" if BATCH in self.kinds[value.id] else "?"

    def show_shape(self, shape) -> str:
        return format_shape(None if shape is None else [self.show(d) for d in shape],
                            unknown="(unknown)")


class Operand(NamedTuple):  # (made for every node: a tuple is made fastest)
    name: str
    label: str
    shape: tuple | None
    decl: object
    anonymous: bool


@dataclass(frozen=True)
class Feed:
    """An Input the training data fills: `role` is 'features' or 'targets'; `width` the
    feature count (an int, or a Sym when the data is not readable yet)."""

    role: str
    width: object
    setting: object  # the span of the train setting that names the data


def infer(graph: Graph, nodes: dict[str, Node], order: list[str], dims: Dims,
          feeds: dict, report: Report, finished: bool = True) -> dict[str, tuple | None]:
    """Shapes (of symbolic dims) of every node in `order`; problems go to `report`.

    An `Input()` without dims that the data does not feed takes the shape its readers
    fix, where one does (`Linear(X, Param(5, 10), b)`: X is (N, 5); see
    `Op.operand_shape`): found in a first pass, then given to the second as if declared.
    `finished=False` (checking or drawing a spec still being written): a param's `_` that
    only such an Input's width would fix is left unknown, not an error.
    """
    hints = _input_hints(graph, nodes, order, dims, feeds)
    rules = ShapeRules(graph, nodes, dims, feeds, report, hints, finished)
    for name in order:
        rules.visit(nodes[name])
    rules.check_params()
    return rules.shapes


def _input_hints(graph, nodes: dict[str, Node], order: list[str], dims: Dims,
                 feeds: dict) -> dict[str, tuple]:
    """Input name → the shape its readers fix ('N' the batch, ints, None for a size
    still unknown), for each Input with no dims that the data does not feed: passes on
    scratch dims, their diagnostics dropped, until no Input gains a shape (an Input's
    shape may let another's reader know its own operands: `MSE(y, X @ W)`)."""
    blank = [name for name in order if nodes[name].kind == "data" and name not in feeds
             and not nodes[name].attrs.get("dims")]
    hints: dict[str, tuple] = {}
    while len(hints) < len(blank):
        scratch = Dims()
        fed = {name: Feed(feed.role, feed.width if isinstance(feed.width, int) else
                          scratch.new(DATA), feed.setting) for name, feed in feeds.items()}
        rules = ShapeRules(graph, nodes, scratch, fed, Report(), hints)
        for name in order:
            rules.visit(nodes[name])
        found = {}
        for name in blank:
            if name not in hints:
                hint = next((h for reader in graph.successors(name)
                             if (h := rules.operand_hint(nodes[reader], name)) is not None),
                            None)
                if hint is not None:
                    found[name] = hint
        if not found:
            break
        hints.update(found)
    return hints


class ShapeRules:
    """The vocabulary op shape rules are written in; each method reports its own errors
    and returns the output shape, or None when it cannot be known."""

    def __init__(self, graph, nodes: dict[str, Node], dims: Dims, feeds: dict,
                 report: Report, hints: dict | None = None, finished: bool = True):
        self.graph, self.nodes, self.dims, self.feeds = graph, nodes, dims, feeds
        self.report, self.hints, self.finished = report, hints or {}, finished
        self.shapes: dict[str, tuple | None] = {}
        self.param_syms: dict[str, list] = {}
        self.failed: set[str] = set()  # nodes with an error of their own or upstream
        self.operands: dict[str, Operand] = {}  # each visited node, as its readers see it

    def visit(self, node: Node) -> None:
        name = node.name
        operands = [self.operands.get(i) for i in node.inputs]
        if node.op is None or None in operands or not self.failed.isdisjoint(node.inputs):
            shape = None
            self.failed.add(name)
        elif any(o.shape is None for o in operands):
            shape = node.op.shape_of_unknown(node)
        else:
            errors = self.report.errors
            shape = node.op.shape(self, node, *operands)
            if shape and node.kind != "param":
                self._check_size(node, shape)
            if self.report.errors > errors:
                self.failed.add(name)
        self.shapes[name] = shape
        self.operands[name] = Operand(name, node.label, shape, node.decl, node.anonymous)

    # -- reporting

    def mismatch(self, node, message: str, *operands: Operand, code=E200):
        named = list({o.name: o for o in operands  # once each: `x @ x` reads x twice
                      if not o.anonymous and o.name != node.name and o.decl is not None
                      }.values())
        where = ", ".join(f"{o.label} declared at {o.decl}" for o in named)
        text = f"{node.label if node.anonymous else node.op.name}: {message}"
        notes = [Note(f"{o.label} declared here", o.decl) for o in named]
        self.report(code, text + (f" ({where})" if where else ""), node.span, notes=notes)
        return None

    def rank(self, node, x: Operand, *ranks: int) -> bool:
        if len(x.shape) in ranks:
            return True
        wanted = " or ".join(str(r) for r in ranks) + (" dim" if ranks == (1,) else " dims")
        self.mismatch(node, f"{x.label} must have {wanted}, but its shape is "
                      f"{self.dims.show_shape(x.shape)}", x, code=E201)
        return False

    def same(self, node, a: Operand, i: int, b: Operand, j: int) -> bool:
        if self.dims.unify(a.shape[i], b.shape[j]):
            return True
        self.mismatch(node, f"{self._size(a, i)} but {self._size(b, j)}", a, b)
        return False

    def _size(self, x: Operand, axis: int) -> str:
        count = self.dims.show(x.shape[axis])
        if len(x.shape) > 2:
            return f"{x.label} has {count} in dim {axis % len(x.shape)}"
        word = ("row" if axis in (0, -2) else "column") if len(x.shape) == 2 else "element"
        return f"{x.label} has {count} {word}{'' if count == '1' else 's'}"

    # -- leaves

    def operand_hint(self, node, name: str) -> tuple | None:
        """The plain shape `node`'s op says its operand `name` (of unknown shape) must
        have, given the others' shapes; None when it does not say."""
        if node.op is None or name not in node.inputs:
            return None
        index = node.inputs.index(name)
        others = [self.operands.get(i) for i in node.inputs]
        if any(o is None or (o.shape is None and i != index) for i, o in enumerate(others)):
            return None
        shape = node.op.operand_shape(self, index, *[o.shape for o in others])
        if shape is None:
            return None
        return tuple("N" if self._is_batch(d) else (v if isinstance(v := self.dims.get(d), int)
                                                    else None) for d in shape)

    def declared(self, node, batch_first: bool) -> tuple | None:
        dims = node.attrs.get("dims", ())
        if not dims and node.name in self.hints:
            return tuple(self.dims.batch if d == "N" else d if isinstance(d, int) else
                         self.dims.new(FREE) for d in self.hints[node.name])
        shape = tuple(self._declared_dim(node, i, d, batch_first) for i, d in enumerate(dims))
        if node.kind == "param":
            self.param_syms[node.name] = list(shape)
        feed = self.feeds.get(node.name)
        if feed is None:
            return shape if dims or node.kind == "param" else None
        return self._fed(node, shape if dims else None, feed)

    def _declared_dim(self, node, axis: int, dim, batch_first: bool):
        if dim is not None:
            return dim
        if batch_first and axis == 0:
            return self.dims.batch
        return self.dims.new(PARAM if node.kind == "param" else FREE)

    def _fed(self, node, shape, feed: Feed) -> tuple | None:
        batch = self.dims.batch
        if feed.role == "targets":
            expected = (batch,) if shape is None or len(shape) == 1 else (batch, 1)
        else:
            expected = (batch, feed.width)
        if shape is None:
            return expected
        what = "feature matrix" if feed.role == "features" else "targets"
        data = Operand("data", f"the data's {what}", expected, feed.setting, False)
        fed = Operand(node.name, node.label, shape, node.decl, False)
        if len(shape) != len(expected):
            return self.mismatch(node, f"{node.label} is fed the {what} "
                                 f"{self.dims.show_shape(expected)} but is declared with "
                                 f"shape {self.dims.show_shape(shape)}", data, code=E201)
        for axis in range(len(shape)):
            if not self.dims.unify(shape[axis], expected[axis]):
                return self.mismatch(node, f"{self._size(data, axis)} but "
                                     f"{self._size(fed, axis)}", data, fed)
        return shape

    def check_params(self) -> None:
        """Every Param dim must end up known (or be given by the data at run time)."""
        for name, shape in self.param_syms.items():
            node = self.nodes[name]
            if self._resolve_param(node, shape):
                self._check_size(node, shape)

    def _resolve_param(self, node, shape) -> bool:
        if self.failed.intersection(self.graph.successors(node.name)):
            return False  # a use of it failed, and that error says more
        for axis, dim in enumerate(shape):
            value = self.dims.get(dim)
            if isinstance(value, int):
                continue
            kinds = self.dims.kinds[value.id]
            if DATA in kinds and BATCH not in kinds:
                return False
            if FREE in kinds and not self.finished:
                return False  # an Input's width, not known yet: shown as ?
            why = ("it would have to follow the batch size" if BATCH in kinds else
                   "nothing it is used with fixes that size")
            self.report(E202, f"cannot infer dim {axis} of {node.label}: {why}",
                        node.attrs["dim_spans"][axis],
                        help="write the size, or use the param with an operand whose shape "
                        "is known (declare Input dims, as Input(_, 13), or name the data "
                        "in train)")
            return False
        return True

    def _check_size(self, node, shape: list) -> None:
        """E204 for a value too large to allocate (sizes that follow the batch or the
        data are not known here, and pass)."""
        sizes = []
        for dim in shape:  # most shapes hold the batch: done at the first dim, mostly
            size = self.dims.get(dim)
            if not isinstance(size, int):
                return
            sizes.append(size)
        elements = math.prod(sizes)
        if elements > MAX_ELEMENTS:
            self.report(E204, f"{node.label} is too large to allocate: "
                        f"{large_count(elements)} elements ({byte_size(elements * 8)} as "
                        "float64)", node.span,
                        help=f"a value may hold at most {MAX_ELEMENTS:,} elements")

    # -- rules the ops use

    def broadcast(self, node, a: Operand, b: Operand) -> tuple | None:
        """numpy broadcasting: align the trailing dims; 1 stretches, others must agree."""
        if a.shape == b.shape:  # the common case, and a big graph has many of them
            return a.shape
        result = []
        for i in range(1, max(len(a.shape), len(b.shape)) + 1):
            da = a.shape[-i] if i <= len(a.shape) else 1
            db = b.shape[-i] if i <= len(b.shape) else 1
            if self.dims.get(da) == 1:
                result.append(db)
            elif self.dims.get(db) == 1 or self.dims.unify(da, db):
                result.append(da)
            else:
                return self.mismatch(
                    node, f"cannot broadcast {a.label} {self.dims.show_shape(a.shape)} "
                    f"with {b.label} {self.dims.show_shape(b.shape)}", a, b)
        result = tuple(reversed(result))
        batch_dims = [sum(self._is_batch(d) for d in s) for s in (result, a.shape, b.shape)]
        if batch_dims[0] > 1 and batch_dims[0] > max(batch_dims[1:]):  # made here
            self.report(W006, f"{a.label} {self.dims.show_shape(a.shape)} and {b.label} "
                        f"{self.dims.show_shape(b.shape)} broadcast to "
                        f"{self.dims.show_shape(result)}: one value for every pair of "
                        "examples", node.span, help="give both the same shape (declare "
                        "y = Input(_, 1), say), or use MSE(y, a), which takes both as columns")
        return result

    def _is_batch(self, dim) -> bool:
        value = self.dims.get(dim)
        return not isinstance(value, int) and BATCH in self.dims.kinds[value.id]

    def axis(self, node, x: Operand, axis: int) -> bool:
        if -len(x.shape) <= axis < len(x.shape):
            return True
        self.mismatch(node, f"axis {axis} is out of range for {x.label} of shape "
                      f"{self.dims.show_shape(x.shape)}", x, code=E201)
        return False

    def concat(self, node, a: Operand, b: Operand, axis: int) -> tuple | None:
        """a and b joined along `axis`: equal in every other dim; the joined dim is the
        sum of theirs, or a size the run will know (the batch twice, say)."""
        if len(a.shape) != len(b.shape) or not a.shape:
            return self.mismatch(node, f"cannot join {a.label} {self.dims.show_shape(a.shape)} "
                                 f"and {b.label} {self.dims.show_shape(b.shape)}: they need "
                                 "the same number of dims, at least one", a, b, code=E201)
        if not self.axis(node, a, axis):
            return None
        axis %= len(a.shape)
        if not all(self.same(node, a, i, b, i) for i in range(len(a.shape)) if i != axis):
            return None
        sizes = self.dims.get(a.shape[axis]), self.dims.get(b.shape[axis])
        joined = sum(sizes) if all(isinstance(n, int) for n in sizes) else self.dims.new(FREE)
        return a.shape[:axis] + (joined,) + a.shape[axis + 1:]

    def reshape(self, node, x: Operand, dims: tuple) -> tuple | None:
        """x with the shape `dims` (None: the one dim to infer, as numpy's −1), holding
        as many elements. x's batch may only go where the `_` is."""
        holes = [i for i, d in enumerate(dims) if d is None]
        if len(holes) > 1:
            return self.mismatch(node, "only one dim can be '_'; write the others", x,
                                 code=E201)
        known = [self.dims.get(d) for d in x.shape]
        symbols = [d for d in known if not isinstance(d, int)]
        have = math.prod(d for d in known if isinstance(d, int))
        want = math.prod(d for d in dims if d is not None)
        if not symbols and (have % want == 0 if holes else have == want):
            return tuple(have // want if d is None else d for d in dims)
        if len(symbols) == 1 and holes and have == want:
            return tuple(symbols[0] if d is None else d for d in dims)
        if any(not self._is_batch(d) for d in symbols):  # a size the data gives: unchecked
            return tuple(self.dims.new(FREE) if d is None else d for d in dims)
        wanted = ", ".join("_" if d is None else str(d) for d in dims)
        return self.mismatch(node, f"cannot reshape {x.label} {self.dims.show_shape(x.shape)} "
                             f"to ({wanted}): the elements do not fit", x)

    def reduce(self, node, x: Operand, axis: int | None) -> tuple | None:
        if axis is None:
            return ()
        if not self.axis(node, x, axis):
            return None
        axis %= len(x.shape)
        return x.shape[:axis] + x.shape[axis + 1:]
