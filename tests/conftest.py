import io
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


def assert_scikit_learns_classification(found: dict, truth, predicted) -> None:
    """`found` (mfc's classification metrics) equals scikit-learn's on the labels."""
    from sklearn import metrics as sk

    assert found["accuracy"] == sk.accuracy_score(truth, predicted)
    p, r, f, s = sk.precision_recall_fscore_support(truth, predicted)
    assert [c["label"] for c in found["classes"]] == sorted(set(truth) | set(predicted))
    np.testing.assert_allclose([c["precision"] for c in found["classes"]], p, rtol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in found["classes"]], r, rtol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in found["classes"]], f, rtol=1e-12)
    assert [c["support"] for c in found["classes"]] == list(s)
    macro = sk.precision_recall_fscore_support(truth, predicted, average="macro")
    assert [found["macro"][k] for k in ("precision", "recall", "f1")] == pytest.approx(
        list(macro[:3]), rel=1e-12)
    assert found["confusion_matrix"]["rows"] == sk.confusion_matrix(truth, predicted).tolist()
