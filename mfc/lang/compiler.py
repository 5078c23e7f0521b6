"""The front end's pipeline: text → AST → graph → order → shapes → loss → `Program`.

Every stage adds its diagnostics to one list; the compile fails once, at the end, with
all of them, sorted by position.
"""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path

from mfc import data, settings as train_block
from mfc.lang import graph as graphs, order as orders
from mfc.lang import shapes as shape_inference, syntax, validate
from mfc.diagnostics import DataError, Diagnostic, SpecError, did_you_mean
from mfc.program import Program
from mfc.settings import TrainSettings, setting_span


def compile_file(path, **overrides) -> Program:
    """Read the spec at `path` (UTF-8) and compile it; I/O errors propagate as OSError,
    undecodable text as UnicodeDecodeError."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8")
    return compile_text(text, str(path), base_dir=path.parent, **overrides)


def compile_text(text: str, filename: str = "<string>", base_dir=None, **overrides) -> Program:
    """Compile spec text into a `Program`; raise `SpecError` listing every problem.

    `overrides` replace train settings (as command-line flags do); a bad override value
    raises ValueError.
    """
    with collector_paused():
        return _compile(text, filename, base_dir, overrides)


@contextlib.contextmanager
def collector_paused():
    """A compile makes millions of small acyclic objects; the cycle collector would scan
    the growing heap again and again (a quarter of the time at 100k nodes) for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _compile(text: str, filename: str, base_dir, overrides: dict) -> Program:
    if not isinstance(text, str):
        raise TypeError(f"a spec is text (str), not {type(text).__name__}; "
                        "decode bytes first, or use mfc.load(path)")
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of line 1
    try:
        module = syntax.parse(text)
    except SpecError as err:
        raise SpecError(err.diagnostics, text, filename) from None
    graph, diagnostics = graphs.build(module, text)
    block, found = train_block.read(module)
    diagnostics += found
    settings = (block or TrainSettings()).with_overrides(**overrides)
    order, found = orders.topological_order(graph)
    diagnostics += found
    dims = shape_inference.Dims()
    info, found = _describe(settings, base_dir) if settings.data else (None, [])
    diagnostics += found
    feeds, found = _feeds(graph, settings, info, dims)
    diagnostics += found
    raw, found = shape_inference.infer(graph, order, dims, feeds)  # nodes off any cycle
    diagnostics += found
    shapes = {name: _plain(dims, shape) for name, shape in raw.items()}
    errors = any(d.severity == "error" for d in diagnostics)
    loss, found = validate.choose_loss(graph, shapes, settings, quiet=errors)
    diagnostics += found + _against_the_data(graph, shapes, settings, loss, info)
    if loss is not None and not errors:  # after errors, warnings would mostly be echoes
        diagnostics += validate.warnings(graph, loss)
    diagnostics.sort(key=lambda d: (d.line, d.column))
    if any(d.severity == "error" for d in diagnostics) or loss is None:
        raise SpecError(diagnostics, text, filename)
    return Program(graph=graph, order=order, loss=loss, shapes=shapes, settings=settings,
                   diagnostics=diagnostics, source=text, filename=filename, base_dir=base_dir)


def _plain(dims, shape):
    """A shape as plain data: ints, 'N' for the batch, '?' for what the data will say."""
    if shape is None:
        return None
    return tuple(d if isinstance(d, int) else
                 (v if isinstance(v := dims.get(d), int) else dims.show(d)) for d in shape)


def _feeds(graph, settings: TrainSettings, info, dims) -> tuple[dict, list]:
    """Which Inputs the data fills, and with what width (known at check time when the
    data can be described cheaply; otherwise a symbol the run will fill)."""
    if settings.data is None:
        return {}, []
    span = setting_span(settings, "data")
    diagnostics = []
    width = info.features if info else dims.new(shape_inference.DATA)
    feeds = {}
    roles = [("features", settings.features), ("targets", settings.targets)]
    if settings.features == settings.targets:
        diagnostics.append(Diagnostic(
            "E405", f"features and targets both go to '{settings.features}'",
            settings.spans.get("targets", settings.spans.get("features", span)),
            help="the data's features and its targets need an Input each"))
        roles.pop()
    for role, name in roles:
        problem = _feed_problem(graph, settings, role, name)
        if problem:
            diagnostics.append(problem)
        elif name in graph:
            feeds[name] = shape_inference.Feed(role, width, span)
    return feeds, diagnostics


def _describe(settings: TrainSettings, base_dir: Path):
    """The data's DataInfo (None when unknown), with any problem: E404 at the setting
    at fault, W004 for a file that is not there (yet)."""
    span = setting_span(settings, "data")
    try:
        info = data.describe(settings.data, base_dir)
    except DataError as err:
        return None, [Diagnostic("E404", str(err), span)]
    if info is None:
        return None, [Diagnostic("W004", f"data file '{settings.data}' not found, so shapes "
                                 "that depend on it are not checked", span)]
    if settings.target_column is not None:
        try:
            data.describe(settings.data, base_dir, settings.target_column)
        except DataError as err:
            return info, [Diagnostic("E404", str(err), setting_span(settings, "target_column"))]
    return info, []


def _against_the_data(graph, shapes, settings, loss, info) -> list[Diagnostic]:
    """What the data's size already rules out: a batch larger than the training rows,
    a CrossEntropy whose scores have another width than the data has classes."""
    found = []
    if info is None:
        return found
    if info.rows is not None and "batch_size" in settings.spans:  # a flag's is the run's
        rows = info.rows - data.held_out_rows(info.rows, settings.validation)
        if settings.batch_size > rows:
            found.append(Diagnostic(
                "E401", f"'batch_size' is {settings.batch_size}, more than the {rows} "
                "training examples of the data", setting_span(settings, "batch_size"),
                help=f"a batch_size of at most {rows}"))
    if loss and info.classes and graph.nodes[loss]["op"] == "CrossEntropy":
        scores = graph.nodes[loss]["inputs"][-1]
        width = (shapes.get(scores) or (None, None))[-1]
        if isinstance(width, int) and width != info.classes:
            found.append(Diagnostic(
                "E200", f"CrossEntropy: the data has {info.classes} classes but "
                f"{graph.nodes[scores]['label']} has {width} columns",
                graph.nodes[loss]["span"], help=f"give the last layer {info.classes} outputs"))
    return found


def _feed_problem(graph, settings, role: str, name: str) -> Diagnostic | None:
    explicit = role in settings.spans
    span = settings.spans.get(role, setting_span(settings, "data"))
    if name not in graph:
        if role == "targets" and not explicit:
            return None  # no targets: the data's y goes unused (an autoencoder, say)
        return Diagnostic("E405", f"the data's {role} go to '{name}', but there is no such "
                          "node", span, help=did_you_mean(name, graph) or
                          f"name the Input with {role} = NAME in the train block")
    if graph.nodes[name]["op"] not in ("Input", None):
        return Diagnostic("E405", f"the data's {role} go to '{name}', which is a "
                          f"{graph.nodes[name]['op']}, not an Input", span,
                          help=f"name the Input with {role} = NAME in the train block")
    return None
