"""scikit-learn's bundled datasets, read from the data files its package ships, without
importing scikit-learn.

Importing `sklearn.datasets` pulls in scipy: over a second and some 80 MiB, for five
small tables that sit in `sklearn/datasets/data/` as CSV files. This module finds that
folder (importlib, which does not import the package) and reads the files as
scikit-learn's own loaders do, with the same numpy calls, so that the arrays are equal
to theirs bit for bit (tests/test_data.py holds them together), including
`load_diabetes`'s scaling of the features.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from mfc.diagnostics import DataError

_IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
_WINE = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
         "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
         "od280/od315_of_diluted_wines", "proline"]
_CANCER_PARTS = ["radius", "texture", "perimeter", "area", "smoothness", "compactness",
                 "concavity", "concave points", "symmetry", "fractal dimension"]
_CANCER = ([f"mean {p}" for p in _CANCER_PARTS] + [f"{p} error" for p in _CANCER_PARTS]
           + [f"worst {p}" for p in _CANCER_PARTS])
_DIGITS = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]
_DIABETES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]

# name → (data file, feature names)
FILES = {"iris": ("iris.csv", _IRIS), "wine": ("wine_data.csv", _WINE),
         "breast_cancer": ("breast_cancer.csv", _CANCER), "digits": ("digits.csv.gz", _DIGITS),
         "diabetes": ("diabetes_data_raw.csv.gz", _DIABETES)}


def load(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(X, y, feature names) of the bundled dataset `name`, as scikit-learn's
    `load_<name>()` gives `data`, `target` and `feature_names`. Raises DataError when
    scikit-learn's data files cannot be found or read."""
    folder = data_folder()
    file, names = FILES[name]
    try:
        if name == "diabetes":
            X, y = _diabetes(folder)
        elif name == "digits":
            table = _gzip_table(folder / file, delimiter=",")
            X, y = table[:, :-1], table[:, -1].astype(int, copy=False)
        else:
            X, y = _counted_csv(folder / file)
    except (OSError, ValueError, StopIteration) as err:
        raise DataError(f"cannot read the bundled dataset '{name}' from {folder / file}: "
                        f"{err}") from None
    return X, y, list(names)


def data_folder() -> Path:
    """scikit-learn's `datasets/data` folder, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bundled datasets come with scikit-learn, which is not "
                        "installed: pip install scikit-learn")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _counted_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CSV whose first row gives its rows and columns (then the class names), and
    whose rows end with an integer label: `sklearn.datasets.load_csv_data`."""
    with path.open("r", encoding="utf-8") as file:
        rows = csv.reader(file)
        header = next(rows)
        data = np.empty((int(header[0]), int(header[1])))
        target = np.empty((int(header[0]),), dtype=int)
        for i, row in enumerate(rows):
            data[i] = np.asarray(row[:-1], dtype=np.float64)
            target[i] = np.asarray(row[-1], dtype=int)
    return data, target


def _gzip_table(path: Path, **kwargs) -> np.ndarray:
    """`sklearn.datasets.load_gzip_compressed_csv_data`."""
    with path.open("rb") as compressed:
        return np.loadtxt(gzip.open(compressed, mode="rt", encoding="utf-8"), **kwargs)


def _diabetes(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """`load_diabetes()`: its raw features scaled as `sklearn.preprocessing.scale` does,
    then divided by √rows."""
    data = _gzip_table(folder / "diabetes_data_raw.csv.gz")
    target = _gzip_table(folder / "diabetes_target.csv.gz")
    _scale(data)
    data /= data.shape[0] ** 0.5
    return data, target


def _scale(X: np.ndarray) -> None:
    """`sklearn.preprocessing.scale(X, copy=False)` for a dense float array, in place:
    centred, each centring checked and redone if it left a mean not close to 0."""
    mean, std = np.nanmean(X, 0), np.nanstd(X, 0)
    X -= mean
    mean_1 = np.nanmean(X, axis=0)
    if not np.allclose(mean_1, 0):
        X -= mean_1
    std[std < 10 * np.finfo(std.dtype).eps] = 1.0  # a near-constant column is left as is
    X /= std
    mean_2 = np.nanmean(X, axis=0)
    if not np.allclose(mean_2, 0):
        X -= mean_2
