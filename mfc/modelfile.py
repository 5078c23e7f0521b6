"""Saved params: the .npz files `mfc run --save` writes and `--load` reads.

Written atomically (mfc.files) and read without pickles: names, shapes and dtypes come
from the archive's .npy headers and are checked before any array is read.
"""

from __future__ import annotations

import os
import zipfile
from contextlib import contextmanager

import numpy as np

from mfc import data as datasets
from mfc.diagnostics import MfcError
from mfc.files import atomic_write


class ParamsError(MfcError):
    """A params file that cannot be read or does not fit the spec: one line."""


def save_params(path, params) -> None:
    """Write `params` (name → array) to an .npz file at `path`, atomically (see
    `mfc.files.atomic_write`): an interrupted save never leaves a corrupt file.
    Raises OSError."""
    atomic_write(path, lambda file: _write_npz(file, params))


def _write_npz(file, params) -> None:
    # Written as np.savez would, without its keyword arguments: a param may be named
    # `file` or `allow_pickle`.
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in params.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def load_params(path, params) -> None:
    """Copy the params saved at `path` into `params` (the network's). Raises
    ParamsError when the file cannot be read or its names or shapes do not match.

    The names, shapes and dtypes are read from the archive's .npy headers and checked
    before any array is: a header can claim any shape, and numpy allocates it whole.
    """
    with _params_archive(path) as archive:
        members = _params_headers(path, archive)
        _check_names(path, params, members)
        for name, (_, shape, dtype) in members.items():
            _check_header(path, params, name, shape, dtype)
        arrays = {name: _read_param(path, archive, name, member)
                  for name, (member, _, _) in members.items()}
    for name, array in arrays.items():
        params[name] = array


@contextmanager
def _params_archive(path):
    """The .npz archive at `path`, open; a ParamsError for any other file."""
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # reading a FIFO would hang
            raise ParamsError(f"{path} is not a regular file")
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file") from None
    except zipfile.BadZipFile:
        if _quietly(datasets.is_npy, path):
            raise ParamsError(f"{path} holds one array, not an .npz file of params") from None
        raise ParamsError(f"{path} is not an .npz archive of params") from None
    except OSError as err:
        raise ParamsError(f"cannot read {path}: {err.strerror or err}") from None
    with archive:
        yield archive


def _quietly(check, path) -> bool:
    try:
        return check(path)
    except OSError:
        return False


def _params_headers(path, archive) -> dict[str, tuple]:
    """param name → (archive member, shape, dtype), from the headers alone."""
    members = {}
    for member in archive.namelist():
        name = member.removesuffix(".npy")
        try:
            members[name] = (member, *datasets.npy_header(archive, member))
        except (*datasets.NPZ_ERRORS, OSError) as err:
            raise ParamsError(f"{path} is not a readable .npz archive of params: "
                              f"{name}: {err}") from None
    return members


def _check_names(path, params, members: dict) -> None:
    missing = [n for n in params if n not in members]
    extra = [n for n in members if n not in params]
    if missing or extra:
        raise ParamsError(f"{path} does not match the spec: " + "; ".join(
            ([f"it lacks {', '.join(missing)}"] if missing else []) +
            ([f"the spec has no {', '.join(extra)}"] if extra else [])))


def _check_header(path, params, name: str, shape: tuple, dtype) -> None:
    target = params[name]
    if shape != target.shape:
        raise ParamsError(f"{path}: {name} has shape {shape} there, but "
                          f"{target.shape} in the spec ({params.where(name)})")
    if dtype.kind not in "biuf":
        raise ParamsError(f"{path}: {name} holds {dtype} values, not real numbers")


def _read_param(path, archive, name: str, member: str) -> np.ndarray:
    try:
        array = datasets.read_npy(archive, member)
    except (*datasets.NPZ_ERRORS, OSError) as err:
        raise ParamsError(f"{path} is not a readable .npz archive of params: "
                          f"{name}: {err}") from None
    if not np.all(np.isfinite(array)):
        raise ParamsError(f"{path}: {name} does not hold finite real numbers")
    return array
