"""Preprocessing: what turns raw data into what a network was trained on, and back.

Fitted once, on the training rows, when a model is trained (`fit`), then kept with its
params in the model file (mfc.modelfile) and applied unchanged to any later data: the
features standardised with the *training* mean and std, the targets of a classifier
mapped to class indices 0..C−1 and its predictions mapped back to the original labels
(strings such as `setosa` included). Never recomputed from the data it is applied to.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfc.diagnostics import DataError
from mfc.lazy import LazyModule

np = LazyModule("numpy", globals(), "np")  # imported when data is first prepared

# Integer-valued targets with more distinct values than this are taken as regression
# targets (diabetes has 214), not as class labels.
MAX_CLASSES = 100


@dataclass(frozen=True, eq=False)
class Preprocessing:
    """How a model's data is prepared.

    Attributes
    ----------
    features : how many feature columns the model takes.
    feature_names : their names (a CSV header's, a bundled dataset's), matched against
        the header of data to predict on; None: matched by position.
    target_column : the CSV column the targets came from (None: not a CSV, or no targets).
    mean, std : (features,) float64, the training rows' statistics; None when the
        features were used as given (`standardize = false`, or an old params-only file).
    classes : for a classifier, the original labels in the order of the class indices
        (str, or int for numeric labels); None for a regressor.
    """

    features: int
    feature_names: tuple[str, ...] | None = None
    target_column: str | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    classes: tuple | None = None

    @property
    def standardized(self) -> bool:
        return self.mean is not None

    def transform(self, X) -> np.ndarray:
        """The features as the network reads them: float64, standardised with the saved
        statistics (never the data's own). A ValueError for rows of another width; a
        DataError for a value so far from its training mean that standardised it is
        beyond float64 (1.7e308 over a std below 1): the network cannot read it."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.features:
            raise ValueError(f"the model takes rows of {self.features} features, but the "
                             f"features have shape {X.shape}")
        if not self.standardized:
            return X
        standardized = _standardized(X, self.mean, self.std)
        self._check_finite(X, standardized)
        return standardized

    def _check_finite(self, X, standardized) -> None:
        bad = np.argwhere(~np.isfinite(standardized) & np.isfinite(X))
        if len(bad):
            row, column = (int(i) for i in bad[0])
            name = repr(self.feature_names[column]) if self.feature_names else f"{column + 1}"
            raise DataError(f"row {row + 1}: feature {name} is {X[row, column]:g}, too far "
                            f"from its training mean ({self.mean[column]:g}, std "
                            f"{self.std[column]:g}) to standardise in float64")

    def encode(self, y, place=None) -> np.ndarray:
        """Original labels (numbers or text) → class indices (intp). A DataError for a
        label that is not one of the classes; `place(i)` says where row i came from
        (`data.csv:5`), for the message."""
        index = {label: i for i, label in enumerate(self.classes)}
        y = np.asarray(y).reshape(-1)
        indices = np.empty(len(y), np.intp)
        for row, value in enumerate(y):
            found = index.get(_label(value, text=isinstance(self.classes[0], str)))
            if found is None:
                where = place(row) if place else f"row {row + 1}"
                raise DataError(f"{where}: the target {_shown(value)} is not one of the "
                                f"model's classes ({_listed(self.classes)})")
            indices[row] = found
        return indices

    def decode(self, indices) -> np.ndarray:
        """Class indices → the original labels (an array of str or of int). A ValueError
        for an index past the classes: scores wider than the labels the model was
        trained on (three scores, two words), one of which a row scores highest."""
        indices = np.asarray(indices, dtype=np.intp)
        if indices.size and indices.max() >= len(self.classes):
            raise ValueError(f"a row scores class {indices.max()} highest, but the model "
                             f"knows labels for classes 0..{len(self.classes) - 1} only "
                             f"({_listed(self.classes)})")
        return np.asarray(self.classes)[indices]


def _label(value, text: bool):
    """A label as the classes hold it: text, or an int for a whole number."""
    if isinstance(value, (str, np.str_)):
        value = value.strip()
        if text:
            return value
        try:
            value = float(value)
        except ValueError:
            return None
    number = float(value)
    if text:
        return str(int(number)) if number.is_integer() else str(number)
    return int(number) if number.is_integer() else None


def _shown(value) -> str:
    if isinstance(value, (str, np.str_)):
        return repr(str(value).strip())
    return f"{float(value):g}"


def _listed(labels, most: int = 6) -> str:
    shown = ", ".join(str(label) for label in labels[:most])
    return shown + (", ..." if len(labels) > most else "")


# ---------------------------------------------------------------- fitting


def fit(X_train, y, *, standardized: bool, width: int | None, labels: bool,
        feature_names=None, target_column=None, note=lambda text: None) -> Preprocessing:
    """The preprocessing of a model trained on the rows `X_train`, with targets `y`
    (every row's: a class seen only in held-out rows is still a class).

    Parameters
    ----------
    X_train : (rows, features) the training rows, raw.
    y : the targets, numbers or text; read only when `labels`.
    standardized : whether the features are standardised.
    width : how many scores the classifier gives (None: not known); `labels`: whether
        the targets are class labels.
    note : called with a remark when labels are renumbered.

    Raises
    ------
    DataError when the targets cannot be class labels.
    """
    mean = std = None
    if standardized:
        _, mean, std = standardize(X_train)
    classes = class_list(y, width, note) if labels else None
    names = tuple(feature_names) if feature_names is not None else None
    return Preprocessing(np.shape(X_train)[1], names, target_column, mean, std, classes)


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
    scale = _scale(X)
    if mean is None:
        mean = (X / scale).mean(axis=0) * scale
    if std is None:
        # all equal, not std == 0: a constant column's std can come out as 1e-17, not 0
        constant = np.all(X == X[:1], axis=0)
        std = np.where(constant, 1.0, (X / scale).std(axis=0) * scale)
    std = np.where(std == 0, 1.0, std)
    return _standardized(X, mean, std), mean, std


def _standardized(X, mean, std) -> np.ndarray:
    """(X − mean) / std, each scaled by `_scale` first where values are past 2**500
    (1.7e308 minus −1e307 would be inf); inf where even the result is past float64,
    which Preprocessing.transform reports. Elsewhere the plain formula, bit for bit."""
    scale = _scale(np.vstack([X, mean, std]))
    with np.errstate(over="ignore", invalid="ignore"):
        return (X / scale - mean / scale) / (std / scale)


def _scale(X: np.ndarray) -> np.ndarray:
    """Per column, 1, or for a column with values past 2**500 the largest power of two
    at most its largest value: its sum and its squares then stay within float64 (1e308
    in a column would make them inf). Dividing by a power of two is exact, so the
    statistics are those of the column itself, and every other column's are computed
    as they always were."""
    largest = np.max(np.abs(X), axis=0, initial=0.0)
    return np.where(largest > 2.0**500, np.ldexp(1.0, np.frexp(largest)[1] - 1), 1.0)


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


def class_list(y, width: int | None, note) -> tuple:
    """The classes, in index order: 0..width−1 when the targets are whole numbers in that
    range already (kept as they are), else their sorted distinct values, numbers or text,
    with a note saying so."""
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind in "US":
        values = [str(v) for v in np.unique(y)]
    else:
        values = [int(v) for v in class_labels(y)[1]]
        if values[0] >= 0 and (width is None or values[-1] < width):
            return tuple(range(width if width is not None else values[-1] + 1))
    if len(values) > MAX_CLASSES:
        raise DataError(f"the targets look continuous ({len(values)} distinct values), "
                        "but CrossEntropy needs class labels; use MSE for a continuous "
                        "target")
    if width is not None and len(values) > width:
        raise DataError(f"the targets hold {len(values)} classes, but the logits give "
                        f"{width} scores per row; widen the last layer to {len(values)}")
    note(f"the targets' values {_listed(values)} are taken as the classes "
         f"0..{len(values) - 1}, in that order")
    return tuple(values)
