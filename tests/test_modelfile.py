"""Tests for mfc.modelfile: saved params, written atomically, read without pickles."""

import io
import json
import os
import re
import zipfile

import numpy as np
import pytest

import mfc
from conftest import BAD_PARAMS_FILES
from mfc import modelfile
from mfc.modelfile import ParamsError, load_params, save_params

WARMUP = "x = Param(1, init=10)\ncost = x ** 2 + 5\ntrain { learning_rate = 0.1; epochs = 60 }\n"

REGRESSOR = """
X, y = Input(), Input()
W1, b1 = Param(_, 10), Param(10)
W2, b2 = Param(10, 1), Param(1)
cost = MSE(y, Linear(Sigmoid(Linear(X, W1, b1)), W2, b2))
train { data = "diabetes"; epochs = 20; batch_size = 11; learning_rate = 0.01 }
"""


def program_of(text):
    return mfc.compile(text, "<test>")


def test_save_and_load_round_trip(tmp_path):
    program = program_of(REGRESSOR)
    program.train(epochs=2)
    save_params(tmp_path / "p.npz", program.params)
    fresh = program_of(REGRESSOR.replace('data = "diabetes";', 'data = "diabetes"; seed = 9;'))
    load_params(tmp_path / "p.npz", fresh.params)
    for name in program.params:
        np.testing.assert_array_equal(fresh.params[name], program.params[name])
    with np.load(tmp_path / "p.npz", allow_pickle=False) as archive:
        assert archive.files == list(program.params)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    path.write_bytes(b"the previous file")

    def fail_halfway(file, params):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(modelfile, "_write_npz", fail_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_params(path, {"a": np.ones(2)})
    assert path.read_bytes() == b"the previous file"
    assert os.listdir(tmp_path) == ["p.npz"]  # no temporary file left behind


def test_params_named_like_savez_keywords_survive(tmp_path):
    save_params(tmp_path / "p.npz", {"file": np.ones(2), "allow_pickle": np.zeros(1)})
    with np.load(tmp_path / "p.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["allow_pickle", "file"]


@pytest.mark.parametrize("arrays,message", [
    ({"W1": np.zeros((10, 10))}, "it lacks b1, W2, b2"),
    ({"W1": np.zeros((10, 10)), "b1": np.zeros(10), "W2": np.zeros((10, 1)),
      "b2": np.zeros(1), "W3": np.zeros(1)}, "the spec has no W3"),
    ({"W1": np.zeros((4, 10)), "b1": np.zeros(10), "W2": np.zeros((10, 1)),
      "b2": np.zeros(1)}, r"W1 has shape \(4, 10\) there, but \(10, 10\) in the spec "
                          r"\(declared at line 3\)"),
    ({"W1": np.full((10, 10), np.nan), "b1": np.zeros(10), "W2": np.zeros((10, 1)),
      "b2": np.zeros(1)}, "finite"),
])
def test_mismatched_params_file_is_a_clear_error(tmp_path, arrays, message):
    np.savez(tmp_path / "p.npz", **arrays)
    with pytest.raises(ParamsError, match=message):
        load_params(tmp_path / "p.npz", program_of(REGRESSOR).params)


@pytest.mark.parametrize("content", [b"not a zip", None])
def test_unreadable_params_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "p.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ParamsError):
        load_params(path, program_of(REGRESSOR).params)


@pytest.mark.parametrize("name,write,message", BAD_PARAMS_FILES)
def test_a_file_that_is_not_an_npz_of_arrays_is_a_params_error(tmp_path, name, write,
                                                               message):
    path = tmp_path / name
    write(path)
    with pytest.raises(ParamsError, match=message) as err:
        load_params(path, program_of(WARMUP).params)
    assert "pickle" not in str(err.value)


def test_arrays_of_objects_are_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(np.lib.format, "read_array", None)  # any read would fail
    np.savez(tmp_path / "p.npz", x=np.array([object()], dtype=object))
    with pytest.raises(ParamsError, match="x holds object values, not real numbers"):
        load_params(tmp_path / "p.npz", program_of(WARMUP).params)


def test_a_shape_is_checked_before_its_array_is_read(tmp_path):
    header = io.BytesIO()  # claims 2.4 TB, holds nothing: reading it would fail
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**11, 3)})
    with zipfile.ZipFile(tmp_path / "p.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue())
    with pytest.raises(ParamsError, match=r"x has shape \(100000000000, 3\) there, but "
                                          r"\(1,\) in the spec"):
        load_params(tmp_path / "p.npz", program_of(WARMUP).params)


@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir])
def test_params_that_are_not_a_regular_file_are_refused_unread(tmp_path, make):
    make(tmp_path / "p.npz")  # reading a FIFO would wait for a writer forever
    with pytest.raises(ParamsError, match="p.npz is not a regular file"):
        load_params(tmp_path / "p.npz", program_of(WARMUP).params)


def test_a_params_path_the_system_refuses_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match="File name too long"):
        load_params(tmp_path / ("p" * 300 + ".npz"), program_of(WARMUP).params)


# ---------------------------------------------------------------- model files


CLASSIFIER = """
X, y = Input(), Input()
W1, b1 = Param(_, 8, init=xavier), Param(8)
W2, b2 = Param(8, 3), Param(3)
scores = Linear(Tanh(Linear(X, W1, b1)), W2, b2)
cost = CrossEntropy(y, scores)
train { data = "iris"; epochs = 2; batch_size = 8; learning_rate = 0.1; test = 0.2 }
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    model = program_of(CLASSIFIER)
    model.train()
    model.save(path, test=model.evaluate())
    return path, model


def test_a_model_file_holds_params_preprocessing_and_a_manifest(saved):
    path, model = saved
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert names[:7] == ["manifest.json", "W1.npy", "b1.npy", "W2.npy", "b2.npy",
                         "preprocessing/mean.npy", "preprocessing/std.npy"]
    assert all(n.startswith("training/") for n in names[7:])  # what --resume goes on from
    with np.load(path, allow_pickle=False) as archive:  # numpy reads it, no pickles
        np.testing.assert_array_equal(archive["W1"], model.params["W1"])
        np.testing.assert_array_equal(archive["preprocessing/mean"], model.preprocessing.mean)
        manifest = json.loads(archive["manifest.json"])
    assert (manifest["format"], manifest["format_version"]) == ("mfc-model", 1)
    assert manifest["spec"]["text"] == CLASSIFIER
    assert manifest["spec"]["fingerprint"] == model.program.fingerprint
    assert manifest["mfc_version"] == mfc.__version__
    assert manifest["numpy_version"] == np.__version__
    assert manifest["seed"] == 0 and manifest["settings"]["test"] == 0.2
    assert manifest["data"] == {"source": "iris", "target_column": "target", "rows": 150,
                                "features": 4, "classes": 3, "train_rows": 120,
                                "validation_rows": 0, "test_rows": 30}
    assert manifest["preprocessing"]["classes"] == [0, 1, 2]
    assert manifest["preprocessing"]["feature_names"][0] == "sepal length (cm)"
    assert [e["epoch"] for e in manifest["history"]] == [1, 2]
    assert manifest["params"] == {"W1": [4, 8], "b1": [8], "W2": [8, 3], "b2": [3]}
    assert manifest["test"]["rows"] == 30 and 0 <= manifest["test"]["accuracy"] <= 1


def test_saving_twice_writes_the_same_bytes(saved, tmp_path):
    path, model = saved
    model.save(tmp_path / "again.npz", test=model.evaluate())
    assert (tmp_path / "again.npz").read_bytes() == path.read_bytes()


def test_a_model_file_round_trips_params_preprocessing_and_history(saved):
    path, model = saved
    fresh = program_of(CLASSIFIER.replace("epochs = 2", "epochs = 5; seed = 4"))
    fresh.restore(path)
    for name in model.params:
        np.testing.assert_array_equal(fresh.params[name], model.params[name])
    np.testing.assert_array_equal(fresh.preprocessing.std, model.preprocessing.std)
    assert fresh.preprocessing.classes == (0, 1, 2) and len(fresh.history) == 2


@pytest.mark.parametrize("change, says", [
    (("Param(_, 8, init=xavier), Param(8)\nW2, b2 = Param(8, 3)",
      "Param(_, 9), Param(9)\nW2, b2 = Param(9, 3)"),
     r"W1 has shape \(4, 8\) in the file, \(4, 9\) in the spec; b1 has shape \(8,\) "
     r"in the file, \(9,\) in the spec; W2 .*; and 2 more differences$"),
    (("Tanh(", "ReLU("), r"'scores.linear1.tanh1' is Tanh in the file|the spec has no node"),
    (('data = "iris";', 'data = "wine";'), r"W1 has shape \(4, 8\) in the file, \(13, 8\)"),
    (("cost = CrossEntropy(y, scores)", "cost = CrossEntropy(y, scores)\nz = Param(1)"),
     "the file has no node 'z' \\(Param\\)"),
])
def test_a_file_from_another_graph_names_what_differs_in_one_line(saved, change, says):
    path, _ = saved
    other = program_of(CLASSIFIER.replace(*change))
    with pytest.raises(ParamsError, match=says) as err:
        other.restore(path)
    assert "\n" not in str(err.value) and "was saved from another graph than" in str(err.value)


def test_comments_layout_init_and_settings_do_not_change_the_fingerprint(saved):
    path, model = saved
    other = program_of("# a comment\n" + CLASSIFIER.replace("init=xavier", "init=he")
                       .replace("epochs = 2", "epochs = 9; optimizer = adam"))
    assert other.program.fingerprint == model.program.fingerprint
    other.restore(path)


def test_an_old_params_only_file_loads_with_a_note(tmp_path):
    model = program_of(CLASSIFIER)
    save_params(tmp_path / "old.npz", model.params)
    fresh, notes = program_of(CLASSIFIER.replace("epochs = 2", "seed = 5")), []
    fresh.restore(tmp_path / "old.npz", note=notes.append)
    np.testing.assert_array_equal(fresh.params["W2"], model.params["W2"])
    assert fresh.preprocessing is None
    assert len(notes) == 1 and "carries no preprocessing" in notes[0]


def edited(path, tmp_path, manifest=None, drop=()):
    """A copy of the model file at `path` with another manifest or some members left out."""
    out = tmp_path / "edited.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name in drop:
                continue
            data = source.read(name)
            if name == "manifest.json" and manifest is not None:
                data = manifest(json.loads(data))
            target.writestr(name, data)
    return out


@pytest.mark.parametrize("manifest, drop, message", [
    (lambda m: json.dumps({**m, "format_version": 2}).encode(), (),
     "model file format 2, from a newer mfc"),
    (lambda m: b"{not json", (), "its manifest.json cannot be read"),
    (lambda m: json.dumps([1]).encode(), (), "not an mfc model's"),
    (None, ("preprocessing/std.npy",), "preprocessing/std.npy is missing"),
    (lambda m: json.dumps({**m, "preprocessing": {**m["preprocessing"], "features": 5,
                                                  "feature_names": None}}
                          ).encode(), (), r"preprocessing/mean.npy has shape \(4,\)"),
])
def test_a_damaged_or_newer_model_file_is_one_params_error(saved, tmp_path, manifest,
                                                          drop, message):
    path = edited(saved[0], tmp_path, manifest, drop)
    with pytest.raises(ParamsError, match=message):
        modelfile.read(path, program_of(CLASSIFIER).program)


def _set(key, value):
    """A manifest edit: `key` (a path of keys and indices) set to `value`."""
    def edit(manifest):
        *parents, last = key
        target = manifest
        for part in parents:
            target = target[part]
        target[last] = value
        return json.dumps(manifest).encode()
    return edit


# (what is edited, what the one line says): each reader would have met a value of
# another kind (an AttributeError, an IndexError, a TypeError: exit 70)
DAMAGED = [
    (_set(["preprocessing"], []), "preprocessing is [], not an object"),
    (_set(["preprocessing", "classes"], ["a", "a", "b"]),
     'preprocessing.classes is ["a", "a", "b"], not distinct words or whole numbers'),
    (_set(["preprocessing", "classes"], [1.5]), "preprocessing.classes[0] is 1.5, not a word"),
    (_set(["preprocessing", "classes"], []), "preprocessing.classes is [], not distinct"),
    (_set(["preprocessing", "features"], "4"), 'preprocessing.features is "4", not a whole number'),
    (_set(["preprocessing", "feature_names"], ["a"]),
     "preprocessing.feature_names has 1 names for 4 features"),
    (_set(["data"], []), "data is [], not an object"),
    (_set(["data", "rows"], -1), "data.rows is -1, not a whole number"),
    (_set(["history", 0], [1]), "history[0] is [1], not an object"),
    (_set(["history", 0, "loss"], "low"), 'history[0].loss is "low", not a number'),
    (_set(["test", "accuracy"], {}), "test.accuracy is {}, not a number"),
    (_set(["spec", "fingerprint"], 3), "spec.fingerprint is 3, not text"),
    (_set(["params", "W1"], "x"), 'params.W1 is "x", not a list'),
    (_set(["outputs"], "scores"), 'outputs is "scores", not a list'),
]


@pytest.mark.parametrize("manifest, message", DAMAGED)
def test_a_manifest_of_the_wrong_structure_is_one_params_error_for_every_reader(
        saved, tmp_path, manifest, message):
    path = edited(saved[0], tmp_path, manifest)
    for read in (lambda: modelfile.read(path, program_of(CLASSIFIER).program),
                 lambda: modelfile.describe(path), lambda: modelfile.read_training(path, 1)):
        with pytest.raises(ParamsError, match=re.escape(
                f"edited.npz: its manifest.json is damaged: {message}")):
            read()


def test_what_a_writer_may_leave_null_is_no_damage(saved, tmp_path):
    for key in (["data"], ["preprocessing"], ["history", 0, "loss"], ["test", "r2"],
                ["preprocessing", "classes"], ["seed"]):
        modelfile.describe(edited(saved[0], tmp_path, _set(key, None)))


@pytest.mark.parametrize("key, value, message", [
    (["preprocessing", "classes"], ["a", "b", "c", "d"],
     "its preprocessing names 4 classes, but <test> scores 3"),
    (["preprocessing", "features"], 5, "its preprocessing takes 5 features, but Input 'X' "
     "of <test> takes 4"),
])
def test_preprocessing_that_does_not_fit_the_spec_is_one_params_error(
        saved, tmp_path, key, value, message):
    edit = _set(key, value) if key[-1] != "features" else lambda m: json.dumps(
        {**m, "preprocessing": {**m["preprocessing"], "features": 5, "feature_names": None,
                                "standardized": False}}).encode()
    path = edited(saved[0], tmp_path, edit)
    with pytest.raises(ParamsError, match=f"edited.npz: {message}$"):
        modelfile.read(path, program_of(CLASSIFIER).program)


def test_describe_reads_the_manifest_and_headers_only(saved, monkeypatch):
    monkeypatch.setattr(np.lib.format, "read_array", None)  # any read would fail
    manifest, params = modelfile.describe(saved[0])
    assert manifest["loss"] == "cost" and params["W1"][0] == (4, 8)
