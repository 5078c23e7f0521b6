"""Data: bundled scikit-learn datasets, CSV files and NPZ files.

`describe` is the cheap half, used at check time to learn a dataset's feature width
without reading it; `load` reads the data itself, and `prepare` makes it ready to train a
program on: split into training, validation and test rows, preprocessed (mfc.preprocess:
standardised, targets as class indices where a loss wants labels). `load_for_model`
reads data to predict with or evaluate a trained model on, its columns matched to the
model's features. The bundled datasets are read from scikit-learn's data files without
importing it (mfc.bundled). Every problem with the data becomes a one-line `DataError`
(a file the system cannot open, or one too large to load, included); CSV errors name the
line (header = line 1) and column.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mfc import preprocess
from mfc.diagnostics import DataError, SettingError, did_you_mean
from mfc.lazy import LazyModule
from mfc.preprocess import MAX_CLASSES, Preprocessing, class_labels, standardize  # noqa: F401
from mfc.settings import HELD_OUT, data_problems, held_out_rows, split_sizes
from mfc.text import byte_size, format_shape, plural

np = LazyModule("numpy", globals(), "np")  # imported when data is first read
zipfile = LazyModule("zipfile", globals(), "zipfile")  # when an .npz is: with bz2, lzma


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
    """Loaded data: X is float64 (rows, features); y is (rows,) float64, or text for
    class labels written as words (`setosa`), or None for data without targets.

    `feature_names` come from a CSV header or a bundled dataset (`named`), or are made
    up (`x0`, `x1`, ...: an NPZ file's features are known by position only);
    `target_name` is the targets' column; `lines` the line of each row in a CSV file,
    for messages.
    """

    X: np.ndarray
    y: np.ndarray | None
    name: str
    feature_names: list[str]
    classes: int | None
    target_name: str | None = None
    lines: list[int] | None = None
    named: bool = True

    @property
    def info(self) -> DataInfo:
        return DataInfo(self.X.shape[0], self.X.shape[1], self.classes)

    def place(self, row: int) -> str:
        """Where row `row` (from 0) came from, for messages: `d.csv:5`, `d.npz: row 5`."""
        if self.lines is not None:
            return f"{self.name}:{self.lines[row]}"
        return f"{self.name}: row {row + 1}"


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

_FILE_KINDS = (".csv", ".npz")
# An .npz array larger than this (as float64) is refused from its header, unread: a
# header can claim any shape, and numpy would try to allocate it.
_MAX_BYTES = 2**31


def is_bundled(name: str) -> bool:
    """True when `name` is one of the bundled scikit-learn datasets."""
    return name in BUNDLED


# ---------------------------------------------------------------- describe and load


def describe(source: str, base_dir, target_column: str | None = None) -> DataInfo | None:
    """Cheaply describe a dataset, reading at most a CSV's rows (counted, not parsed) or
    the NPZ array headers.

    Parameters
    ----------
    source : a bundled name, or a path to a .csv or .npz file (relative to `base_dir`).
    base_dir : the folder of the spec file.
    target_column : for a CSV, the target's column name; checked against the header.

    Returns
    -------
    DataInfo, or None when the file does not exist. Classes is None for a file; rows
    too for a CSV that cannot be read as text (the load says where).

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
        rows = _count_rows(path)
        if rows == 0:  # known now, so not left for the run to find
            raise DataError(f"{source} has a header but no data rows")
        return DataInfo(rows=rows, features=len(header) - 1, classes=None)
    _no_target_column(source, target_column)
    return _describe_npz(source, path)


def load(source: str, base_dir, target_column: str | None = None,
         text_labels: bool = False) -> Dataset:
    """Load a dataset.

    Parameters
    ----------
    source : a bundled name, or a path to a .csv or .npz file (relative to `base_dir`).
    base_dir : the folder of the spec file.
    target_column : for a CSV, the target's column name; default the last column.
    text_labels : the targets are class labels, so a CSV's may be words (`setosa`):
        then y holds them as text.

    Returns
    -------
    Dataset with X float64 (rows, features) and y float64 (rows,), both finite; y text
    when `text_labels` and some target is not a number.

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
            return _load_csv(source, path, target_column, text_labels)
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
        target_name="target",  # as scikit-learn's data frames name it
    )


def _guess_classes(y: np.ndarray) -> int | None:
    """The number of distinct labels when `y` looks like class labels, else None."""
    if not np.all(y == np.round(y)):
        return None
    distinct = len(np.unique(y))
    return distinct if distinct <= MAX_CLASSES else None


# ---------------------------------------------------------------- CSV


def _count_rows(path: Path) -> int | None:
    """The data rows after the header, read as `_read_table` reads them (quoted newlines
    inside a row, blank lines skipped), without keeping them; None when the file cannot
    be read as CSV text, which the load reports with its line."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            next(reader, None)
            return sum(1 for row in reader if len(row) > 1 or row and row[0].strip())
    except (UnicodeDecodeError, csv.Error):
        return None


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


def _header_names(source: str, row: list[str], numbers: bool = False) -> list[str]:
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
    if not numbers and all(_is_number(n) for n in names):
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


@dataclass(frozen=True)
class _Table:
    """A CSV file's cells, before any is read as a number: the header (None for a file
    of numbers only, read by position), and each non-blank row with its line."""

    header: list[str] | None
    rows: list[list[str]]
    lines: list[int]

    @property
    def width(self) -> int:
        return len(self.header) if self.header is not None else len(self.rows[0])

    def column(self, index: int) -> str:
        """How messages name a column: `'age'`, or `3` without a header."""
        return f"'{self.header[index]}'" if self.header is not None else str(index + 1)


def _read_table(source: str, raw: bytes, header_optional: bool = False) -> _Table:
    """The cells of a CSV file, every row as wide as the header. `header_optional`: a
    first line of numbers only is data, not a header (and an empty file is said to be)."""
    text = _decode(source, raw)
    if header_optional and not text.strip():
        raise DataError(f"{source} is empty")
    reader = csv.reader(io.StringIO(text, newline=""))
    first = _next_row(reader, source, skip_blank=False) or []
    header, rows, lines = None, [], []
    if header_optional and first and all(_is_number(cell) for cell in first) \
            and not _unnamed_columns(first):
        rows, lines = [first], [1]
    else:
        header = _header_names(source, first, numbers=header_optional)
    width = len(header) if header is not None else len(first)
    while (row := _next_row(reader, source)) is not None:
        _check_width(source, reader.line_num, row, width, header is not None)
        rows.append(row)
        lines.append(reader.line_num)
    if not rows:
        raise DataError(f"{source} has a header but no data rows")
    return _Table(header, rows, lines)


def _unnamed_columns(row: list[str]) -> bool:
    """True for the header pandas writes for unnamed columns: 0, 1, 2, ..."""
    return [cell.strip() for cell in row] == [str(i) for i in range(len(row))]


def _check_width(source: str, line: int, row: list[str], width: int, header: bool) -> None:
    if len(row) != width:
        raise DataError(
            f"{source}:{line}: the row has {plural(len(row), 'cell')} but the "
            + (f"header has {plural(width, 'column')}" if header else
               f"first line has {plural(width, 'cell')}"))


def _load_csv(source: str, path: Path, target_column: str | None,
              text_labels: bool = False) -> Dataset:
    table = _read_table(source, path.read_bytes())
    target = _target_index(source, table.header, target_column)
    features = [i for i in range(table.width) if i != target]
    y = _target_values(source, table, target, text_labels)
    return Dataset(
        X=_number_columns(source, table, features),
        y=y,
        name=source,
        feature_names=[table.header[i] for i in features],
        classes=_guess_classes(y) if y.dtype.kind == "f" else len(np.unique(y)),
        target_name=table.header[target],
        lines=table.lines,
    )


def _number_columns(source: str, table: _Table, columns: list[int]) -> np.ndarray:
    """The cells of `columns` as a float64 matrix; a DataError naming the line and the
    column of the first cell that is not a finite number."""
    cells = [[row[i] for i in columns] for row in table.rows]
    try:  # numpy parses a whole table of good numbers ten times faster than float() does
        array = np.array(cells, dtype=np.float64).reshape(len(cells), len(columns))
        if np.isfinite(array).all():
            return array
    except ValueError:
        pass
    names = [table.column(i) for i in columns]  # cell by cell, to say which one is bad
    return np.array([[_parse_cell(source, line, name, cell) for name, cell in zip(names, row)]
                     for row, line in zip(cells, table.lines)], dtype=np.float64
                    ).reshape(len(cells), len(columns))


def _target_values(source: str, table: _Table, column: int, text: bool) -> np.ndarray:
    """A column of targets: float64, or (when `text` allows it and some cell is not a
    number) the cells as text, stripped."""
    cells = [row[column].strip() for row in table.rows]
    if text and not all(_is_number(cell) for cell in cells):
        for cell, line in zip(cells, table.lines):
            if not cell:
                raise DataError(f"{source}:{line}: column {table.column(column)} is empty")
        return np.array(cells, dtype=str)
    return _number_columns(source, table, [column]).reshape(-1)


def _next_row(reader, source: str, skip_blank: bool = True) -> list[str] | None:
    """The next row (by default the next non-blank one), or None at the end."""
    try:
        for row in reader:
            if not skip_blank or len(row) > 1 or row and row[0].strip():
                return row
    except csv.Error as e:
        raise DataError(f"{source}:{reader.line_num}: cannot read the row: {e}") from e
    return None


def _parse_cell(source: str, line: int, column: str, cell: str) -> float:
    """A cell as a finite number; `column` is how messages name its column."""
    text = cell.strip()
    if not text:
        raise DataError(f"{source}:{line}: column {column} is empty")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{source}:{line}: column {column}: '{text}' is not a number") from None
    if not np.isfinite(value):
        raise DataError(f"{source}:{line}: column {column}: '{text}' is not a finite number")
    return value


# ---------------------------------------------------------------- NPZ

def npz_errors() -> tuple:
    """What reading a damaged .npz archive raises, besides OSError: zip and zlib errors
    for a damaged archive, ValueError and EOFError for a damaged .npy file inside it."""
    return (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
            ValueError, EOFError)


_NPY_HEADER_READERS = {(1, 0): "read_array_header_1_0", (2, 0): "read_array_header_2_0"}


def _describe_npz(source: str, path: Path, y_optional: bool = False) -> DataInfo:
    """Rows and features from the .npy headers inside the archive, checked (shapes,
    kinds of number, size) before any array is read. `y_optional`: an archive of X
    alone will do."""
    headers = _npz_headers(source, path, y_optional)
    x_shape, _ = headers["X"]
    _check_shapes(source, x_shape, headers["y"][0] if "y" in headers else None)
    for key, (shape, dtype) in headers.items():
        _check_kind(source, key, dtype)
        _check_size(source, key, shape)
    return DataInfo(rows=x_shape[0], features=x_shape[1], classes=None)


def _npz_headers(source: str, path: Path, y_optional: bool = False) -> dict[str, tuple]:
    """key → (shape, dtype) of X and y (if there, when `y_optional`), from their headers."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            for key in ("X",) if y_optional else ("X", "y"):
                if f"{key}.npy" not in names:
                    raise DataError(f"{source} has no array '{key}'")
            return {key: npy_header(archive, f"{key}.npy") for key in ("X", "y")
                    if f"{key}.npy" in names}
    except zipfile.BadZipFile as e:
        if is_npy(path):
            raise DataError(f"{source} holds a single array, not an .npz archive of X "
                            "and y") from None
        raise DataError(f"{source} is not a readable .npz archive: {e}") from None
    except npz_errors() as e:
        raise DataError(f"{source} is not a readable .npz archive: {e}") from None


def npy_header(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of the .npy file `member` of an .npz archive, from its header
    alone. A header can claim any shape: check it before reading the array, which
    numpy allocates whole. Raises one of `npz_errors()`, or OSError."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version not in _NPY_HEADER_READERS:  # 3.0 is only for structured arrays
            raise ValueError(f"{member} is in .npy format {version[0]}.{version[1]}, "
                             "which mfc does not read")
        shape, _, dtype = getattr(np.lib.format, _NPY_HEADER_READERS[version])(f)
    return shape, dtype


def read_npy(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """The array in the .npy file `member` of an .npz archive, never unpickled.
    Raises one of `npz_errors()`, or OSError."""
    with archive.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def is_npy(path) -> bool:
    """True when the file at `path` is a single .npy array (not an .npz archive)."""
    with open(path, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def _load_npz(source: str, path: Path, y_optional: bool = False) -> Dataset:
    _describe_npz(source, path, y_optional)  # the headers first: a bad array is refused unread
    arrays = _read_npz(source, path)
    X = _numbers(source, "X", arrays["X"])
    y = _numbers(source, "y", arrays["y"]).reshape(-1) if "y" in arrays else None
    return Dataset(X=X, y=y, name=source, feature_names=[f"x{i}" for i in range(X.shape[1])],
                   classes=_guess_classes(y) if y is not None else None, named=False)


def _read_npz(source: str, path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        return {key: _npz_array(source, archive, key) for key in ("X", "y")
                if f"{key}.npy" in archive.namelist()}


def _npz_array(source: str, archive: zipfile.ZipFile, key: str) -> np.ndarray:
    try:
        return read_npy(archive, f"{key}.npy")
    except npz_errors() as e:
        raise DataError(f"{source}: cannot read array '{key}': {e}") from None


def _check_shapes(source: str, x_shape: tuple, y_shape: tuple | None) -> None:
    if len(x_shape) != 2:
        raise DataError(f"{source}: X must be 2-D (rows, features) but has shape {x_shape}")
    if y_shape is not None and not (len(y_shape) == 1 or len(y_shape) == 2 and y_shape[1] == 1):
        raise DataError(f"{source}: y must be 1-D, or 2-D with one column, but has shape {y_shape}")
    if y_shape is not None and x_shape[0] != y_shape[0]:
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
                        f"{byte_size(size)} as float64; mfc loads at most "
                        f"{byte_size(_MAX_BYTES)}")


def _numbers(source: str, key: str, array: np.ndarray) -> np.ndarray:
    """`array` as finite float64, or a DataError naming the first bad entry."""
    _check_kind(source, key, array.dtype)
    array = array.astype(np.float64)
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        where = ", ".join(str(i) for i in bad[0])
        raise DataError(f"{source}: {key}[{where}] is {array[tuple(bad[0])]}; data must be finite")
    return array


# ---------------------------------------------------------------- data for a trained model


def load_for_model(source: str, base_dir, model: Preprocessing, *, targets: bool = False,
                   text_targets: bool = False, stdin: bytes | None = None,
                   note=lambda text: None) -> Dataset:
    """Data to predict with, or evaluate, a trained model on, its columns matched to the
    model's features.

    Parameters
    ----------
    source : a bundled name, a path to a .csv or .npz file (relative to `base_dir`), or
        `-` for CSV read from `stdin` (the bytes).
    model : the model's preprocessing: how many features it takes, their names, its
        target column. A CSV's columns are matched by header name when the model has
        names (columns it does not know are ignored, with a note), else by position:
        as many as the features, or one more for the targets (the target column by
        name, or the last). A CSV whose first line is all numbers has no header.
    targets : the targets are needed (to evaluate): a DataError when there are none, or
        when one is not a class of the model. Otherwise they are not read at all.
    text_targets : the targets are class labels that may be words (`setosa`).

    Returns
    -------
    Dataset with X float64 (rows, features), raw, and y as `load` gives it (None when
    the data has no targets, or they are not needed).

    Raises
    ------
    DataError, one line: a feature column missing, a wrong width, a cell that is not a
    number (its line and column named), an empty file, no targets when needed.
    """
    missing = f" (column '{model.target_column}')" if model.target_column else ""
    if source == "-":
        data = _csv_for_model("<stdin>", stdin or b"", model, targets, text_targets, note)
    elif is_bundled(source):
        data = _load_bundled(source)
    else:
        path = _resolve(source, base_dir)
        with _system_errors(source):
            if not _is_file(source, path):
                raise DataError(f"data file '{source}' not found (looked in {path})")
            if path.suffix.lower() == ".csv":
                data = _csv_for_model(source, path.read_bytes(), model, targets,
                                      text_targets, note)
            else:
                data, missing = _load_npz(source, path, y_optional=True), " (no array 'y')"
    if data.X.shape[1] != model.features:
        raise DataError(f"{data.name} has {plural(data.X.shape[1], 'feature')} but the model "
                        f"takes {model.features}")
    if not targets:
        data.y = None
    elif data.y is None:
        raise DataError(f"{data.name} has no targets{missing}; evaluating needs them")
    elif model.classes is not None:
        model.encode(data.y, data.place)  # a label the model does not know, named where
    return data


def _csv_for_model(source: str, raw: bytes, model: Preprocessing, targets: bool,
                   text_targets: bool, note) -> Dataset:
    table = _read_table(source, raw, header_optional=True)
    if table.header is not None and model.feature_names is not None:
        features, target = _named_columns(source, table.header, model, note)
    else:
        features, target = _positional_columns(source, table, model)
    y = _target_values(source, table, target, text_targets) \
        if targets and target is not None else None
    names = [table.header[i] for i in features] if table.header is not None else \
        [f"x{i}" for i in range(len(features))]
    return Dataset(X=_number_columns(source, table, features), y=y, name=source,
                   feature_names=names, classes=None, lines=table.lines,
                   target_name=table.header[target] if table.header and target is not None
                   else None, named=table.header is not None)


def _named_columns(source: str, header: list[str], model: Preprocessing, note) -> tuple:
    """(feature column indices, target column index or None), by the model's names."""
    missing = [name for name in model.feature_names if name not in header]
    if missing:
        hint = did_you_mean(missing[0], [h for h in header if h not in model.feature_names])
        raise DataError(f"{source} has no column '{missing[0]}', a feature of the model"
                        + (f"; {hint}" if hint else f" (its features: "
                           f"{', '.join(model.feature_names[:8])}"
                           f"{', ...' if len(model.feature_names) > 8 else ''})"))
    features = [header.index(name) for name in model.feature_names]
    rest = [i for i in range(len(header)) if i not in features]
    target = header.index(model.target_column) if model.target_column in header else \
        rest[0] if len(rest) == 1 and model.target_column is None else None
    ignored = [header[i] for i in rest if i != target]
    if ignored:
        note(f"{source}: {'columns' if len(ignored) > 1 else 'column'} "
             f"{', '.join(repr(n) for n in ignored)} {'are' if len(ignored) > 1 else 'is'} "
             "not a feature of the model; ignored")
    return features, target


def _positional_columns(source: str, table: _Table, model: Preprocessing) -> tuple:
    """(feature column indices, target column index or None), by position."""
    width, wanted = table.width, model.features
    if width == wanted:
        return list(range(width)), None
    if width != wanted + 1:
        raise DataError(f"{source} has {plural(width, 'column')}, but the model takes "
                        f"{plural(wanted, 'feature')} (and the targets may be one more "
                        "column)")
    header = table.header or []
    target = header.index(model.target_column) if model.target_column in header else width - 1
    return [i for i in range(width) if i != target], target


# ---------------------------------------------------------------- preparing data


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
    val, train = partition(rows, [held_out], rng)
    return X[train], y[train], X[val], y[val]


def partition(rows: int, sizes: list[int], rng) -> list[np.ndarray]:
    """Row indices for parts of the data: one permutation of the rows (from `rng`, a
    Generator or a seed), cut into `sizes` and the rest, in that order. Disjoint, and
    the same for the same seed and sizes."""
    order = np.random.default_rng(rng).permutation(rows)
    cuts = np.cumsum(sizes)
    return np.split(order, cuts)


# ---------------------------------------------------------------- ready to train


@dataclass(frozen=True)
class Prepared:
    """Arrays ready to feed, by Input name: for training, for validation and for the
    final test (None without the `validation` or `test` setting). Features are float64
    and preprocessed, class labels intp. `preprocessing` is what was applied: fitted on
    the training rows, or given."""

    train: dict
    validation: dict | None
    rows: int
    test: dict | None = None
    preprocessing: Preprocessing | None = None


def prepare(program, settings, note, preprocessing: Preprocessing | None = None
            ) -> Prepared | None:
    """Load the data `settings` name for `program` (a mfc.ir.Program), hold out the
    validation and test rows (disjoint, fixed by the seed), preprocess it (see
    mfc.preprocess: features standardised with the training rows' statistics, targets
    that a loss reads as labels as class indices), and shape targets as their Input is
    declared. `preprocessing` (a trained model's) is applied instead of one fitted on
    these rows. None when the spec trains without data. `note` is called with remarks
    for the user. Raises DataError, or SettingError for a setting the data's size rules
    out."""
    if not settings.data:
        return None
    read = set(program.needed_by(program.loss))
    roles = {role: name for role, name in (("features", settings.features),
                                           ("targets", settings.targets)) if name in read}
    if not roles:
        note(f"the loss reads neither '{settings.features}' nor '{settings.targets}', so "
             f"the data '{settings.data}' goes unused: each epoch is one step")
        return None
    labels = settings.targets in program.label_inputs and "targets" in roles
    loaded = load(settings.data, program.base_dir, settings.target_column, text_labels=labels)
    for key, message, _ in data_problems(settings, len(loaded.X)):
        raise SettingError(f"{key}: {message}")
    parts = _parts(len(loaded.X), settings)
    if preprocessing is None:
        preprocessing = preprocess.fit(
            loaded.X[parts["train"]], loaded.y, standardized=settings.standardize,
            width=program.label_inputs.get(settings.targets), labels=labels,
            feature_names=loaded.feature_names if loaded.named else None,
            target_column=loaded.target_name, note=note)
    X = preprocessing.transform(loaded.X)
    y = preprocessing.encode(loaded.y, loaded.place) if labels else loaded.y
    shapes = {name: program.nodes[name].shape for name in roles.values()}
    arrays = {part: _by_input(roles, shapes, X[rows], y[rows]) if len(rows) else None
              for part, rows in parts.items()}
    return Prepared(arrays["train"], arrays["validation"], len(parts["train"]),
                    arrays["test"], preprocessing)


def _parts(rows: int, settings) -> dict[str, np.ndarray]:
    """Row indices of the 'validation', 'test' and 'train' parts (empty without the
    setting). Validation rows are the same with or without a test part."""
    sizes = split_sizes(settings, rows)
    held = [key for key, _ in HELD_OUT]
    indices = partition(rows, [sizes[key] for key in held], (settings.seed, 1))
    return dict(zip([*held, "train"], indices))


def _by_input(roles: dict, shapes: dict, X, y) -> dict:
    """Input name → array, targets as a column where their Input is declared 2-D."""
    arrays = {}
    for role, name in roles.items():
        array = X if role == "features" else y
        if role == "targets" and shapes[name] is not None and len(shapes[name]) == 2:
            array = array.reshape(-1, 1)
        arrays[name] = array
    return arrays
