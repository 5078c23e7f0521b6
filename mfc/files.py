"""Writing files so that no reader ever sees half of one: saved params, drawings.

The rule for what may be written: a path names a regular file, or nothing yet. A
symlink is followed to the file it names (which is then replaced, in its own folder, and
the link kept); anything else already at the path (a folder, a FIFO, a device such as
/dev/null, a socket) is refused, because replacing it with a regular file would destroy
it and writing into it is not a file write that can be made atomic.

And the rule for what may be replaced (`check_replaceable`): only a file of the kind mfc
writes there (a model file where a model goes; a drawing whose content is the format its
name says), unless the user forces it. A spec, a CSV, notes: never by accident.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from pathlib import Path

from mfc.diagnostics import MfcError

DRAWINGS = ("svg", "png", "pdf", "dot")  # the drawing formats mfc writes
_KIND_NAMES = {"model": "an mfc model file", "onnx": "an ONNX model", "svg": "an svg drawing",
               "png": "a png image", "pdf": "a pdf document", "dot": "a DOT graph",
               "log": "an mfc run log"}
_HEAD = 4096  # bytes read to tell a file's kind
# Where an svg's first element may be preceded by an XML declaration, comments, a doctype.
_SVG = re.compile(r"^(\s*(<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>))*\s*<svg[\s>/]", re.DOTALL)
# An ONNX model is a protobuf ModelProto, written field by field in order: ir_version
# (field 1, a small varint), then one of the next fields (producer_name, ..., graph).
_ONNX = re.compile(rb"\x08[\x01-\x7f][\x12\x1a\x22\x28\x32\x3a\x42]")
# A run log's first line (mfc.runlog): its CSV header, or a JSON row.
_LOG = re.compile(r'^(epoch,loss[a-z_,]*|\{"epoch": \d+, "loss": .*\})\r?$', re.MULTILINE)
_DOT = re.compile(r"^(\s*(//[^\n]*|/\*.*?\*/|#[^\n]*))*\s*(strict\s+)?(di)?graph\b",
                  re.DOTALL | re.IGNORECASE)

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


class NotReplaceable(MfcError):
    """A file is in the way that mfc did not write (see `check_replaceable`)."""


def check_replaceable(path, writing: str, force: bool = False) -> None:
    """Raise NotReplaceable unless writing a `writing` file at `path` may replace what
    is there: nothing (or a dangling symlink); a model file, when writing a model; a
    drawing in the format its name says (the format being written, for a name that
    says none), when writing a drawing. `force` allows anything.

    Parameters
    ----------
    path : str or os.PathLike
        Followed through symlinks, as `atomic_write` does.
    writing : {"model", "onnx", "svg", "png", "pdf", "dot", "log"}
        What is about to be written.
    """
    if force or not os.path.isfile(path):  # nothing there; what is not a file is
        return                             # atomic_write's to refuse
    expected = writing
    if writing in DRAWINGS:
        suffix = Path(path).suffix.lower().removeprefix(".")
        expected = suffix if suffix in DRAWINGS else writing
    if kind_of_file(path) != expected:
        raise NotReplaceable(f"{path} is there already, and is not {_KIND_NAMES[expected]}")


def kind_of_file(path) -> str | None:
    """Which kind of file that mfc writes the regular file at `path` holds, from its
    content: 'model' (an .npz archive of .npy arrays, with or without a manifest.json),
    'onnx', 'svg', 'png', 'pdf' or 'dot'; None for anything else or an unreadable file."""
    import zipfile  # only where a file would be replaced

    try:
        with open(path, "rb") as file:
            head = file.read(_HEAD)
            is_zip = zipfile.is_zipfile(file)
            names = zipfile.ZipFile(file).namelist() if is_zip else None
    except (OSError, zipfile.BadZipFile):
        return None
    if names is not None:
        model = all(n.endswith(".npy") or n == "manifest.json" for n in names)
        return "model" if model else None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if _ONNX.match(head):
        return "onnx"
    text = head.decode("utf-8", "ignore").removeprefix("\ufeff")
    if _LOG.match(text):
        return "log"
    return "svg" if _SVG.match(text) else "dot" if _DOT.match(text) else None


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
