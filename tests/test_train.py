"""Tests for mfc.train: training and saved params (`mfc run` is in test_cli.py)."""

import io
import os
import pickle
import re
import warnings
import zipfile

import numpy as np
import pytest

from mfc import settings as train_settings
from mfc import train as training
from mfc.lang.compiler import compile_text
from mfc.diagnostics import DataError, SpecError
from mfc.train import Diverged, Epoch, ParamsError, load_params, save_params

EPOCH_LINE = re.compile(r"^Epoch: (\d+), Loss: (-?\d+\.\d{3})(, .*)?$")

WARMUP = "x = Param(1, init=10)\ncost = x ** 2 + 5\ntrain { learning_rate = 0.1; epochs = 60 }\n"

CLASSIFIER = """
X, y = Input(), Input()
W1, b1 = Param(_, 16, init=xavier), Param(16)
W2, b2 = Param(16, {classes}, init=xavier), Param({classes})
cost = CrossEntropy(y, Linear(Tanh(Linear(X, W1, b1)), W2, b2))
train {{ data = "{data}"; epochs = {epochs}; batch_size = 16; learning_rate = 0.05
        optimizer = momentum }}
"""

REGRESSOR = """
X, y = Input(), Input()
W1, b1 = Param(_, 10), Param(10)
W2, b2 = Param(10, 1), Param(1)
cost = MSE(y, Linear(Sigmoid(Linear(X, W1, b1)), W2, b2))
train { data = "diabetes"; epochs = 20; batch_size = 11; learning_rate = 0.01 }
"""


def program_of(text, base_dir="."):
    return compile_text(text, "<test>", base_dir=base_dir)


# ---------------------------------------------------------------- training


def test_warmup_converges_to_five():
    program = program_of(WARMUP)
    losses = program.train()
    assert losses[0] == pytest.approx(105.0)  # the loss before the first update
    assert losses[1] == pytest.approx(5 + 8.0 ** 2)  # x = 10 − 0.1·2·10 = 8
    assert losses[-1] == pytest.approx(5.0, abs=1e-6)
    assert program.params["x"][0] == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("data,classes,epochs", [
    ("iris", 3, 15), ("wine", 3, 15), ("breast_cancer", 2, 8), ("digits", 10, 3)])
def test_classifiers_learn_each_bundled_dataset(data, classes, epochs):
    program = program_of(CLASSIFIER.format(data=data, classes=classes, epochs=epochs))
    losses = program.train()
    assert losses[-1] < 0.3 * losses[0], losses


def test_regressor_learns_diabetes():
    losses = program_of(REGRESSOR).train()
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("sampling", ["shuffle", "resample"])
def test_optimizers_and_samplings_lower_the_loss(optimizer, sampling):
    program = program_of(CLASSIFIER.format(data="iris", classes=3, epochs=6))
    losses = program.train(optimizer=optimizer, sampling=sampling, learning_rate=0.02)
    assert losses[-1] < 0.6 * losses[0], losses


def test_same_seed_same_losses():
    runs = [program_of(REGRESSOR).train(epochs=3, seed=s) for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_float32_trains():
    losses = program_of(REGRESSOR).train(epochs=5, dtype="float32")
    assert losses[-1] < losses[0]


def test_training_starts_from_params_set_by_hand():
    program = program_of(WARMUP)
    program.params["x"] = [2.0]
    assert program.train(epochs=1) == [pytest.approx(9.0)]


def test_validation_reports_loss_and_accuracy():
    program = program_of(CLASSIFIER.format(data="iris", classes=3, epochs=3))
    epochs = []
    training.train(program, validation=0.2, on_epoch=epochs.append)
    assert len(epochs) == 3 and all(e.validation_loss is not None for e in epochs)
    assert 0.0 <= epochs[-1].accuracy <= 1.0
    assert ", Validation loss: " in epochs[-1].line()
    assert EPOCH_LINE.match(epochs[-1].line())


def test_diverging_loss_stops_with_epoch_and_step():
    program = program_of(REGRESSOR)
    with pytest.raises(Diverged, match=r"epoch \d+, step \d+ of 40; try a smaller "
                                        r"learning rate than 1e\+06"):
        program.train(learning_rate=1e6)


def test_a_diverging_run_stops_without_numpy_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail the test
        for rate in (1e6, 1e150):
            with pytest.raises(Diverged):
                program_of(REGRESSOR).train(learning_rate=rate)


def test_every_optimizer_and_sampling_of_the_settings_is_implemented():
    assert set(training.OPTIMIZERS) == set(train_settings.OPTIMIZERS)
    assert set(training.SAMPLERS) == set(train_settings.SAMPLINGS)


@pytest.mark.parametrize("key,value", [
    ("loss", "b1"), ("loss", "nonexistent"), ("features", 5), ("features", "y"),
    ("targets", "X")])
def test_settings_fixed_at_compile_time_cannot_be_overridden(key, value):
    program = program_of(REGRESSOR)
    before = {name: array.copy() for name, array in program.params.items()}
    with pytest.raises(ValueError, match=f"^{key}: fixed when the spec is compiled"):
        program.train(**{key: value})
    for name, array in program.params.items():
        np.testing.assert_array_equal(array, before[name])  # nothing was trained


@pytest.mark.parametrize("overrides", [
    {"standardize": "no"}, {"epochs": True}, {"epochs": 0}, {"optimizer": "rmsprop"},
    {"no_such_setting": 1}])
def test_bad_overrides_are_value_errors(overrides):
    with pytest.raises(ValueError):
        program_of(REGRESSOR).train(**overrides)


def test_data_as_wide_as_the_compiled_spec_may_replace_the_blocks(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(40, 10)), y=rng.normal(size=40))
    assert len(program_of(REGRESSOR).train(data=str(tmp_path / "d.npz"), epochs=2)) == 2


def test_data_of_another_width_is_a_data_error():
    with pytest.raises(DataError, match="dim 1 must be 10, not 4"):
        program_of(REGRESSOR).train(data="iris")


def test_an_input_nothing_feeds_is_E407():
    program = program_of("X = Input(_, 2)\nW = Param(2, 1)\ncost = Sum(X @ W)\n")
    with pytest.raises(SpecError) as caught:
        program.train()
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("E407", 1, 1)


def test_an_input_beside_the_data_is_E407():
    text = REGRESSOR.replace("X, y = Input(), Input()", "X, y = Input(), Input()\nZ = Input(_, 1)")
    text = text.replace("cost = MSE(y,", "cost = Sum(Z) + MSE(y,")
    with pytest.raises(SpecError) as caught:
        program_of(text).train()
    assert [(d.code, d.line) for d in caught.value.diagnostics] == [("E407", 3)]


def test_other_class_labels_are_mapped_with_a_note(tmp_path):
    rows = ["a,b,label"] + [f"{i % 3},{i % 5},{-1 if i % 2 else 1}" for i in range(40)]
    (tmp_path / "pm.csv").write_text("\n".join(rows) + "\n")
    program = program_of(CLASSIFIER.format(data="pm.csv", classes=2, epochs=2), tmp_path)
    notes = []
    training.train(program, note=notes.append)
    assert notes == ["the targets' values -1, 1 are taken as the classes 0..1, in that order"]


def test_continuous_targets_for_cross_entropy_suggest_mse():
    program = program_of(CLASSIFIER.format(data="diabetes", classes=3, epochs=1))
    with pytest.raises(DataError, match="the targets look continuous \\(214 distinct "
                                        "values\\).*use MSE"):
        program.train()


def test_too_many_classes_for_the_logits_is_found_at_compile_time():
    with pytest.raises(SpecError) as info:
        program_of(CLASSIFIER.format(data="digits", classes=3, epochs=1))
    assert [d.code for d in info.value.diagnostics] == ["E200"]


def test_too_many_classes_for_the_logits_is_a_data_error_when_only_the_run_knows(tmp_path):
    rows = "\n".join(f"{i % 7},{i % 5},{i % 10}" for i in range(40))
    (tmp_path / "d.csv").write_text("a,b,label\n" + rows + "\n")  # classes unknown to check
    program = program_of(CLASSIFIER.format(data="d.csv", classes=3, epochs=1), tmp_path)
    with pytest.raises(DataError, match="10 classes, but the logits give 3"):
        program.train()


def test_a_batch_larger_than_the_data_is_a_data_error():
    with pytest.raises(DataError, match="larger than the 150 training rows"):
        program_of(CLASSIFIER.format(data="iris", classes=3, epochs=1)).train(batch_size=500)


def test_epoch_line_is_the_lessons_format():
    assert Epoch(3, 137.12345).line() == "Epoch: 3, Loss: 137.123"


def test_epoch_line_writes_huge_losses_with_an_exponent():
    assert Epoch(1, 999_999_999.0).line() == "Epoch: 1, Loss: 999999999.000"
    assert Epoch(1, 1.2345e300, -1e9).line() == ("Epoch: 1, Loss: 1.234e+300, "
                                                 "Validation loss: -1.000e+09")


def test_data_the_loss_does_not_read_is_noted_and_unused():
    program = program_of("X = Input()\n" + WARMUP.replace("train {", 'train { data = "iris";'))
    notes = []
    losses = training.train(program, epochs=2, note=notes.append)
    assert losses == [pytest.approx(105.0), pytest.approx(69.0)]
    assert "goes unused: each epoch is one step" in notes[0]


# ---------------------------------------------------------------- saved params


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

    monkeypatch.setattr(training, "_write_npz", fail_halfway)
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


def _one_array(path):
    with open(path, "wb") as file:  # np.save would add .npy to the name
        np.save(file, np.ones(3))


def _truncated_npz(path):
    save_params(path, {"x": np.ones(100)})
    path.write_bytes(path.read_bytes()[:200])


def _truncated_after_the_header(path):
    """An archive whose x.npy has the header of a (1,) array and no data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (1,)})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue())


# (file name, how to write it, what the error says): none of them is an .npz of arrays,
# and no message suggests unpickling
BAD_PARAMS_FILES = [
    ("p.npy", _one_array, "holds one array"),
    ("p.npz", _one_array, "holds one array"),  # a .npy renamed .npz
    ("p.npz", lambda path: path.write_text("x\n1.0\n"), "is not an .npz archive of params"),
    ("p.npz", _truncated_npz, "is not an .npz archive of params"),
    ("p.npz", lambda path: path.write_bytes(pickle.dumps({"x": [1.0]})),
     "is not an .npz archive of params"),
    ("p.npz", _truncated_after_the_header, "is not a readable .npz archive of params: x:"),
]


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




def test_a_loss_not_finite_at_the_start_blames_the_spec_not_the_learning_rate():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no numpy warning leaks on the way
        with pytest.raises(Diverged, match="starting params"):
            program_of("a = Param(3, init=-2)\ncost = Sum(a ** 0.5)").train()


def test_a_diverging_step_is_named():
    with pytest.raises(Diverged, match=r"epoch \d+, step \d+ of \d+"):
        program_of("x = Param(1, init=10)\ncost = x ** 2 + 5").train(learning_rate=1e200)
