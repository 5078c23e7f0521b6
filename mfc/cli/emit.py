"""`mfc emit FILE --target numpy`: the spec as a standalone numpy training script."""

from __future__ import annotations

import sys
from pathlib import Path

from mfc.cli.common import (EXIT_OK, CliError, add_setting_flags, check_folder, compile_spec,
                            not_read_by, note, setting_overrides)
from mfc.files import same_file

TARGETS = ("numpy",)


def add_parser(commands) -> None:
    emit = commands.add_parser("emit", help="write a spec as a standalone training script")
    emit.add_argument("file", metavar="FILE", help="the spec to write as a script (.mf)")
    emit.add_argument("--target", choices=TARGETS, default="numpy",
                      help="what the script runs on (numpy: needs numpy alone)")
    emit.add_argument("-o", "--output", default="-", metavar="SCRIPT.py",
                      help="where to write the script (default: stdout)")
    emit.add_argument("--with-data", action="store_true",
                      help="also write the prepared data beside the script, as SCRIPT.npz")
    emit.add_argument("--step-only", action="store_true",
                      help="only the generated training step (as `mfc run --explain`)")
    emit.add_argument("--force", action="store_true",
                      help="replace files that are there already")
    add_setting_flags(emit)
    emit.set_defaults(handler=emit_command)


def emit_command(args) -> int:
    from mfc import emit
    from mfc.model import Model

    overrides = setting_overrides(args)
    # A data path from the command line is relative to the current folder, as run's.
    base_dir = Path.cwd() if overrides.get("data") else None
    model = Model(compile_spec(args.file, base_dir=base_dir, **overrides))
    data_path = _paths(args, model.program)
    if args.step_only:
        _check_output("-o", args.output, args.force)
        _write(args.output, model.explain(note=note))
        return EXIT_OK
    emitted = emit.emit(model, note=note)
    if args.with_data and emitted.data is None:
        note("the spec trains without data: there is no data file to write")
    with_data = args.with_data and emitted.data is not None
    _check_output("-o", args.output, args.force)  # every output, before writing any
    if with_data:
        _check_output("--with-data", data_path, args.force)
    _write(args.output, emitted.text)
    if with_data:
        _write_data(data_path, emitted.data)
    return EXIT_OK


def _paths(args, program) -> Path | None:
    """The data file's path (SCRIPT.npz beside the script), once the outputs are
    checked: never the spec or its data, never a folder that is not there."""
    if args.output == "-":
        if args.with_data:
            raise CliError("--with-data writes SCRIPT.npz beside the script: give -o SCRIPT.py")
        return None
    check_folder("-o", args.output, "train_net.py")
    not_read_by(program, "-o", args.output, "the script")
    data_path = Path(args.output).with_suffix(".npz")
    if args.with_data:
        if same_file(args.output, data_path):
            raise CliError(f"-o {args.output}: the data would be written there too, over "
                           "the script; give the script a name such as train_net.py")
        not_read_by(program, "--with-data", data_path, "the data")
    return data_path


def _check_output(flag: str, path, force: bool) -> None:
    """A CliError unless `path` can be written: nothing there (or `force`), in a folder
    that takes a new file, and not a folder or a device (mfc.files' rule)."""
    from mfc.files import check_writable

    if path == "-":
        return
    if not force and Path(path).exists():
        raise CliError(f"{path} is there already; pass --force to replace it")
    try:
        check_writable(path)  # a temporary file in the folder, removed at once
    except OSError as err:
        raise CliError(f"{flag} {path}: {err.strerror or err}") from None


def _write(path: str, text: str) -> None:
    from mfc.files import atomic_write

    if path == "-":
        sys.stdout.write(text)
        return
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))
    note(f"wrote {path}")


def _write_data(path: Path, arrays: dict) -> None:
    import numpy as np

    from mfc.files import atomic_write

    atomic_write(path, lambda file: np.savez(file, **arrays))
    note(f"wrote {path} (the prepared rows)")
