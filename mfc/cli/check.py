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
            program = compile_text(text, path, base_dir=Path(path).parent)
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
            results[-1].update(loss=program.loss, outputs=list(program.outputs))
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


def _outputs(names) -> str:
    """`, output 'l2'` (what a prediction returns), or nothing when the spec has none."""
    if not names:
        return ""
    return f", output{'s' if len(names) > 1 else ''} " + ", ".join(f"'{n}'" for n in names)


def summary(program) -> str:
    """Each node in order with op and shape, params with element counts, the total; the
    header names the loss and the output."""
    rows = [("node", "op", "shape", "params")]
    for node in program.nodes.values():
        count = node.elements if node.kind == "param" else None
        rows.append((node.name, node.op.name, format_shape(node.shape),
                     f"{count:,}" if count is not None else ""))
    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    lines = [f"{program.filename}: ok, {len(rows) - 1} nodes, loss '{program.loss}'"
             + _outputs(program.outputs)]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    total = program.trainable_count
    lines.append(f"  trainable parameters: {total:,}" if total is not None else
                 "  trainable parameters: known once the data is read")
    return "\n".join(lines)
