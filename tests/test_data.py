"""Tests for mfc.data: bundled datasets, CSV and NPZ files, and preparing data."""

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mfc import data as data_mod
from mfc.data import (
    BUNDLED, BUNDLED_NAMES, MAX_CLASSES, DataInfo, class_labels, describe, file_of, is_bundled, load,
    split, standardize,
)
from mfc.diagnostics import DataError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return name


# ---------------------------------------------------------------- bundled


@pytest.mark.parametrize("name", BUNDLED_NAMES)
def test_bundled_table_matches_the_loaded_data(name):
    data = load(name, ".")
    assert data.X.dtype == np.float64 and data.y.dtype == np.float64
    assert data.y.shape == (data.X.shape[0],)
    assert len(data.feature_names) == data.X.shape[1]
    known = BUNDLED[name]
    assert (data.info.rows, data.info.features, data.info.classes) == \
        (known.rows, known.features, known.classes)
    if known.classes is not None:
        assert len(np.unique(data.y)) == known.classes
    # continuous as the run judges targets: more distinct values than classes can be
    assert known.continuous == (len(np.unique(data.y)) > MAX_CLASSES)


@pytest.mark.parametrize("name", BUNDLED_NAMES)
def test_bundled_data_equals_scikit_learns_loaders(name):
    """Read from scikit-learn's files without importing it, equal to its loaders."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    data = load(name, ".")
    np.testing.assert_array_equal(data.X, bunch.data)
    np.testing.assert_array_equal(data.y, bunch.target)
    assert data.feature_names == [str(f) for f in bunch.feature_names]


def test_loading_bundled_data_does_not_import_sklearn():
    code = ("import sys, mfc.data; mfc.data.load('diabetes', '.'); "
            "print('sklearn' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_scikit_learn_bundled_data_is_one_data_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(DataError, match="pip install scikit-learn"):
        load("iris", ".")


def test_bundled_names():
    assert set(BUNDLED_NAMES) == {"diabetes", "iris", "wine", "breast_cancer", "digits"}
    assert is_bundled("iris") and not is_bundled("boston")
    assert describe("wine", "/nowhere") == DataInfo(178, 13, 3)


def test_describe_does_not_import_sklearn():
    code = "import sys, mfc.data; mfc.data.describe('iris', '.'); print('sklearn' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_name_suggests_a_bundled_one():
    with pytest.raises(DataError, match="did you mean 'iris'"):
        load("irsi", ".")
    with pytest.raises(DataError, match="unknown data"):
        describe("data.txt", ".")


# ---------------------------------------------------------------- CSV


def test_csv_happy_path(tmp_path):
    text = "\ufeffa, b ,label\n 1.5 ,2,0\n3,4e1 ,1\r\n\n5,6,1\n\n\n"
    write(tmp_path, "d.csv", text)
    data = load("d.csv", tmp_path)
    assert data.feature_names == ["a", "b"]
    np.testing.assert_array_equal(data.X, [[1.5, 2], [3, 40], [5, 6]])
    np.testing.assert_array_equal(data.y, [0, 1, 1])
    assert data.classes == 2 and data.name == "d.csv"
    assert describe("d.csv", tmp_path) == DataInfo(rows=3, features=2, classes=None)


@pytest.mark.parametrize("text", [
    'a,b,y\n1,2,0\n\n3,4,1\n\n',  # blank lines
    'a,b,y\n1,2,"0"\n3,"4\n",1\n5,6,"1\r\n"\n',  # newlines inside quotes
    'a,b,y\r\n1,2,0\r\n3,4,1',  # CRLF, no newline at the end
])
def test_describe_counts_a_csvs_rows_as_the_load_reads_them(tmp_path, text):
    write(tmp_path, "d.csv", text)
    assert describe("d.csv", tmp_path).rows == len(load("d.csv", tmp_path).X)


def test_csv_target_column_and_relative_path(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "sub/d.csv", "y,a,b\n0.5,1,2\n1.5,3,4\n")
    data = load("sub/d.csv", tmp_path, target_column="y")
    assert data.feature_names == ["a", "b"] and data.classes is None
    np.testing.assert_array_equal(data.y, [0.5, 1.5])
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])


CSV_ERRORS = [
    # (file text, text the message must contain)
    ("a,age,y\n1,2,3\n1,abc,3\n", ["d.csv:3:", "'age'", "'abc' is not a number"]),
    ("a,age,y\n1,2,3\n\n1, ,3\n", ["d.csv:4:", "'age' is empty"]),
    ("a,age,y\n1,2,3\n1,nan,3\n", ["d.csv:3:", "'age'", "not a finite number"]),
    ("a,age,y\n1,2,3\n1,2\n", ["d.csv:3:", "2 cells", "3 columns"]),
    ("a,age,y\n1,2,3\n1,2,3,4\n", ["d.csv:3:", "4 cells"]),
    ("a,y\n1,2\n1\n", ["d.csv:3:", "the row has 1 cell but the header has 2 columns"]),
    ("a,age,y\n", ["no data rows"]),
    ("a,age,y\n\n\n", ["no data rows"]),
    ("", ["d.csv:1:", "header"]),
    ("\n", ["d.csv:1:", "header"]),
    ("1,2,3\n4,5,6\n", ["d.csv:1:", "not numbers"]),
    ("a,,y\n1,2,3\n", ["d.csv:1:", "column 2 has no name"]),
    ("a,a,y\n1,2,3\n", ["d.csv:1:", "'a' appears twice"]),
    ("a;b;y\n1;2;3\n", ["d.csv:1:", "';'"]),
    (b"a,b,y\n1,2,3\n1,\xe9,3\n", ["d.csv:3:", "UTF-8"]),
]


@pytest.mark.parametrize("text, expected", CSV_ERRORS)
def test_csv_errors(tmp_path, text, expected):
    write(tmp_path, "d.csv", text)
    with pytest.raises(DataError) as err:
        load("d.csv", tmp_path)
    message = str(err.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


@pytest.mark.parametrize("text, expected", [
    ("", "header"), ("1,2\n", "not numbers"), ("a\n", "two columns"),
    ("a,a\n", "twice"), (b"\xff\xfea,b\n", "UTF-8"),
])
def test_describe_rejects_bad_headers(tmp_path, text, expected):
    write(tmp_path, "d.csv", text)
    with pytest.raises(DataError, match=expected):
        describe("d.csv", tmp_path)


def test_csv_unknown_target_column(tmp_path):
    write(tmp_path, "d.csv", "age,weight,y\n1,2,3\n")
    with pytest.raises(DataError, match="no column 'agee'; did you mean 'age'"):
        load("d.csv", tmp_path, target_column="agee")
    with pytest.raises(DataError, match="its columns are age, weight, y"):
        describe("d.csv", tmp_path, target_column="zzz")


def test_missing_file(tmp_path):
    assert describe("nope.csv", tmp_path) is None
    assert describe("nope.npz", tmp_path) is None
    with pytest.raises(DataError, match=r"data file 'nope.csv' not found \(looked in /"):
        load("nope.csv", tmp_path)


# ---------------------------------------------------------------- NPZ


def test_npz_happy_path(tmp_path):
    X = np.arange(12).reshape(4, 3)
    np.savez(tmp_path / "d.npz", X=X, y=np.array([[1], [3], [3], [1]]))
    data = load("d.npz", str(tmp_path))
    assert data.X.dtype == np.float64 and data.X.shape == (4, 3)
    assert data.y.shape == (4,) and data.y.dtype == np.float64
    assert data.feature_names == ["x0", "x1", "x2"] and data.classes == 2
    assert describe("d.npz", tmp_path) == DataInfo(rows=4, features=3, classes=None)


def test_npz_describe_reads_compressed_archives(tmp_path):
    np.savez_compressed(tmp_path / "d.npz", X=np.zeros((7, 5)), y=np.zeros(7))
    assert describe("d.npz", tmp_path) == DataInfo(rows=7, features=5, classes=None)


NPZ_ERRORS = [
    ({"X": np.zeros((3, 2))}, "has no array 'y'"),
    ({"y": np.zeros(3)}, "has no array 'X'"),
    ({"X": np.zeros((100, 2)), "y": np.zeros(99)}, "X has 100 rows but y has 99"),
    ({"X": np.zeros(3), "y": np.zeros(3)}, "X must be 2-D"),
    ({"X": np.zeros((3, 2)), "y": np.zeros((3, 2))}, "y must be 1-D"),
    ({"X": np.zeros((0, 2)), "y": np.zeros(0)}, "no data"),
    ({"X": np.array([[1.0, np.nan]]), "y": np.zeros(1)}, r"X\[0, 1\] is nan"),
    ({"X": np.ones((2, 2)), "y": np.array([1.0, np.inf])}, r"y\[1\] is inf"),
    ({"X": np.array([["a", "b"]]), "y": np.zeros(1)}, "not real numbers"),
    ({"X": np.array([[1, "b"]], dtype=object), "y": np.zeros(1)}, "object values, not real"),
]


@pytest.mark.parametrize("arrays, expected", NPZ_ERRORS)
def test_npz_errors(tmp_path, arrays, expected):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=expected):
        load("d.npz", tmp_path)


def test_npz_that_is_not_an_archive(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "d.npz").write_bytes((tmp_path / "a.npy").read_bytes())
    for read in (load, describe):
        with pytest.raises(DataError, match="single array"):
            read("d.npz", tmp_path)
    write(tmp_path, "junk.npz", "not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load("junk.npz", tmp_path)


def npz_claiming(path, shapes):
    """An .npz archive whose arrays' headers claim `shapes` but hold no data."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, shape in shapes.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f8", "fortran_order": False, "shape": shape})
            archive.writestr(f"{key}.npy", header.getvalue())


@pytest.mark.parametrize("read", [load, describe])
def test_npz_claiming_huge_arrays_is_refused_unread(tmp_path, read):
    npz_claiming(tmp_path / "d.npz", {"X": (10**11, 3), "y": (10**11,)})
    with pytest.raises(DataError, match=r"X has shape \(100000000000, 3\), 2.2 TiB as "
                                        r"float64; mfc loads at most 2.0 GiB"):
        read("d.npz", tmp_path)


def test_npz_truncated_after_its_headers_is_one_data_error(tmp_path):
    npz_claiming(tmp_path / "d.npz", {"X": (4, 3), "y": (4,)})
    assert describe("d.npz", tmp_path) == DataInfo(rows=4, features=3, classes=None)
    with pytest.raises(DataError, match="cannot read array 'X'"):
        load("d.npz", tmp_path)


def test_running_out_of_memory_is_a_data_error(tmp_path, monkeypatch):
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2)), y=np.zeros(3))

    def no_memory(archive, member):
        raise MemoryError

    monkeypatch.setattr(data_mod, "read_npy", no_memory)
    with pytest.raises(DataError, match="'d.npz' is too large to load"):
        load("d.npz", tmp_path)


@pytest.mark.parametrize("read", [load, describe])
@pytest.mark.parametrize("name", ["n" * 300 + ".csv", "n" * 300 + ".npz"])
def test_what_the_system_refuses_is_a_data_error(tmp_path, read, name):
    with pytest.raises(DataError, match=r"cannot read the data file 'n+\.(csv|npz)': "
                                        "File name too long"):
        read(name, tmp_path)


@pytest.mark.parametrize("read", [load, describe])
@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir])
def test_what_is_not_a_regular_file_is_a_data_error(tmp_path, read, make):
    make(tmp_path / "d.csv")  # reading a FIFO would wait for a writer forever
    with pytest.raises(DataError, match="the data file 'd.csv' is not a regular file"):
        read("d.csv", tmp_path)


def test_file_of_names_data_files_only(tmp_path):
    assert file_of("d.csv", tmp_path) == tmp_path / "d.csv"
    assert file_of("iris", tmp_path) is None and file_of("irsi", tmp_path) is None


def test_target_column_only_for_csv(tmp_path):
    with pytest.raises(DataError, match="only to .csv"):
        load("iris", tmp_path, target_column="x")


# ---------------------------------------------------------------- preparing data


def test_standardize_constant_column_gives_no_nan():
    X = np.column_stack([np.full(442, 0.1), np.arange(442.0)])
    Xs, mean, std = standardize(X)
    assert np.all(np.isfinite(Xs))
    np.testing.assert_allclose(Xs[:, 0], 0.0, atol=1e-12)
    assert std[0] == 1.0
    np.testing.assert_allclose(Xs[:, 1].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(Xs[:, 1].std(), 1)


def test_standardize_reuses_given_statistics():
    _, mean, std = standardize(np.array([[0.0], [2.0]]))
    Xs, _, _ = standardize(np.array([[3.0]]), mean, std)
    np.testing.assert_allclose(Xs, [[2.0]])


@pytest.mark.parametrize("y, labels, values", [
    ([0, 2, 1, 2], [0, 2, 1, 2], [0, 1, 2]),
    ([1, 3, 2, 3], [0, 2, 1, 2], [1, 2, 3]),
    ([-1, 1, 1], [0, 1, 1], [-1, 1]),
    ([5.0, 5.0], [0, 0], [5]),
])
def test_class_labels_maps_sorted_values_to_0_to_c(y, labels, values):
    got, got_values = class_labels(np.array(y, dtype=float))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, labels)
    np.testing.assert_array_equal(got_values, values)
    np.testing.assert_array_equal(got_values[got], y)


@pytest.mark.parametrize("y", [[0, 0.5, 1], [0, np.nan]])
def test_class_labels_rejects_non_integers(y):
    with pytest.raises(DataError, match="CrossEntropy needs integer class labels"):
        class_labels(np.array(y))


def test_split_is_reproducible_and_partitions_the_rows():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    a = split(X, y, 0.3, np.random.default_rng(1))
    b = split(X, y, 0.3, np.random.default_rng(1))
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    X_train, y_train, X_val, y_val = a
    assert X_train.shape == (7, 2) and X_val.shape == (3, 2)
    assert sorted(np.concatenate([y_train, y_val])) == list(y)
    np.testing.assert_array_equal(X_train[:, 0], 2 * y_train)


@pytest.mark.parametrize("rows, fraction", [(10, 0.01), (10, 0.99), (1, 0.5), (10, 0), (10, 1)])
def test_split_needs_rows_on_both_sides(rows, fraction):
    with pytest.raises(DataError):
        split(np.zeros((rows, 1)), np.zeros(rows), fraction, np.random.default_rng(0))


def test_partition_cuts_one_permutation_into_disjoint_parts():
    val, test, train = data_mod.partition(20, [4, 6], (3, 1))
    assert (len(val), len(test), len(train)) == (4, 6, 10)
    assert sorted(np.concatenate([val, test, train])) == list(range(20))
    again = data_mod.partition(20, [4, 0], (3, 1))
    np.testing.assert_array_equal(again[0], val)  # a test part leaves validation as it was


def program_of(text, base_dir=None):
    import mfc

    return mfc.compile(text, "<test>", base_dir=base_dir).program \
        if base_dir is None else mfc.load(_spec(base_dir, text)).program


def _spec(folder, text):
    path = folder / "net.mf"
    path.write_text(text)
    return path


CLASSIFY = """\
X, y = Input(), Input()
W, b = Param(_, 3), Param(3)
cost = CrossEntropy(y, Linear(X, W, b))
train {{ data = "{data}"; batch_size = 4; {extra} }}
"""


def test_prepare_holds_out_disjoint_validation_and_test_rows_fixed_by_the_seed():
    from mfc.data import prepare

    program = program_of(CLASSIFY.format(data="iris", extra="validation = 0.2; test = 0.1"))
    notes = []
    first = prepare(program, program.settings, notes.append)
    second = prepare(program, program.settings, notes.append)
    sizes = [len(part["y"]) for part in (first.train, first.validation, first.test)]
    assert sizes == [105, 30, 15] and first.rows == 105
    np.testing.assert_array_equal(first.test["X"], second.test["X"])
    rows = {tuple(row) for part in (first.train, first.validation, first.test)
            for row in part["X"]}
    assert len(rows) >= 147  # iris has a few duplicate rows; no row is in two parts
    np.testing.assert_allclose(first.train["X"].mean(axis=0), 0, atol=1e-12)  # train stats
    assert abs(first.test["X"].mean()) > 1e-6
    np.testing.assert_allclose(first.preprocessing.mean,
                               load("iris", ".").X.mean(axis=0), rtol=0.05)


@pytest.mark.parametrize("extra, key", [("validation = 0.5; test = 0.5", "test"),
                                        ("test = 0.001", "test")])
def test_a_test_split_that_leaves_a_part_empty_is_e401_at_its_setting(extra, key):
    import mfc

    with pytest.raises(mfc.SpecError) as info:
        program_of(CLASSIFY.format(data="iris", extra=extra))
    (d,) = info.value.diagnostics
    assert (d.code, d.line) == ("E401", 4)
    assert d.column == CLASSIFY.format(data="iris", extra=extra).splitlines()[3].index(
        key + " =") + len(key) + 4


def test_string_labels_in_a_csv_are_classes_kept_in_order(tmp_path):
    rows = ["length,width,species"] + [f"{i % 7},{i % 4},{['setosa', 'virginica', 'versicolor'][i % 3]}"
                                       for i in range(30)]
    write(tmp_path, "flowers.csv", "\n".join(rows) + "\n")
    loaded = load("flowers.csv", tmp_path, text_labels=True)
    assert loaded.y.dtype.kind == "U" and loaded.y[1] == "virginica" and loaded.classes == 3
    program = program_of(CLASSIFY.format(data="flowers.csv", extra=""), tmp_path)
    notes = []
    prepared = data_mod.prepare(program, program.settings, notes.append)
    assert prepared.preprocessing.classes == ("setosa", "versicolor", "virginica")
    assert prepared.preprocessing.target_column == "species"
    assert prepared.preprocessing.feature_names == ("length", "width")
    assert notes == ["the targets' values setosa, versicolor, virginica are taken as the "
                     "classes 0..2, in that order"]
    with pytest.raises(DataError, match="flowers.csv:2: column 'species': 'setosa' is not "
                                        "a number"):
        load("flowers.csv", tmp_path)  # a regressor's targets must be numbers


# ---------------------------------------------------------------- data for a trained model


MODEL = data_mod.Preprocessing(features=2, feature_names=("a", "b"), target_column="t")
POSITIONAL = data_mod.Preprocessing(features=2)


def for_model(tmp_path, text, model=MODEL, name="d.csv", **options):
    write(tmp_path, name, text)
    return data_mod.load_for_model(name, tmp_path, model, **options)


def test_columns_are_matched_by_name_and_the_rest_noted(tmp_path):
    notes = []
    data = for_model(tmp_path, "id,b,t,a\n7,2,x,1\n8,4,y,3\n", text_targets=True,
                     note=notes.append, targets=True)
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    assert list(data.y) == ["x", "y"] and notes == ["d.csv: column 'id' is not a feature "
                                                    "of the model; ignored"]
    assert for_model(tmp_path, "b,a\n1,2\n").y is None  # predicting needs no targets
    assert for_model(tmp_path, "a,b,t\n1,2,?\n", POSITIONAL).y is None  # nor reads them


@pytest.mark.parametrize("text, model, targets, parts", [
    ("a,c\n1,2\n", MODEL, False, ["no column 'b', a feature of the model"]),
    ("a,b\n1,2\n", MODEL, True, ["has no targets (column 't')", "evaluating needs them"]),
    ("a,b\n1,x\n", MODEL, False, ["d.csv:2: column 'b': 'x' is not a number"]),
    ("a,b,t\n1,2,3\n4,5\n", MODEL, False, ["d.csv:3: the row has 2 cells but the header has 3"]),
    ("p,q,r,s\n1,2,3,4\n", POSITIONAL, False, ["has 4 columns, but the model takes 2 features"]),
    ("1,2\n3,x\n", POSITIONAL, False, ["d.csv:2: column 2: 'x' is not a number"]),
    ("", MODEL, False, ["d.csv is empty"]),
    ("\n\n", MODEL, False, ["d.csv is empty"]),
    ("a,b\n", MODEL, False, ["d.csv has a header but no data rows"]),
])
def test_data_that_does_not_fit_the_model_is_one_line(tmp_path, text, model, targets, parts):
    with pytest.raises(DataError) as err:
        for_model(tmp_path, text, model, targets=targets)
    assert "\n" not in str(err.value)
    for part in parts:
        assert part in str(err.value)


def test_columns_are_taken_by_position_without_names(tmp_path):
    data = for_model(tmp_path, "1,2\n3,4\n", MODEL)  # no header: numbers only
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    data = for_model(tmp_path, "0,1\n3,4\n", POSITIONAL)  # pandas' unnamed columns
    np.testing.assert_array_equal(data.X, [[3, 4]])
    data = for_model(tmp_path, "p,q,r\n1,2,0\n3,4,1\n", POSITIONAL, targets=True)
    np.testing.assert_array_equal(data.y, [0, 1])


def test_npz_bundled_and_stdin_data_for_a_model(tmp_path):
    np.savez(tmp_path / "x.npz", X=np.ones((3, 2)))
    assert data_mod.load_for_model("x.npz", tmp_path, POSITIONAL).y is None
    with pytest.raises(DataError, match=r"^x.npz has no targets \(no array 'y'\);"):
        data_mod.load_for_model("x.npz", tmp_path, POSITIONAL, targets=True)
    with pytest.raises(DataError, match="iris has 4 features but the model takes 2"):
        data_mod.load_for_model("iris", tmp_path, POSITIONAL)
    data = data_mod.load_for_model("-", tmp_path, MODEL, stdin=b"a,b\n1,2\n")
    assert data.name == "<stdin>" and data.X.shape == (1, 2)
