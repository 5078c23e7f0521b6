"""Tests for mfc.backends.miniflow and the ops' forward/backward: lowering, gradients, the API.

Every op's backward is checked against central finite differences (float64), from
operand shapes alone, as teenygrad's helper does; a new op without a case fails
`test_every_op_has_a_gradient_case`.
"""

import warnings

import numpy as np
import pytest

from mfc.lang.compiler import compile_text
from mfc.diagnostics import DataError
from mfc.ops import OPS
from mfc.backends.miniflow import Binary, Leaf, Node, ParamNode, Unary

LEAVES = ("Input", "Param", "Const")


def numeric_gradient(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to each entry of x."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        kept = x[i]
        x[i] = kept + eps
        up = f()
        x[i] = kept - eps
        down = f()
        x[i] = kept
        grad[i] = (up - down) / (2 * eps)
    return grad


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
    ops = {name for name in OPS if name not in LEAVES}
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


# ---------------------------------------------------------------- whole graphs

REGRESSOR = """
X, y = Input(), Input()
W1, b1 = Param(_, 6), Param(6, init=normal)
W2, b2 = Param(6, 1), Param(1, init=normal)
cost = MSE(y, Linear(Sigmoid(Linear(X, W1, b1)), W2, b2))
train { data = "diabetes"; seed = 3 }
"""

SHARED = """
X = Input(_, 3)
W = Param(3, 3)
x = Param(3, init=normal)
twice = Linear(Tanh(Linear(X, W, x)), W, x)   # W and x each feed two consumers
square = x * x                                # x read twice by one node
cost = Sum(twice) + Sum(square) + Mean(Sigmoid(x) @ W)
"""


def program_of(text, base_dir="."):
    return compile_text(text, "<test>", base_dir=base_dir)


def check_program_gradients(program, feed, rtol=1e-5):
    analytic = program.gradients(feed)
    for name, param in program.params.items():
        loss = lambda: program.forward(feed)[program.loss].item()
        numeric = numeric_gradient(loss, param)
        np.testing.assert_allclose(analytic[name], numeric, rtol=rtol, atol=1e-6,
                                   err_msg=name)


def test_network_gradients_match_finite_differences():
    program = program_of(REGRESSOR)
    rng = np.random.default_rng(0)
    check_program_gradients(program, {"X": rng.standard_normal((7, 10)),
                                      "y": rng.standard_normal(7)})


def test_a_node_with_two_consumers_gets_both_contributions():
    program = program_of(SHARED)
    check_program_gradients(program, {"X": np.random.default_rng(1).standard_normal((4, 3))})


def test_gradients_are_the_same_with_buffers_reused():
    program = program_of(SHARED)
    feed = {"X": np.random.default_rng(1).standard_normal((4, 3))}
    first = program.gradients(feed)
    program.gradients({"X": np.ones((9, 3))})  # another batch size: other buffers
    again = program.gradients(feed)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


def test_lowering_follows_the_miniflow_contract():
    network = program_of(SHARED).network()
    nodes = network.nodes
    assert list(nodes) == network.program.order
    assert nodes["square"].inbound_nodes == [nodes["x"], nodes["x"]]
    assert nodes["x"].outbound_nodes.count(nodes["square"]) == 1
    assert isinstance(nodes["X"], Leaf) and isinstance(nodes["W"], ParamNode)
    assert isinstance(nodes["square"], Binary)
    # no shared mutable defaults: every node has its own lists and dicts
    lists = [id(n.outbound_nodes) for n in nodes.values()]
    dicts = [id(n.gradients) for n in nodes.values()]
    assert len(set(lists)) == len(lists) and len(set(dicts)) == len(dicts)
    a, b = Node("a", OPS["Identity"], {}), Node("b", OPS["Identity"], {})
    assert a.inbound_nodes is not b.inbound_nodes and a.outbound_nodes is not b.outbound_nodes


def test_gradients_are_keyed_by_inbound_node_and_summed_over_consumers():
    program = program_of(SHARED)
    network = program.network()
    program.gradients({"X": np.ones((2, 3))})
    x = network.nodes["x"]
    contributions = [c.gradients[x] for c in x.consumers]
    assert len(contributions) == 4  # Linear, Linear, Mul (twice, summed), Sigmoid
    np.testing.assert_allclose(x.gradients[x], sum(contributions))


def test_data_inputs_get_no_gradient():
    program = program_of(REGRESSOR)
    network = program.network()
    program.gradients({"X": np.ones((3, 10)), "y": np.ones(3)})
    X = network.nodes["X"]
    assert X not in network.needs_grad
    assert all(X not in n.gradients for n in network.nodes.values())


def test_params_initialise_from_the_seed_and_init():
    a, b = program_of(REGRESSOR), program_of(REGRESSOR)
    c = program_of(REGRESSOR.replace("seed = 3", "seed = 4"))
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    p = program_of("x = Param(2, 3, init=0.5)\ny = Param(3, init=ones)\n"
                   "cost = Sum(x) + Sum(y) + Sum(Param(4))")
    assert np.all(p.params["x"] == 0.5) and np.all(p.params["y"] == 1)
    assert np.all(p.params["cost.param1"] == 0)  # one-dim params default to zeros


def test_params_are_writable():
    program = program_of(REGRESSOR)
    feed = {"X": np.ones((2, 10)), "y": np.zeros(2)}
    program.params["W1"][...] = 0
    program.params["b1"] = np.full(6, 2.0)
    values = program.forward(feed)
    np.testing.assert_array_equal(values["W1"], 0)
    first_layer = next(n for n in program.order
                       if program.graph.nodes[n]["inputs"] == ("X", "W1", "b1"))
    np.testing.assert_array_equal(values[first_layer], np.full((2, 6), 2.0))
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        program.params["b1"] = np.zeros(5)
    with pytest.raises(KeyError, match="no Param named"):
        program.params["W9"] = np.zeros(5)
    assert list(program.params) == ["W1", "b1", "W2", "b2"]


def test_forward_gives_every_node_and_copies():
    program = program_of(REGRESSOR)
    feed = {"X": np.ones((2, 10)), "y": np.zeros(2)}
    values = program.forward(feed)
    assert set(values) == set(program.order)
    values["W1"][...] = 7  # a copy: the params do not change
    assert not np.any(program.params["W1"] == 7)


def test_feed_errors_are_clear():
    program = program_of(REGRESSOR)
    with pytest.raises(ValueError, match="needs a value for the Input 'y'"):
        program.forward({"X": np.ones((2, 10))})
    with pytest.raises(ValueError, match="not an Input"):
        program.forward({"X": np.ones((2, 10)), "y": np.ones(2), "W1": np.ones(3)})
    with pytest.raises(ValueError, match="dim 1 must be 10, not 4"):
        program.forward({"X": np.ones((2, 4)), "y": np.ones(2)})
    with pytest.raises(ValueError, match="batch has 3 rows"):
        program.forward({"X": np.ones((2, 10)), "y": np.ones(3)})
    with pytest.raises(ValueError, match="expected 1 dim, not 2"):
        program.forward({"X": np.ones((2, 10)), "y": np.ones((2, 1))})


def test_float32_runs_in_float32():
    program = program_of(REGRESSOR.replace("seed = 3", "seed = 3; dtype = float32"))
    values = program.forward({"X": np.ones((2, 10)), "y": np.zeros(2)})
    assert values["W1"].dtype == np.float32
    assert values[program.loss].dtype == np.float32
    grads = program.gradients({"X": np.ones((2, 10)), "y": np.zeros(2)})
    assert grads["W1"].dtype == np.float32


def test_buffers_are_kept_for_a_few_shapes_only():
    program = program_of(REGRESSOR)
    for rows in range(1, 12):
        program.gradients({"X": np.ones((rows, 10)), "y": np.zeros(rows)})
    assert len(program.network()._buffers) <= 4


def test_unary_nodes_unpack_their_operand():
    network = program_of(REGRESSOR).network()
    sigmoid = next(n for n in network.nodes.values() if n.op.name == "Sigmoid")
    assert isinstance(sigmoid, Unary)


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


def test_labels_outside_the_classes_are_refused():
    program = program_of("X, y = Input(_, 2), Input(_)\nW = Param(2, 3)\n"
                         "cost = CrossEntropy(y, X @ W)\n")
    X = np.ones((2, 2))
    with pytest.raises(ValueError, match=r"in 0..2 \(the logits' classes\), not 0..3"):
        program.forward({"X": X, "y": np.array([0, 3])})
    with pytest.raises(ValueError, match="whole numbers"):
        program.forward({"X": X, "y": np.array([0.5, 1])})
    assert program.forward({"X": X, "y": np.array([0.0, 2.0])})["cost"] > 0


@pytest.mark.parametrize("feed", [[np.ones((2, 10)), np.ones(2)], "X", ()])
def test_a_feed_that_is_not_a_dict_is_a_type_error(feed):
    with pytest.raises(TypeError, match="a feed is a dict of Input name → array, not"):
        program_of(REGRESSOR).forward(feed)


@pytest.mark.parametrize("X,message", [
    (np.ones((2, 10)) + 1j, "Input 'X': the feed's value holds complex numbers, not real"),
    (np.ones((2, 10)).astype(str), "Input 'X': the feed's value holds strings, not real"),
    (np.ones((2, 10)).astype(object), "Input 'X': the feed's value holds Python objects"),
    ([[1.0] * 10, [1.0] * 9], "Input 'X': the feed's value is not an array"),
    (np.zeros((0, 10)), r"Input 'X': the feed's value has shape \(0, 10\), with no elements"),
])
def test_feed_values_must_be_real_numbers_with_rows(X, message):
    program = program_of(REGRESSOR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        for run in (program.forward, program.gradients):
            with pytest.raises(ValueError, match=message):
                run({"X": X, "y": np.zeros(2)})


def test_params_waiting_for_a_missing_data_file_say_it_is_missing(tmp_path):
    program = program_of(REGRESSOR.replace('"diabetes"', '"gone.csv"'), tmp_path)
    with pytest.raises(DataError, match=r"data file 'gone.csv' not found \(looked in "
                                        f"{tmp_path}/gone.csv\\)"):
        program.params
