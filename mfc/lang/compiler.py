"""The front end's pipeline: text → AST → graph → order → data → shapes → loss →
`Program` (mfc.ir). It only pipes the stages together; each check lives in its stage.

Every stage reports into one `Report`; the compile fails once, at the end, with every
diagnostic, sorted by position.
"""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path

from mfc.diagnostics import Report, SpecError
from mfc.ir import Program
from mfc.lang import feeds, graph as graphs, order as orders, shapes as shape_inference
from mfc.lang import syntax, train_block, uses, validate
from mfc.settings import TrainSettings


def compile_file(path, **overrides) -> Program:
    """Read the spec at `path` (UTF-8) and compile it; I/O errors propagate as OSError,
    undecodable text as UnicodeDecodeError."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8")
    return compile_text(text, str(path), base_dir=path.parent, **overrides)


def compile_text(text: str, filename: str = "<string>", base_dir=None, data_info=None,
                 finished: bool = True, **overrides) -> Program:
    """Compile spec text into a `Program`; raise `SpecError` listing every problem.

    `overrides` replace train settings (as command-line flags do); a bad override value
    raises ValueError. `data_info` (a mfc.data.DataInfo) says what the data is instead of
    its file: a trained model's data, which need not be there to predict.
    `finished=False` compiles a spec still being written, for checking and drawing: with
    no loss yet (W008; the Program's `loss` is None) or a param's `_` that only an
    Input's width would fix (shown as ?); only running needs a finished spec.
    """
    with collector_paused():
        return _compile(text, filename, base_dir, overrides, data_info, finished)


@contextlib.contextmanager
def collector_paused():
    """A compile makes millions of small acyclic objects; the cycle collector would scan
    the growing heap again and again (a quarter of the time at 100k nodes) for nothing.

    Those still alive at the end are moved to the oldest generation unscanned (frozen,
    then unfrozen: two list splices), or the first young-generation pass after the pause
    would go through all of them at once (0.4 s at 100k nodes), finding nothing. Not
    when the program froze objects of its own: unfreezing would release them too."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _compile(text: str, filename: str, base_dir, overrides: dict, data_info=None,
             finished: bool = True) -> Program:
    if not isinstance(text, str):
        raise TypeError(f"a spec is text (str), not {type(text).__name__}; "
                        "decode bytes first, or use mfc.load(path)")
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of line 1
    try:
        module = syntax.parse(text)
    except SpecError as err:
        raise SpecError(err.diagnostics, text, filename) from None
    report = Report()
    library = uses.library(module, filename, base_dir, report)
    nodes, graph, calls = graphs.build(module, text, report, library)
    settings = (train_block.read(module, report) or TrainSettings()).with_overrides(**overrides)
    validate.settings_together(settings, report)
    order = orders.topological_order(graph, nodes, report)
    dims = shape_inference.Dims()
    info = data_info or feeds.describe(settings, base_dir, report)
    fed = feeds.feeds(nodes, settings, info, dims, report)
    raw = shape_inference.infer(graph, nodes, order, dims, fed, report,  # nodes off any cycle
                                finished)
    nodes = {name: nodes[name].with_shape(_plain(dims, raw[name])) for name in order}
    loss = validate.choose_loss(nodes, graph, settings, report, quiet=report.errors > 0,
                                finished=finished)
    validate.against_the_data(nodes, settings, loss, info, report)
    if loss is not None and not report.errors:  # after errors, warnings would mostly be echoes
        validate.warnings(nodes, graph, loss, report)
    outputs = validate.outputs(nodes, loss, settings, report) if loss is not None else ()
    diagnostics = report.sorted()
    if report.errors or (loss is None and finished):
        raise SpecError(diagnostics, text, filename)
    return Program(nodes=nodes, loss=loss, outputs=outputs,
                   settings=settings, data=info, diagnostics=tuple(diagnostics), source=text,
                   filename=filename, base_dir=base_dir, calls=calls)


def _plain(dims, shape):
    """A shape as plain data: ints, 'N' for the batch, '?' for what the data will say."""
    if shape is None:
        return None
    return tuple([d if isinstance(d, int) else
                  (v if isinstance(v := dims.get(d), int) else dims.show(d)) for d in shape])
