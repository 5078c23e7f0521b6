"""The `mfc` command's entry point (and `python -m mfc`'s).

Nothing is imported here: Python loads mfc's modules for the command inside `main`, so
that a Ctrl-C while they load (the command's first tenth of a second) ends as every
other Ctrl-C does, with one line and exit 130, not a traceback.
"""

import sys


def main(argv=None) -> int:
    try:
        from mfc.cli import main as command
    except KeyboardInterrupt:
        print("mfc: interrupted", file=sys.stderr)
        return 130
    return command(argv)
