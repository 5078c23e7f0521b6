"""The `mfc` command: parse arguments, call the library, map errors to exit codes.

One module per command (check, run, draw, predict, eval, info, emit, export, plot);
`common` holds what they share.

Exit codes: 0 success; 1 errors in a spec (diagnostics on stderr) or a failed run;
2 usage and I/O errors (one line on stderr); 130 on Ctrl-C (128 + the signal's number
for other signals that stop a run); 70 for a bug in mfc itself.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys

from mfc import __version__
from mfc.cli import check, draw, eval as evaluate, emit, export, info, plot, predict, run
from mfc.cli.common import (EXIT_BUG, EXIT_OK, EXIT_SIGNAL, EXIT_USAGE, CliError,
                            stop_signals_interrupt)
from mfc.diagnostics import MfcError, SpecError
from mfc.text import one_line, plural

COMMANDS = (check, run, draw, predict, evaluate, info, emit, export, plot)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        raise CliError(f"{message} (see '{self.prog} --help')")


def main(argv=None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        parser, commands = _build_parser()
        _known_command(sys.argv[1:] if argv is None else argv, commands.choices)
        args, unknown = parser.parse_known_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for `run --workers`
        command = commands.choices.get(args.command, parser)
        if unknown:
            raise CliError(_unknown(unknown, command))
        _no_empty_file_names(args, command)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        with stop_signals_interrupt():
            return args.handler(args)
    except SpecError as err:  # diagnostics a command did not print itself
        print(str(err), file=sys.stderr)
        print(f"mfc: error: {plural(len(err.errors), 'error')}", file=sys.stderr)
        return err.exit_code
    except MfcError as err:  # mfc's own errors: the user's to fix, said in one line
        print(one_line(f"mfc: error: {err}"), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as stop:  # SIGTERM and SIGHUP (`signum`) too
        signum = getattr(stop, "signum", signal.SIGINT)
        name = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
        print(f"mfc: interrupted{name}", file=sys.stderr)
        return EXIT_SIGNAL + signum
    except BrokenPipeError:
        return EXIT_OK
    except OSError as err:  # a last resort: each path the user gives has its own message
        what = _os_error(err)
        if err.filename is None and err.errno in _WRITE_ERRORS:  # every file mfc writes
            what = f"cannot write to stdout: {what}"  # names itself: this is the output
        print(one_line(f"mfc: error: {what}"), file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # anything else is a bug in mfc, and shows as one
        return _bug(err, debug)


def _bug(err: Exception, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    print(one_line(f"mfc: internal error: {type(err).__name__}: {err}"), file=sys.stderr)
    print(f"mfc: this is a bug in mfc {__version__}, not in what you gave it; please "
          "report it with the command and the spec" +
          ("" if debug else " (--debug shows the traceback)"), file=sys.stderr)
    return EXIT_BUG


# What a write to a full or failing disk raises.
_WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _os_error(err: OSError) -> str:
    """`name: what went wrong`, without Python's `[Errno 36]`."""
    what = err.strerror or str(err)
    return f"{err.filename}: {what}" if err.filename is not None else what


def _known_command(argv: list[str], commands) -> None:
    """A CliError naming the command meant, when the first word is not a command."""
    word = next((a for a in argv if not a.startswith("-")), None)
    if word is not None and word not in commands:
        import difflib

        near = difflib.get_close_matches(word, list(commands), n=1, cutoff=0.5)
        raise CliError(f"unknown command '{word}'" +
                       (f"; did you mean '{near[0]}'?" if near else "") +
                       f" (the commands: {', '.join(commands)})")


# The arguments that name files, in every command.
_FILE_ARGUMENTS = frozenset({"file", "files", "save", "load", "log", "plot", "output", "model"})


def _no_empty_file_names(args, parser: argparse.ArgumentParser) -> None:
    """A CliError for a file argument given as '' (an unset shell variable, say): it
    names no file, and taken for the current folder or for "not given" it misleads."""
    for action in parser._actions:
        value = getattr(args, action.dest, None) if action.dest in _FILE_ARGUMENTS else None
        if value == "" or isinstance(value, list) and "" in value:
            name = action.option_strings[-1] if action.option_strings else action.metavar
            raise CliError(f"{name} is empty; give a file name (see '{parser.prog} --help')")


def _unknown(arguments: list[str], parser: argparse.ArgumentParser) -> str:
    """What is wrong with arguments no flag took: an unknown flag (with the one meant,
    if it is near one of the command's), else the arguments left over."""
    import difflib

    flags = [a for a in arguments if a.startswith("-") and a != "-"]
    see = f" (see '{parser.prog} --help')"
    if not flags:
        return f"unexpected argument{'s' if len(arguments) > 1 else ''} " \
               f"{' '.join(arguments)}{see}"
    flag = flags[0].split("=", 1)[0]
    known = [o for action in parser._actions for o in action.option_strings]
    near = difflib.get_close_matches(flag.replace("_", "-"), known, n=1, cutoff=0.6)
    return f"unknown flag {flag}" + (f"; did you mean {near[0]}?" if near else "") + see


def _build_parser():
    """The parser, and the action holding each command's own parser."""
    parser = _Parser(prog="mfc", description="Check, draw and train neural-network "
                     "specs written in the .mf language.")
    parser.add_argument("--version", action="version", version=f"mfc {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an internal error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser, commands
