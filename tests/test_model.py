"""The Python API of a trained model (mfc.Model): predict, predict_proba, evaluate,
save and restore, checked against numpy and scikit-learn."""

import warnings

import numpy as np
import pytest
from sklearn import datasets, metrics as sk

import mfc
from conftest import DIABETES_NET, IRIS_NET, softmax
from mfc.data import prepare

IRIS = IRIS_NET + """train { data = "iris"; epochs = 30; batch_size = 8; learning_rate = 0.05
        optimizer = momentum; validation = 0.2; test = 0.2 }
"""
DIABETES = DIABETES_NET + """train { data = "diabetes"; epochs = 30; batch_size = 11; learning_rate = 0.01
        test = 0.2 }
"""


@pytest.fixture(scope="module")
def iris():
    model = mfc.compile(IRIS)
    model.train()
    return model


@pytest.fixture(scope="module")
def diabetes():
    model = mfc.compile(DIABETES)
    model.train()
    return model


def test_predict_is_numpy_on_the_params_with_the_saved_preprocessing(iris):
    X = datasets.load_iris().data[::7] + 0.05  # rows no split ever held
    p = iris.params
    Xs = (X - iris.preprocessing.mean) / iris.preprocessing.std
    scores = np.tanh(Xs @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    np.testing.assert_array_equal(iris.predict(X), scores.argmax(axis=1))
    np.testing.assert_allclose(iris.predict_proba(X), softmax(scores), rtol=0, atol=1e-12)
    feed = iris.predict({"X": X})  # a feed's features are preprocessed the same way
    np.testing.assert_array_equal(feed, iris.predict(X))


@pytest.mark.parametrize("backend", ["numpy", "miniflow"])
def test_forward_without_the_targets_on_every_backend(iris, backend):
    model = mfc.compile(IRIS, backend=backend)
    values = model.forward({"X": np.ones((2, 4))})
    assert "cost" not in values and "y" not in values and values["scores"].shape == (2, 3)
    full = model.forward({"X": np.ones((2, 4)), "y": np.zeros(2)})
    np.testing.assert_array_equal(full["scores"], values["scores"])
    assert np.isfinite(full["cost"])


def test_a_regressor_predicts_its_output_values(diabetes):
    X = datasets.load_diabetes().data[:5] * 1.01
    p = diabetes.params
    Xs = (X - diabetes.preprocessing.mean) / diabetes.preprocessing.std
    expected = (1 / (1 + np.exp(-(Xs @ p["W1"] + p["b1"])))) @ p["W2"] + p["b2"]
    np.testing.assert_allclose(diabetes.predict(X), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="predict_proba needs an output scored as class "
                                         "labels .* its output 'l2' is not"):
        diabetes.predict_proba(X)


def test_evaluate_on_the_test_rows_matches_scikit_learn(iris, diabetes):
    evaluation = iris.evaluate()
    assert evaluation.rows == 30 and evaluation.task == "classification"
    test = prepare(iris.program, iris.settings, print, iris.preprocessing).test
    truth, predicted = test["y"], iris.predict({"X": test["X"] * iris.preprocessing.std
                                                + iris.preprocessing.mean})
    assert evaluation.metrics["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted))
    assert evaluation.metrics["confusion_matrix"]["rows"] == \
        sk.confusion_matrix(truth, predicted).tolist()
    regression = diabetes.evaluate()
    assert regression.task == "regression" and regression.rows == 88
    assert regression.loss == pytest.approx(regression.metrics["mse"], rel=1e-12)


def test_evaluate_on_raw_data_applies_the_preprocessing(iris):
    data = datasets.load_iris()
    evaluation = iris.evaluate(data.data, data.target)
    assert evaluation.rows == 150
    assert evaluation.metrics["accuracy"] == pytest.approx(
        sk.accuracy_score(data.target, iris.predict(data.data)))
    with pytest.raises(mfc.DataError, match="row 2: the target 7 is not one of the model's"):
        iris.evaluate(data.data[:2], [0, 7])
    with pytest.raises(ValueError, match="takes rows of 4 features"):
        iris.predict(np.ones((2, 5)))


def test_string_labels_are_predicted_as_strings(tmp_path):
    iris = datasets.load_iris()
    names = iris.target_names[iris.target]
    rows = ["a,b,c,d,species"] + [",".join(map(str, x)) + f",{n}" for x, n in zip(iris.data, names)]
    (tmp_path / "flowers.csv").write_text("\n".join(rows) + "\n")
    spec = tmp_path / "net.mf"
    spec.write_text(IRIS.replace('data = "iris"', 'data = "flowers.csv"'))
    model = mfc.load(spec)
    model.train(epochs=40)
    predicted = model.predict(iris.data)
    assert predicted.dtype.kind == "U" and set(predicted) <= set(iris.target_names)
    assert np.mean(predicted == names) > 0.9
    assert model.evaluate(iris.data, names).metrics["classes"][0]["label"] == "setosa"


def test_save_and_restore_predict_the_same(iris, tmp_path):
    iris.save(tmp_path / "m.npz")
    again = mfc.compile(IRIS.replace("epochs = 30", "epochs = 1; seed = 8"))
    again.restore(tmp_path / "m.npz")
    X = datasets.load_iris().data
    np.testing.assert_array_equal(again.predict_proba(X), iris.predict_proba(X))


def test_several_outputs_give_a_dict_and_a_hidden_layer_its_values(iris):
    model = mfc.compile(IRIS.replace("test = 0.2", "test = 0.2; output = h, scores"))
    for name in model.params:
        model.params[name] = iris.params[name]
    model.preprocessing = iris.preprocessing
    found = model.predict(np.ones((2, 4)))
    assert set(found) == {"h", "scores"} and found["h"].shape == (2, 16)
    np.testing.assert_array_equal(found["scores"], iris.predict(np.ones((2, 4))))


def test_without_an_output_predict_says_how_to_name_one():
    model = mfc.compile("x = Param(1)\ncost = Sum(x * x)\n")
    with pytest.raises(ValueError, match="no output to predict.*output = NAME"):
        model.predict(np.ones((1, 1)))


def test_evaluate_without_held_out_rows_says_so():
    model = mfc.compile(DIABETES.replace("; test = 0.2", ""))
    with pytest.raises(ValueError, match="no test rows to evaluate on"):
        model.evaluate()


def test_an_autoencoder_is_evaluated_on_its_features_alone():
    """Its loss reads X alone: the metrics are of the reconstruction against X as the
    network reads it (standardised), R² the share of the variance it explains."""
    from pathlib import Path

    model = mfc.load(Path(__file__).parent.parent / "specs" / "autoencoder.mf")
    model.train(epochs=1)
    X = datasets.load_digits().data[:40]
    found = model.evaluate(X)
    standardized = model.preprocessing.transform(X)
    reconstruction = model.predict(X)
    assert (found.task, found.output) == ("regression", "reconstruction")
    assert found.loss == pytest.approx(np.mean((reconstruction - standardized) ** 2), rel=1e-12)
    assert found.metrics["mse"] == pytest.approx(found.loss, rel=1e-12)
    assert found.metrics["r2"] == pytest.approx(
        sk.r2_score(standardized, reconstruction, multioutput="variance_weighted"), rel=1e-12)
    assert found.against == "Input 'X', standardised"
    with pytest.raises(ValueError, match="reads no targets .*Input 'X'.*evaluate on X alone"):
        model.evaluate(X, np.zeros(40))


def test_evaluating_a_loss_that_reads_targets_without_them_says_so(iris):
    with pytest.raises(ValueError, match=r"compares with the targets \(Input 'y'\): pass them"):
        iris.evaluate(datasets.load_iris().data[:5])


def test_outputs_that_overflow_are_noted_without_warnings_and_not_evaluated():
    model = mfc.compile("X, y = Input(_, 2), Input()\nW = Param(2, 1, init=ones)\n"
                        "out = Linear(X, W)\ncost = MSE(y, out)\n")
    X, notes = np.array([[1.0, 2.0], [1e308, 1e308], [3.0, 4.0]]), []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in dot"
        predicted = model.predict(X, note=notes.append)
        with pytest.raises(ValueError, match=r"^the outputs of row 2 are not finite .*"
                           "the metrics cannot be computed$"):
            model.evaluate(X, np.zeros(3))
    np.testing.assert_array_equal(predicted[:, 0], [3.0, np.inf, 7.0])
    assert notes == ["the outputs of row 2 are not finite: their features lie far outside "
                     "the training data's, and overflow"]


def test_a_binary_classifier_predicts_its_labels_and_probabilities():
    from pathlib import Path

    model = mfc.load(Path(__file__).parent.parent / "specs" / "breast_cancer.mf")
    model.train(epochs=5)
    X, y = datasets.load_breast_cancer(return_X_y=True)
    predicted = model.predict(X)
    assert set(np.unique(predicted)) <= {0, 1}
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(predicted, proba.argmax(axis=1))
    assert sk.accuracy_score(y, predicted) > 0.9
    evaluation = model.evaluate(X, y)
    assert evaluation.metrics["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
