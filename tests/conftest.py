import functools
import io
import itertools
import pickle
import textwrap
import zipfile

import numpy as np
import pytest

import mfc

LESSON = """\
X, y   = Input(), Input()
W1, b1 = Param(_, 10), Param(10)
W2, b2 = Param(10, 1), Param(1)
l1 = Linear(X, W1, b1); s1 = Sigmoid(l1)
l2 = Linear(s1, W2, b2); cost = MSE(y, l2)
train { data = "diabetes"; epochs = 100; batch_size = 11; learning_rate = 0.01 }
"""


def spec_errors(source: str):
    """The diagnostics of a spec that must fail to compile."""
    with pytest.raises(mfc.SpecError) as info:
        mfc.compile(textwrap.dedent(source))
    return info.value.diagnostics


def codes(source: str) -> list[str]:
    return [d.code for d in spec_errors(source)]


def chain_spec(layers: int) -> str:
    """Layers of Linear → ReLU with private params, then a loss: 4 nodes a layer."""
    lines = ["X, y = Input(_, 8), Input(_)"]
    previous = "X"
    for i in range(1, layers + 1):
        lines += [f"W{i}, b{i} = Param(8, 8), Param(8)",
                  f"h{i} = ReLU(Linear({previous}, W{i}, b{i}))"]
        previous = f"h{i}"
    lines += ["Wo, bo = Param(8, 1), Param(1)", f"cost = MSE(y, Linear({previous}, Wo, bo))"]
    return "\n".join(lines) + "\n"


def _one_array(path):
    with open(path, "wb") as file:  # np.save would add .npy to the name
        np.save(file, np.ones(3))


def _truncated_npz(path):
    np.savez(path, x=np.ones(100))
    path.write_bytes(path.read_bytes()[:200])


def _truncated_after_the_header(path):
    """An archive whose x.npy has the header of a (1,) array and no data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (1,)})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue())


# (file name, how to write it, what the error says): none of them is an .npz of arrays,
# and no message suggests unpickling
BAD_PARAMS_FILES = [
    ("p.npy", _one_array, "holds one array"),
    ("p.npz", _one_array, "holds one array"),  # a .npy renamed .npz
    ("p.npz", lambda path: path.write_text("x\n1.0\n"), "is not an .npz archive of params"),
    ("p.npz", _truncated_npz, "is not an .npz archive of params"),
    ("p.npz", lambda path: path.write_bytes(pickle.dumps({"x": [1.0]})),
     "is not an .npz archive of params"),
    ("p.npz", _truncated_after_the_header, "is not a readable .npz archive of params: x:"),
]


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


@pytest.fixture(scope="session")
def numpy_only_python(tmp_path_factory):
    """The python of a virtualenv that has numpy and nothing else (no mfc, no
    scikit-learn): numpy linked in from this environment, so that no download is needed."""
    import os
    import subprocess
    import sys
    import venv
    from pathlib import Path

    folder = tmp_path_factory.mktemp("numpy-only")
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([python, "-c", where], capture_output=True, text=True,
                               check=True).stdout.strip())
    source = Path(np.__file__).parent.parent
    for entry in source.iterdir():
        if entry.name == "numpy" or entry.name.startswith(("numpy.libs", "numpy-")):
            os.symlink(entry, site / entry.name)
    return python


# Two trained networks the tests of predictions share: the iris classifier and the
# lesson's diabetes regressor, each without its train block.
IRIS_NET = """
X, y = Input(), Input()
W1, b1 = Param(_, 16, init=xavier), Param(16)
W2, b2 = Param(16, 3, init=xavier), Param(3)
h = Tanh(Linear(X, W1, b1))
scores = Linear(h, W2, b2)
cost = CrossEntropy(y, scores)
"""

DIABETES_NET = """
X, y = Input(), Input()
W1, b1 = Param(_, 10), Param(10)
W2, b2 = Param(10, 1), Param(1)
l2 = Linear(Sigmoid(Linear(X, W1, b1)), W2, b2)
cost = MSE(y, l2)
"""


def softmax(scores):
    """Row by row, in plain numpy: what a classifier's probabilities must equal."""
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def assert_scikit_learns_classification(found: dict, truth, predicted, labels=None) -> None:
    """`found` (mfc's classification metrics) equals scikit-learn's on the labels (the
    classes `labels`, else those in either; 0/0 undefined, as NaN, or None in JSON)."""
    from sklearn import metrics as sk

    labels = sorted(set(truth) | set(predicted)) if labels is None else list(labels)
    assert found["accuracy"] == sk.accuracy_score(truth, predicted)
    p, r, f, s = sk.precision_recall_fscore_support(truth, predicted, labels=labels,
                                                    zero_division=np.nan)
    assert [c["label"] for c in found["classes"]] == labels

    def column(key):
        return np.array([np.nan if c[key] is None else c[key] for c in found["classes"]])

    np.testing.assert_allclose(column("precision"), p, rtol=1e-12)
    np.testing.assert_allclose(column("recall"), r, rtol=1e-12)
    np.testing.assert_allclose(column("f1"), f, rtol=1e-12)
    assert [c["support"] for c in found["classes"]] == list(s)
    macro = sk.precision_recall_fscore_support(truth, predicted, labels=labels,
                                               average="macro", zero_division=np.nan)
    assert [found["macro"][k] for k in ("precision", "recall", "f1")] == pytest.approx(
        list(macro[:3]), rel=1e-12)
    assert found["confusion_matrix"]["rows"] == sk.confusion_matrix(
        truth, predicted, labels=labels).tolist()


# ---------------------------------------------------------------- the op table
# tests/test_ops.py checks each op's gradient against finite differences with it; the
# torch backend and the ONNX export run the same cases (`op_spec`).
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
    "Dropout": [((3, 4),), ((3, 4), {"rate": 0.2})],  # no noise: the identity
    "Neg": [((3, 4),)],
    "Sigmoid": [((3, 4),), ((5,),)],
    "ReLU": [(away_from_zero(3, 4),)],
    "LeakyReLU": [(away_from_zero(3, 4),), (away_from_zero(3, 4), {"alpha": 0.2})],
    "Tanh": [((3, 4),)],
    "Exp": [((3, 4),)],
    "Log": [(positive(3, 4),)],
    "Sqrt": [(positive(3, 4),)],
    "Abs": [(away_from_zero(3, 4),)],
    "ELU": [(away_from_zero(3, 4),), (away_from_zero(3, 4), {"alpha": 0.5})],
    "GELU": [((3, 4),), (lambda rng: rng.standard_normal((3, 4)) * 4,)],
    "Softplus": [((3, 4),), (lambda rng: rng.standard_normal((3, 4)) * 400,)],
    "Transpose": [((3, 4),), ((4,),), ((2, 3, 4),)],
    "Reshape": [((2, 6), {"dims": (3, 4)}), ((2, 6), {"dims": (None, 2)}), ((12,), {"dims": (2, None, 3)})],
    "Softmax": [((3, 4),), ((3, 4), {"axis": 0})],
    "Sum": [((3, 4),), ((3, 4), {"axis": 0}), ((3, 4), {"axis": 1}), ((3, 4), {"axis": -1})],
    "Mean": [((3, 4),), ((3, 4), {"axis": 0}), ((2, 3, 4), {"axis": 1})],
    "Max": [((3, 4),), ((3, 4), {"axis": 0}), ((2, 3, 4), {"axis": -1})],
    "Min": [((3, 4),), ((3, 4), {"axis": 1})],
    "Add": [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (3, 4)), ((5,), (1,))],
    "Sub": [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4))],
    "Mul": [((3, 4), (3, 4)), ((3, 4), (4,)), ((1, 4), (3, 1)), ((), (3, 4))],
    "Div": [((3, 4), away_from_zero(3, 4)), ((3, 4), away_from_zero(4,)),
            ((4,), away_from_zero(3, 4))],
    "Pow": [(positive(3, 4), (3, 4)), (positive(3, 4), ()), (positive(4,), (3, 4))],
    "MatMul": [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,))],
    "Concat": [((3, 4), (3, 2)), ((3, 4), (2, 4), {"axis": 0}), ((4,), (2,))],
    "Linear": [((5, 3), (3, 4), (4,)), ((5, 3), (3, 4))],
    "MSE": [((5,), (5, 1)), ((5, 1), (5, 1)), ((5,), (5,))],
    "MAE": [((5,), away_from_zero(5, 1)), ((5, 2), away_from_zero(5, 2))],
    "Huber": [((6,), lambda rng: rng.choice([-3, -0.5, 0.5, 3], (6, 1)) + rng.uniform(-0.1, 0.1, (6, 1))),
              ((4, 2), (4, 2), {"delta": 0.3})],
    "BinaryCrossEntropy": [(labels(6, 2), (6, 1)), (labels(5, 2), (5,)),
                           (labels(4, 2), lambda rng: rng.standard_normal((4, 1)) * 800),
                           (labels(3, 2), (3, 1))],
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


def op_spec(name: str, case, rng):
    """A spec that computes `v = name(operands)` for one case of CASES, with the
    operands as Params (a 0-d one as the Sum of a Param of one element), class labels
    from an Input of fixed size, and `cost = Sum(v * w)` for random weights w
    (so that every element of v matters to the gradients).

    Returns (text, params: name → value, feed: Input name → labels, the value of v).
    """
    from mfc.ops import OPS

    op = OPS[name]
    makers, attrs = split_case(case)
    xs = operands_of(makers, rng)
    lines, params, feed, operands = [], {}, {}, []
    for i, x in enumerate(xs):
        if x.dtype.kind == "i":  # class labels
            lines.append(f"t{i} = Input({', '.join(map(str, x.shape))})")
            feed[f"t{i}"], operands = x, operands + [f"t{i}"]
            continue
        lines.append(f"p{i} = Param({', '.join(map(str, x.shape or (1,)))})")
        params[f"p{i}"] = x.reshape(x.shape or (1,))
        operands.append(f"p{i}" if x.shape else f"Sum(p{i})")
    value = op.forward(attrs, *xs)
    arguments = operands + [_written(key, attrs[key]) for key in attrs if key != "dims"]
    if "dims" in attrs:
        arguments += ["_" if d is None else str(d) for d in attrs["dims"]]
    lines.append(f"v = {name}({', '.join(arguments)})")
    lines.append(f"w = Param({', '.join(map(str, np.shape(value) or (1,)))})")
    params["w"] = rng.standard_normal(np.shape(value) or (1,))
    lines.append("cost = Sum(v * w)")
    lines.append("train { loss = cost }")
    return "\n".join(lines) + "\n", params, feed, value


def _written(key, value) -> str:
    return f"{key}={value!r}"


# ---------------------------------------------------------------- every op, every rank
# Not a table to keep up: each registered op on 0-d, 1-d and 2-d operands, in every
# combination its own shape rule admits (asked of the checker, through a spec).
# tests/test_ops.py runs them forward and backward, tests/test_onnx.py in onnxruntime.

RANK_SHAPES = [(), (3,), (2, 3), (3, 3)]
POSITIVE_ONLY = {"Pow", "Log", "Sqrt"}  # ops with no real value below 0


def _operand_source(op, index: int, shape: tuple) -> str:
    """How a spec writes an operand of `shape`: a Param (a 0-d one as the Sum of one),
    or for a loss's class labels an Input of fixed size."""
    dims = ", ".join(map(str, shape or (2,)))
    leaf = f"Input({dims})" if op.labels and index == op.target else f"Param({dims}, init=ones)"
    return f"Sum({leaf})" if shape == () else leaf


def rank_spec(name: str, shapes) -> str:
    """`v = name(...)` on operands of `shapes` (`_` for trailing dims: flattened), and
    `cost = Sum(v)`."""
    from mfc.ops import OPS

    op = OPS[name]
    operands = ", ".join(_operand_source(op, i, s) for i, s in enumerate(shapes))
    operands += ", _" if op.trailing_dims else ""
    return f"v = {name}({operands})\ncost = Sum(v)\n"


@functools.cache
def admitted_cases() -> list:
    """(op name, operand shapes, attrs) for each combination of RANK_SHAPES the op's
    shape rule accepts; its attrs are the checked node's."""
    from mfc.ops import LEAF_KINDS, OPS

    cases = []
    for name, op in OPS.items():
        if op.kind in LEAF_KINDS:
            continue
        for shapes in itertools.product(RANK_SHAPES, repeat=len(op.operands)):
            try:
                model = mfc.compile(rank_spec(name, shapes))
            except mfc.SpecError as err:
                assert {d.code[:2] for d in err.diagnostics} == {"E2"}, err
                continue
            attrs = {k: v for k, v in model.program.nodes["v"].attrs.items() if k != "dim_spans"}
            cases.append((name, shapes, attrs))
    return cases


def admitted_ids(cases) -> list[str]:
    return [f"{n}{list(s)}" for n, s, _ in cases]


def operands_at_rank(op, shapes, rng):
    """Values away from every op's kinks and poles (positive, 0.5..2), class labels for
    a labels operand; a 0-d operand as the numpy scalar a reduction returns."""
    values = []
    for i, shape in enumerate(shapes):
        if op.labels and i == op.target:
            values.append(np.asarray(rng.integers(0, op.classes(shapes), shape)))
        else:
            values.append(np.asarray(rng.uniform(0.5, 2.0, shape) * rng.choice([1.0, -1.0])))
    if op.name in POSITIVE_ONLY:
        values[0] = np.asarray(np.abs(values[0]))
    return values


# ---------------------------------------------------------------- optional packages
# Tests that need torch, onnx or onnxruntime skip with a reason where the package is
# absent; CI installs them and sets MFC_REQUIRE_EXTRAS=1, so that there such a skip fails.

OPTIONAL = ("torch", "onnx", "onnxruntime")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    import os

    report = (yield).get_result()
    if report.skipped and os.environ.get("MFC_REQUIRE_EXTRAS") == "1":
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if any(f"could not import '{name}'" in reason for name in OPTIONAL):
            report.outcome = "failed"
            report.longrepr = f"skipped, but MFC_REQUIRE_EXTRAS=1 (CI) needs it to run: {reason}"
