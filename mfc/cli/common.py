"""What the commands share: exit codes, reading and compiling a spec, notes, and the
checks on files a command is about to write.

Files a command writes (`run --save`, `draw -o`) follow mfc.files' rule: a regular file
or a new one, through any symlinks; never the spec or the data it reads.
"""

from __future__ import annotations

import os
import contextlib
import signal
import sys
import threading
from pathlib import Path

from mfc.diagnostics import MfcError
from mfc.files import same_file
from mfc.settings import OPTIMIZERS
from mfc.text import plural

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 70, 130
EXIT_SIGNAL = 128  # plus the number of the signal that stopped a run (SIGINT: 130)


# The common settings' own flags, for `mfc run` and `mfc emit`: (setting, metavar, what
# it is). Every setting is also `--set NAME=VALUE`; either way the value is checked as
# the train block's own are.
FLAGS = (("epochs", "N", "passes over the training data; 0 trains nothing and evaluates "
                    "the params"),
         ("batch_size", "N", "examples per step"),
         ("learning_rate", "RATE", "the optimizer's step size"),
         ("seed", "N", "seeds the params' initial values and the order of the batches"),
         ("optimizer", "NAME", " or ".join(OPTIMIZERS)))


class CliError(MfcError):
    """A one-line error for the user, with the exit code it ends in."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = code


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (`signum`) outside training: stops the command as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__()
        self.signum = signum


@contextlib.contextmanager
def stop_signals_interrupt():
    """While a command runs, SIGTERM and SIGHUP raise `Stopped`, as Ctrl-C raises
    KeyboardInterrupt: a file being written is left as it was, its temporary removed,
    and the command ends with one line (training catches them itself, to finish its
    step and save)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Stopped(signum)

    names = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {signum: signal.signal(signum, stop)
                for signum in (getattr(signal, name) for name in names)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


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


def compile_spec(path: str, data_info=None, base_dir=None, finished: bool = True,
                 **overrides):
    """The `Program` of the spec at `path`, its warnings printed; a spec with errors
    prints them and ends the command with exit 1. A bad override is a SettingError;
    `data_info` describes the data instead of its file (see `compile_text`); `base_dir`
    is the folder a data path is relative to (default: the spec's); `finished=False`
    takes a spec still being written (see `compile_text`)."""
    from mfc.diagnostics import SpecError
    from mfc.lang.compiler import compile_text

    text = read_spec(path)
    try:
        program = compile_text(text, path, base_dir=base_dir or Path(path).parent,
                               data_info=data_info, finished=finished, **overrides)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        raise CliError(f"{plural(len(err.errors), 'error')}; nothing was done",
                       EXIT_FAILED) from None
    print_diagnostics(program.diagnostics, text, path)
    return program


def print_diagnostics(diagnostics, text: str, path: str) -> None:
    from mfc.diagnostics import render

    for diagnostic in diagnostics:
        print(render(diagnostic, text, path) + "\n", file=sys.stderr)


def note(text: str) -> None:
    print(f"mfc: note: {text}", file=sys.stderr)


def not_read_by(program, flag: str, path, what: str) -> None:
    """A CliError when the output `path` (given with `flag`) is the spec or the data
    file: `what` would replace it."""
    from mfc import data as datasets

    settings = program.settings
    data = datasets.file_of(settings.data, program.base_dir) if settings.data else None
    # Named as the user named them: the spec's path, the data as the block or flag says.
    for kind, read, named in [("spec", program.filename, program.filename),
                              ("data file", data, settings.data)]:
        if read is not None and same_file(path, read):
            raise CliError(f"{flag} {path} is the {kind} '{named}'; {what} would replace it")


# ---------------------------------------------------------------- trained models


def trained_model(spec: str, model_file: str):
    """The `mfc.Model` of the spec at `spec` with the params and preprocessing of the
    model file `model_file`, checked to be saved from that spec's graph; a one-line
    CliError (exit 2) when it cannot be read or does not fit. The spec is compiled for
    the data the model was trained on, as its manifest describes it: that data need not
    be here to predict."""
    from mfc import modelfile
    from mfc.model import Model

    manifest, _ = modelfile.describe(model_file)
    model = Model(compile_spec(spec, **_trained_on(manifest)))
    model.restore(model_file, note=note)
    return model


def _trained_on(manifest: dict) -> dict:
    """compile_spec's keywords for the data a model's manifest describes (none for an
    old params-only file): its name, and its width instead of reading it."""
    from mfc.data import DataInfo

    data = manifest.get("data") or {}
    features = (manifest.get("preprocessing") or {}).get("features")
    if not data.get("source") or not isinstance(features, int):
        return {}
    return {"data": data["source"], "data_info": DataInfo(rows=None, features=features,
                                                          classes=None)}


def model_data(model, source: str, model_file: str, targets: bool):
    """The data `--data SOURCE` names (`-`: CSV on stdin), read for the trained
    `model`: raw features matched to the model's, and targets (needed when `targets`).
    Raises DataError (one line, exit 2)."""
    from mfc import data
    from mfc.preprocess import Preprocessing

    if source != "-" and same_file(source, model_file):
        raise CliError(f"--data {source} is the model file")
    preprocessing = model.preprocessing or Preprocessing(features=_width(model.program))
    classes = preprocessing.classes
    text = classes is not None and any(isinstance(c, str) for c in classes)
    stdin = sys.stdin.buffer.read() if source == "-" else None
    return data.load_for_model(source, Path.cwd(), preprocessing, targets=targets,
                               text_targets=text, stdin=stdin, note=note)


def _width(program) -> int:
    """How many features the spec's features Input takes (for a model file that does
    not say)."""
    shape = program.nodes[program.settings.features].shape \
        if program.settings.features in program.nodes else None
    if shape is None or len(shape) != 2 or not isinstance(shape[1], int):
        raise CliError(f"cannot tell how many features {program.filename} takes: its "
                       f"features Input '{program.settings.features}' has no known width")
    return shape[1]


def write_output(path: str | None, text: str | bytes, what: str) -> None:
    """`text` (or bytes) to stdout (None or `-`), or atomically to the file `path`: a
    failure leaves any old file as it was."""
    from mfc.files import atomic_write

    data = text.encode("utf-8") if isinstance(text, str) else text
    if path is None or path == "-":
        if isinstance(text, str):
            sys.stdout.write(text)
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(text)
        sys.stdout.flush()
        return
    try:
        atomic_write(path, lambda file: file.write(data))
    except OSError as err:
        raise CliError(f"cannot write the {what} to {path}: {err.strerror or err}") from None


def check_folder(flag: str, path: str, example: str) -> None:
    """A CliError unless `path` names a file (there or not) in a folder that exists."""
    folder = Path(path).parent
    if not path:
        raise CliError(f"{flag} needs a file name, such as {example}")
    if Path(path).is_dir():
        raise CliError(f"{flag} {path}: is a folder; give a file name such as {example}")
    if not folder.exists():
        raise CliError(f"{flag} {path}: no folder '{folder}'")
    if not folder.is_dir():
        raise CliError(f"{flag} {path}: '{folder}' is not a folder")


def add_setting_flags(parser) -> None:
    """The flags that override the train block: FLAGS, --data and --set NAME=VALUE."""
    from mfc.settings import SCHEMA, TrainSettings

    defaults = TrainSettings()
    for key, metavar, what in FLAGS:
        parser.add_argument("--" + key.replace("_", "-"), metavar=metavar, help=f"{what} "
                            f"(default: the train block's, else {getattr(defaults, key)})")
    parser.add_argument("--data", help="a bundled dataset name, or a .csv or .npz file "
                        "(a path is relative to the current folder)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                        help="any train setting, as the train block would set it: "
                        f"{', '.join(SCHEMA)} (e.g. --set target_column=price)")


def setting_overrides(args) -> dict:
    """The settings the flags give, as values for `TrainSettings.with_overrides` (which
    checks them); a setting given twice is a CliError."""
    given = {key: getattr(args, key) for key, _, _ in FLAGS}
    given["data"] = args.data
    given = {key: text for key, text in given.items() if text is not None}
    for item in args.set:
        key, text = _name_and_value(item)
        if key in given:
            raise CliError(f"'{key}' is given twice on the command line")
        given[key] = text
    from mfc.settings import from_text

    values = {key: from_text(key, text) for key, text in given.items()}
    if "data" in values:
        values["data"] = _data_flag(values["data"])
    return values


def _name_and_value(item: str) -> tuple[str, str]:
    """`--set NAME=VALUE` split; `batch-size` is taken for `batch_size`."""
    name, equals, value = item.partition("=")
    if not equals or not name.strip():
        raise CliError(f"--set takes NAME=VALUE, such as --set validation=0.2, not '{item}'")
    return name.strip().replace("-", "_"), value.strip()


def _data_flag(data: str | None) -> str | None:
    """A --data path, checked to name a file (relative to the current folder)."""
    from mfc import data as datasets

    if not data or datasets.is_bundled(data):
        return data
    if datasets.describe(data, Path.cwd()) is None:  # a DataError for an unusable one
        raise CliError(f"data file '{data}' not found (looked in {os.path.abspath(data)})")
    return data


def check_output(flag: str, path: str, writing: str, force: bool, program=None,
                 example: str = "") -> None:
    """Fail before a long job, not after it, when the file `path` (given with `flag`)
    could not be written, would replace the spec or the data `program` reads, or a
    file that is not a `writing` file mfc wrote (mfc.files.check_replaceable), unless
    `force`."""
    from mfc.files import NotReplaceable, check_replaceable, check_writable

    check_folder(flag, path, example)
    if program is not None:
        not_read_by(program, flag, path, f"the {_WHAT.get(writing, 'drawing')}")
    try:
        check_writable(path)  # a temporary file in the folder, removed at once
        check_replaceable(path, writing, force)
    except OSError as err:
        raise CliError(f"{flag} {path}: {err.strerror or err}") from None
    except NotReplaceable as err:
        raise CliError(f"{flag} {err}; --force replaces it") from None


_WHAT = {"model": "params", "log": "run log"}
