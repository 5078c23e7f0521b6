"""The `mfc` command: parse arguments, call the library, map errors to exit codes.

Exit codes: 0 success; 1 errors in a spec (diagnostics on stderr) or a failed run;
2 usage and I/O errors (one line on stderr). 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mfc import __version__

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A one-line error for the user, with the exit code it ends in."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        raise CliError(f"{message} (see 'mfc --help')")


def main(argv=None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.handler(args)
    except CliError as err:
        print(f"mfc: error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("mfc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mfc", description="Check, draw and train neural-network "
                     "specs written in the .mf language.")
    parser.add_argument("--version", action="version", version=f"mfc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = commands.add_parser("check", help="check specs and summarise their graphs")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="text (default), or JSON diagnostics for editors")
    check.set_defaults(handler=cmd_check)

    run = commands.add_parser("run", help="train a spec with its train block")
    run.add_argument("file", metavar="FILE")
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--learning-rate", type=float)
    run.add_argument("--seed", type=int)
    run.add_argument("--data", help="a bundled dataset name, or a .csv or .npz file")
    run.add_argument("--optimizer", help="sgd, momentum or adam")
    run.add_argument("--save", metavar="PATH.npz", help="write the trained params here")
    run.add_argument("--load", metavar="PATH.npz", help="start from these saved params")
    run.set_defaults(handler=cmd_run)

    draw = commands.add_parser("draw", help="draw a spec's graph")
    draw.add_argument("file", metavar="FILE")
    draw.add_argument("-o", "--output", metavar="OUT",
                      help="output file (default: FILE with the format's extension; - for stdout)")
    draw.add_argument("--format", choices=("svg", "png", "pdf", "dot"))
    draw.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
    draw.add_argument("--max-nodes", type=int, metavar="N",
                      help="collapse runs of similar nodes past N nodes (default 200)")
    draw.add_argument("--collapse", action="store_true",
                      help="collapse runs of similar nodes whatever the size")
    draw.set_defaults(handler=cmd_draw)
    return parser


# ---------------------------------------------------------------- shared


def read_spec(path: str) -> str:
    """The text of a spec file, or a one-line CliError (exit 2)."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a spec file") from None
    except PermissionError:
        raise CliError(f"{path}: permission denied") from None
    except UnicodeDecodeError as err:
        raise CliError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise CliError(f"{path}: {err.strerror or err}") from None


def compile_spec(path: str, **overrides):
    """Compile the spec at `path`, printing its warnings; a spec with errors prints them
    and ends the command with exit 1."""
    from mfc.compiler import compile_text
    from mfc.diagnostics import SpecError

    text = read_spec(path)
    try:
        program = compile_text(text, path, base_dir=Path(path).parent, **overrides)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        raise CliError(_error_count(err.errors), EXIT_SPEC) from None
    except ValueError as err:  # a bad override value
        raise CliError(str(err)) from None
    _print_diagnostics(program.diagnostics, text, path)
    return program


def _print_diagnostics(diagnostics, text, path) -> None:
    from mfc.diagnostics import render

    for diagnostic in diagnostics:
        print(render(diagnostic, text, path) + "\n", file=sys.stderr)


def _error_count(errors) -> str:
    return f"{len(errors)} error{'s' if len(errors) != 1 else ''}; nothing was done"


# ---------------------------------------------------------------- check


def cmd_check(args) -> int:
    from mfc.compiler import collector_paused

    with collector_paused():  # a summary of a big graph is as garbage-free as its compile
        return _check_files(args)


def _check_files(args) -> int:
    from mfc.compiler import compile_text
    from mfc.diagnostics import SpecError

    results, worst = [], EXIT_OK
    for path in args.files:
        try:
            text = read_spec(path)
            program = compile_text(text, path, base_dir=Path(path).parent)
        except CliError as err:
            if args.format == "text":
                print(f"mfc: error: {err}", file=sys.stderr)
            results.append({"file": path, "ok": False, "error": str(err), "diagnostics": []})
            worst = max(worst, err.code)
            continue
        except SpecError as err:
            _report(args, path, err.diagnostics, text, results, ok=False)
            worst = max(worst, EXIT_SPEC)
            continue
        _report(args, path, program.diagnostics, text, results, ok=True)
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
    _print_diagnostics(diagnostics, text, path)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        print(f"{path}: {_error_count(errors).split(';')[0]}", file=sys.stderr)


def summary(program) -> str:
    """Each node in order with op and shape, params with element counts, the total."""
    rows = []
    for name in program.order:
        data = program.graph.nodes[name]
        count = program.param_count(name) if data["op"] == "Param" else None
        rows.append((name, data["op"], _shape_text(program.shapes.get(name)),
                     f"{count:,}" if count is not None else ""))
    widths = [max(len(r[i]) for r in rows + [("node", "op", "shape", "params")])
              for i in range(4)]
    lines = [f"{program.filename}: ok, {len(rows)} nodes, loss '{program.loss}'"]
    for row in [("node", "op", "shape", "params")] + rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    total = program.trainable_count
    lines.append(f"  trainable parameters: {total:,}" if total is not None else
                 "  trainable parameters: known once the data is read")
    return "\n".join(lines)


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


# ---------------------------------------------------------------- run and draw


def cmd_run(args) -> int:
    from mfc import train

    return train.command(args)


def cmd_draw(args) -> int:
    from mfc import draw

    return draw.command(args)


if __name__ == "__main__":
    sys.exit(main())
