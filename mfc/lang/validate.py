"""Stage 5: whole-graph checks once shapes are known: which node is the loss, and
warnings for work that can never matter (params that never learn, unused nodes)."""

from __future__ import annotations

import math

import networkx as nx

from mfc.diagnostics import Diagnostic, Note, Span, did_you_mean
from mfc.ops import LEAF_KINDS, OPS
from mfc.settings import TrainSettings, setting_span
from mfc.text import format_shape


def choose_loss(graph: nx.DiGraph, shapes: dict, settings: TrainSettings, quiet: bool):
    """The node to minimise, with any problem: the `loss` setting, else the one sink
    whose value has exactly one element. `quiet`: earlier errors may explain a missing
    loss, so say nothing unless the loss is plainly wrong."""
    if settings.loss is not None:
        return _named_loss(graph, shapes, settings)
    sinks = [n for n in graph if graph.out_degree(n) == 0 and _kind(graph, n) not in LEAF_KINDS]
    candidates = [n for n in sinks if _elements(shapes.get(n)) == 1]
    if len(candidates) == 1:
        return candidates[0], []
    if quiet:
        return None, []
    if not candidates:
        return None, [_no_loss(graph, shapes, sinks)]
    return None, [_ambiguous_loss(graph, candidates)]


def warnings(graph: nx.DiGraph, loss: str) -> list[Diagnostic]:
    """W001 params that never reach the loss, W002 unused inputs, W003 unused results,
    W005 a Softmax fed to CrossEntropy (which applies its own)."""
    feeds_loss = nx.ancestors(graph, loss) | {loss}
    found = []
    for name, data in graph.nodes(data=True):
        kind = _kind(graph, name)
        if kind == "param" and name not in feeds_loss:
            found.append(Diagnostic("W001", f"param '{data['label']}' does not reach the "
                                    f"loss '{loss}', so it would never learn", data["decl"]))
        elif kind == "data" and graph.out_degree(name) == 0:
            found.append(Diagnostic("W002", f"input '{data['label']}' is never used",
                                    data["decl"]))
        elif kind != "param" and graph.out_degree(name) == 0 and name != loss:
            found.append(Diagnostic("W003", f"'{data['label']}' is computed but nothing "
                                    "uses it", data["decl"]))
        elif data["op"] == "CrossEntropy" and _op(graph, data["inputs"][-1]) == "Softmax":
            found.append(Diagnostic("W005", "CrossEntropy takes logits and applies softmax "
                                    "itself; a Softmax before it flattens the gradients",
                                    data["span"], help="pass the scores before the Softmax"))
    return found


def _named_loss(graph, shapes, settings):
    name, span = settings.loss, setting_span(settings, "loss")
    if name not in graph:
        return None, [Diagnostic("E405", f"loss names '{name}', but there is no such node",
                                 span, help=_did_you_mean_node(graph, name))]
    if _kind(graph, name) in ("data", "const"):
        return None, [Diagnostic("E405", f"loss names '{name}', a {graph.nodes[name]['op']}: "
                                 "nothing trainable computes it", span,
                                 help="name the node that computes the loss")]
    elements = _elements(shapes.get(name))
    if elements not in (None, 1):
        shape = format_shape(shapes[name])
        return None, [Diagnostic("E302", f"the loss '{name}' has shape {shape}, not one "
                                 "element", span, help="reduce it, e.g. Mean(...) or Sum(...)")]
    return name, []


def _no_loss(graph, shapes, sinks) -> Diagnostic:
    last = max(graph, key=lambda n: graph.nodes[n]["index"], default=None)
    span = graph.nodes[last]["decl"] if last is not None else Span.point(1, 1)  # empty
    ends = ", ".join(graph.nodes[n]["label"] + " " + format_shape(shapes.get(n), "(unknown)")
                     for n in sinks)
    return Diagnostic("E300", "no loss: no node that nothing consumes has exactly one "
                      "element", span, help=(f"the graph ends in {ends}; " if ends else "")
                      + "end it in a loss such as MSE(y, a) or Mean(...), or set "
                      "loss = NAME in the train block")


def _ambiguous_loss(graph, candidates) -> Diagnostic:
    spans = [graph.nodes[n]["decl"] for n in candidates]
    names = ", ".join(f"'{graph.nodes[n]['label']}'" for n in candidates)
    notes = tuple(Note(f"'{graph.nodes[n]['label']}' could be the loss", s)
                  for n, s in zip(candidates[1:], spans[1:]))
    return Diagnostic("E301", f"ambiguous loss: {names} each have one element and feed "
                      "nothing", spans[0], notes=notes,
                      help=f"say which in the train block: loss = {candidates[0]}")


def _op(graph, name) -> str | None:
    return graph.nodes[name]["op"]


def _kind(graph, name) -> str | None:
    op = _op(graph, name)
    return OPS[op].kind if op else None


def _elements(shape) -> int | None:
    if shape is None or any(not isinstance(d, int) for d in shape):
        return None
    return math.prod(shape)


def _did_you_mean_node(graph, name) -> str | None:
    return did_you_mean(name, [n for n in graph if not graph.nodes[n]["anonymous"]])
