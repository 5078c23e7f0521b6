"""mfc.ops: every op's forward and backward, checked numerically from a table of cases.

Each op has rows of operand shapes (and keywords); a new op without a row fails
`test_every_op_has_a_gradient_case`.
"""

import numpy as np
import pytest

from conftest import (CASES, admitted_cases, admitted_ids, case_ids, numeric_gradient,
                      operands_at_rank, operands_of, rank_spec, split_case)
import mfc
from mfc.codegen import Emitter, Names, link, numpy_namespace
from mfc.ops import INIT_NAMES, LEAF_KINDS, OPS, Op


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


# ---------------------------------------------------------------- generated code


def test_every_op_writes_its_code():
    """The numpy backend and `mfc emit` take each op's code from the op itself."""
    lacking = [name for name, op in OPS.items() if op.kind not in LEAF_KINDS
               and (type(op).forward_code is Op.forward_code
                    or type(op).backward_code is Op.backward_code)]
    assert lacking == [], "write forward_code and backward_code beside forward and backward"


def generated(op, attrs, xs, g, wanted):
    """(value, gradients) of the op's generated code run on `xs`, with upstream `g`;
    gradients only for the operands in `wanted`."""
    c = Emitter(Names(["args"]))
    names = [c.define(f"x{i}", f"args[{i}]", x.shape, x.dtype.name) for i, x in enumerate(xs)]
    out = c.temp(np.shape(op.forward(attrs, *xs)), hint="out")
    value = op.forward_code(c, attrs, out, *names)
    forward = c.take_lines()
    upstream = c.define("g", f"args[{len(xs)}]", np.shape(g))
    into = tuple(c.temp(x.shape, hint="d") if i in wanted else None for i, x in enumerate(xs))
    grads = op.backward_code(c, attrs, upstream, value, *names, into=into)
    body = forward + c.take_lines()
    returned = ", ".join(str(v) for v in grads if v is not None)
    text = ("def build(args):\n" + "".join(f"    {name} = {e}\n" for name, e in c.setup)
            + "    def run():\n" + "".join(f"        {line}\n" for line in body)
            + f"        return {value}, ({returned},)\n    return run\n")
    value, grads = link(text, "build", numpy_namespace(), [*xs, g])()
    return value, iter(grads)


@pytest.mark.parametrize("name,index", case_ids())
def test_generated_code_computes_exactly_what_the_op_does(name, index):
    makers, attrs = split_case(CASES[name][index])
    rng = np.random.default_rng(index)
    assert_code_computes_what_the_op_does(OPS[name], attrs, operands_of(makers, rng), rng)


def assert_code_computes_what_the_op_does(op, attrs, xs, rng):
    """The op's generated code gives its value and gradients bit for bit."""
    value = op.forward(attrs, *xs)
    g = rng.standard_normal(np.shape(value))
    wanted = [i for i, x in enumerate(xs) if x.dtype.kind != "i"]
    expected = op.backward(attrs, g, value, *xs)
    code_value, code_grads = generated(op, attrs, xs, g, wanted)
    np.testing.assert_array_equal(code_value, value)
    for i in wanted:
        np.testing.assert_array_equal(next(code_grads), expected[i], err_msg=f"operand {i}")


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


# ---------------------------------------------------------------- every op, every rank
# Not a table to keep up: every registered op is tried on 0-d, 1-d and 2-d operands, and
# the combinations its own shape rule admits (conftest.admitted_cases) must run, forward
# and backward, with and without buffers. A new op is covered as it lands.

ADMITTED = admitted_cases()
ADMITTED_IDS = admitted_ids(ADMITTED)


def test_every_op_is_tried_at_every_rank():
    tried = {name for name, _, _ in ADMITTED}
    assert {n for n, op in OPS.items() if op.kind not in LEAF_KINDS} <= tried
    assert any(() in shapes for _, shapes, _ in ADMITTED)


@pytest.mark.parametrize("name,shapes,attrs", ADMITTED, ids=ADMITTED_IDS)
def test_every_op_runs_on_every_shape_its_rule_admits(name, shapes, attrs):
    """Forward and backward, plain (operands as 0-d arrays and as numpy scalars) and into
    buffers: values of the checked shape, gradients equal and equal to the numeric ones."""
    op, rng = OPS[name], np.random.default_rng(len(shapes))
    xs = operands_at_rank(op, shapes, rng)
    scalars = [x[()] if x.ndim == 0 else x for x in xs]
    value = op.forward(attrs, *xs)
    shape = np.shape(value)
    weights = rng.standard_normal(shape)
    for operands in (xs, scalars):
        out = op.forward(attrs, *operands)
        np.testing.assert_allclose(out, value, rtol=1e-12)
        grads = op.backward(attrs, weights, out, *operands)
        buffered = op.forward(attrs, *operands, out=np.empty(shape))
        into = tuple(False if x.dtype.kind == "i" else np.empty(x.shape) for x in xs)
        into_grads = op.backward(attrs, weights.copy(), buffered, *operands, into=into)
        np.testing.assert_allclose(buffered, value, rtol=1e-12)
        for x, grad, into_grad in zip(xs, grads, into_grads):
            if x.dtype.kind == "i":
                continue
            assert np.shape(grad) == x.shape and np.shape(into_grad) == x.shape
            np.testing.assert_allclose(into_grad, grad, rtol=1e-12, atol=1e-15)
    for x, grad in zip(xs, grads):
        if x.dtype.kind != "i":
            numeric = numeric_gradient(lambda: float(np.sum(op.forward(attrs, *xs) * weights)), x)
            np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,shapes,attrs", ADMITTED, ids=ADMITTED_IDS)
def test_every_op_trains_on_every_shape_its_rule_admits(name, shapes, attrs):
    """The runtime's passes (a first one that allocates, then buffers) on the same spec."""
    model = mfc.compile(rank_spec(name, shapes))
    feed = {n: np.zeros(model.shapes[n], int) for n in model.program.input_names}
    first = model.gradients(feed)
    again = model.gradients(feed)  # now into the buffers the first run sized
    for param in first:
        np.testing.assert_allclose(again[param], first[param], rtol=1e-12)


@pytest.mark.parametrize("name,shapes,attrs", ADMITTED, ids=ADMITTED_IDS)
def test_generated_code_computes_exactly_what_the_op_does_at_every_rank(name, shapes, attrs):
    op, rng = OPS[name], np.random.default_rng(len(shapes))
    assert_code_computes_what_the_op_does(op, attrs, operands_at_rank(op, shapes, rng), rng)


# ---------------------------------------------------------------- against PyTorch


def _torch_cases():
    """(op name, attrs, operands, the same function written in torch)."""
    import torch.nn.functional as F
    import torch

    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 5)) * 3
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    y, z = rng.integers(0, 2, (6, 1)).astype(float), rng.standard_normal((6, 1)) * 4
    a = rng.standard_normal((6, 1)) * 2
    return [
        ("GELU", {}, [x], F.gelu),
        ("ELU", {"alpha": 0.7}, [x], lambda t: F.elu(t, alpha=0.7)),
        ("Softplus", {}, [x], F.softplus),
        ("Log", {}, [np.abs(x) + 0.1], torch.log),
        ("Sqrt", {}, [np.abs(x) + 0.1], torch.sqrt),
        ("Max", {}, [ties], torch.amax),
        ("Max", {"axis": 1}, [ties], lambda t: torch.amax(t, dim=1)),
        ("Min", {"axis": 0}, [x], lambda t: torch.amin(t, dim=0)),
        ("BinaryCrossEntropy", {}, [y, z], lambda t, u: F.binary_cross_entropy_with_logits(u, t)),
        ("Huber", {"delta": 0.8}, [y, a], lambda t, u: F.huber_loss(u, t, delta=0.8)),
        ("MAE", {}, [y, a], lambda t, u: F.l1_loss(u, t)),
        ("Concat", {"axis": 0}, [x, x[:2]], lambda t, u: torch.cat([t, u], dim=0)),
    ]


def test_new_ops_match_pytorch_values_and_gradients():
    torch = pytest.importorskip("torch")
    for name, attrs, xs, function in _torch_cases():
        op = OPS[name]
        value = op.forward(attrs, *xs)
        tensors = [torch.tensor(x, requires_grad=True) for x in xs]
        expected = function(*tensors)
        g = np.random.default_rng(0).standard_normal(np.shape(value))
        expected.backward(torch.tensor(g))
        np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-12, err_msg=name)
        grads = op.backward(attrs, g, value, *xs)
        for i, (grad, tensor) in enumerate(zip(grads, tensors)):
            if grad is None:
                continue
            np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=1e-10, atol=1e-14,
                                       err_msg=f"{name} operand {i}")


def test_erf_is_maths_erf():
    import math

    from mfc.ops import erf

    xs = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 1.0, -1.0, 1e-300, 50.0, -1e300]])
    np.testing.assert_allclose(erf(xs), [math.erf(v) for v in xs], rtol=0, atol=4e-16)
    assert erf(np.float32(0.5)).dtype == np.float32


# ---------------------------------------------------------------- Dropout, with noise


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_dropout_zeroes_where_the_noise_is_below_the_rate_and_scales_the_rest(rate):
    op, rng = OPS["Dropout"], np.random.default_rng(1)
    x, noise = rng.standard_normal((50, 4)), rng.random((50, 4))
    attrs = {"rate": rate}
    value = op.forward(attrs, x, noise=noise)
    np.testing.assert_allclose(value, np.where(noise >= rate, x / (1 - rate), 0.0), rtol=1e-15)
    g = rng.standard_normal(x.shape)
    (grad,) = op.backward(attrs, g, value, x, noise=noise)
    numeric = numeric_gradient(lambda: float(np.sum(op.forward(attrs, x, noise=noise) * g)), x)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    buffered = op.forward(attrs, x, out=np.empty_like(x), noise=noise)
    (into,) = op.backward(attrs, g, buffered, x, into=(np.empty_like(x),), noise=noise)
    np.testing.assert_array_equal(buffered, value)
    np.testing.assert_array_equal(into, grad)
    assert op.forward(attrs, x) is x and op.backward(attrs, g, x, x)[0] is g


def test_dropouts_code_with_noise_is_the_ops():
    op, rng = OPS["Dropout"], np.random.default_rng(2)
    x, noise, g = rng.standard_normal((5, 3)), rng.random((5, 3)), rng.standard_normal((5, 3))
    c = Emitter(Names(["args"]))
    xv, nv = (c.define(n, f"args[{i}]", (5, 3)) for i, n in enumerate(("x", "noise")))
    out, gv, dx = c.temp((5, 3)), c.define("g", "args[2]", (5, 3)), c.temp((5, 3))
    op.forward_code(c, {"rate": 0.4}, out, xv, noise=nv)
    op.backward_code(c, {"rate": 0.4}, gv, out, xv, into=(dx,), noise=nv)
    text = ("def build(args):\n" + "".join(f"    {n} = {e}\n" for n, e in c.setup)
            + "    def run():\n" + "".join(f"        {line}\n" for line in c.take_lines())
            + f"        return {out}, {dx}\n    return run\n")
    value, grad = link(text, "build", numpy_namespace(), [x, noise, g])()
    np.testing.assert_array_equal(value, op.forward({"rate": 0.4}, x, noise=noise))
    np.testing.assert_array_equal(grad, op.backward({"rate": 0.4}, g, value, x, noise=noise)[0])


@pytest.mark.parametrize("init", [None, *INIT_NAMES, 0.25])
@pytest.mark.parametrize("shape", [(3,), (3, 4)])
def test_param_init_code_draws_what_initialize_draws(init, shape):
    param, attrs = OPS["Param"], {"init": init}
    drawn = param.initialize(attrs, shape, np.random.default_rng(5))
    code = param.initialize_code(attrs, shape)
    np.testing.assert_array_equal(eval(code, {"np": np, "rng": np.random.default_rng(5)}), drawn)
