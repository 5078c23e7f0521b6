"""Writing files so that no reader ever sees half of one: saved params, drawings."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def atomic_write(path, write) -> None:
    """Write a file through a temporary file beside it, then rename it into place.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write. An existing file keeps its permissions; a new one gets the
        usual ones (0o666 less the umask).
    write : callable
        Called with the temporary file, open for binary writing.

    Raises
    ------
    OSError
        The folder is missing or not writable, the disk is full, ... Whatever goes
        wrong, KeyboardInterrupt included, `path` is left as it was and the temporary
        file is removed.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never write through a file (or link) that someone else put there.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename makes it the file
        _keep_mode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _keep_mode(path: Path, temporary: Path) -> None:
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return
    os.chmod(temporary, mode)
