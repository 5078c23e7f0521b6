"""mfc.backends.generated (the numpy backend): generated code computes what the MiniFlow
node runtime computes, over whole runs of every spec, optimizer and sampling."""

from pathlib import Path

import numpy as np
import pytest

import mfc
from mfc.backends import lower
from mfc.settings import OPTIMIZERS, SAMPLINGS

SPECS = sorted(Path(__file__).parent.parent.joinpath("specs").glob("*.mf"))

SHARED = """
X = Input(_, 3)
W = Param(3, 3)
x = Param(3, init=normal)
twice = Linear(Tanh(Linear(X, W, x)), W, x)   # W and x each feed two consumers
square = x * x                                # x read twice by one node
cost = Sum(twice) + Sum(square) + Mean(Sigmoid(x) @ W) - Sum(X / (x * x + 1.0))
"""


def run(spec, backend, **settings):
    """(epoch records, final params, the model) of one training run."""
    model = mfc.load(spec, backend=backend)
    epochs = []
    model.train(on_epoch=epochs.append, **settings)
    return epochs, {k: v.copy() for k, v in model.params.items()}, model


def assert_same_runs(a, b, rtol=1e-12):
    (epochs_a, params_a, _), (epochs_b, params_b, _) = a, b
    assert len(epochs_a) == len(epochs_b)
    for ea, eb in zip(epochs_a, epochs_b):
        for field in ("loss", "validation_loss", "accuracy"):
            va, vb = getattr(ea, field), getattr(eb, field)
            assert (va is None) == (vb is None)
            if va is not None:
                assert vb == pytest.approx(va, rel=rtol, abs=0), (ea, eb)
    for name in params_a:
        np.testing.assert_allclose(params_b[name], params_a[name], rtol=rtol, atol=0)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_whole_runs_of_every_spec_equal_the_node_runtime(spec):
    assert_same_runs(run(spec, "miniflow"), run(spec, "numpy"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_every_optimizer_and_sampling_equals_the_node_runtime(spec, optimizer, sampling):
    settings = dict(optimizer=optimizer, sampling=sampling, epochs=3)
    assert_same_runs(run(spec, "miniflow", **settings), run(spec, "numpy", **settings))


@pytest.mark.parametrize("settings", [
    dict(dtype="float32"), dict(validation=0.3, seed=4), dict(batch_size=1),
    dict(standardize=False),
    dict(optimizer="adamw", weight_decay=0.01, clip_norm=0.5, lr_schedule="cosine")])
def test_other_settings_equal_the_node_runtime(settings):
    spec = SPECS[[p.name for p in SPECS].index("iris.mf")]
    settings = dict(epochs=4, **settings)
    assert_same_runs(run(spec, "miniflow", **settings), run(spec, "numpy", **settings))


def test_shared_params_and_repeated_operands_match_the_node_runtime():
    feed = {"X": np.random.default_rng(1).standard_normal((5, 3))}
    models = {b: mfc.compile(SHARED, backend=b) for b in ("numpy", "miniflow")}  # torch: test_torch.py
    grads = {b: m.gradients(feed) for b, m in models.items()}
    values = {b: m.forward(feed) for b, m in models.items()}
    for name in grads["miniflow"]:
        np.testing.assert_array_equal(grads["numpy"][name], grads["miniflow"][name])
    assert values["numpy"].keys() == values["miniflow"].keys()
    for name in values["miniflow"]:
        np.testing.assert_array_equal(values["numpy"][name], values["miniflow"][name])


def test_forward_and_gradients_keep_code_for_each_shape_of_feed():
    model = mfc.compile(SHARED)
    rng = np.random.default_rng(0)
    feeds = [{"X": rng.standard_normal((n, 3))} for n in (2, 7, 2)]
    first = [model.gradients(feed)["W"] for feed in feeds]
    reference = mfc.compile(SHARED, backend="miniflow")
    for feed, grad in zip(feeds, first):
        np.testing.assert_array_equal(grad, reference.gradients(feed)["W"])
    assert model.network().forward(feeds[0])["twice"] is not model.forward(feeds[0])["twice"]


def test_the_generated_step_is_readable_numpy_named_after_the_spec():
    text = mfc.load(SPECS[[p.name for p in SPECS].index("regressor.mf")]).explain()
    assert "def step():" in text
    assert "# l1 = Linear(X, W1, b1)  (11, 10)" in text  # the spec's names, the batch's shape
    assert "dot(X, W1_b1, out=l1)" in text  # the bias folded: X carries a column of ones
    assert "W1_b1 = theta[0:110].reshape((11, 10))" in text
    assert "W1 = theta[0:100].reshape((10, 10))" in text
    assert "rate = optimizer.rate" in text  # plain SGD: the rate folded into the gradient
    assert "subtract(theta, grad, out=theta)" in text and "update()" not in text


@pytest.mark.parametrize("backend", ["numpy", "miniflow"])
def test_the_rate_folded_into_the_gradient_trains_as_sgd_does(backend):
    """Plain SGD folds the rate into the loss's gradient (θ ← θ − grad); a clip that
    never clips makes the same steps through the optimizer, rounded otherwise."""
    spec = SPECS[[p.name for p in SPECS].index("iris.mf")]
    folded = run(spec, backend, epochs=5)
    through_the_optimizer = run(spec, backend, epochs=5, clip_norm=1e9)
    assert_same_runs(folded, through_the_optimizer, rtol=1e-9)


def test_an_update_other_than_plain_sgd_is_the_optimizers():
    model = mfc.load(SPECS[[p.name for p in SPECS].index("regressor.mf")])
    for settings in (dict(optimizer="adam"), dict(clip_norm=1.0), dict(weight_decay=0.1)):
        text = model.explain(**settings)
        assert "optimizer.update()" in text and "subtract(theta" not in text, settings


@pytest.mark.parametrize("text, folded", [
    ("W, b = Param(3, 2), Param(2)\ncost = MSE(y, Linear(X, W, b))", True),
    ("W = Param(3, 2)\nc = Param(1)\nb = Param(2)\ncost = MSE(y, Linear(X, W, b)) + Sum(c)",
     False),  # b's entries not right after W's
    ("W, b = Param(3, 2), Param(2)\ncost = MSE(y, Linear(X, W)) + Sum(b)", False),  # no bias
    ("W, b = Param(3, 2), Param(2)\ncost = MSE(y, Linear(X, W, b)) + Sum(X)", False),  # X read
])                                                                  # by another op too
def test_an_input_read_only_by_linears_with_their_bias_after_w_folds_it(text, folded):
    model = mfc.compile("X, y = Input(_, 3), Input(_, 2)\n" + text, backend="numpy")
    network = model.network()
    assert bool(network.folded) == folded
    rng = np.random.default_rng(0)
    feed = {"X": rng.standard_normal((5, 3)), "y": rng.standard_normal((5, 2))}
    slots = network.checked_slots(feed)
    assert next(iter(slots.values())).shape == (5, 3 + folded)  # X with its column of ones
    reference = mfc.compile("X, y = Input(_, 3), Input(_, 2)\n" + text,
                            backend="miniflow").network()
    reference.theta[...] = network.theta[...] = rng.standard_normal(network.theta.shape)
    assert network.evaluate(slots)[0] == reference.forward(feed)["cost"]


def test_the_lowering_is_miniflows():
    """The same nodes and params: only the passes differ."""
    program = mfc.load(SPECS[0]).program
    a, b = lower("miniflow", program), lower("numpy", program)
    assert list(a.nodes) == list(b.nodes)
    np.testing.assert_array_equal(a.theta, b.theta)


def test_an_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        mfc.compile("x = Param(1)\ncost = Sum(x * x)", backend="tensorflow")
