"""Training data: bundled scikit-learn datasets, CSV files and NPZ files.

`describe` is the cheap half, used at check time to learn a dataset's feature width
without reading it; `load` reads the data itself. scikit-learn is imported only inside
`_load_bundled`, so that checking a spec never pays for it. Every problem with the data
becomes a one-line `DataError`; CSV errors name the line (header = line 1) and column.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfc.diagnostics import DataError, did_you_mean


@dataclass(frozen=True)
class DataInfo:
    """What is known about a dataset before loading it; None means unknown."""

    rows: int | None
    features: int
    classes: int | None


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
    "diabetes": DataInfo(rows=442, features=10, classes=None),
    "iris": DataInfo(rows=150, features=4, classes=3),
    "wine": DataInfo(rows=178, features=13, classes=3),
    "breast_cancer": DataInfo(rows=569, features=30, classes=2),
    "digits": DataInfo(rows=1797, features=64, classes=10),
}
BUNDLED_NAMES: tuple[str, ...] = tuple(BUNDLED)

# Integer-valued targets with more distinct values than this are taken as regression
# targets (diabetes has 214), not as class labels.
_MAX_CLASSES = 100
_FILE_KINDS = (".csv", ".npz")


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
    DataError for an unknown name or extension, or a header that cannot be read.
    """
    if is_bundled(source):
        _no_target_column(source, target_column)
        return BUNDLED[source]
    path = _resolve(source, base_dir)
    if not path.is_file():
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
    if not path.is_file():
        raise DataError(f"data file '{source}' not found (looked in {path})")
    if path.suffix.lower() == ".csv":
        return _load_csv(source, path, target_column)
    _no_target_column(source, target_column)
    return _load_npz(source, path)


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
    from sklearn import datasets  # slow to import: only when the data is really needed

    bunch = getattr(datasets, f"load_{name}")()
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.float64),
        name=name,
        feature_names=[str(f) for f in bunch.feature_names],
        classes=BUNDLED[name].classes,
    )


def _guess_classes(y: np.ndarray) -> int | None:
    """The number of distinct labels when `y` looks like class labels, else None."""
    if not np.all(y == np.round(y)):
        return None
    distinct = len(np.unique(y))
    return distinct if distinct <= _MAX_CLASSES else None


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
            f"{source}:{line}: row has {len(row)} cells but the header has {len(header)} columns"
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


def _describe_npz(source: str, path: Path) -> DataInfo:
    """Rows and features from the .npy headers inside the archive; no array is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            shapes = {k: _npy_shape(archive, k) for k in ("X", "y")}
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DataError(f"{source} is not a readable .npz archive: {e}") from e
    for key, shape in shapes.items():
        if shape is None:
            raise DataError(f"{source} has no array '{key}'")
    _check_shapes(source, shapes["X"], shapes["y"])
    return DataInfo(rows=shapes["X"][0], features=shapes["X"][1], classes=None)


def _npy_shape(archive: zipfile.ZipFile, key: str) -> tuple[int, ...] | None:
    if f"{key}.npy" not in archive.namelist():
        return None
    with archive.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)[0]
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)[0]
    with archive.open(f"{key}.npy") as f:  # a newer format: read the array itself
        return np.lib.format.read_array(f, allow_pickle=False).shape


def _load_npz(source: str, path: Path) -> Dataset:
    X, y = _read_npz(source, path)
    _check_shapes(source, X.shape, y.shape)
    X, y = _numbers(source, "X", X), _numbers(source, "y", y).reshape(-1)
    return Dataset(
        X=X, y=y, name=source,
        feature_names=[f"x{i}" for i in range(X.shape[1])],
        classes=_guess_classes(y),
    )


def _read_npz(source: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # ValueError: a pickle, refused
        raise DataError(f"{source} is not a readable .npz archive: {e}") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{source} holds a single array, not an .npz archive of X and y")
    with archive:
        return tuple(_npz_array(source, archive, key) for key in ("X", "y"))


def _npz_array(source: str, archive, key: str) -> np.ndarray:
    if key not in archive.files:
        raise DataError(f"{source} has no array '{key}'")
    try:
        return archive[key]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        # ValueError covers object arrays, which allow_pickle=False refuses
        raise DataError(f"{source}: cannot read array '{key}': {e}") from e


def _check_shapes(source: str, x_shape: tuple, y_shape: tuple) -> None:
    if len(x_shape) != 2:
        raise DataError(f"{source}: X must be 2-D (rows, features) but has shape {x_shape}")
    if not (len(y_shape) == 1 or len(y_shape) == 2 and y_shape[1] == 1):
        raise DataError(f"{source}: y must be 1-D, or 2-D with one column, but has shape {y_shape}")
    if x_shape[0] != y_shape[0]:
        raise DataError(f"{source}: X has {x_shape[0]} rows but y has {y_shape[0]}")
    if x_shape[0] == 0 or x_shape[1] == 0:
        raise DataError(f"{source}: X has shape {x_shape}; there is no data")


def _numbers(source: str, key: str, array: np.ndarray) -> np.ndarray:
    """`array` as finite float64, or a DataError naming the first bad entry."""
    if array.dtype.kind not in "biuf":
        raise DataError(f"{source}: {key} holds {array.dtype} values, not real numbers")
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
    held_out = round(rows * fraction)
    if not 0 < held_out < rows:
        raise DataError(
            f"a validation fraction of {fraction:g} of {rows} rows leaves "
            f"{held_out} for validation and {rows - held_out} for training; both need rows"
        )
    order = np.random.default_rng(rng).permutation(rows)
    val, train = order[:held_out], order[held_out:]
    return X[train], y[train], X[val], y[val]
