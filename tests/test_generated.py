"""mfc.backends.generated (the numpy backend): generated code computes what the MiniFlow
node runtime computes, over whole runs of every spec, optimizer and sampling."""

from pathlib import Path

import numpy as np
import pytest

import mfc
from mfc.backends import generated, lower
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


# ---------------------------------------------------------------- linear in the code's length
# Writing the code of a chain of n ops must cost O(n): these count the work, not the time.


def _chain(n: int) -> str:
    return "x = Param(3)\ncost = Sum(" + "Tanh(" * n + "x" + ")" * n + ")\n"


class _CountingRe:
    """`re` as mfc.codegen uses it, adding up the length of every text it is given."""

    def __init__(self):
        import re

        self.re, self.read = re, 0

    def __getattr__(self, name):
        function = getattr(self.re, name)
        if name == "compile":
            return lambda *args, **kwargs: _CountingPattern(self, function(*args, **kwargs))
        return _counting(self, function)


class _CountingPattern:
    def __init__(self, counter, pattern):
        self.counter, self.pattern = counter, pattern

    def __getattr__(self, name):
        return _counting(self.counter, getattr(self.pattern, name))


def _counting(counter, function):
    def call(*args, **kwargs):
        counter.read += sum(len(a) for a in args if isinstance(a, str))
        return function(*args, **kwargs)
    return call


def test_the_setup_is_chosen_reading_the_code_a_few_times_at_most(monkeypatch):
    """setup_lines once searched the whole (growing) text for each name: quadratic."""
    from mfc import codegen

    counter = _CountingRe()
    monkeypatch.setattr(codegen, "re", counter)
    if hasattr(codegen, "_WORD"):
        monkeypatch.setattr(codegen, "_WORD", counter.compile(codegen._WORD.pattern))
    network = mfc.compile(_chain(1500)).network()
    text = generated.write(network).text
    assert counter.read < 3 * len(text)


class _CountingSet(set):
    def __init__(self, items):
        super().__init__(items)
        self.asked = 0

    def __contains__(self, item):
        self.asked += 1
        return super().__contains__(item)


def test_many_names_from_one_hint_take_a_try_each():
    from mfc.codegen import Names

    names = Names(["t_7"])
    names.taken = _CountingSet(names.taken)
    made = [names.new("t") for _ in range(3000)]
    assert made[:8] == ["t", "t_2", "t_3", "t_4", "t_5", "t_6", "t_8", "t_9"]
    assert len(set(made)) == 3000 and names.taken.asked < 2 * 3000


def test_a_constant_is_found_without_reading_the_setup():
    from mfc.codegen import Emitter, Names

    class Setup(list):
        def __iter__(self):
            raise AssertionError("constant() read the whole setup")

    c = Emitter(Names())
    c.setup = Setup()
    first = [c.constant("k", f"arange({i})", (i,)) for i in range(50)]
    again = [c.constant("k", f"arange({i})", (i,)) for i in range(50)]
    assert [v.name for v in first] == [v.name for v in again] and len(c.setup) == 50


def test_build_opens_with_a_branch_so_compiling_it_is_linear():
    """CPython puts each closed-over name's MAKE_CELL at the head of a function's first
    basic block, moving that block each time: the block must not be the whole setup."""
    import dis

    network = mfc.compile(_chain(200)).network()
    module = compile(generated.write(network).text, "<test>", "exec")
    build = next(c for c in module.co_consts if getattr(c, "co_name", "") == "build")
    assert len(build.co_cellvars) > 400
    opening = [i.opname for i in dis.get_instructions(build)
               if i.opname not in ("MAKE_CELL", "EXTENDED_ARG", "RESUME", "COPY_FREE_VARS")]
    assert any("JUMP" in name for name in opening[:8]), opening[:8]


def test_the_training_step_is_compiled_alone():
    """Training runs `step` alone: the other passes (a third of the code each) are
    written when they are asked for."""
    from types import SimpleNamespace

    network = mfc.compile(_chain(3)).network()
    step = network.step_function(None, SimpleNamespace(plain=True, rate=0.1,
                                                               step=np.empty(3)))
    step()
    assert [source.functions for source in network._sources.values()] == [("step",)]
    assert network.gradients({})["x"].shape == (3,)  # the others still there, on demand
