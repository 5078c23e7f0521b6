"""Tests for mfc.preprocess: the preprocessing fitted on the training rows and kept with
a model, applied to later data and undone on its predictions."""

import warnings

import numpy as np
import pytest

from mfc.diagnostics import DataError
from mfc.preprocess import Preprocessing, class_list, fit


def test_fit_standardises_with_the_training_rows_and_applies_the_same_statistics():
    X = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    p = fit(X, None, standardized=True, width=None, labels=False)
    np.testing.assert_allclose(p.mean, [3, 10])
    np.testing.assert_allclose(p.std, [np.std([1, 3, 5]), 1])  # a constant column: 1
    np.testing.assert_allclose(p.transform([[7.0, 11.0]]), [[4 / np.std([1, 3, 5]), 1]])
    assert p.classes is None and p.features == 2


def test_without_standardising_the_features_are_used_as_given():
    p = fit(np.ones((3, 2)), None, standardized=False, width=None, labels=False)
    assert p.mean is None and not p.standardized
    np.testing.assert_array_equal(p.transform([[2, 3]]), [[2.0, 3.0]])


@pytest.mark.parametrize("y, width, classes, noted", [
    ([0, 2, 1, 2], 3, (0, 1, 2), False),  # already indices: kept
    ([0, 1], 3, (0, 1, 2), False),  # a class the rows lack is still a class
    ([1, 3, 2], 3, (1, 2, 3), True),
    ([-1, 1, 1], None, (-1, 1), True),
    (["b", "a", "c", "a"], 3, ("a", "b", "c"), True),
])
def test_class_list_keeps_indices_or_sorts_the_labels(y, width, classes, noted):
    notes = []
    assert class_list(np.array(y), width, notes.append) == classes
    assert bool(notes) == noted


def test_labels_round_trip_through_their_indices():
    p = Preprocessing(2, classes=("setosa", "versicolor", "virginica"))
    indices = p.encode(np.array([" virginica", "setosa"]))
    np.testing.assert_array_equal(indices, [2, 0])
    assert list(p.decode(indices)) == ["virginica", "setosa"]
    numeric = Preprocessing(2, classes=(-1, 1))
    np.testing.assert_array_equal(numeric.encode(np.array([1.0, -1.0, 1.0])), [1, 0, 1])
    np.testing.assert_array_equal(numeric.encode(np.array(["1", "-1.0"])), [1, 0])
    assert numeric.decode([0, 1]).tolist() == [-1, 1]


@pytest.mark.parametrize("classes, y, message", [
    (("a", "b"), ["a", "rose"], "row 2: the target 'rose' is not one of the model's "
                                "classes \\(a, b\\)"),
    ((0, 1), [0.0, 2.0], "row 2: the target 2 is not one of"),
    ((0, 1), [0.5], "row 1: the target 0.5"),
    ((0, 1), ["x"], "row 1: the target 'x'"),
])
def test_a_label_that_is_not_a_class_is_a_data_error(classes, y, message):
    with pytest.raises(DataError, match=message):
        Preprocessing(1, classes=classes).encode(np.array(y))


def test_too_many_labels_for_the_scores_is_a_data_error():
    with pytest.raises(DataError, match="4 classes, but the logits give 3"):
        class_list(np.array(["a", "b", "c", "d"]), 3, lambda text: None)


def test_a_feature_too_far_to_standardise_is_one_data_error_without_warnings():
    p = Preprocessing(2, feature_names=("a", "b"), mean=np.array([1.0, 2.0]),
                      std=np.array([0.5, 2.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in divide"
        np.testing.assert_allclose(p.transform([[1.0, 1e308]]), [[0.0, (1e308 - 2) / 2]])
        with pytest.raises(DataError, match=r"^row 2: feature 'a' is 1e\+308, too far from its "
                           r"training mean \(1, std 0.5\) to standardise in float64$"):
            p.transform([[1.0, 2.0], [1e308, 2.0]])


def test_a_class_index_past_the_labels_is_a_value_error():
    p = Preprocessing(2, classes=("a", "b"))
    assert list(p.decode([1, 0])) == ["b", "a"]
    with pytest.raises(ValueError, match=r"^a row scores class 2 highest, but the model knows "
                       r"labels for classes 0..1 only \(a, b\)$"):
        p.decode([0, 2])


def test_statistics_of_a_column_near_the_ends_of_float64_are_finite_without_warnings():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(5, 2, 6), [1.7e308, -1.7e308, 1e308, 0, 1, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow in the sum and the squares
        p = fit(X, None, standardized=True, width=None, labels=False)
        Xs = p.transform(X)
    assert (p.mean[0], p.std[0]) == (X[:, 0].mean(), X[:, 0].std())  # bit for bit as before
    scaled = X[:, 1] / 2.0**1023
    np.testing.assert_allclose([p.mean[1], p.std[1]],
                               [scaled.mean() * 2.0**1023, scaled.std() * 2.0**1023], rtol=1e-15)
    assert np.isfinite(Xs).all()
