"""`mfc export SPEC [--load MODEL.npz] -o model.onnx`: the network as an ONNX model, its
params and preprocessing inside, for onnxruntime, Netron and the converters that read
ONNX (mfc.backends.onnx)."""

from __future__ import annotations

import sys
from pathlib import Path

from mfc.cli.common import (EXIT_OK, CliError, check_folder, compile_spec, not_read_by,
                            note, trained_model, write_output)
from mfc.files import same_file


def add_parser(commands) -> None:
    export = commands.add_parser("export", help="write a spec (with a model file's params) "
                                 "as an ONNX model")
    export.add_argument("file", metavar="SPEC", help="the spec (.mf)")
    export.add_argument("--load", metavar="MODEL.npz", help="the model file whose params "
                        "and preprocessing to export (mfc run --save writes one); without "
                        "it, the spec's initial params")
    export.add_argument("-o", "--output", metavar="OUT.onnx",
                        help="where to write it (default: SPEC with .onnx; - for stdout)")
    export.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="the type of the params and of every float tensor "
                        "(default: float32)")
    export.add_argument("--with-loss", action="store_true",
                        help="output the loss too, taking the targets as an input")
    export.add_argument("--force", action="store_true",
                        help="let the export replace a file that is not an ONNX model")
    export.set_defaults(handler=run)


def run(args) -> int:
    from mfc.backends import onnx
    from mfc.model import Model

    output = _destination(args)
    model = trained_model(args.file, args.load) if args.load else Model(compile_spec(args.file))
    if output is not None:
        _check_output(args, output, model.program)
    if not args.load:
        note("no --load: exporting the spec's initial params, untrained, with no "
             "preprocessing (mfc run --save MODEL.npz, then --load MODEL.npz)")
    exported = onnx.export(model.program, dict(model.params), model.preprocessing,
                           dtype=args.dtype, with_loss=args.with_loss)
    if not model.program.outputs and not args.with_loss:
        note(f"{args.file} has no prediction output, so its loss '{model.loss}' is exported")
    write_output(output, exported.SerializeToString(), "ONNX model")
    if output is not None:
        names = ", ".join(o.name for o in exported.graph.output)
        note(f"wrote {output}: inputs {', '.join(i.name for i in exported.graph.input) or '(none)'}"
             f"; outputs {names}")
    return EXIT_OK


def _destination(args) -> Path | None:
    """The file to write (None: stdout)."""
    if args.output == "-":
        if sys.stdout.isatty():
            raise CliError("-o - would write the binary ONNX model to the terminal; "
                           "redirect it (> model.onnx) or name a file with -o")
        return None
    if args.output is None:
        try:
            return Path(args.file).with_suffix(".onnx")
        except ValueError:  # a name with no stem, such as "/"
            raise CliError(f"{args.file}: no such spec file") from None
    check_folder("-o", args.output, "model.onnx")
    return Path(args.output)


def _check_output(args, output: Path, program) -> None:
    """Fail before exporting when the file would replace the spec, the data, the model
    file, or a file that is not an ONNX model."""
    from mfc.files import NotReplaceable, check_replaceable

    flag = "-o" if args.output is not None else "the export"
    not_read_by(program, flag, output, "the export")
    if args.load and same_file(output, args.load):
        raise CliError(f"{flag} {output} is the model file {args.load}; the export would "
                       "replace it")
    try:
        check_replaceable(output, "onnx", args.force)
    except NotReplaceable as err:
        raise CliError(f"{flag} {err}; --force replaces it") from None
