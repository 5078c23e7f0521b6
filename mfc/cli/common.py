"""What the commands share: exit codes, reading and compiling a spec, notes, and the
checks on files a command is about to write.

Files a command writes (`run --save`, `draw -o`) follow mfc.files' rule: a regular file
or a new one, through any symlinks; never the spec or the data it reads.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mfc.diagnostics import MfcError
from mfc.files import same_file
from mfc.text import plural

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 70, 130
EXIT_SIGNAL = 128  # plus the number of the signal that stopped a run (SIGINT: 130)


class CliError(MfcError):
    """A one-line error for the user, with the exit code it ends in."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = code


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
    """The `Program` of the spec at `path`, its warnings printed; a spec with errors
    prints them and ends the command with exit 1. A bad override is a SettingError."""
    from mfc.diagnostics import SpecError
    from mfc.lang.compiler import compile_text

    text = read_spec(path)
    try:
        program = compile_text(text, path, base_dir=Path(path).parent, **overrides)
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
    for kind, read in [("spec", program.filename), ("data file", data)]:
        if read is not None and same_file(path, read):
            raise CliError(f"{flag} {path} is the {kind} {read}; {what} would replace it")
