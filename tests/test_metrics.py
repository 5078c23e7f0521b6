"""Tests for mfc.metrics: each figure against scikit-learn's, and how they read."""

import json
import math

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


def test_a_class_never_predicted_has_zero_precision_without_warnings():
    with np.errstate(all="raise"):
        found = classification(np.array(["a", "b"]), np.array(["a", "a"]))
    assert found["classes"][1]["precision"] == 0.0


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
