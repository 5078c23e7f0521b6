"""Training data: bundled scikit-learn datasets, CSV files and NPZ files.

`describe` is the cheap half, used at check time to learn a dataset's feature width
without reading it; `load` reads the data itself, and `prepare` makes it ready to train a
program on: split, standardised, targets as class indices where a loss wants labels. The
bundled datasets are read from scikit-learn's data files without importing it
(mfc.bundled). Every problem with the data
becomes a one-line `DataError` (a file the system cannot open, or one too large to
load, included); CSV errors name the line (header = line 1) and column.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mfc.diagnostics import DataError, SettingError, did_you_mean
from mfc.lazy import LazyModule
from mfc.settings import data_problems, held_out_rows
from mfc.text import format_shape, plural

np = LazyModule("numpy", globals(), "np")  # imported when data is first read


@dataclass(frozen=True)
class DataInfo:
    """What is known about a dataset before loading it; None means unknown.
    `continuous`: the targets are known to be continuous (a regression dataset)."""

    rows: int | None
    features: int
    classes: int | None
    continuous: bool = False


@dataclass(eq=False)
class Dataset:
    """Loaded data: X is float64 (rows, features), y is float64 (rows,)."""

    X: np.ndarray
    y: np.ndarray
    name: str
    feature_names: list[str]
    classes: int | None

    @property
    def info(self) -> DataInfo:
        return DataInfo(self.X.shape[0], self.X.shape[1], self.classes)


# Checked against scikit-learn 1.9 by tests/test_data.py. diabetes's targets are
# integer-valued (25..346, 214 distinct) but it is a regression problem.
BUNDLED: dict[str, DataInfo] = {
    "diabetes": DataInfo(rows=442, features=10, classes=None, continuous=True),
    "iris": DataInfo(rows=150, features=4, classes=3),
    "wine": DataInfo(rows=178, features=13, classes=3),
    "breast_cancer": DataInfo(rows=569, features=30, classes=2),
    "digits": DataInfo(rows=1797, features=64, classes=10),
}
BUNDLED_NAMES: tuple[str, ...] = tuple(BUNDLED)

# Integer-valued targets with more distinct values than this are taken as regression
# targets (diabetes has 214), not as class labels.
MAX_CLASSES = 100
_FILE_KINDS = (".csv", ".npz")
# An .npz array larger than this (as float64) is refused from its header, unread: a
# header can claim any shape, and numpy would try to allocate it.
_MAX_BYTES = 2**31


def is_bundled(name: str) -> bool:
    """True when `name` is one of the bundled scikit-learn datasets."""
    return name in BUNDLED


# ---------------------------------------------------------------- describe and load


def describe(source: str, base_dir, target_column: str | None = None) -> DataInfo | None:
    """Cheaply describe a dataset, reading at most a CSV header or the NPZ array headers.

    Parameters
    ----------
    source : a bundled name, or a path to a .csv or .npz file (relative to `base_dir`).
    base_dir : the folder of the spec file.
    target_column : for a CSV, the target's column name; checked against the header.

    Returns
    -------
    DataInfo, or None when the file does not exist. For a CSV, rows and classes are
    None; for an NPZ, classes is None.

    Raises
    ------
    DataError for an unknown name or extension, a header that cannot be read, a path
    that is not a regular file or that the system refuses (a name too long, say).
    """
    if is_bundled(source):
        _no_target_column(source, target_column)
        return BUNDLED[source]
    path = _resolve(source, base_dir)
    with _system_errors(source):
        return _describe_file(source, path, target_column)


def _describe_file(source: str, path: Path, target_column: str | None) -> DataInfo | None:
    if not _is_file(source, path):
        return None
    if path.suffix.lower() == ".csv":
        header = _parse_header(source, _first_line(source, path))
        _target_index(source, header, target_column)
        return DataInfo(rows=None, features=len(header) - 1, classes=None)
    _no_target_column(source, target_column)
    return _describe_npz(source, path)


def load(source: str, base_dir, target_column: str | None = None) -> Dataset:
    """Load a dataset.

    Parameters
    ----------
    source : a bundled name, or a path to a .csv or .npz file (relative to `base_dir`).
    base_dir : the folder of the spec file.
    target_column : for a CSV, the target's column name; default the last column.

    Returns
    -------
    Dataset with X float64 (rows, features) and y float64 (rows,), both finite.

    Raises
    ------
    DataError, one line, for anything wrong with the data.
    """
    if is_bundled(source):
        _no_target_column(source, target_column)
        return _load_bundled(source)
    path = _resolve(source, base_dir)
    with _system_errors(source):
        if not _is_file(source, path):
            raise DataError(f"data file '{source}' not found (looked in {path})")
        if path.suffix.lower() == ".csv":
            return _load_csv(source, path, target_column)
        _no_target_column(source, target_column)
        return _load_npz(source, path)


def _is_file(source: str, path: Path) -> bool:
    """True for a (link to a) regular file, False when nothing is there; DataError for
    anything else: a folder, or a FIFO, which reading would wait on forever."""
    if not path.exists():
        return False
    if not path.is_file():
        raise DataError(f"the data file '{source}' is not a regular file")
    return True


def file_of(source: str, base_dir) -> Path | None:
    """The absolute path of the data file `source` names, or None for a bundled name
    (or a name that is neither)."""
    if is_bundled(source):
        return None
    try:
        return _resolve(source, base_dir)
    except DataError:
        return None


@contextmanager
def _system_errors(source: str):
    """What the system says about a data file (a name too long, a folder that cannot
    be read) and running out of memory while reading it, as one-line DataErrors."""
    try:
        yield
    except OSError as e:
        raise DataError(f"cannot read the data file '{source}': {e.strerror or e}") from None
    except MemoryError:
        raise DataError(f"the data file '{source}' is too large to load") from None


def _resolve(source: str, base_dir) -> Path:
    """The absolute path of a data file; raises for names that are neither kind."""
    path = Path(source)
    if path.suffix.lower() not in _FILE_KINDS:
        hint = did_you_mean(source, BUNDLED_NAMES)
        raise DataError(
            f"unknown data '{source}': not a bundled dataset ({', '.join(BUNDLED_NAMES)}) "
            f"nor a .csv or .npz file" + (f"; {hint}" if hint else "")
        )
    return Path(os.path.abspath(Path(base_dir) / path))


def _no_target_column(source: str, target_column: str | None) -> None:
    if target_column is not None:
        raise DataError(f"{source}: target_column applies only to .csv data")


def _load_bundled(name: str) -> Dataset:
    from mfc import bundled

    X, y, feature_names = bundled.load(name)  # scikit-learn's files, without importing it
    return Dataset(
        X=np.asarray(X, dtype=np.float64),
        y=np.asarray(y, dtype=np.float64),
        name=name,
        feature_names=feature_names,
        classes=BUNDLED[name].classes,
    )


def _guess_classes(y: np.ndarray) -> int | None:
    """The number of distinct labels when `y` looks like class labels, else None."""
    if not np.all(y == np.round(y)):
        return None
    distinct = len(np.unique(y))
    return distinct if distinct <= MAX_CLASSES else None


# ---------------------------------------------------------------- CSV


def _first_line(source: str, path: Path) -> str:
    with open(path, "rb") as f:
        raw = f.readline(1 << 20)
    return _decode(source, raw)


def _decode(source: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # -sig: drop a byte-order mark
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{source}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8"
        ) from e


def _parse_header(source: str, line: str) -> list[str]:
    try:
        return _header_names(source, next(csv.reader([line]), []))
    except csv.Error as e:
        raise DataError(f"{source}:1: cannot read the header: {e}") from e


def _header_names(source: str, row: list[str]) -> list[str]:
    """Column names from the header row, checked for blanks, duplicates and numbers."""
    names = [c.strip() for c in row]
    if not any(names):
        raise DataError(f"{source}:1: the first line must be a header naming the columns")
    if len(names) < 2:
        sep = next((s for s in (";", "\t", "|") if s in names[0]), None)
        hint = f" (it looks separated by {sep!r}; mfc reads commas)" if sep else ""
        raise DataError(f"{source}:1: the header needs at least two columns{hint}")
    for i, name in enumerate(names):
        if not name:
            raise DataError(f"{source}:1: column {i + 1} has no name")
        if name in names[:i]:
            raise DataError(f"{source}:1: column '{name}' appears twice in the header")
    if all(_is_number(n) for n in names):
        raise DataError(f"{source}:1: the first line must be a header of column names, not numbers")
    return names


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _target_index(source: str, header: list[str], target_column: str | None) -> int:
    if target_column is None:
        return len(header) - 1
    if target_column in header:
        return header.index(target_column)
    hint = did_you_mean(target_column, header)
    shown = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
    raise DataError(
        f"{source} has no column '{target_column}'; "
        + (hint if hint else f"its columns are {shown}")
    )


def _load_csv(source: str, path: Path, target_column: str | None) -> Dataset:
    text = _decode(source, path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _header_names(source, _next_row(reader, source, skip_blank=False) or [])
    target = _target_index(source, header, target_column)
    rows = []
    while (row := _next_row(reader, source)) is not None:
        rows.append(_parse_row(source, reader.line_num, row, header))
    if not rows:
        raise DataError(f"{source} has a header but no data rows")
    table = np.array(rows, dtype=np.float64)
    features = [i for i in range(len(header)) if i != target]
    return Dataset(
        X=table[:, features],
        y=table[:, target].copy(),
        name=source,
        feature_names=[header[i] for i in features],
        classes=_guess_classes(table[:, target]),
    )


def _next_row(reader, source: str, skip_blank: bool = True) -> list[str] | None:
    """The next row (by default the next non-blank one), or None at the end."""
    try:
        for row in reader:
            if not skip_blank or len(row) > 1 or row and row[0].strip():
                return row
    except csv.Error as e:
        raise DataError(f"{source}:{reader.line_num}: cannot read the row: {e}") from e
    return None


def _parse_row(source: str, line: int, row: list[str], header: list[str]) -> list[float]:
    if len(row) != len(header):
        raise DataError(
            f"{source}:{line}: the row has {plural(len(row), 'cell')} but the header has "
            f"{plural(len(header), 'column')}"
        )
    return [_parse_cell(source, line, name, cell) for name, cell in zip(header, row)]


def _parse_cell(source: str, line: int, column: str, cell: str) -> float:
    text = cell.strip()
    if not text:
        raise DataError(f"{source}:{line}: column '{column}' is empty")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{source}:{line}: column '{column}': '{text}' is not a number") from None
    if not np.isfinite(value):
        raise DataError(f"{source}:{line}: column '{column}': '{text}' is not a finite number")
    return value


# ---------------------------------------------------------------- NPZ

# What reading a damaged .npz archive raises, besides OSError: zip and zlib errors for a
# damaged archive, ValueError and EOFError for a damaged .npy file inside it.
NPZ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
              ValueError, EOFError)
_NPY_HEADER_READERS = {(1, 0): "read_array_header_1_0", (2, 0): "read_array_header_2_0"}


def _describe_npz(source: str, path: Path) -> DataInfo:
    """Rows and features from the .npy headers inside the archive, checked (shapes,
    kinds of number, size) before any array is read."""
    headers = _npz_headers(source, path)
    (x_shape, _), (y_shape, _) = headers["X"], headers["y"]
    _check_shapes(source, x_shape, y_shape)
    for key, (shape, dtype) in headers.items():
        _check_kind(source, key, dtype)
        _check_size(source, key, shape)
    return DataInfo(rows=x_shape[0], features=x_shape[1], classes=None)


def _npz_headers(source: str, path: Path) -> dict[str, tuple]:
    """key → (shape, dtype) of X and y, from their headers."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            for key in ("X", "y"):
                if f"{key}.npy" not in names:
                    raise DataError(f"{source} has no array '{key}'")
            return {key: npy_header(archive, f"{key}.npy") for key in ("X", "y")}
    except zipfile.BadZipFile as e:
        if is_npy(path):
            raise DataError(f"{source} holds a single array, not an .npz archive of X "
                            "and y") from None
        raise DataError(f"{source} is not a readable .npz archive: {e}") from None
    except NPZ_ERRORS as e:
        raise DataError(f"{source} is not a readable .npz archive: {e}") from None


def npy_header(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of the .npy file `member` of an .npz archive, from its header
    alone. A header can claim any shape: check it before reading the array, which
    numpy allocates whole. Raises one of NPZ_ERRORS, or OSError."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version not in _NPY_HEADER_READERS:  # 3.0 is only for structured arrays
            raise ValueError(f"{member} is in .npy format {version[0]}.{version[1]}, "
                             "which mfc does not read")
        shape, _, dtype = getattr(np.lib.format, _NPY_HEADER_READERS[version])(f)
    return shape, dtype


def read_npy(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """The array in the .npy file `member` of an .npz archive, never unpickled.
    Raises one of NPZ_ERRORS, or OSError."""
    with archive.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def is_npy(path) -> bool:
    """True when the file at `path` is a single .npy array (not an .npz archive)."""
    with open(path, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def _load_npz(source: str, path: Path) -> Dataset:
    _describe_npz(source, path)  # the headers first: a bad array is refused unread
    X, y = _read_npz(source, path)
    X, y = _numbers(source, "X", X), _numbers(source, "y", y).reshape(-1)
    return Dataset(
        X=X, y=y, name=source,
        feature_names=[f"x{i}" for i in range(X.shape[1])],
        classes=_guess_classes(y),
    )


def _read_npz(source: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        return tuple(_npz_array(source, archive, key) for key in ("X", "y"))


def _npz_array(source: str, archive: zipfile.ZipFile, key: str) -> np.ndarray:
    try:
        return read_npy(archive, f"{key}.npy")
    except NPZ_ERRORS as e:
        raise DataError(f"{source}: cannot read array '{key}': {e}") from None


def _check_shapes(source: str, x_shape: tuple, y_shape: tuple) -> None:
    if len(x_shape) != 2:
        raise DataError(f"{source}: X must be 2-D (rows, features) but has shape {x_shape}")
    if not (len(y_shape) == 1 or len(y_shape) == 2 and y_shape[1] == 1):
        raise DataError(f"{source}: y must be 1-D, or 2-D with one column, but has shape {y_shape}")
    if x_shape[0] != y_shape[0]:
        raise DataError(f"{source}: X has {x_shape[0]} rows but y has {y_shape[0]}")
    if x_shape[0] == 0 or x_shape[1] == 0:
        raise DataError(f"{source}: X has shape {x_shape}; there is no data")


def _check_kind(source: str, key: str, dtype: np.dtype) -> None:
    if dtype.kind not in "biuf":
        raise DataError(f"{source}: {key} holds {dtype} values, not real numbers")


def _check_size(source: str, key: str, shape: tuple) -> None:
    size = math.prod(shape) * 8  # bytes, as float64
    if size > _MAX_BYTES:
        raise DataError(f"{source}: {key} has shape {format_shape(shape)}, "
                        f"{size / 2**30:,.1f} GiB as float64; mfc loads at most "
                        f"{_MAX_BYTES // 2**30} GiB")


def _numbers(source: str, key: str, array: np.ndarray) -> np.ndarray:
    """`array` as finite float64, or a DataError naming the first bad entry."""
    _check_kind(source, key, array.dtype)
    array = array.astype(np.float64)
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        where = ", ".join(str(i) for i in bad[0])
        raise DataError(f"{source}: {key}[{where}] is {array[tuple(bad[0])]}; data must be finite")
    return array


# ---------------------------------------------------------------- preparing data


def standardize(X: np.ndarray, mean=None, std=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column (X − mean) / std, with the training statistics for reuse.

    Parameters
    ----------
    X : (rows, features) array.
    mean, std : (features,) statistics to apply (e.g. the training set's); computed
        from X when None.

    Returns
    -------
    (Xs, mean, std): Xs float64 like X; std has 1 where a column is constant, so that
    a constant column becomes zeros rather than NaN.
    """
    X = np.asarray(X, dtype=np.float64)
    if mean is None:
        mean = X.mean(axis=0)
    if std is None:
        # ptp, not std == 0: a constant column's std can come out as 1e-17, not 0
        std = np.where(np.ptp(X, axis=0) == 0, 1.0, X.std(axis=0))
    std = np.where(std == 0, 1.0, std)
    return (X - mean) / std, mean, std


def class_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer class labels 0..C−1 for CrossEntropy, and the values they stand for.

    The sorted distinct values of `y` become 0..C−1, so labels already in 0..C−1 are
    unchanged and e.g. -1/1 become 0/1.

    Returns
    -------
    (labels, values): labels int64 (rows,) in 0..C−1; values float64 (C,), the sorted
    distinct targets, with values[labels] == y. C = len(values).

    Raises
    ------
    DataError when a target is not an integer.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    fractional = np.flatnonzero(y != np.round(y))  # NaN != NaN, so NaN lands here too
    if len(fractional):
        i = fractional[0]
        raise DataError(
            f"target y[{i}] = {y[i]:g} is not an integer: CrossEntropy needs integer "
            "class labels; use MSE for a continuous target"
        )
    values, labels = np.unique(y, return_inverse=True)
    return labels.reshape(-1).astype(np.int64), values


def split(X: np.ndarray, y: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, ...]:
    """Shuffle the rows reproducibly and hold out `fraction` of them for validation.

    Parameters
    ----------
    X, y : arrays with the same number of rows.
    fraction : the validation share, in (0, 1); rounded to whole rows.
    rng : a numpy Generator, or a seed for one.

    Returns
    -------
    (X_train, y_train, X_val, y_val), new arrays.

    Raises
    ------
    DataError when the fraction leaves no training rows or no validation rows.
    """
    if not 0 < fraction < 1:
        raise DataError(f"the validation fraction must be between 0 and 1, not {fraction:g}")
    rows = len(X)
    held_out = held_out_rows(rows, fraction)
    if not 0 < held_out < rows:
        raise DataError(
            f"a validation fraction of {fraction:g} of {rows} rows leaves "
            f"{held_out} for validation and {rows - held_out} for training; both need rows"
        )
    order = np.random.default_rng(rng).permutation(rows)
    val, train = order[:held_out], order[held_out:]
    return X[train], y[train], X[val], y[val]


# ---------------------------------------------------------------- ready to train


@dataclass(frozen=True)
class Prepared:
    """Arrays ready to feed, by Input name: for training and for validation (None
    without a `validation` setting). Features are float64, class labels intp."""

    train: dict
    validation: dict | None
    rows: int


def prepare(program, settings, note) -> Prepared | None:
    """Load the data `settings` name for `program` (a mfc.ir.Program), hold out the
    validation rows, standardise the features (with the training rows' statistics),
    turn targets that a loss reads as labels into class indices, and shape targets as
    their Input is declared. None when the spec trains without data. `note` is called
    with remarks for the user. Raises DataError, or SettingError for a setting the
    data's size rules out."""
    if not settings.data:
        return None
    read = set(program.needed_by(program.loss))
    roles = {role: name for role, name in (("features", settings.features),
                                           ("targets", settings.targets)) if name in read}
    if not roles:
        note(f"the loss reads neither '{settings.features}' nor '{settings.targets}', so "
             f"the data '{settings.data}' goes unused: each epoch is one step")
        return None
    loaded = load(settings.data, program.base_dir, settings.target_column)
    for key, message, _ in data_problems(settings, len(loaded.X)):
        raise SettingError(f"{key}: {message}")
    y = loaded.y
    if settings.targets in program.label_inputs:
        y = _class_indices(y, program.label_inputs[settings.targets], note)
    X, y, X_val, y_val = _held_out(loaded.X, y, settings)
    shapes = {name: program.nodes[name].shape for name in roles.values()}
    validation = None if X_val is None else _by_input(roles, shapes, X_val, y_val)
    return Prepared(_by_input(roles, shapes, X, y), validation, len(X))


def _held_out(X, y, settings) -> tuple:
    """(X, y, X_val, y_val): the validation rows held out (None without `validation`),
    and the features standardised with the training rows' statistics."""
    X_val = y_val = None
    if settings.validation:
        rng = np.random.default_rng((settings.seed, 1))
        X, y, X_val, y_val = split(X, y, settings.validation, rng)
    if settings.standardize:
        X, mean, std = standardize(X)
        if X_val is not None:
            X_val = standardize(X_val, mean, std)[0]
    return X, y, X_val, y_val


def _by_input(roles: dict, shapes: dict, X, y) -> dict:
    """Input name → array, targets as a column where their Input is declared 2-D."""
    arrays = {}
    for role, name in roles.items():
        array = X if role == "features" else y
        if role == "targets" and shapes[name] is not None and len(shapes[name]) == 2:
            array = array.reshape(-1, 1)
        arrays[name] = array
    return arrays


def _class_indices(y, width: int | None, note) -> np.ndarray:
    """Targets as class indices 0..C−1 (C the scores' width): kept when they are
    already in range, else their sorted distinct values mapped to 0, 1, ..."""
    labels, values = class_labels(y)
    if values[0] >= 0 and (width is None or values[-1] < width):
        return y.astype(np.intp)
    if len(values) > MAX_CLASSES:
        raise DataError(f"the targets look continuous ({len(values)} distinct values), "
                        "but CrossEntropy needs class labels; use MSE for a continuous "
                        "target")
    if width is not None and len(values) > width:
        raise DataError(f"the targets hold {len(values)} classes, but the logits give "
                        f"{width} scores per row; widen the last layer to {len(values)}")
    shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if len(values) > 6 else "")
    note(f"the targets' values {shown} are taken as the classes 0..{len(values) - 1}, "
         "in that order")
    return labels.astype(np.intp)
