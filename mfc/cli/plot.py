"""`mfc plot LOG`: the loss curve of a run log (`mfc run --log`), as png, svg or pdf."""

from __future__ import annotations

from pathlib import Path

from mfc.cli.common import EXIT_OK, CliError, check_output

FORMATS = ("png", "svg", "pdf")  # mfc.plot's, without importing it (nor matplotlib)


def add_parser(commands) -> None:
    plot = commands.add_parser("plot", help="draw the loss curve of a run log")
    plot.add_argument("log", metavar="LOG",
                      help="a run log written by 'mfc run --log' (.csv or .jsonl)")
    plot.add_argument("-o", "--output", metavar="OUT", help="the picture: .png, .svg or "
                      ".pdf (default: the log's name with the format's extension)")
    plot.add_argument("--format", choices=FORMATS,
                      help="png, svg or pdf (default: from OUT's name, else png)")
    plot.add_argument("--title", help="the picture's title (default: the log's name)")
    plot.add_argument("--force", action="store_true",
                      help="let the picture replace a file that is not one mfc drew")
    plot.set_defaults(handler=run)


def run(args) -> int:
    from mfc import plot, runlog

    fmt, output = _destination(args)
    rows = runlog.read(args.log)  # a LogError (one line, exit 2) for what is not a log
    if output.exists() and output.resolve() == Path(args.log).resolve():
        raise CliError(f"-o {output} is the log itself; name the picture otherwise")
    check_output("-o", str(output), fmt, args.force, example="curve.png")
    image = plot.curve(rows, fmt, title=args.title or args.log)
    _write(output, image)
    return EXIT_OK


def _destination(args) -> tuple[str, Path]:
    if args.output is None:
        fmt = args.format or "png"
        return fmt, Path(args.log).with_suffix("." + fmt)
    suffix = Path(args.output).suffix.lower().removeprefix(".")
    fmt = args.format or suffix
    if fmt not in FORMATS:
        raise CliError(f"cannot tell the format from the name '{args.output}'; end it in "
                       ".png, .svg or .pdf, or give --format")
    return fmt, Path(args.output)


def _write(output: Path, image: bytes) -> None:
    from mfc.files import atomic_write

    try:
        atomic_write(output, lambda file: file.write(image))
    except OSError as err:
        raise CliError(f"cannot write {output}: {err.strerror or err}") from None
