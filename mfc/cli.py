"""The `mfc` command: parse arguments, call the library, map errors to exit codes.

Exit codes: 0 success; 1 errors in a spec (diagnostics on stderr) or a failed run;
2 usage and I/O errors (one line on stderr). 130 on Ctrl-C.

Files the command writes (`run --save`, `draw -o`) follow mfc.files' rule: a regular
file or a new one, through any symlinks; never the spec or the data it reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mfc import __version__
from mfc.files import check_writable, same_file
from mfc.settings import OPTIMIZERS
from mfc.text import format_shape, one_line, plural

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DRAW_MAX_NODES = 200  # past this many graph nodes, `mfc draw` collapses by itself


class CliError(Exception):
    """A one-line error for the user, with the exit code it ends in."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        raise CliError(f"{message} (see 'mfc --help')")


def main(argv=None) -> int:
    try:
        parser = _build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.handler(args)
    except CliError as err:
        print(one_line(f"mfc: error: {err}"), file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("mfc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except OSError as err:  # a last resort: each path the user gives has its own message
        print(one_line(f"mfc: error: {_os_error(err)}"), file=sys.stderr)
        return EXIT_USAGE


def _os_error(err: OSError) -> str:
    """`name: what went wrong`, without Python's `[Errno 36]`."""
    what = err.strerror or str(err)
    return f"{err.filename}: {what}" if err.filename is not None else what


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mfc", description="Check, draw and train neural-network "
                     "specs written in the .mf language.")
    parser.add_argument("--version", action="version", version=f"mfc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_check(commands)
    _add_run(commands)
    _add_draw(commands)
    return parser


def _add_check(commands) -> None:
    check = commands.add_parser("check", help="check specs and summarise their graphs")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="text (default), or JSON diagnostics for editors")
    check.set_defaults(handler=cmd_check)


def _add_run(commands) -> None:
    run = commands.add_parser("run", help="train a spec with its train block")
    run.add_argument("file", metavar="FILE")
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--learning-rate", type=float)
    run.add_argument("--seed", type=int)
    run.add_argument("--data", help="a bundled dataset name, or a .csv or .npz file")
    # Checked with the train block's settings, so that a bad value reads the same.
    run.add_argument("--optimizer", help=", ".join(OPTIMIZERS))
    run.add_argument("--save", metavar="PATH.npz", help="write the trained params here")
    run.add_argument("--load", metavar="PATH.npz", help="start from these saved params")
    run.set_defaults(handler=cmd_run)


def _add_draw(commands) -> None:
    draw = commands.add_parser("draw", help="draw a spec's graph")
    draw.add_argument("file", metavar="FILE")
    draw.add_argument("-o", "--output", metavar="OUT",
                      help="output file (default: FILE with the format's extension; - for stdout)")
    draw.add_argument("--format", choices=("svg", "png", "pdf", "dot"))
    draw.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
    draw.add_argument("--max-nodes", type=int, metavar="N", help="collapse runs of "
                      f"similar nodes past N nodes (default {DRAW_MAX_NODES})")
    draw.add_argument("--collapse", action="store_true",
                      help="collapse runs of similar nodes whatever the size")
    draw.set_defaults(handler=cmd_draw)


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
    from mfc.lang.compiler import compile_text
    from mfc.diagnostics import SpecError

    text = read_spec(path)
    try:
        program = compile_text(text, path, base_dir=Path(path).parent, **overrides)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        raise CliError(f"{plural(len(err.errors), 'error')}; nothing was done",
                       EXIT_FAILED) from None
    except ValueError as err:  # a bad override value
        raise CliError(str(err)) from None
    _print_diagnostics(program.diagnostics, text, path)
    return program


def _print_diagnostics(diagnostics, text, path) -> None:
    from mfc.diagnostics import render

    for diagnostic in diagnostics:
        print(render(diagnostic, text, path) + "\n", file=sys.stderr)


def _note(text: str) -> None:
    print(f"mfc: note: {text}", file=sys.stderr)


# ---------------------------------------------------------------- check


def cmd_check(args) -> int:
    from mfc.lang.compiler import collector_paused

    with collector_paused():  # a summary of a big graph is as garbage-free as its compile
        return _check_files(args)


def _check_files(args) -> int:
    from mfc.lang.compiler import compile_text
    from mfc.diagnostics import SpecError

    results, worst = [], EXIT_OK
    for path in args.files:
        try:
            text = read_spec(path)
            program = compile_text(text, path, base_dir=Path(path).parent)
        except CliError as err:
            if args.format == "text":
                print(one_line(f"mfc: error: {err}"), file=sys.stderr)
            results.append({"file": path, "ok": False, "error": str(err), "diagnostics": []})
            worst = max(worst, err.code)
            continue
        except SpecError as err:
            _report(args, path, err.diagnostics, text, results, ok=False)
            worst = max(worst, EXIT_FAILED)
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
        print(f"{path}: {plural(len(errors), 'error')}", file=sys.stderr)


def summary(program) -> str:
    """Each node in order with op and shape, params with element counts, the total."""
    rows = [("node", "op", "shape", "params")]
    for name in program.order:
        data = program.graph.nodes[name]
        count = program.param_count(name) if data["op"] == "Param" else None
        rows.append((name, data["op"], format_shape(program.shapes.get(name)),
                     f"{count:,}" if count is not None else ""))
    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    lines = [f"{program.filename}: ok, {len(rows) - 1} nodes, loss '{program.loss}'"]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    total = program.trainable_count
    lines.append(f"  trainable parameters: {total:,}" if total is not None else
                 "  trainable parameters: known once the data is read")
    return "\n".join(lines)


# ---------------------------------------------------------------- run


def cmd_run(args) -> int:
    """`mfc run FILE`: compile with the flags as overrides, train, save."""
    from mfc.train import Diverged, Interrupted

    overrides = _run_overrides(args)
    program = compile_spec(args.file, **overrides)
    _check_save_path(args.save, program)
    try:
        _train(program, args.load)
    except Diverged as err:
        saved = "; nothing was saved" if args.save else ""
        raise CliError(f"{err}{saved}", EXIT_FAILED) from None
    except Interrupted as stop:
        return _interrupted(stop, program, args.save)
    if args.save:
        _save(args.save, program)
    return EXIT_OK


def _run_overrides(args) -> dict:
    return {"epochs": args.epochs, "batch_size": args.batch_size,
            "learning_rate": args.learning_rate, "seed": args.seed,
            "data": _data_flag(args.data), "optimizer": args.optimizer}


def _data_flag(data: str | None) -> str | None:
    """A --data path is relative to the current folder (a block's, to the spec's)."""
    from mfc import data as datasets
    from mfc.diagnostics import DataError

    if data is None or datasets.is_bundled(data):
        return data
    try:
        found = datasets.describe(data, Path.cwd())
    except DataError as err:  # an unknown name, or a file that cannot be read
        raise CliError(str(err)) from None
    if found is None:
        raise CliError(f"data file '{data}' not found")
    return os.path.abspath(data)


def _check_save_path(path: str | None, program) -> None:
    """Fail before training, not after, when the params could not be saved, or would
    replace the spec or the data it trains on."""
    if path is None:
        return
    try:
        _check_save_folder(path)
        _not_read_by(program, "--save", path, "the params")
        check_writable(path)  # a temporary file in the folder, removed at once
    except OSError as err:
        raise CliError(f"--save {path}: {err.strerror or err}") from None


def _check_save_folder(path: str) -> None:
    folder = Path(path).parent
    if Path(path).is_dir():
        raise CliError(f"--save {path}: is a folder; give a file name such as model.npz")
    if not folder.exists():
        raise CliError(f"--save {path}: no folder '{folder}'")
    if not folder.is_dir():
        raise CliError(f"--save {path}: '{folder}' is not a folder")


def _not_read_by(program, flag: str, path, what: str) -> None:
    """A CliError when the output `path` (given with `flag`) is the spec or the data
    file: `what` would replace it."""
    from mfc import data as datasets

    settings = program.settings
    data = datasets.file_of(settings.data, program.base_dir) if settings.data else None
    for kind, read in [("spec", program.filename), ("data file", data)]:
        if read is not None and same_file(path, read):
            raise CliError(f"{flag} {path} is the {kind} {read}; {what} would replace it")


def _train(program, load: str | None) -> None:
    """Load the params (if asked), then train, an epoch a line; Diverged and Interrupted
    pass through, the other failures become CliErrors."""
    from mfc import train
    from mfc.diagnostics import DataError, SpecError

    try:
        if load:
            train.load_params(load, program.network().params)
        with _Progress(program.settings.epochs, sys.stderr.isatty()) as progress:
            train.train(program, on_epoch=progress.report, note=_note)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        raise CliError(f"{plural(len(err.errors), 'error')}; nothing was trained",
                       EXIT_FAILED) from None
    except (DataError, train.ParamsError, ValueError) as err:
        raise CliError(str(err)) from None


def _interrupted(stop, program, path: str | None) -> int:
    """Ctrl-C came once a step had finished: say where, and save that step's params."""
    print(f"mfc: interrupted {stop.where()}", file=sys.stderr)
    if path is not None:
        _save(path, program, "as of that last completed step")
    return EXIT_INTERRUPTED


def _save(path: str, program, when: str = "") -> None:
    from mfc.train import save_params

    try:
        save_params(path, program.params)
    except OSError as err:
        raise CliError(f"cannot save the params to {path}: {err.strerror or err}") from None
    print(f"mfc: saved {plural(len(program.params), 'param')} to {path}" +
          (f", {when}" if when else ""), file=sys.stderr)


class _Progress:
    """Each epoch's line on stdout and, on a terminal, a one-line bar on stderr below
    them, redrawn after each epoch and cleared when training ends."""

    width = 30

    def __init__(self, epochs: int, shown: bool):
        self.epochs, self.shown = epochs, shown

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        self._clear()

    def report(self, epoch) -> None:
        self._clear()
        print(epoch.line(), flush=True)
        self._show(epoch.number)

    def _show(self, done: int) -> None:
        if self.shown:
            filled = self.width * done // self.epochs
            bar = "#" * filled + "." * (self.width - filled)
            sys.stderr.write(f"\r[{bar}] epoch {done}/{self.epochs}")
            sys.stderr.flush()

    def _clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# ---------------------------------------------------------------- draw


def cmd_draw(args) -> int:
    """`mfc draw FILE`: compile, draw, write the image; see `mfc draw --help`."""
    from mfc import draw
    from mfc.render import RenderError

    fmt, output = _destination(args)
    if args.max_nodes is not None and args.max_nodes < 0:
        raise CliError(f"--max-nodes must be 0 or more, not {args.max_nodes}")
    program = compile_spec(args.file)
    if output is not None:
        _not_read_by(program, "-o", output, "the drawing")
    collapse = _should_collapse(program, args)
    try:
        image = draw.draw(program, fmt, rankdir=args.rankdir, collapse=collapse)
    except RenderError as err:
        raise CliError(str(err)) from None
    suffix = output.suffix.lower().removeprefix(".") if output else ""
    if suffix and suffix != fmt:  # asked for, so written, but worth a word
        _note(f"writing {fmt} into '{output}', whose name says {suffix}")
    _write_image(output, image)
    return EXIT_OK


def _destination(args) -> tuple[str, Path | None]:
    """The format, and the file to write (None: stdout)."""
    if args.output == "-":
        return args.format or "svg", None
    if args.output is None:
        fmt = args.format or "svg"
        output = _beside_the_spec(args.file, fmt)
    else:
        output = Path(args.output)
        fmt = args.format or _format_of(args.output)
    if same_file(output, args.file):
        raise CliError(_over_the_spec(args, output))
    return fmt, output


def _over_the_spec(args, output: Path) -> str:
    if args.output is None:  # the spec's own name ends in the format's extension
        return (f"will not write the drawing over the spec '{args.file}'; name the "
                "drawing with -o")
    link = " (a symlink to it)" if os.path.islink(output) else ""
    return f"-o {args.output} is the spec '{args.file}'{link}; will not draw over it"


def _beside_the_spec(spec: str, fmt: str) -> Path:
    try:
        return Path(spec).with_suffix("." + fmt)
    except ValueError:  # a name with no stem, such as "/"
        raise CliError(f"{spec}: no such spec file") from None


def _format_of(output: str) -> str:
    from mfc.render import FORMATS

    fmt = Path(output).suffix.lower().removeprefix(".")
    if fmt not in FORMATS:
        raise CliError(f"cannot tell the format from the name '{output}'; give "
                       f"--format {'|'.join(FORMATS)} or end it in .svg, .png, .pdf or .dot")
    return fmt


def _should_collapse(program, args) -> bool:
    limit = DRAW_MAX_NODES if args.max_nodes is None else args.max_nodes
    size = len(program.graph)
    if args.collapse or size <= limit:
        return args.collapse
    _note(f"{size:,} nodes is more than {limit:,}, so runs of similar nodes are drawn "
          "collapsed (--max-nodes N changes the limit)")
    return True


def _write_image(output: Path | None, image: bytes) -> None:
    """To stdout (None), or atomically to the file: a failure leaves any old file."""
    from mfc.files import atomic_write

    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(image)
        sys.stdout.buffer.flush()
        return
    try:
        atomic_write(output, lambda file: file.write(image))
    except OSError as err:
        raise CliError(f"cannot write {output}: {err.strerror or err}") from None


if __name__ == "__main__":
    sys.exit(main())
