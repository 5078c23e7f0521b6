"""Fragments, repeat and use: each call expanded with names of its own, and what runs
downstream of it (mfc.lang.fragments, mfc.lang.uses, the expansion in mfc.lang.graph)."""

import numpy as np
import pytest

import mfc

DENSE = """\
fragment Dense(x, n, act = Sigmoid, init = xavier) {
    W = Param(_, n, init = init)
    b = Param(n)
    return act(Linear(x, W, b))
}
"""

MLP = DENSE + """
X, y = Input(), Input()
h1 = Dense(X, 16, act = ReLU)
h2 = Dense(h1, 16, act = ReLU)
scores = Dense(h2, 3, act = Identity)
cost = CrossEntropy(y, scores)
train { data = iris; epochs = 3; batch_size = 8; learning_rate = 0.05 }
"""

BY_HAND = """
X, y = Input(), Input()
W1, b1 = Param(_, 16, init = xavier), Param(16)
W2, b2 = Param(16, 16, init = xavier), Param(16)
W3, b3 = Param(16, 3, init = xavier), Param(3)
h1 = ReLU(Linear(X, W1, b1))
h2 = ReLU(Linear(h1, W2, b2))
scores = Identity(Linear(h2, W3, b3))
cost = CrossEntropy(y, scores)
train { data = iris; epochs = 3; batch_size = 8; learning_rate = 0.05 }
"""


def program(source, **settings):
    return mfc.compile(source, **settings).program


def test_each_call_has_params_of_its_own_named_after_it():
    p = program(MLP)
    assert p.param_names == ["h1.W", "h1.b", "h2.W", "h2.b", "scores.W", "scores.b"]
    assert p.nodes["h1.W"].shape == (4, 16) and p.nodes["scores.W"].shape == (16, 3)
    assert p.nodes["h1"].op.name == "ReLU" and p.nodes["scores"].op.name == "Identity"
    assert p.nodes["h1.linear1"].inputs == ("X", "h1.W", "h1.b")
    assert {p.nodes[n].call for n in ("h1.W", "h1.linear1", "h1")} == {"h1"}
    assert p.nodes["X"].call is None


def test_the_calls_are_recorded_with_their_arguments():
    p = program(MLP)
    assert list(p.calls) == ["h1", "h2", "scores"]
    h1 = p.calls["h1"]
    assert (h1.fragment, h1.args, h1.parent, h1.outputs) == ("Dense", "16, ReLU", None, ("h1",))
    assert (h1.span.line, h1.span.column) == (8, 6)
    assert h1.label() == "h1: Dense(16, ReLU)"


def test_a_spec_with_fragments_trains_as_the_same_spec_written_by_hand():
    with_fragments, by_hand = mfc.compile(MLP), mfc.compile(BY_HAND)
    assert with_fragments.train() == by_hand.train()
    for name, hand in zip(with_fragments.params, ["W1", "b1", "W2", "b2", "W3", "b3"]):
        np.testing.assert_array_equal(with_fragments.params[name], by_hand.params[hand])


def test_a_call_inside_an_expression_is_named_after_its_owner():
    p = program(DENSE + "X, y = Input(_, 4), Input()\ncost = MSE(y, Dense(Dense(X, 8), 1))\n")
    assert p.param_names == ["cost.dense1.W", "cost.dense1.b", "cost.dense2.W",
                             "cost.dense2.b"]  # the inner call is expanded first
    assert p.nodes["cost.dense2.linear1"].inputs == ("cost.dense1", "cost.dense2.W",
                                                     "cost.dense2.b")
    assert p.calls["cost.dense1"].outputs == ("cost.dense1",)


def test_a_param_passed_as_an_argument_is_shared():
    source = """
fragment Layer(x, W) {
    return Tanh(x @ W)
}
X = Input(_, 4)
W = Param(4, 4)
h1 = Layer(X, W)
h2 = Layer(h1, W)
cost = Sum(h2)
"""
    p = program(source)
    assert p.param_names == ["W"]
    assert p.nodes["h1.matmul1"].inputs == ("X", "W")
    assert p.nodes["h2.matmul1"].inputs == ("h1", "W")


def test_an_expression_argument_is_computed_once():
    source = """
fragment Twice(x) {
    return x + x
}
X = Input(_, 4)
cost = Sum(Twice(Dropout(X, 0.5)))
"""
    p = program(source)
    dropouts = [n for n in p.nodes.values() if n.op.name == "Dropout"]
    assert len(dropouts) == 1 and p.nodes["cost.twice1"].inputs == (dropouts[0].name,) * 2


def test_defaults_keywords_and_numbers_as_values():
    source = """
fragment Scaled(x, k = 2, act = Tanh) {
    return act(x * k)
}
X = Input(_, 3)
a = Scaled(X)
b = Scaled(X, 0.5, ReLU)
c = Scaled(x = X, act = Sigmoid)
cost = Sum(a) + Sum(b) + Sum(c)
"""
    p = program(source)
    assert [p.nodes[n].op.name for n in "abc"] == ["Tanh", "ReLU", "Sigmoid"]
    consts = {p.nodes[n].attrs["value"] for n in p.nodes if p.nodes[n].kind == "const"}
    assert consts == {2, 0.5}
    assert p.calls["b"].args == "0.5, ReLU" and p.calls["a"].args == ""


def test_fragments_call_fragments_and_statements_are_order_free():
    source = DENSE + """
X = Input(_, 4)
cost = Sum(Block(X, 8))
fragment Block(x, n) {
    out = Dense(h, n, act = ReLU)
    h = Dense(x, n, act = Tanh)
    return out
}
"""
    p = program(source)
    assert p.param_names == ["cost.block1.out.W", "cost.block1.out.b", "cost.block1.h.W",
                             "cost.block1.h.b"]
    assert p.nodes["cost.block1.out.linear1"].inputs[0] == "cost.block1.h"
    assert p.calls["cost.block1.h"].parent == "cost.block1"
    assert p.nodes["cost.block1.h.W"].call == "cost.block1.h"


def test_several_return_values_are_taken_apart():
    source = """
fragment Split(x) {
    return Tanh(x), Sigmoid(x)
}
X = Input(_, 3)
a, b = Split(X)
cost = Sum(a * b)
"""
    p = program(source)
    assert (p.nodes["a"].op.name, p.nodes["b"].op.name) == ("Tanh", "Sigmoid")
    assert p.calls["a"].outputs == ("a", "b")


def test_repeat_chains_calls_each_feeding_the_next():
    p = program(DENSE + "X = Input(_, 4)\nh = repeat(3, Dense, X, 8, act = ReLU)\ncost = Sum(h)\n")
    assert p.param_names == ["h.1.W", "h.1.b", "h.2.W", "h.2.b", "h.3.W", "h.3.b"]
    assert p.nodes["h.2.linear1"].inputs == ("h.1", "h.2.W", "h.2.b")
    assert p.nodes["h"].call == "h.3" and p.nodes["h"].op.name == "ReLU"
    assert [c.repeat for c in p.calls.values()] == [("h", 1, 3), ("h", 2, 3), ("h", 3, 3)]
    assert p.nodes["h.1.W"].shape == (4, 8) and p.nodes["h.3.W"].shape == (8, 8)


def test_a_fragment_returning_a_call_names_that_call_after_itself():
    source = DENSE + """
fragment Block(x, n) {
    return Dense(Dense(x, n), n)
}
X = Input(_, 4)
h = repeat(2, Block, X, 8)
cost = Sum(h)
"""
    p = program(source)
    assert p.param_names == ["h.1.dense1.W", "h.1.dense1.b", "h.1.dense2.W", "h.1.dense2.b",
                             "h.2.dense1.W", "h.2.dense1.b", "h.2.dense2.W", "h.2.dense2.b"]


def test_use_std_brings_its_fragments(tmp_path):
    spec = tmp_path / "net.mf"
    spec.write_text("use std\nX, y = Input(), Input()\nh = Dense(X, 8, act = ReLU)\n"
                    "cost = MSE(y, Dense(h, 1))\n"
                    "train { data = diabetes; epochs = 2; learning_rate = 0.001 }\n")
    model = mfc.load(spec)
    assert model.program.param_names == ["h.W", "h.b", "cost.dense1.W", "cost.dense1.b"]
    losses = model.train()
    assert len(losses) == 2 and losses[-1] < losses[0]


def test_use_reads_a_file_relative_to_the_spec_once(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "layers.mf").write_text(
        'use "more.mf"\nfragment Twice(x) {\n  return Half(x) + Half(x)\n}\n')
    (tmp_path / "lib" / "more.mf").write_text("fragment Half(x) {\n  return x * 0.5\n}\n")
    (tmp_path / "net.mf").write_text('use "lib/layers.mf"\nuse "lib/more.mf"\n'
                                     "X = Input(_, 2)\ncost = Sum(Twice(X))\n")
    program = mfc.load(tmp_path / "net.mf").program
    assert program.nodes["cost"].op.name == "Sum" and "cost.twice1.half1" in program.calls


def test_everything_downstream_sees_the_scoped_names(tmp_path):
    model = mfc.compile(MLP)
    model.train(epochs=1)
    path = tmp_path / "model.npz"
    model.save(path)
    again = mfc.compile(MLP)
    again.restore(path)
    np.testing.assert_array_equal(again.params["h2.W"], model.params["h2.W"])
    from sklearn.datasets import load_iris

    assert again.predict(load_iris().data[:5]).shape == (5,)


@pytest.mark.parametrize("backend", ["miniflow", "numpy"])
def test_both_backends_run_an_expanded_spec(backend):
    losses = mfc.compile(MLP, backend=backend).train(epochs=2)
    assert len(losses) == 2


def test_every_fragment_of_std_checks_and_trains():
    source = """
use std
X = Input(_, 6)
a = Dense(X, 4)
b = DenseNoBias(X, 4, act = Tanh)
c = DenseDropout(X, 4, 0.2)
d = Residual(X)
e = ResidualMLP(X, 5)
f = TiedAutoencoder(X, 3)
cost = Sum(a) + Sum(b) + Sum(c) + Sum(d) + Sum(e) + MSE(X, f)
"""
    model = mfc.compile(source)
    p = model.program
    assert [c.fragment for c in p.calls.values()] == ["Dense", "DenseNoBias", "DenseDropout",
                                                       "Residual", "ResidualMLP",
                                                       "TiedAutoencoder"]
    assert p.nodes["c.relu1"].op.name == "ReLU" and p.nodes["d.W"].shape == (6, 6)
    assert p.nodes["f.transpose1"].inputs == ("f.W",) and p.nodes["f"].shape == ("N", 6)
    grads = model.gradients({"X": np.random.default_rng(0).standard_normal((5, 6))})
    assert set(grads) == set(p.param_names)


def test_train_settings_name_a_calls_nodes_quoted_in_the_block_or_as_flags():
    quoted = MLP.replace("train {", 'train { output = h1, "scores.linear1";')
    assert program(quoted).outputs == ("h1", "scores.linear1")
    assert program(MLP, output=("h2.linear1",)).outputs == ("h2.linear1",)
    with pytest.raises(mfc.SpecError) as info:
        program(MLP.replace("train {", 'train { output = "h1 W";'))
    assert [(d.code, d.message) for d in info.value.diagnostics] == [
        ("E401", "'output' cannot be 'h1 W': it names a node")]
    with pytest.raises(ValueError, match="output"):
        program(MLP, output=("h1.",))
