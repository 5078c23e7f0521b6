"""`mfc predict`, `mfc eval` and `mfc info` end to end: a model trained and saved by `mfc
run`, used on data the run never saw. Predictions are checked against a plain numpy
forward pass on the saved params and preprocessing (read with numpy alone), metrics
against scikit-learn's on those predictions; every bad input is one line, exit 2, and
nothing written."""

import contextlib
import csv
import io
import json
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn import datasets, metrics as sk

from conftest import DIABETES_NET, IRIS_NET, assert_scikit_learns_classification, softmax
from mfc.cli import main

IRIS = IRIS_NET + """train { data = "flowers.csv"; validation = 0.2; test = 0.2
        epochs = 30; batch_size = 8; learning_rate = 0.05; optimizer = momentum }
"""
DIABETES = DIABETES_NET + """train { data = "patients.csv"; epochs = 30; batch_size = 11
        learning_rate = 0.01 }
"""


def mfc(*argv, stdin: bytes = b""):
    """`mfc` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def write_csv(path, header, rows):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    """A classifier trained on 120 flowers with their species as words; the other 30
    held back in new.csv (with species) and unlabelled.csv (without)."""
    folder = tmp_path_factory.mktemp("iris")
    data = datasets.load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    order = np.random.default_rng(0).permutation(150)
    rows = [[*map(str, data.data[i].tolist()), data.target_names[data.target[i]]] for i in order]
    write_csv(folder / "flowers.csv", names + ["species"], rows[:120])
    write_csv(folder / "new.csv", names + ["species"], rows[120:])
    write_csv(folder / "unlabelled.csv", names, [row[:4] for row in rows[120:]])
    (folder / "iris.mf").write_text(IRIS)
    code, out, err = mfc("run", folder / "iris.mf", "--save", folder / "iris.npz")
    assert code == 0, err
    return folder


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diabetes")
    data = datasets.load_diabetes()
    header = [f"f{i}" for i in range(10)] + ["progression"]
    rows = [[*map(repr, x.tolist()), repr(float(t))] for x, t in zip(data.data, data.target)]
    write_csv(folder / "patients.csv", header, rows[:400])
    write_csv(folder / "new.csv", header, rows[400:])
    (folder / "diabetes.mf").write_text(DIABETES)
    code, out, err = mfc("run", folder / "diabetes.mf", "--save", folder / "diabetes.npz")
    assert code == 0, err
    return folder


def saved(path):
    """The params and preprocessing of a model file, read with numpy alone."""
    with np.load(path, allow_pickle=False) as archive:
        manifest = json.loads(archive["manifest.json"])
        params = {name: archive[name] for name in manifest["params"]}
        return params, archive["preprocessing/mean"], archive["preprocessing/std"], manifest


def features(path, columns=4):
    header, rows = read_csv(path.read_text())
    return np.array([[float(v) for v in row[:columns]] for row in rows])


# ---------------------------------------------------------------- done when


def test_iris_predictions_are_a_numpy_forward_on_the_saved_model(iris):
    code, out, err = mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz",
                         "--data", iris / "unlabelled.csv", "--proba")
    assert code == 0, err
    header, rows = read_csv(out)
    assert header == ["species", "proba_setosa", "proba_versicolor", "proba_virginica"]
    p, mean, std, manifest = saved(iris / "iris.npz")
    X = (features(iris / "unlabelled.csv") - mean) / std
    scores = np.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    probabilities = np.array([[float(v) for v in row[1:]] for row in rows])
    np.testing.assert_allclose(probabilities, softmax(scores), rtol=0, atol=1e-12)
    classes = np.array(manifest["preprocessing"]["classes"])
    assert [row[0] for row in rows] == list(classes[scores.argmax(axis=1)])
    assert set(row[0] for row in rows) <= {"setosa", "versicolor", "virginica"}


def test_iris_metrics_are_scikit_learns_on_those_predictions(iris):
    code, out, err = mfc("eval", iris / "iris.mf", "--load", iris / "iris.npz",
                         "--data", iris / "new.csv", "--format", "json")
    assert code == 0, err
    found = json.loads(out)
    _, predicted = read_csv(mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz",
                                "--data", iris / "new.csv")[1])
    predicted = [row[0] for row in predicted]
    truth = [row[4] for row in read_csv((iris / "new.csv").read_text())[1]]
    assert found["rows"] == 30 and found["task"] == "classification"
    assert_scikit_learns_classification(found, truth, predicted)
    assert found["confusion_matrix"]["labels"] == ["setosa", "versicolor", "virginica"]


def test_diabetes_predictions_and_metrics(diabetes):
    code, out, err = mfc("predict", diabetes / "diabetes.mf", "--load",
                         diabetes / "diabetes.npz", "--data", diabetes / "new.csv")
    assert code == 0, err
    header, rows = read_csv(out)
    assert header == ["l2"] and len(rows) == 42
    p, mean, std, _ = saved(diabetes / "diabetes.npz")
    X = (features(diabetes / "new.csv", 10) - mean) / std
    expected = (1 / (1 + np.exp(-(X @ p["W1"] + p["b1"])))) @ p["W2"] + p["b2"]
    predicted = np.array([float(row[0]) for row in rows])
    np.testing.assert_allclose(predicted, expected[:, 0], rtol=0, atol=1e-12)
    code, out, err = mfc("eval", diabetes / "diabetes.mf", "--load", diabetes / "diabetes.npz",
                         "--data", diabetes / "new.csv", "--format", "json")
    found = json.loads(out)
    truth = np.array([float(row[10]) for row in read_csv((diabetes / "new.csv").read_text())[1]])
    assert found["mse"] == pytest.approx(sk.mean_squared_error(truth, predicted), rel=1e-12)
    assert found["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(truth, predicted)))
    assert found["mae"] == pytest.approx(sk.mean_absolute_error(truth, predicted), rel=1e-12)
    assert found["r2"] == pytest.approx(sk.r2_score(truth, predicted), rel=1e-12)
    assert found["loss"] == pytest.approx(found["mse"], rel=1e-12)


def test_the_test_rows_are_evaluated_after_training_and_kept(iris):
    _, _, _, manifest = saved(iris / "iris.npz")
    assert manifest["data"]["test_rows"] == 24 and manifest["test"]["rows"] == 24
    assert manifest["data"]["validation_rows"] == 24 and manifest["data"]["train_rows"] == 72


# ---------------------------------------------------------------- predict


def test_predict_reads_stdin_npz_and_a_bundled_name(iris, diabetes, tmp_path):
    by_file = mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz",
                  "--data", iris / "unlabelled.csv")[1]
    code, out, _ = mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz",
                       "--data", "-", stdin=(iris / "unlabelled.csv").read_bytes())
    assert code == 0 and out == by_file
    np.savez(tmp_path / "x.npz", X=features(iris / "unlabelled.csv"))
    code, out, _ = mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz",
                       "--data", tmp_path / "x.npz")
    assert code == 0 and out == by_file
    code, out, err = mfc("predict", diabetes / "diabetes.mf", "--load",
                         diabetes / "diabetes.npz", "--data", "diabetes")
    assert code == 0 and len(out.splitlines()) == 443, err


def test_predict_matches_columns_by_name_in_any_order(iris, tmp_path):
    header, rows = read_csv((iris / "new.csv").read_text())
    order = [4, 3, 2, 1, 0]
    write_csv(tmp_path / "shuffled.csv", ["id"] + [header[i] for i in order],
              [[n] + [row[i] for i in order] for n, row in enumerate(rows)])
    code, out, err = mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz",
                         "--data", tmp_path / "shuffled.csv")
    assert code == 0
    assert out == mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz",
                      "--data", iris / "unlabelled.csv")[1]
    assert err == f"mfc: note: {tmp_path / 'shuffled.csv'}: column 'id' is not a feature " \
                  "of the model; ignored\n"


def test_predict_json_and_o_written_atomically(iris, tmp_path):
    out_file = tmp_path / "p.json"
    code, out, err = mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz", "--data",
                         iris / "unlabelled.csv", "--format", "json", "--proba", "-o", out_file)
    assert code == 0 and out == "" and "wrote 30 predictions" in err
    rows = json.loads(out_file.read_text())
    assert len(rows) == 30 and set(rows[0]) == {"species", "proba_setosa",
                                                "proba_versicolor", "proba_virginica"}
    assert sum(v for k, v in rows[0].items() if k != "species") == pytest.approx(1)
    assert sorted(os.listdir(tmp_path)) == ["p.json"]
    code, _, err = mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz", "--data",
                       iris / "unlabelled.csv", "--format", "json", "--proba", "-o", out_file)
    assert code == 0, err  # its own predictions it replaces


def test_o_replaces_only_predictions_unless_forced(iris, tmp_path):
    (tmp_path / "notes.csv").write_text("my,own\n1,2\n")
    argv = ["predict", iris / "iris.mf", "--load", iris / "iris.npz", "--data",
            iris / "unlabelled.csv", "-o", tmp_path / "notes.csv"]
    code, out, err = mfc(*argv)
    assert code == 2 and "is not predictions mfc wrote; --force" in err
    assert (tmp_path / "notes.csv").read_text() == "my,own\n1,2\n"
    assert mfc(*argv, "--force")[0] == 0
    assert (tmp_path / "notes.csv").read_text().startswith("species\n")


# ---------------------------------------------------------------- bad input


def bad_inputs(folder, tmp_path):
    """(name, argv of the data, what the one line says) for every bad input."""
    (tmp_path / "missing.csv").write_text("sepal_length,sepal_width,petal_length\n1,2,3\n")
    (tmp_path / "word.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n"
                                       "1,2,3,4\n1,2,three,4\n")
    (tmp_path / "wide.csv").write_text("1,2,3,4,5,6\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n")
    np.savez(tmp_path / "narrow.npz", X=np.ones((2, 3)))
    (tmp_path / "junk.npz").write_text("not a zip")
    return [
        ("missing", ["--data", tmp_path / "missing.csv"],
         "has no column 'petal_width', a feature of the model"),
        ("word", ["--data", tmp_path / "word.csv"], "word.csv:3: column 'petal_length': "
                                                    "'three' is not a number"),
        ("wide", ["--data", tmp_path / "wide.csv"], "has 6 columns, but the model takes 4"),
        ("narrow", ["--data", tmp_path / "narrow.npz"], "has 3 features but the model takes 4"),
        ("empty", ["--data", tmp_path / "empty.csv"], "empty.csv is empty"),
        ("stdin", ["--data", "-"], "<stdin> is empty"),
        ("header", ["--data", tmp_path / "header.csv"], "a header but no data rows"),
        ("nothing", ["--data", tmp_path / "nothing.csv"], "data file"),
        ("bad model", ["--data", folder / "unlabelled.csv", "--load", tmp_path / "junk.npz"],
         "junk.npz is not an .npz archive"),
        ("no model", ["--data", folder / "unlabelled.csv", "--load", tmp_path / "none.npz"],
         "none.npz: no such file"),
    ]


@pytest.mark.parametrize("case", range(10))
@pytest.mark.parametrize("command", ["predict", "eval"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(iris, tmp_path, case, command):
    name, argv, says = bad_inputs(iris, tmp_path)[case]
    load = [] if "--load" in argv else ["--load", iris / "iris.npz"]
    output = ["-o", tmp_path / "out.csv"] if command == "predict" else []
    before = sorted(os.listdir(tmp_path))
    code, out, err = mfc(command, iris / "iris.mf", *load, *argv, *output)
    assert (code, out) == (2, ""), (name, err)
    assert err.startswith("mfc: error: ") and err.count("\n") == 1, err
    assert says in err, (name, err)
    assert sorted(os.listdir(tmp_path)) == before


def test_eval_needs_targets_it_knows(iris, tmp_path):
    argv = ["eval", iris / "iris.mf", "--load", iris / "iris.npz", "--data"]
    code, out, err = mfc(*argv, iris / "unlabelled.csv")
    assert code == 2 and "has no targets (column 'species'); evaluating needs them" in err
    text = (iris / "new.csv").read_text().replace("setosa", "rose", 1)
    (tmp_path / "rose.csv").write_text(text)
    code, out, err = mfc(*argv, tmp_path / "rose.csv")
    line = text.splitlines().index(next(l for l in text.splitlines() if "rose" in l)) + 1
    assert code == 2 and out == ""
    assert err == (f"mfc: error: {tmp_path / 'rose.csv'}:{line}: the target 'rose' is not "
                   "one of the model's classes (setosa, versicolor, virginica)\n")


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory):
    """specs/autoencoder.mf after an epoch: its loss reads the digits' pixels alone."""
    folder = tmp_path_factory.mktemp("autoencoder")
    spec = Path(__file__).parent.parent / "specs" / "autoencoder.mf"
    (folder / "autoencoder.mf").write_text(spec.read_text())
    code, out, err = mfc("run", folder / "autoencoder.mf", "--epochs", "1",
                         "--save", folder / "ae.npz")
    assert code == 0, err
    return folder


@pytest.mark.parametrize("data", ["digits", "X and y.npz", "X.npz"])
def test_eval_of_an_autoencoder_reports_its_reconstruction(autoencoder, data, tmp_path):
    """Without a targets Input, eval reads the features alone (targets in the data are
    not read) and gives the reconstruction's loss and regression metrics, no others."""
    digits = datasets.load_digits()
    if data.endswith(".npz"):
        arrays = {"X": digits.data, "y": digits.target} if "y" in data else {"X": digits.data}
        np.savez(tmp_path / data, **arrays)
        data = tmp_path / data
    argv = ["eval", autoencoder / "autoencoder.mf", "--load", autoencoder / "ae.npz",
            "--data", data]
    code, out, err = mfc(*argv, "--format", "json")
    assert (code, err) == (0, "")
    found = json.loads(out)
    assert (found["rows"], found["task"], found["output"]) == (1797, "regression", "reconstruction")
    assert found["loss"] == pytest.approx(found["mse"], rel=1e-12)
    assert "accuracy" not in found and found["against"] == "Input 'X', standardised"
    code, out, err = mfc(*argv)
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [f"loss (cost): {found['loss']:.3f} on 1,797 rows",
                                    "reconstruction against Input 'X', standardised:"]


def test_eval_on_rows_of_one_class_reports_every_class_without_warnings(iris, tmp_path):
    header, rows = read_csv((iris / "new.csv").read_text())
    write_csv(tmp_path / "two.csv", header, [r for r in rows if r[4] == "setosa"][:2])
    argv = ["eval", iris / "iris.mf", "--load", iris / "iris.npz", "--data", tmp_path / "two.csv"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = mfc(*argv, "--format", "json")
        assert (code, err) == (0, "")
        found = json.loads(out)
        assert [c["support"] for c in found["classes"]] == [2, 0, 0]
        assert found["confusion_matrix"]["labels"] == ["setosa", "versicolor", "virginica"]
        assert found["classes"][1]["recall"] is None
        code, out, err = mfc(*argv)
    assert (code, err) == (0, "")
    assert "versicolor  undefined  undefined  undefined        0" in out


@pytest.mark.parametrize("command", ["predict", "eval"])
def test_a_feature_too_far_to_standardise_is_one_line_without_warnings(iris, tmp_path, command):
    header, rows = read_csv((iris / "new.csv").read_text())
    rows[1][1] = "1.7e308"  # sepal_width: its std is below 1
    write_csv(tmp_path / "far.csv", header, rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = mfc(command, iris / "iris.mf", "--load", iris / "iris.npz",
                             "--data", tmp_path / "far.csv")
    assert (code, out) == (2, "")
    assert re.fullmatch(r"mfc: error: row 2: feature 'sepal_width' is 1\.7e\+308, too far from "
                        r"its training mean \(.*\) to standardise in float64\n", err), err


def test_a_model_from_another_graph_says_what_differs(iris, tmp_path):
    (tmp_path / "wider.mf").write_text(IRIS.replace("Param(_, 16, init=xavier), Param(16)\n"
                                                    "W2, b2 = Param(16, 3",
                                                    "Param(_, 32), Param(32)\nW2, b2 = Param(32, 3"))
    code, out, err = mfc("predict", tmp_path / "wider.mf", "--load", iris / "iris.npz",
                         "--data", iris / "unlabelled.csv")
    assert code == 2 and err.count("\n") == 1
    assert "was saved from another graph than" in err
    assert "W1 has shape (4, 16) in the file, (4, 32) in the spec" in err


def test_predict_refuses_to_write_over_what_it_reads(iris):
    for target in ("iris.npz", "unlabelled.csv", "iris.mf"):
        before = (iris / target).read_bytes()
        code, out, err = mfc("predict", iris / "iris.mf", "--load", iris / "iris.npz",
                             "--data", iris / "unlabelled.csv", "-o", iris / target)
        assert code == 2 and err.count("\n") == 1 and (iris / target).read_bytes() == before


def test_proba_needs_a_classifier(diabetes):
    code, out, err = mfc("predict", diabetes / "diabetes.mf", "--load",
                         diabetes / "diabetes.npz", "--data", diabetes / "new.csv", "--proba")
    assert code == 2 and "--proba needs a classifier" in err and out == ""


# ---------------------------------------------------------------- info


def test_info_shows_the_manifest(iris):
    code, out, err = mfc("info", iris / "iris.npz")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{iris / 'iris.npz'}: an mfc model (format 1), saved by mfc ")
    text = "\n".join(lines)
    for part in ["classes       setosa, versicolor, virginica (3)",
                 "flowers.csv: 120 rows (72 train, 24 validation, 24 test), 4 features, "
                 "targets in column 'species'", "W1 (4, 16), b1 (16,), W2 (16, 3), b2 (3,): "
                 "131 trainable parameters", "standardised with the training rows' mean",
                 "30 epochs, loss ", "held-out rows"]:
        assert part in text
    code, out, _ = mfc("info", iris / "iris.npz", "--format", "json")
    manifest = json.loads(out)
    assert manifest["format"] == "mfc-model" and manifest["spec"]["text"] == IRIS


def test_info_on_an_old_params_file_and_on_junk(tmp_path):
    np.savez(tmp_path / "old.npz", W=np.ones((2, 3)))
    code, out, _ = mfc("info", tmp_path / "old.npz")
    assert code == 0 and "params only" in out and "W (2, 3): 6 trainable" in out
    code, out, _ = mfc("info", tmp_path / "old.npz", "--format", "json")
    assert json.loads(out) == {"format": None, "params": {"W": [2, 3]}}
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as archive:
        archive.writestr("manifest.json", "{")
    code, out, err = mfc("info", tmp_path / "bad.npz")
    assert code == 2 and out == "" and "manifest.json cannot be read" in err


def manifest_edited(path, out, edit):
    """A copy of the model file at `path`, its manifest changed by `edit` (in place)."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "manifest.json":
                manifest = json.loads(data)
                edit(manifest)
                data = json.dumps(manifest).encode()
            target.writestr(name, data)
    return out


@pytest.mark.parametrize("command, edit, says", [
    ("predict", lambda m: m["preprocessing"].update(classes=["a"]),
     "a row scores class 2 highest, but the model knows labels for classes 0..0 only (a)"),
    ("eval", lambda m: m["preprocessing"].update(classes=["a"]),
     "is not one of the model's classes (a)"),
    ("info", lambda m: m.update(preprocessing=[]), "preprocessing is [], not an object"),
    ("predict", lambda m: m.update(preprocessing=[]), "preprocessing is [], not an object"),
    ("info", lambda m: m["history"][0].update(loss=[]), "history[0].loss is [], not a number"),
])
def test_a_hand_edited_model_file_is_one_line_exit_2(iris, tmp_path, command, edit, says):
    path = manifest_edited(iris / "iris.npz", tmp_path / "edited.npz", edit)
    argv = [command, path] if command == "info" else \
        [command, iris / "iris.mf", "--load", path, "--data", iris / "new.csv"]
    code, out, err = mfc(*argv)
    assert (code, out) == (2, "") and err.count("\n") == 1, err
    assert err.startswith("mfc: error: ") and says in err, err


def test_info_writes_a_diverged_loss_short_and_a_null_one_as_not_finite(iris, tmp_path):
    def edit(manifest):
        manifest["history"][0]["loss"] = 1e300
        manifest["history"][-1]["loss"] = None
        manifest["test"]["loss"] = 2.5e12
    code, out, err = mfc("info", manifest_edited(iris / "iris.npz", tmp_path / "d.npz", edit))
    assert (code, err) == (0, "")
    assert "30 epochs, loss 1.000e+300 → not finite; last validation loss" in out
    assert "test          loss 2.500e+12, accuracy" in out
    assert max(len(line) for line in out.splitlines()) < 200


# ---------------------------------------------------------------- the README


def readme_block(readme: str, command: str) -> list[str]:
    """The lines the README shows under `$ command`, up to the end of its block."""
    return readme.split(f"$ {command}\n", 1)[1].split("```", 1)[0].splitlines()


def _as_a_terminal_shows(*argv) -> list[str]:
    """stdout and stderr in the order they were written, times taken left out."""
    both = io.StringIO()
    with contextlib.redirect_stdout(both), contextlib.redirect_stderr(both):
        main(list(argv))
    return [_untimed(line) for line in both.getvalue().splitlines()]


def _untimed(line: str) -> str:
    """A summary line's time taken, which differs run after run, as 'T s'; a number
    printed in full (a probability) to 10 significant digits, since the last ones
    differ with the BLAS's order of sums from one CPU to another."""
    line = re.sub(r"\b\d+\.\d\d s;", "T s;", line)
    return re.sub(r"\d+\.\d{11,}(e-\d+)?", lambda m: f"{float(m.group()):.10g}", line)


def test_the_readmes_train_save_predict_evaluate_is_what_mfc_prints(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    (tmp_path / "specs").mkdir()
    for name in ("flowers.mf", "flowers.csv", "new_flowers.csv"):
        (tmp_path / "specs" / name).write_bytes((root / "specs" / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    commands = ["mfc run specs/flowers.mf --set test=0.2 --save flowers.npz",
                "mfc predict specs/flowers.mf --load flowers.npz --data "
                "specs/new_flowers.csv --proba",
                "mfc eval specs/flowers.mf --load flowers.npz --data specs/new_flowers.csv",
                "mfc info flowers.npz"]
    for command in commands:
        shown = [_untimed(line) for line in readme_block(readme, command)]
        code, out, err = mfc(*command.split()[1:])
        assert code == 0, err
        printed = (_as_a_terminal_shows(*command.split()[1:])
                   if command.startswith("mfc run") else out.splitlines())
        if "..." in shown:  # the lines before it start the output, those after end it
            cut = shown.index("...")
            head, tail = shown[:cut], shown[cut + 1:]
            printed = [_untimed(line) for line in printed]
            assert printed[:len(head)] == head and printed[len(printed) - len(tail):] == tail
        else:
            assert [_untimed(line) for line in printed] == shown, command
