"""mfc.ops: every op's forward and backward, checked numerically from a table of cases.

Each op has rows of operand shapes (and keywords); a new op without a row fails
`test_every_op_has_a_gradient_case`.
"""

import numpy as np
import pytest

from conftest import numeric_gradient
from mfc.ops import LEAF_KINDS, OPS


# ---------------------------------------------------------------- the op table
# op name -> cases of (operand makers, attrs). A maker is a shape (standard normal
# values), or a function of a Generator for operands that need care: away from a
# kink (ReLU), positive (Pow's base), away from zero (Div), or labels (no gradient).


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):
    return lambda rng: rng.choice([-1, 1], shape) * rng.uniform(0.5, 2.0, shape)


def labels(m, classes):
    return lambda rng: rng.integers(0, classes, m)


CASES = {
    "Identity": [((3, 4),)],
    "Neg": [((3, 4),)],
    "Sigmoid": [((3, 4),), ((5,),)],
    "ReLU": [(away_from_zero(3, 4),)],
    "LeakyReLU": [(away_from_zero(3, 4),), (away_from_zero(3, 4), {"alpha": 0.2})],
    "Tanh": [((3, 4),)],
    "Softmax": [((3, 4),), ((3, 4), {"axis": 0})],
    "Sum": [((3, 4),), ((3, 4), {"axis": 0}), ((3, 4), {"axis": 1}), ((3, 4), {"axis": -1})],
    "Mean": [((3, 4),), ((3, 4), {"axis": 0}), ((2, 3, 4), {"axis": 1})],
    "Add": [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (3, 4)), ((5,), (1,))],
    "Sub": [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4))],
    "Mul": [((3, 4), (3, 4)), ((3, 4), (4,)), ((1, 4), (3, 1)), ((), (3, 4))],
    "Div": [((3, 4), away_from_zero(3, 4)), ((3, 4), away_from_zero(4,)),
            ((4,), away_from_zero(3, 4))],
    "Pow": [(positive(3, 4), (3, 4)), (positive(3, 4), ()), (positive(4,), (3, 4))],
    "MatMul": [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,))],
    "Linear": [((5, 3), (3, 4), (4,))],
    "MSE": [((5,), (5, 1)), ((5, 1), (5, 1)), ((5,), (5,))],
    "CrossEntropy": [(labels(6, 4), (6, 4)),
                     (labels(4, 3), lambda rng: rng.standard_normal((4, 3)) * 300),
                     (labels(3, 3), lambda rng: rng.standard_normal((3, 3)) + [[0], [-900], [900]])],
}


def case_ids():
    return [(name, i) for name in CASES for i in range(len(CASES[name]))]


def split_case(case):
    """(operand makers, attrs) from a case tuple whose last item may be attrs."""
    if case and isinstance(case[-1], dict):
        return case[:-1], case[-1]
    return case, {}


def operands_of(makers, rng):
    return [m(rng) if callable(m) else rng.standard_normal(m) for m in makers]


def test_every_op_has_a_gradient_case():
    ops = {name for name, op in OPS.items() if op.kind not in LEAF_KINDS}
    assert ops - set(CASES) == set(), "add a gradient case for each new op"
    assert set(CASES) - ops == set()


@pytest.mark.parametrize("name,index", case_ids())
def test_backward_matches_finite_differences(name, index):
    op = OPS[name]
    makers, attrs = split_case(CASES[name][index])
    rng = np.random.default_rng(index)
    xs = operands_of(makers, rng)
    weights = rng.standard_normal(np.shape(op.forward(attrs, *xs)))

    def scalar():  # a weighted sum, so that every output element matters
        return float(np.sum(op.forward(attrs, *xs) * weights))

    out = op.forward(attrs, *xs)
    grads = op.backward(attrs, weights, out, *xs)
    assert len(grads) == len(xs)
    for x, grad, maker in zip(xs, grads, makers):
        if x.dtype.kind == "i":  # labels: no gradient
            assert grad is None
            continue
        assert np.shape(grad) == x.shape
        np.testing.assert_allclose(grad, numeric_gradient(scalar, x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,index", case_ids())
def test_buffered_calls_match_plain_ones(name, index):
    """With `out=` and `into=` buffers, an op computes what it computes without them,
    and leaves out the gradients marked False."""
    op = OPS[name]
    makers, attrs = split_case(CASES[name][index])
    rng = np.random.default_rng(index)
    xs = operands_of(makers, rng)
    plain = op.forward(attrs, *xs)
    buffer = np.empty(np.shape(plain))
    value = op.forward(attrs, *xs, out=buffer)
    np.testing.assert_allclose(value, plain, rtol=1e-12)
    g = rng.standard_normal(np.shape(plain))
    expected = op.backward(attrs, g, plain, *xs)
    # A unary op's one operand is always wanted (the runtime calls it only then).
    for skipped in [None] + (list(range(len(xs))) if len(xs) > 1 else []):
        into = tuple(False if i == skipped or x.dtype.kind == "i" else np.empty(x.shape)
                     for i, x in enumerate(xs))
        got = op.backward(attrs, g.copy(), value, *xs, into=into)
        for i, (want, have) in enumerate(zip(expected, got)):
            if into[i] is False:
                continue  # may or may not be computed; never required
            np.testing.assert_allclose(have, want, rtol=1e-12, atol=1e-15)


def test_backward_does_not_write_into_its_upstream_gradient():
    """Gradients pass by reference between nodes, so no op may change `g`."""
    rng = np.random.default_rng(0)
    for name, cases in CASES.items():
        op = OPS[name]
        for case in cases:
            makers, attrs = split_case(case)
            xs = operands_of(makers, rng)
            out = op.forward(attrs, *xs)
            g = rng.standard_normal(np.shape(out))
            kept = g.copy()
            into = tuple(False if x.dtype.kind == "i" else np.empty(x.shape) for x in xs)
            op.backward(attrs, g, out, *xs, into=into)
            np.testing.assert_array_equal(g, kept, err_msg=name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_stays_finite_for_extreme_logits(dtype):
    """Logits beyond exp's range, and rows far below the others, take the shifted path."""
    op = OPS["CrossEntropy"]
    logits = np.array([[1000.0, 0.0, -1000.0], [-2000.0, -2100.0, -2050.0],
                       [1.0, 2.0, 3.0]], dtype)
    labels = np.array([0, 2, 1])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        value = op.forward({}, labels, logits)
        _, grad = op.backward({}, np.ones((), dtype), value, labels, logits)
    assert value == pytest.approx(-log_probs[[0, 1, 2], labels].mean(), rel=1e-5)
    expected = (np.exp(log_probs) - np.eye(3)[labels]) / 3
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)
