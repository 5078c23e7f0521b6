"""`mfc check FILE...`: check specs and summarise their graphs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mfc.cli.common import EXIT_FAILED, EXIT_OK, CliError, print_diagnostics, read_spec
from mfc.text import format_shape, one_line, plural


def add_parser(commands) -> None:
    check = commands.add_parser("check", help="check specs and summarise their graphs")
    check.add_argument("files", nargs="+", metavar="FILE", help="the specs to check (.mf)")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="text (default), or JSON diagnostics for editors")
    check.set_defaults(handler=run)


def run(args) -> int:
    from mfc.lang.compiler import collector_paused

    with collector_paused():  # a summary of a big graph is as garbage-free as its compile
        return _check_files(args)


def _check_files(args) -> int:
    from mfc.diagnostics import SpecError
    from mfc.lang.compiler import compile_text

    results, worst = [], EXIT_OK
    for path in args.files:
        try:
            text = read_spec(path)
            program = compile_text(text, path, base_dir=Path(path).parent, finished=False)
        except CliError as err:
            if args.format == "text":
                print(one_line(f"mfc: error: {err}"), file=sys.stderr)
            results.append({"file": path, "ok": False, "error": str(err), "diagnostics": []})
            worst = max(worst, err.exit_code)
            continue
        except SpecError as err:
            _report(args, path, err.diagnostics, text, results, ok=False)
            worst = max(worst, EXIT_FAILED)
            continue
        _report(args, path, program.diagnostics, text, results, ok=True)
        if args.format == "json":
            results[-1].update(loss=program.loss, outputs=list(program.outputs),
                               expansion=expansion(program))
        if args.format == "text":
            print(summary(program))
    if args.format == "json":
        print(json.dumps(results, indent=2))
    return worst


def _report(args, path, diagnostics, text, results, ok: bool) -> None:
    if args.format == "json":
        results.append({"file": path, "ok": ok,
                        "diagnostics": [d.to_dict(path) for d in diagnostics]})
        return
    print_diagnostics(diagnostics, text, path)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        print(f"{path}: {plural(len(errors), 'error')}", file=sys.stderr)


def expansion(program) -> dict:
    """The nodes and the fragment calls they were expanded from, for editors: each node
    with its op, shape, place and call; each call with its fragment, arguments, place,
    parent call, outputs and nodes."""
    def place(span):
        if span is None:
            return {}
        file = span.source.name if span.source is not None else program.filename
        return {"file": file, "line": span.line, "column": span.column,
                "end_line": span.end_line, "end_column": span.end_column}

    members: dict = {}
    for node in program.nodes.values():
        members.setdefault(node.call, []).append(node.name)
    nodes = [{"name": n.name, "op": n.op.name, "shape": _json_shape(n.shape),
              "call": n.call, **place(n.span)} for n in program.nodes.values()]
    calls = [{"name": c.name, "fragment": c.fragment, "args": c.args, "parent": c.parent,
              "outputs": list(c.outputs), "nodes": members.get(c.name, []), **place(c.span)}
             for c in program.calls.values()]
    return {"nodes": nodes, "calls": calls}


def _json_shape(shape):
    return None if shape is None else list(shape)


def _outputs(names) -> str:
    """`, output 'l2'` (what a prediction returns), or nothing when the spec has none."""
    if not names:
        return ""
    return f", output{'s' if len(names) > 1 else ''} " + ", ".join(f"'{n}'" for n in names)


def summary(program) -> str:
    """Each node in order with op and shape, params with element counts, the total; the
    header names the loss and the output. The nodes of a fragment call are grouped under
    it (`h1: Dense(64, ReLU)`, with its params' count), nested calls within."""
    rows = [("node", "op", "shape", "params")]
    for depth, item in _grouped(program):
        indent = "  " * depth
        if isinstance(item, _Group):
            count = item.params(program)
            rows.append((indent + item.call.label(), "", "", _count(count, item.call)))
            continue
        count = item.elements if item.kind == "param" else None
        rows.append((indent + item.name, item.op.name, format_shape(item.shape),
                     f"{count:,}" if count is not None else ""))
    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    loss = f"loss '{program.loss}'" if program.loss is not None else "no loss yet"
    lines = [f"{program.filename}: ok, {len(program.nodes)} nodes, {loss}"
             + _outputs(program.outputs)]
    for row in rows:
        lines.append("  " + "  ".join(map(str.ljust, row, widths)).rstrip())
    total = program.trainable_count
    lines.append(f"  trainable parameters: {total:,}" if total is not None else
                 "  trainable parameters: known once the data is read")
    return "\n".join(lines)


def _count(count, call) -> str:
    return "" if count == 0 else "?" if count is None else f"{count:,}"


class _Group:
    """A fragment call in the summary: its call, and its nodes and calls in order."""

    def __init__(self, call):
        self.call, self.items = call, []

    def nodes(self):
        for item in self.items:
            yield from item.nodes() if isinstance(item, _Group) else (item,)

    def params(self, program) -> int | None:
        counts = [node.elements for node in self.nodes() if node.kind == "param"]
        return None if None in counts else sum(counts)


def _grouped(program):
    """(depth, node or _Group) in summary order: the nodes in order, each call where its
    first node is, holding its nodes."""
    top, groups = [], {}
    for node in program.nodes.values():
        _items_of(node.call, program, top, groups).append(node)
    return list(_walk(top, 0))


# (Module functions, not closures: a closure that calls itself is a reference cycle,
# which kept the whole program alive until the cycle collector found it.)

def _items_of(call, program, top: list, groups: dict) -> list:
    """The items of `call`'s group (None: the top level's), the group created in its
    parent's where first needed."""
    if call is None:
        return top
    if call not in groups:
        groups[call] = _Group(program.calls[call])
        _items_of(program.calls[call].parent, program, top, groups).append(groups[call])
    return groups[call].items


def _walk(items: list, depth: int):
    for item in items:
        yield depth, item
        if isinstance(item, _Group):
            yield from _walk(item.items, depth + 1)
