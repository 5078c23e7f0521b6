"""`mfc draw FILE`: compile, draw, write the image."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mfc.cli.common import EXIT_OK, CliError, compile_spec, not_read_by, note
from mfc.files import same_file

DRAW_MAX_NODES = 200  # past this many nodes, `mfc draw` collapses by itself


def add_parser(commands) -> None:
    draw = commands.add_parser("draw", help="draw a spec's graph")
    draw.add_argument("file", metavar="FILE", help="the spec to draw (.mf)")
    draw.add_argument("-o", "--output", metavar="OUT",
                      help="output file (default: FILE with the format's extension; - for stdout)")
    draw.add_argument("--format", choices=("svg", "png", "pdf", "dot"))
    draw.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
    draw.add_argument("--max-nodes", type=int, metavar="N", help="collapse runs of "
                      f"similar nodes past N nodes (default {DRAW_MAX_NODES})")
    draw.add_argument("--fold", action="store_true", help="draw each fragment call as "
                      "one box (in and out shapes, params), a repeat's calls as one")
    draw.add_argument("--collapse", action="store_true",
                      help="collapse runs of similar nodes whatever the size")
    draw.add_argument("--force", action="store_true", help="let the drawing replace a "
                      "file that is not a drawing in the format its name says")
    draw.set_defaults(handler=run)


def run(args) -> int:
    from mfc import draw

    fmt, output = _destination(args)
    if args.max_nodes is not None and args.max_nodes < 0:
        raise CliError(f"--max-nodes must be 0 or more, not {args.max_nodes}")
    program = compile_spec(args.file, finished=False)  # a spec still being written draws
    if output is not None:
        not_read_by(program, "-o", output, "the drawing")
        _check_replaceable(args, output, fmt)
    mode = _mode(program, args)
    image = draw.draw(program, fmt, rankdir=args.rankdir, collapse=mode == "collapse",
                      fold=mode == "fold")
    suffix = output.suffix.lower().removeprefix(".") if output else ""
    if suffix and suffix != fmt:  # asked for, so written, but worth a word
        note(f"writing {fmt} into '{output}', whose name says {suffix}")
    _write_image(output, image)
    return EXIT_OK


def _destination(args) -> tuple[str, Path | None]:
    """The format, and the file to write (None: stdout)."""
    if args.output == "-":
        return args.format or "svg", None
    if args.output is None:
        fmt = args.format or "svg"
        output = _beside_the_spec(args.file, fmt)
    elif not args.output:
        raise CliError("-o needs a file name, such as net.svg (or - for stdout)")
    else:
        output = Path(args.output)
        fmt = args.format or _format_of(args.output)
    if same_file(output, args.file):
        raise CliError(_over_the_spec(args, output))
    return fmt, output


def _check_replaceable(args, output: Path, fmt: str) -> None:
    """Fail before drawing when the drawing would replace a file mfc did not draw."""
    from mfc.files import NotReplaceable, check_replaceable

    try:
        check_replaceable(output, fmt, args.force)
    except NotReplaceable as err:
        flag = "-o " if args.output is not None else "the drawing "
        raise CliError(f"{flag}{err}; --force replaces it") from None


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
    from mfc.draw.render import FORMATS

    fmt = Path(output).suffix.lower().removeprefix(".")
    if fmt not in FORMATS:
        raise CliError(f"cannot tell the format from the name '{output}'; give "
                       f"--format {'|'.join(FORMATS)} or end it in .svg, .png, .pdf or .dot")
    return fmt


def _mode(program, args) -> str:
    """'fold', 'collapse' or 'plain': as asked; past the node limit, a spec made of
    fragment calls is folded (a box per call), another collapsed."""
    if args.fold or args.collapse:
        return "fold" if args.fold else "collapse"
    limit = DRAW_MAX_NODES if args.max_nodes is None else args.max_nodes
    size = len(program.nodes)
    if size <= limit:
        return "plain"
    if program.calls:
        note(f"{size:,} nodes is more than {limit:,}, so each fragment call is drawn as one "
             "box (--max-nodes N changes the limit)")
        return "fold"
    note(f"{size:,} nodes is more than {limit:,}, so runs of similar nodes are drawn "
         "collapsed (--max-nodes N changes the limit)")
    return "collapse"


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
