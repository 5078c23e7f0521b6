"""Stage 5: whole-graph checks once shapes are known: which node is the loss and which
are the outputs, what the data already rules out, and warnings for work that can never
matter (params that never learn, unused nodes)."""

from __future__ import annotations


from mfc import settings as train_settings
from mfc.diagnostics import (E200, E300, E301, E302, E401, E404, E405, E408, W001, W002,
                             W003, W005, W008, Note, Report, SettingError, Span, did_you_mean)
from mfc import ops
from mfc.ir import Node, needed_by, unfed_inputs
from mfc.lang.graph import Graph
from mfc.ops import LEAF_KINDS
from mfc.settings import TrainSettings, report_setting, setting_span
from mfc.text import format_shape


def choose_loss(nodes: dict[str, Node], graph: Graph, settings: TrainSettings,
                report: Report, quiet: bool, finished: bool = True) -> str | None:
    """The node to minimise: the `loss` setting, else the one sink whose value has
    exactly one element. `quiet`: earlier errors may explain a missing loss, so say
    nothing unless the loss is plainly wrong. Not `finished` (a spec being written):
    no loss, or several that could be, is a warning (W008)."""
    if settings.loss is not None:
        return _named_loss(nodes, settings, report)
    sinks = [n for n in nodes.values()
             if graph.out_degree(n.name) == 0 and n.kind not in LEAF_KINDS]
    candidates = [n for n in sinks if n.elements == 1]
    if len(candidates) == 1:
        return candidates[0].name
    if not quiet:
        if candidates:
            _ambiguous_loss(candidates, report, E301 if finished else W008)
        else:
            _no_loss(nodes, sinks, report, E300 if finished else W008)
    return None


def outputs(nodes: dict[str, Node], loss: str, settings: TrainSettings,
            report: Report) -> tuple[str, ...]:
    """What a prediction returns: the `output` setting's nodes, else the operand that is
    not the targets of each loss op the loss is made of (`l2` in `MSE(y, l2)`, `scores`
    in `CrossEntropy(y, scores) + 0.01 * Sum(W * W)`); none when no such op feeds the
    loss. E405 for an output that names no node, a Param or Const (nothing the data
    changes), or a node that needs the targets (a prediction has none)."""
    if settings.output is not None:
        spans = [settings.spans.get(f"output[{i}]", setting_span(settings, "output"))
                 for i in range(len(settings.output))]
        return tuple(name for name, span in zip(settings.output, spans)
                     if _usable_output(nodes, name, span, settings, report))
    found = {}
    for name in needed_by(nodes, loss):
        node = nodes[name]
        if node.op.is_loss and node.op.prediction is not None:
            found[node.inputs[node.op.prediction]] = True
    return tuple(found)


def _usable_output(nodes, name: str, span, settings: TrainSettings, report: Report) -> bool:
    if name not in nodes:
        report_setting(report, settings, "output", E405, f"output names '{name}', but there "
                       "is no such node", span=span,
                       help=did_you_mean(name, _named(nodes, "param", "const")))
        return False
    node = nodes[name]
    if node.kind in ("param", "const"):
        report_setting(report, settings, "output", E405, f"output names '{name}', a "
                       f"{node.op.name}: the data does not change it", span=span,
                       help="name a node computed from the features")
        return False
    if settings.targets in needed_by(nodes, name):
        report_setting(report, settings, "output", E405, f"output '{name}' needs the "
                       f"targets '{settings.targets}', which a prediction does not have",
                       span=span, help="name a node computed from the features alone, "
                       "such as the loss's prediction operand")
        return False
    return True


def settings_together(settings: TrainSettings, report: Report) -> None:
    """E408 at each setting that the others rule out or leave incomplete (see
    `mfc.settings.conflicts`); one given as a flag or keyword raises SettingError."""
    for key, message, help in train_settings.conflicts(settings):
        if settings.origin(key) != "spec":
            raise SettingError(f"{key}: {message}")
        report(E408, message, setting_span(settings, key), help=help)


def against_the_data(nodes: dict[str, Node], settings: TrainSettings, loss: str | None,
                     info, report: Report) -> None:
    """What the data already rules out, so that a spec `mfc check` accepts is not
    refused by the run for anything check could know: settings its size makes
    impossible (see `mfc.settings.data_problems`), Inputs the loss needs that it cannot
    feed (E407), a loss scoring another number of classes than the data has, or class
    labels from continuous targets. A setting from the spec is reported at its place,
    a default one at the data's; one given as a flag or keyword raises SettingError."""
    if info is None:
        return
    if info.rows is not None:
        for key, message, help in train_settings.data_problems(settings, info.rows):
            if settings.origin(key) == "default":
                message += f" (the default {key}; set it in the train block)"
            report_setting(report, settings, key, E401, message, help=help)
    if loss is None:
        return
    if _feeds_are_sound(nodes, settings):  # else E405 has said what is wrong
        for diagnostic in unfed_inputs(nodes, loss, settings):
            report.add(diagnostic)
    for name in needed_by(nodes, loss):
        node = nodes[name]
        if node.op.labels and node.inputs[node.op.target] == settings.targets:
            if info.continuous:
                _labels_from_continuous_targets(node, settings, report)
            elif info.classes:
                _check_classes(nodes, node, info.classes, report)


def _feeds_are_sound(nodes: dict[str, Node], settings: TrainSettings) -> bool:
    """The features and the targets go to two Inputs of the spec (the targets to none,
    when the spec has no Input of their default name: an autoencoder, say)."""
    features, targets = settings.features, settings.targets
    unnamed_targets = targets not in nodes and settings.origin("targets") == "default"
    return features != targets and all(
        name in nodes and nodes[name].kind == "data" for name in (features, targets)
        if not (name == targets and unnamed_targets))


def _labels_from_continuous_targets(node: Node, settings: TrainSettings,
                                    report: Report) -> None:
    """E404 (SettingError for data given as a flag) when an op scoring class labels is
    fed targets that the data's description says are continuous."""
    report_setting(report, settings, "data", E404, f"the data '{settings.data}' has "
                   f"continuous targets (a regression dataset), but {node.op.name} needs "
                   "class labels",
                   notes=[Note(f"{node.op.name} reads the targets here", node.span)],
                   help="use MSE(y, ...) for a continuous target, or classification data")


def _check_classes(nodes, node: Node, classes: int, report: Report) -> None:
    """E200 when an op scoring the data's labels has scores of another width."""
    scores = nodes[node.inputs[node.op.prediction]]
    width = node.op.classes([nodes[i].shape for i in node.inputs])
    if width is not None and width != classes:
        report(E200, f"{node.op.name}: the data has {classes} classes but {scores.label} "
               f"has {width} columns", node.span, help=f"give the last layer {classes} outputs")


def warnings(nodes: dict[str, Node], graph: Graph, loss: str, report: Report) -> None:
    """W001 params that never reach the loss, W002 unused inputs, W003 unused results,
    W005 a Softmax fed to a loss that applies its own."""
    feeds_loss = set(needed_by(nodes, loss))
    for node in nodes.values():
        unused = graph.out_degree(node.name) == 0
        if node.kind == "param" and node.name not in feeds_loss:
            report(W001, f"param '{node.label}' does not reach the loss '{loss}', so it "
                   "would never learn", node.decl)
        elif node.kind == "data" and unused:
            report(W002, f"input '{node.label}' is never used", node.decl)
        elif node.kind != "param" and unused and node.name != loss:
            report(W003, f"'{node.label}' is computed but nothing uses it", node.decl)
        elif node.op.labels and isinstance(nodes[node.inputs[node.op.prediction]].op,
                                           ops.Softmax):
            report(W005, f"{node.op.name} takes logits and applies softmax itself; a "
                   "Softmax before it flattens the gradients", node.span,
                   help="pass the scores before the Softmax")


def _named(nodes: dict[str, Node], *refused_kinds: str) -> list[str]:
    """The named nodes a setting may name: a suggestion is never one it would refuse."""
    return [n.name for n in nodes.values() if not n.anonymous and n.kind not in refused_kinds]


def _named_loss(nodes, settings, report) -> str | None:
    name = settings.loss
    if name not in nodes:
        report_setting(report, settings, "loss", E405, f"loss names '{name}', but there is "
                       "no such node", help=did_you_mean(name, _named(nodes, "data", "const")))
        return None
    node = nodes[name]
    if node.kind in ("data", "const"):
        report_setting(report, settings, "loss", E405, f"loss names '{name}', a "
                       f"{node.op.name}: nothing trainable computes it",
                       help="name the node that computes the loss")
        return None
    if node.elements not in (None, 1) or "N" in (node.shape or ()):  # N: one per example
        report_setting(report, settings, "loss", E302, f"the loss '{name}' has shape "
                       f"{format_shape(node.shape)}, not one element",
                       help="reduce it, e.g. Mean(...) or Sum(...)")
        return None
    return name


def _no_loss(nodes, sinks: list[Node], report: Report, code=E300) -> None:
    last = max(nodes.values(), key=lambda n: n.index, default=None)
    span = last.decl if last is not None else Span.point(1, 1)  # an empty spec
    ends = ", ".join(n.label + " " + format_shape(n.shape, "(unknown)") for n in sinks)
    report(code, "no loss: no node that nothing consumes has exactly one element", span,
           help=(f"the graph ends in {ends}; " if ends else "") + "end it in a loss such as "
           "MSE(y, a) or Mean(...), or set loss = NAME in the train block")


def _ambiguous_loss(candidates: list[Node], report: Report, code=E301) -> None:
    names = ", ".join(f"'{n.label}'" for n in candidates)
    notes = [Note(f"'{n.label}' could be the loss", n.decl) for n in candidates[1:]]
    report(code, f"ambiguous loss: {names} each have one element and feed nothing",
           candidates[0].decl, notes=notes,
           help=f"say which in the train block: loss = {candidates[0].name}")
