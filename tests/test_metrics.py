"""Tests for mfc.metrics: each figure against scikit-learn's, and how they read."""

import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from conftest import assert_scikit_learns_classification
from mfc.metrics import Evaluation, classification, regression


def test_regression_metrics_are_scikit_learns():
    rng = np.random.default_rng(0)
    y, predicted = rng.normal(size=50), rng.normal(size=(50, 1))
    found = regression(y, predicted)
    assert found["mse"] == pytest.approx(sk.mean_squared_error(y, predicted[:, 0]), rel=1e-12)
    assert found["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(y, predicted[:, 0])))
    assert found["mae"] == pytest.approx(sk.mean_absolute_error(y, predicted[:, 0]), rel=1e-12)
    assert found["r2"] == pytest.approx(sk.r2_score(y, predicted[:, 0]), rel=1e-12)


@pytest.mark.parametrize("labels", [["setosa", "versicolor", "virginica"], [3, 7, 9, 11]])
def test_classification_metrics_are_scikit_learns(labels):
    rng = np.random.default_rng(1)
    truth = np.array(labels)[rng.integers(0, len(labels), 60)]
    predicted = np.where(rng.random(60) < 0.7, truth, np.array(labels)[rng.integers(0, len(labels), 60)])
    found = classification(truth, predicted)
    assert_scikit_learns_classification(found, list(truth), list(predicted))


def test_a_ratio_of_nothing_is_undefined_and_left_out_of_the_average_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = classification(np.array(["a", "b"]), np.array(["a", "a"]))
    assert math.isnan(found["classes"][1]["precision"])  # b is never predicted
    assert found["classes"][1]["recall"] == 0.0
    assert found["macro"]["precision"] == 0.5


def test_every_class_given_is_reported_even_one_no_row_has():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warns of a single label without them
        found = classification(np.array(["a", "a"]), np.array(["a", "a"]), ["a", "b", "c"])
    assert [c["support"] for c in found["classes"]] == [2, 0, 0]
    assert all(math.isnan(c["recall"]) for c in found["classes"][1:])
    assert found["confusion_matrix"] == {"labels": ["a", "b", "c"],
                                         "rows": [[2, 0, 0], [0, 0, 0], [0, 0, 0]]}
    assert found["macro"]["recall"] == 1.0 and found["macro"]["support"] == 2
    table = Evaluation(2, 0.1, "cost", "s", "classification", found).table().splitlines()
    assert table[5].split() == ["b", "undefined", "undefined", "undefined", "0"]
    assert json.loads(json.dumps(Evaluation(2, 0.1, "cost", "s", "classification", found)
                                 .to_dict(), allow_nan=False))["classes"][1]["f1"] is None


def test_the_table_reads_as_a_report():
    evaluation = Evaluation(3, 0.25, "cost", "scores", "classification",
                            classification(np.array(["a", "b", "b"]), np.array(["a", "b", "a"])))
    assert evaluation.table().splitlines() == [
        "loss (cost): 0.250 on 3 rows",
        "accuracy: 0.667",
        "",
        "class      precision  recall     f1  support",
        "a              0.500   1.000  0.667        1",
        "b              1.000   0.500  0.667        2",
        "macro avg      0.750   0.750  0.667        3",
        "",
        "confusion matrix:",
        "true \\ predicted  a  b",
        "a                 1  0",
        "b                 1  1",
    ]


def test_json_has_no_nan():
    evaluation = Evaluation(1, 2.0, "cost", "l2", "regression", regression([1.0], [[2.0]]))
    found = json.loads(json.dumps(evaluation.to_dict(), allow_nan=False))
    assert found["r2"] is None and found["mse"] == 1.0
    assert "R²    undefined" in evaluation.table()


def test_errors_past_float64_are_inf_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = regression([1e308, -1e308, 0.0], [[0.0], [0.0], [1.0]])
    assert found["mse"] == found["rmse"] == found["mae"] == math.inf
    table = Evaluation(3, math.inf, "cost", "l2", "regression", found).table().splitlines()
    assert table[:2] == ["loss (cost): inf on 3 rows", "MSE   inf"]


def test_large_figures_read_short():
    evaluation = Evaluation(3, 1.5e300, "cost", "l2", "regression", regression([1e150], [[0.0]]))
    assert evaluation.table().splitlines()[:2] == ["loss (cost): 1.500e+300 on 3 rows",
                                                   "MSE   1.000e+300"]
