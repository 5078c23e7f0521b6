"""mfc.backends.miniflow: lowering a Program to MiniFlow nodes, and running them through
the Model API (forward, gradients, params, feeds)."""

import warnings

import numpy as np
import pytest

import mfc
from conftest import numeric_gradient
from mfc.backends.miniflow import Binary, Leaf, Node, ParamNode, Unary
from mfc.diagnostics import DataError
from mfc.ops import OPS


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


def program_of(text, base_dir=None):
    """A Model of the spec; with `base_dir`, written there first (its data paths are
    relative to it)."""
    if base_dir is None:
        return mfc.compile(text, "<test>", backend="miniflow")
    (base_dir / "spec.mf").write_text(text)
    return mfc.load(base_dir / "spec.mf", backend="miniflow")


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
    assert list(nodes) == program_of(SHARED).order
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
    first_layer = next(n.name for n in program.program.nodes.values()
                       if n.inputs == ("X", "W1", "b1"))
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


def test_forward_without_the_targets_gives_every_node_that_does_not_need_them():
    program = program_of(REGRESSOR)
    full = program.forward({"X": np.ones((2, 10)), "y": np.zeros(2)})
    values = program.forward({"X": np.ones((2, 10))})
    assert set(values) == set(program.order) - {"y", "cost"}
    for name, value in values.items():
        np.testing.assert_array_equal(value, full[name])
    assert set(program.forward({})) == set(program.params)  # no Input: the params alone


def test_values_runs_only_the_nodes_asked_for(monkeypatch):
    program = program_of(REGRESSOR)
    network, (output,) = program.network(), program.outputs
    ran = []
    for node in network.all_plan:
        monkeypatch.setattr(node, "forward", lambda node=node, run=node.forward: (
            ran.append(node.name), run()))
    (value,) = network.values({"X": np.ones((3, 10))}, [output]).values()
    assert value.shape == (3, 1) and "cost" not in ran and ran[-1] == output
    with pytest.raises(ValueError, match="no value is given for the Input 'X'"):
        network.values({"y": np.ones(3)}, [output])


def test_feed_errors_are_clear():
    program = program_of(REGRESSOR)
    with pytest.raises(ValueError, match="no value is given for the Input 'y'"):
        program.gradients({"X": np.ones((2, 10))})
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
    (np.ones((2, 10)) + 1j, "Input 'X': the value given holds complex numbers, not real"),
    (np.ones((2, 10)).astype(str), "Input 'X': the value given holds strings, not real"),
    (np.ones((2, 10)).astype(object), "Input 'X': the value given holds Python objects"),
    ([[1.0] * 10, [1.0] * 9], "Input 'X': the value given is not an array"),
    (np.zeros((0, 10)), r"Input 'X': the value given has shape \(0, 10\), with no elements"),
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
