"""Writing files so that no reader ever sees half of one: saved params, drawings.

The rule for what may be written: a path names a regular file, or nothing yet. A
symlink is followed to the file it names (which is then replaced, in its own folder, and
the link kept); anything else already at the path (a folder, a FIFO, a device such as
/dev/null, a socket) is refused, because replacing it with a regular file would destroy
it and writing into it is not a file write that can be made atomic.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device",
          stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}


def atomic_write(path, write) -> None:
    """Write a file through a temporary file beside it, then rename it into place.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, or a symlink to it (the link stays; its target is replaced).
        An existing file keeps its permissions; a new one gets the usual ones (0o666
        less the umask).
    write : callable
        Called with the temporary file, open for binary writing.

    Raises
    ------
    OSError
        The folder is missing or not writable, the disk is full, the path is not a
        regular file (see the module's docstring), its symlinks loop, a name is too
        long, ... Whatever goes wrong, KeyboardInterrupt included, the file is left as
        it was and the temporary file is removed.
    """
    target, mode = _writable_target(path)
    descriptor, temporary = _create_temporary(target.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename makes it the file
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def check_writable(path) -> None:
    """Raise the OSError that `atomic_write(path, ...)` would raise for the path's sake
    (see there), by creating and removing a temporary file beside the target: a long
    job can fail at its start rather than when it saves its result."""
    target, _ = _writable_target(path)
    descriptor, temporary = _create_temporary(target.parent)
    os.close(descriptor)
    os.unlink(temporary)


def same_file(a, b) -> bool:
    """True when the paths `a` and `b` name the same file, through any symlinks; paths
    that cannot be resolved (a symlink loop, a name too long) name no file."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they lead
        with contextlib.suppress(OSError, ValueError):
            return os.path.realpath(a) == os.path.realpath(b)
    return False


def _writable_target(path) -> tuple[Path, int | None]:
    """The file to replace (symlinks followed), and the mode it has (None: new)."""
    # realpath, not Path.resolve: resolve raises RuntimeError for a loop before Python
    # 3.13; realpath leaves the looping link in the path, which stat then refuses.
    target = Path(os.path.realpath(path))
    try:
        status = os.stat(target)
    except FileNotFoundError:
        return target, None
    if not stat.S_ISREG(status.st_mode):
        kind = _KINDS.get(stat.S_IFMT(status.st_mode), "not a file")
        raise OSError(errno.EEXIST, f"not a regular file ({kind})", str(path))
    return target, stat.S_IMODE(status.st_mode)


def _create_temporary(folder: Path) -> tuple[int, Path]:
    """A new empty file in `folder`, with a name short enough for any file system
    (`.mfc-` and 16 hex digits: a name derived from a long target's would be too long).
    O_EXCL: never write through a file (or link) that someone else put there. Not
    mkstemp: it makes the file 0o600, and a new target should get the umask's mode."""
    temporary = folder / f".mfc-{os.urandom(8).hex()}.tmp"
    return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
