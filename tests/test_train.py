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
    {"standardize": "no"}, {"epochs": True}, {"epochs": 0}, {"optimizer": "adagrad"},
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


def test_a_loss_not_finite_at_the_start_from_huge_data_blames_the_data(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((20, 2)), y=np.full(20, -1e300))
    spec = tmp_path / "net.mf"
    spec.write_text("X, y = Input(), Input()\nW = Param(_, 1)\ncost = MSE(y, X @ W)\n"
                    'train { data = "d.npz"; batch_size = 4 }\n')
    with pytest.raises(Diverged, match=r"the data's y holds values as large as 1e\+300, "
                       "whose squares overflow float64; scale the data down"):
        mfc.load(spec).train()


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


# ---------------------------------------------------------------- practitioner's training

OVERFIT = """
X, y = Input(), Input()
W1, b1 = Param(_, 256, init=he), Param(256)
W2, b2 = Param(256, 1, init=xavier), Param(1)
cost = MSE(y, Linear(ReLU(Linear(X, W1, b1)), W2, b2))
train { data = "noisy.npz"; validation = 0.5; epochs = 300; batch_size = 8
        learning_rate = 0.01; optimizer = adam; patience = 10 }
"""


def overfitting_model(tmp_path, text=OVERFIT):
    """A wide net on 24 training rows of mostly noise: it memorises them, and the
    validation loss turns up after a few epochs."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 10))
    np.savez(tmp_path / "noisy.npz", X=X, y=X[:, 0] + rng.normal(size=48))
    return program_of(text, tmp_path)


def test_early_stopping_stops_before_the_budget_and_keeps_the_best_epoch(tmp_path):
    model = overfitting_model(tmp_path)
    params, history = {}, []

    def keep(epoch):
        history.append(epoch)
        params[epoch.number] = {k: v.copy() for k, v in model.params.items()}

    model.train(on_epoch=keep)
    summary = model.summary
    assert len(history) < 300 and summary.stopped_early == 10
    best = min(history, key=lambda e: e.validation_loss)
    assert summary.best == best and len(history) == best.number + 10
    for name, array in model.params.items():
        assert np.array_equal(array, params[best.number][name])
    assert "Stopped early at epoch" in summary.line()
    assert f"best epoch {best.number} (validation loss" in summary.line()


def test_without_restore_best_the_last_epochs_params_stay(tmp_path):
    model = overfitting_model(tmp_path)
    last = {}
    model.train(restore_best=False, on_epoch=lambda e: last.update(
        {k: v.copy() for k, v in model.params.items()}))
    assert model.summary.stopped_early and not model.summary.restored
    assert all(np.array_equal(model.params[k], last[k]) for k in last)


def test_restore_best_without_patience_keeps_the_best_of_the_whole_run(tmp_path):
    model = overfitting_model(tmp_path, OVERFIT.replace("; patience = 10", ""))
    history = []
    model.train(epochs=30, restore_best=True, on_epoch=history.append)
    assert model.summary.restored and not model.summary.stopped_early
    best = min(history, key=lambda e: e.validation_loss)
    assert model.summary.best == best


@pytest.mark.parametrize("settings, expected", [
    ({"lr_schedule": "step", "step_size": 2, "gamma": 0.5},
     [0.1, 0.1, 0.05, 0.05, 0.025]),
    ({"warmup_epochs": 3}, [0.025, 0.05, 0.075, 0.1, 0.1]),
    ({}, [0.1] * 5),
])
def test_each_epoch_runs_at_its_scheduled_rate(settings, expected):
    model, history = program_of(REGRESSOR), []
    model.train(epochs=5, learning_rate=0.1, on_epoch=history.append, **settings)
    assert [e.learning_rate for e in history] == pytest.approx(expected)
    assert [e["learning_rate"] for e in model.history] == pytest.approx(expected)
    shown = ", Learning rate: " in history[1].line()
    assert shown == bool(settings)


def test_the_rate_changes_what_sgd_does():
    """The warm-up's cost after one step at η/2 = 0.05: x = 10 − 0.05·2·10 = 9."""
    model = program_of(WARMUP)
    losses = model.train(epochs=2, warmup_epochs=1)
    assert losses == [pytest.approx(105.0), pytest.approx(5 + 9.0 ** 2)]


@pytest.mark.parametrize("optimizer", train_settings.OPTIMIZERS)
@pytest.mark.parametrize("sampling", train_settings.SAMPLINGS)
def test_two_calls_train_as_one_call_of_both(optimizer, sampling):
    settings = dict(optimizer=optimizer, sampling=sampling, validation=0.2, patience=20,
                    lr_schedule="step", step_size=2, gamma=0.5, clip_norm=5.0,
                    weight_decay=0.01, learning_rate=0.02)
    twice, once = (program_of(CLASSIFIER.format(data="iris", classes=3, epochs=1))
                   for _ in range(2))
    first = twice.train(epochs=3, **settings) + twice.train(epochs=2, **settings)
    assert first == once.train(epochs=5, **settings)
    assert (twice.summary.first, twice.summary.last) == (4, 5)
    assert [e["epoch"] for e in twice.history] == [1, 2, 3, 4, 5]
    for name, array in once.params.items():
        assert np.array_equal(array, twice.params[name]), name


def test_a_call_may_lower_the_rate_and_go_on():
    model = program_of(REGRESSOR)
    model.train(epochs=2)
    model.train(epochs=1, learning_rate=0.001)
    assert (model.summary.first, model.summary.last) == (3, 3)
    assert model.history[-1]["learning_rate"] == 0.001


def test_a_call_with_another_seed_starts_afresh():
    model = program_of(REGRESSOR)
    model.train(epochs=2)
    model.train(epochs=1, seed=5)
    assert (model.summary.first, model.summary.last) == (1, 1)


def test_a_call_after_ctrl_c_starts_afresh(monkeypatch):
    from mfc.train import Interrupted
    from mfc.train.loop import Trainer

    model = program_of(REGRESSOR)
    model.train(epochs=1)

    def interrupted(self, *args, **kwargs):
        raise Interrupted(2, 3, 40, [])

    monkeypatch.setattr(Trainer, "run", interrupted)
    with pytest.raises(Interrupted):
        model.train(epochs=1)
    monkeypatch.undo()
    model.train(epochs=1)
    assert (model.summary.first, model.summary.last) == (1, 1)


def test_weight_decay_leaves_the_biases_alone_by_default():
    from mfc.train.optim import weights_mask

    network = program_of(REGRESSOR).network()
    mask = weights_mask(network.theta, network.params)
    expected = np.concatenate([np.full(a.size, a.ndim >= 2) for a in network.params.values()])
    assert mask.tolist() == expected.tolist() and mask.sum() == 100 + 10


def test_weight_decay_shrinks_a_weight_the_loss_does_not_pull():
    """A 2-d param with a gradient of zero: sgd's L2 step is θ(1 − ηλ) per epoch."""
    model = program_of("W = Param(1, 1, init=ones)\nb = Param(1, init=ones)\n"
                       "cost = Sum(W * 0) + Sum(b * 0)\n")
    model.train(epochs=3, learning_rate=0.1, weight_decay=0.5)
    assert model.params["W"][0, 0] == pytest.approx(0.95 ** 3)
    assert model.params["b"][0] == 1.0
    model.train(epochs=1, learning_rate=0.1, weight_decay=0.5, decay="all")
    assert model.params["b"][0] == pytest.approx(0.95)


@pytest.mark.parametrize("overrides", [
    {"patience": 3}, {"restore_best": True}, {"lr_schedule": "plateau"},
    {"lr_schedule": "step"}, {"lr_schedule": "exponential"}, {"min_lr": 1.0}])
def test_settings_that_need_others_are_setting_errors(overrides):
    with pytest.raises(SettingError, match=f"^{next(iter(overrides))}: "):
        program_of(REGRESSOR).train(**overrides)


def test_summary_without_validation_names_the_best_training_loss():
    model = program_of(WARMUP)
    model.train(epochs=3)
    line = model.summary.line()
    assert re.fullmatch(r"Done: 3 epochs, \d+\.\d\d s; best epoch 3 \(loss 45\.960\); "
                        r"final loss 45\.960", line), line


# ---------------------------------------------------------------- Dropout

DROPOUT = """
X, y = Input(), Input()
W1, b1 = Param(_, 16, init=xavier), Param(16)
W2, b2 = Param(16, 3, init=xavier), Param(3)
h = Dropout(Tanh(Linear(X, W1, b1)), {rate})
scores = Linear(h, W2, b2)
cost = CrossEntropy(y, scores)
train {{ data = "iris"; epochs = 3; batch_size = 8; learning_rate = 0.05; validation = 0.2 }}
"""


@pytest.mark.parametrize("backend", ["miniflow", "numpy"])
def test_dropout_is_active_only_while_training_and_seeded(backend):
    def run(rate, seed=0):
        model = mfc.compile(DROPOUT.format(rate=rate), backend=backend)
        epochs = []
        model.train(seed=seed, on_epoch=epochs.append)
        return model, epochs

    (dropped, epochs), (_, plain_epochs) = run(0.5), run(0.0)
    assert [e.loss for e in epochs] != [e.loss for e in plain_epochs]  # training drops
    assert [e.loss for e in run(0.5)[1]] == [e.loss for e in epochs]  # same seed, same run
    assert [e.loss for e in run(0.5, seed=1)[1]] != [e.loss for e in epochs]
    X = np.random.default_rng(0).standard_normal((5, 4))
    values = dropped.forward({"X": X, "y": np.zeros(5, int)})
    np.testing.assert_array_equal(values["h"], np.tanh(X @ dropped.params["W1"]
                                                       + dropped.params["b1"]))  # predict: identity
    again = dropped.forward({"X": X, "y": np.zeros(5, int)})
    np.testing.assert_array_equal(again["cost"], values["cost"])


def test_validation_sees_no_dropout():
    model = mfc.compile(DROPOUT.format(rate=0.9))
    epochs = []
    model.train(epochs=1, on_epoch=epochs.append)
    loss = model.evaluate(part="validation").loss  # twice the same: no noise drawn
    assert loss == epochs[0].validation_loss == model.evaluate(part="validation").loss


# ---------------------------------------------------------------- checkpoints and resume

TUNED = dict(learning_rate=0.02, lr_schedule="cosine", warmup_epochs=2, patience=4,
             clip_norm=1.0, weight_decay=0.01)


def iris_model(dropout=False):
    text = CLASSIFIER.format(data="iris", classes=3, epochs=10)
    if dropout:
        text = text.replace("Tanh(Linear(X, W1, b1))", "Dropout(Tanh(Linear(X, W1, b1)), 0.2)")
    return program_of(text.replace("optimizer = momentum", "optimizer = momentum; "
                                   "validation = 0.2"))


@pytest.mark.parametrize("optimizer", train_settings.OPTIMIZERS)
@pytest.mark.parametrize("sampling", train_settings.SAMPLINGS)
def test_a_checkpoint_resumes_bit_for_bit(tmp_path, optimizer, sampling):
    """Saved after epoch 5 of 10, then resumed for the 5 others: the params, the
    history and the summary of one run of 10."""
    settings = dict(optimizer=optimizer, sampling=sampling, **TUNED)
    whole = iris_model(dropout=True)
    whole.train(**settings)
    first = iris_model(dropout=True)
    first.train(on_epoch=lambda e: e.number == 5 and first.save(tmp_path / "c.npz"),
                **settings)
    resumed = iris_model(dropout=True)
    resumed.restore(tmp_path / "c.npz", resume=True)
    assert resumed.epochs_trained == 5
    resumed.train(until=10, **settings)
    for name, array in whole.params.items():
        assert np.array_equal(array, resumed.params[name]), name
    untimed = [[{k: v for k, v in e.items() if k != "seconds"} for e in m.history]
               for m in (whole, resumed)]
    assert untimed[0] == untimed[1] and len(untimed[0]) == 10
    assert whole.summary.best.number == resumed.summary.best.number


def test_a_saved_run_goes_on_as_one_longer_run(tmp_path):
    """5 epochs, saved; resumed up to 10: one run of 10 (a schedule that does not
    depend on the run's length, early stopping's state and best params included)."""
    settings = dict(optimizer="adam", learning_rate=0.05, lr_schedule="step", step_size=2,
                    gamma=0.7, patience=3, min_delta=0.001)
    whole, half, resumed = iris_model(), iris_model(), iris_model()
    whole.train(**settings)
    half.train(**{**settings, "epochs": 5})
    half.save(tmp_path / "c.npz")
    resumed.restore(tmp_path / "c.npz", resume=True)
    resumed.train(until=10, **settings)
    for name, array in whole.params.items():
        assert np.array_equal(array, resumed.params[name]), name


def test_ctrl_c_mid_epoch_leaves_the_last_whole_epoch_to_resume_from(tmp_path):
    import signal

    from mfc.train import Interrupted

    whole, stopped, resumed = iris_model(), iris_model(), iris_model()
    whole.train(**TUNED)

    def ctrl_c_in_epoch_4(epoch, step, steps, loss):
        if (epoch, step) == (4, 2):
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(Interrupted):
        stopped.train(on_step=ctrl_c_in_epoch_4, **TUNED)
    stopped.save(tmp_path / "c.npz")
    resumed.restore(tmp_path / "c.npz", resume=True)
    assert resumed.epochs_trained == 3
    resumed.train(until=10, **TUNED)
    for name, array in whole.params.items():
        assert np.array_equal(array, resumed.params[name]), name


def test_a_diverged_run_leaves_its_last_finite_epoch_to_resume_from(tmp_path):
    model = program_of(RUNAWAY)
    with pytest.raises(Diverged) as info:
        model.train()
    model.save(tmp_path / "c.npz")
    resumed = program_of(RUNAWAY)
    resumed.restore(tmp_path / "c.npz", resume=True)
    assert resumed.epochs_trained == info.value.kept
    assert resumed.params["x"][0] == 10 * (-2.0) ** info.value.kept


def test_resuming_needs_a_training_state_and_the_same_batches(tmp_path):
    from mfc.modelfile import ParamsError, save_params

    model = iris_model()
    save_params(tmp_path / "old.npz", model.params)
    with pytest.raises(ParamsError, match="holds no training state"):
        iris_model().restore(tmp_path / "old.npz", resume=True)
    model.train(epochs=2)
    model.save(tmp_path / "c.npz")
    other = iris_model()
    other.restore(tmp_path / "c.npz", resume=True)
    with pytest.raises(ParamsError, match="batch_size = 16; this run has 8"):
        other.train(until=4, batch_size=8)
