"""The typed program every stage after the front end reads: `Node` records in a `Program`.

The front end (mfc.lang) builds a `Program` from spec text; backends (mfc.backends), the
training loop (mfc.train), drawing (mfc.draw) and the commands read it and never reach
back into the compiler, the graph builder or data files. A `Program` is plain data: it
imports nothing that runs a network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mfc.diagnostics import E407, Diagnostic, Span

if TYPE_CHECKING:
    import networkx as nx

    from mfc.data import DataInfo
    from mfc.ops import Op
    from mfc.settings import TrainSettings


@dataclass(frozen=True)
class Node:
    """One node of a spec: a named value and the op that computes it.

    `inputs` keeps argument order and repeats (`Mul(x, x)` reads x twice). `shape` is a
    tuple of ints, 'N' (the batch) and '?' (a size the data gives at run time), or None
    while unknown. `op` is None only inside the front end, for a call already reported
    as wrong.
    """

    name: str
    op: Op | None
    inputs: tuple[str, ...] = ()
    attrs: Mapping = field(default_factory=dict)
    span: Span | None = None  # the expression that computes it
    decl: Span | None = None  # where its name is defined (the expression, if anonymous)
    label: str = ""  # how messages name it: its name, or its source text
    anonymous: bool = False
    index: int = 0  # definition order, for stable output
    shape: tuple | None = None
    call: str | None = None  # the fragment call whose body made it (`Call.name`), if any

    @property
    def kind(self) -> str | None:
        return self.op.kind if self.op is not None else None

    @property
    def keywords(self) -> dict:
        """Every keyword of its op, the node's own value or the op's default (and a
        Reshape's dims): what a backend lowers it with."""
        found = {key: self.attrs.get(key, spec.default) for key, spec in self.op.keywords.items()}
        if self.op.trailing_dims:
            found["dims"] = self.attrs.get("dims", (None,))
        return found

    @property
    def elements(self) -> int | None:
        """How many numbers the value holds, or None while a size is not known."""
        if self.shape is None or not all(isinstance(d, int) for d in self.shape):
            return None
        return math.prod(self.shape)

    def declared_at(self) -> str:
        """Where the spec defines it, for messages: 'declared at line 3'."""
        return f"declared at line {self.decl.line}" if self.decl else "declared in the spec"

    def with_shape(self, shape: tuple | None) -> Node:
        """A copy with `shape`: `dataclasses.replace` without its __init__ by keywords,
        which took a tenth of checking a spec of 100k nodes."""
        copy = object.__new__(Node)
        copy.__dict__.update(self.__dict__, shape=shape)
        return copy


@dataclass(frozen=True)
class Call:
    """One call of a fragment, expanded: `h1 = Dense(X, 64, act = ReLU)`.

    `name` prefixes its nodes' names (`h1`: `h1.W`; `scores.dense1` for a call inside
    an expression; `h.2` for a repeat's second call); `fragment` is what it calls;
    `args` its arguments that are not nodes, as a label shows them (`64, ReLU`);
    `parent` the call whose body holds it (None: the spec's top level); `span` the call
    in its caller's text; `outputs` the nodes holding the values it returns; `repeat`,
    for a step of `repeat(N, ...)`, (the repeat's name, this step, N).
    """

    name: str
    fragment: str
    args: str
    parent: str | None
    span: Span
    outputs: tuple[str, ...] = ()
    repeat: tuple | None = None

    def label(self) -> str:
        """`h1: Dense(64, ReLU)`"""
        return f"{self.name}: {self.fragment}({self.args})"


def needed_by(nodes: Mapping[str, Node], *names: str) -> list[str]:
    """The nodes whose values `names` depend on, themselves included, in the order of
    `nodes` (a topological one)."""
    needed = set(names)
    for node in reversed(nodes.values()):
        if node.name in needed:
            needed.update(node.inputs)
    return [name for name in nodes if name in needed]


@dataclass(frozen=True, eq=False)
class Program:
    """A checked spec.

    Attributes
    ----------
    nodes : name → Node, every node of the spec in topological order.
    loss : the node training minimises.
    outputs : the nodes a prediction returns (by default the loss's operand that is not
        the targets).
    settings : the train block, with any overrides.
    data : what the compile learned of the data without loading it (None: no data, or
        a file not there yet).
    diagnostics : the warnings (a Program has no errors).
    source, filename, base_dir : the spec's text, its name, and the folder data paths
        are relative to.
    calls : name → Call, every fragment call the spec's nodes were expanded from, in the
        order they were expanded (a call before the calls in its body); each node's
        `call` names the innermost.
    """

    nodes: Mapping[str, Node]
    loss: str
    outputs: tuple[str, ...]
    settings: TrainSettings
    data: DataInfo | None
    diagnostics: tuple[Diagnostic, ...]
    source: str
    filename: str
    base_dir: Path
    calls: Mapping[str, Call] = field(default_factory=dict)

    @property
    def order(self) -> list[str]:
        return list(self.nodes)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The networkx DiGraph of who reads whom (its nodes carry no attributes), for
        drawing and graph algorithms; built on first use, so that checking a spec never
        imports networkx."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(self.nodes)
        graph.add_edges_from((i, node.name) for node in self.nodes.values() for i in node.inputs)
        return graph

    @cached_property
    def shapes(self) -> dict[str, tuple | None]:
        return {name: node.shape for name, node in self.nodes.items()}

    @cached_property
    def param_names(self) -> list[str]:
        """The trainable params, in topological order."""
        return [n.name for n in self.nodes.values() if n.kind == "param"]

    @cached_property
    def input_names(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.kind == "data"]

    def param_count(self, name: str) -> int | None:
        return self.nodes[name].elements

    @property
    def trainable_count(self) -> int | None:
        """Total trainable elements, or None while a size waits for the data."""
        counts = [self.param_count(n) for n in self.param_names]
        return None if None in counts else sum(counts)

    def needed_by(self, *names: str) -> list[str]:
        """The nodes whose values `names` depend on, themselves included, in order."""
        return needed_by(self.nodes, *names)

    @cached_property
    def label_inputs(self) -> dict[str, int | None]:
        """Input name → the number of classes, for each Input that feeds class labels to
        a loss (None when the scores' width waits for the data)."""
        found: dict[str, int | None] = {}
        for node in self.nodes.values():
            if node.op is None or not node.op.labels:
                continue
            source = self.nodes[node.inputs[node.op.target]]
            if source.kind == "data":
                classes = node.op.classes([self.nodes[i].shape for i in node.inputs])
                known = [c for c in (found.get(source.name), classes) if c is not None]
                found[source.name] = min(known, default=None)
        return found

    @cached_property
    def scored(self) -> dict[str, Node]:
        """Each node that a loss op of the loss scores against targets fed by an Input
        (its prediction operand: `l2` in `MSE(y, l2)`), → that loss op's node. Its
        `op.labels` tells a classifier's scores from a regressor's values."""
        found: dict[str, Node] = {}
        for name in self.needed_by(self.loss):
            node = self.nodes[name]
            if node.op.is_loss and node.op.target is not None and \
                    self.nodes[node.inputs[node.op.target]].kind == "data":
                found.setdefault(node.inputs[node.op.prediction], node)
        return found

    def signature(self) -> list[list]:
        """The checked graph as plain data, one `[name, op, inputs, shape, attrs]` per
        node in order: what a model file records, and compares with a spec's to say what
        differs. Leaves out what does not change what the graph computes: where things
        are written, and how params start (`init`)."""
        return [[node.name, node.op.name, list(node.inputs), _plain_shape(node.shape),
                 _meaningful(node)] for node in self.nodes.values()]

    @cached_property
    def fingerprint(self) -> str:
        """`sha256:...` of `signature()`: equal for two specs that compute the same
        graph with the same shapes, whatever their comments, layout or train block."""
        import hashlib  # (libcrypto: 3.6 MB of memory, for a model file only)

        text = json.dumps(self.signature(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def scores_and_labels(self) -> tuple[str, str] | None:
        """(scores, labels) of the first op in the loss that scores class labels fed by
        an Input: what accuracy is measured on."""
        node = self._classifier()
        return None if node is None else (node.inputs[node.op.prediction],
                                          node.inputs[node.op.target])

    def classifier(self) -> Op | None:
        """The op of `scores_and_labels`: its `predicted_classes` turns scores into the
        classes they predict."""
        node = self._classifier()
        return None if node is None else node.op

    def _classifier(self) -> Node | None:
        for name in self.needed_by(self.loss):
            node = self.nodes[name]
            if node.op.labels and self.nodes[node.inputs[node.op.target]].kind == "data":
                return node
        return None

    def unfed_inputs(self, settings: TrainSettings) -> list[Diagnostic]:
        """E407 for each Input the loss needs that neither the data's features nor its
        targets fill, under `settings`."""
        return unfed_inputs(self.nodes, self.loss, settings)


def unfed_inputs(nodes: Mapping[str, Node], loss: str,
                 settings: TrainSettings) -> list[Diagnostic]:
    """E407 for each Input that `loss` needs and that neither the data's features nor its
    targets fill, under `settings`: at check time when the spec names its data (a run
    may change the data, not which Inputs it feeds), else when the run starts."""
    fed = {settings.features, settings.targets} if settings.data else set()
    return [_unfed(nodes[name].decl, settings, name) for name in needed_by(nodes, loss)
            if nodes[name].kind == "data" and name not in fed]


def _unfed(decl: Span | None, settings: TrainSettings, name: str) -> Diagnostic:
    if not settings.data:
        return Diagnostic(E407, f"the loss needs Input '{name}', but no data feeds it",
                          decl, help="name the data in the train block (data = "
                          "\"iris\"), or pass --data")
    return Diagnostic(E407, f"the loss needs Input '{name}', but the data feeds only "
                      f"'{settings.features}' (features) and '{settings.targets}' "
                      f"(targets)", decl, help=f"feed it the features with "
                      f"`features = {name}` or the targets with `targets = {name}` in "
                      "the train block")


def _plain_shape(shape) -> list | None:
    return None if shape is None else list(shape)


def _meaningful(node: Node) -> dict:
    """The attrs that change what a node computes (a Const's value, an op's keywords),
    as JSON-able values."""
    skipped = {"dims", "dim_spans"} | ({"init"} if node.kind == "param" else set())
    return {key: value if isinstance(value, (int, float, str, bool)) or value is None
            else repr(value) for key, value in node.attrs.items() if key not in skipped}
