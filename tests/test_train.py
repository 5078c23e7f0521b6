"""Tests for mfc.train: training through the Model API (`mfc run` is in test_cli.py)."""

import re
import warnings

import numpy as np
import pytest

import mfc
from mfc import settings as train_settings
from mfc.diagnostics import DataError, SettingError, SpecError
from mfc.train import Diverged, Epoch
from mfc.train.optim import OPTIMIZERS
from mfc.train.sampling import SAMPLERS

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
    """A Model of the spec (named as the data paths in it are relative to base_dir)."""
    return mfc.load(_write(text, base_dir)) if base_dir != "." else mfc.compile(text, "<test>")


def _write(text, base_dir):
    path = base_dir / "spec.mf"
    path.write_text(text)
    return path


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
    program.train(validation=0.2, on_epoch=epochs.append)
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
    assert set(OPTIMIZERS) == set(train_settings.OPTIMIZERS)
    assert set(SAMPLERS) == set(train_settings.SAMPLINGS)


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
    program.train(note=notes.append)
    assert notes == ["the targets' values -1, 1 are taken as the classes 0..1, in that order"]


def test_continuous_targets_for_cross_entropy_suggest_mse(tmp_path):
    rows = "\n".join(f"{i % 7},{i * 3}" for i in range(300))
    (tmp_path / "d.csv").write_text("a,t\n" + rows + "\n")  # targets unknown to check
    program = program_of(CLASSIFIER.format(data="d.csv", classes=3, epochs=1), tmp_path)
    with pytest.raises(DataError, match="the targets look continuous \\(300 distinct "
                                        "values\\).*use MSE"):
        program.train()


def test_continuous_targets_of_a_bundled_dataset_are_found_at_compile_time():
    with pytest.raises(SpecError) as info:
        program_of(CLASSIFIER.format(data="diabetes", classes=3, epochs=1))
    assert [d.code for d in info.value.diagnostics] == ["E404"]


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


def test_a_batch_larger_than_the_data_is_a_setting_error():
    with pytest.raises(SettingError, match="'batch_size' is 500, more than the 150 training "
                                           "examples"):
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
    losses = program.train(epochs=2, note=notes.append)
    assert losses == [pytest.approx(105.0), pytest.approx(69.0)]
    assert "goes unused: each epoch is one step" in notes[0]


def test_a_loss_not_finite_at_the_start_blames_the_spec_not_the_learning_rate():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no numpy warning leaks on the way
        with pytest.raises(Diverged, match="starting params"):
            program_of("a = Param(3, init=-2)\ncost = Sum(a ** 0.5)").train()


def test_a_diverging_step_is_named():
    with pytest.raises(Diverged, match=r"epoch \d+, step \d+ of \d+"):
        program_of("x = Param(1, init=10)\ncost = x ** 2 + 5").train(learning_rate=1e200)


@pytest.mark.parametrize("loss", ["Sigmoid(Sum(x))", "Sigmoid(x @ x)", "Tanh(Mean(x))"])
def test_a_one_element_value_trains(loss):
    """A 0-d value through an elementwise op: a numpy scalar must never reach `out=`."""
    losses = program_of(f"x = Param(3, init=ones)\ncost = {loss}\n").train(epochs=2)
    assert all(np.isfinite(losses))


# x ← x − 1.5·2x = −2x: finite for about 510 epochs, then x² overflows to inf.
RUNAWAY = "x = Param(1, init=10)\ncost = x ** 2 + 5\ntrain { learning_rate = 1.5; epochs = 600 }\n"


def test_a_run_that_diverges_late_keeps_the_params_of_its_last_finite_epoch():
    program = program_of(RUNAWAY)
    epochs = []
    with pytest.raises(Diverged) as info:
        program.train(on_epoch=epochs.append)
    err = info.value
    assert err.epoch == len(epochs) + 1 > 500 and err.kept == len(epochs)
    assert program.params["x"][0] == 10 * (-2.0) ** err.kept  # the end of that epoch


def test_a_run_that_diverges_in_its_first_epoch_is_set_back_to_its_start():
    program = program_of(REGRESSOR)
    start = {k: v.copy() for k, v in program.params.items()}
    with pytest.raises(Diverged) as info:
        program.train(learning_rate=1e6)
    assert info.value.epoch == 1 and info.value.kept == 0
    for name, value in start.items():
        np.testing.assert_array_equal(program.params[name], value)
