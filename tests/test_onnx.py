"""mfc.backends.onnx and `mfc export`: checked by tools no one here wrote. Every op and
every spec passes onnx's checker and its strict shape inference, which gives back mfc's
own shapes; onnxruntime computes what mfc's predict, predict_proba and evaluate do
(1e-12 relative in float64, 1e-5 in float32); an op that cannot be written is refused
where it stands in the spec."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import CASES, admitted_cases, admitted_ids, case_ids, op_spec, operands_at_rank
import mfc
from mfc.cli import main
from mfc.ops import LEAF_KINDS, OPS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from mfc.backends import onnx as export  # noqa: E402  (after the skips)

SPECS = sorted(Path(__file__).parent.parent.joinpath("specs").glob("*.mf"))
SPEC = {p.stem: p for p in SPECS}
RTOL = {"float64": 1e-12, "float32": 1e-5}
ADMITTED = admitted_cases()


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run_onnx(model, feed) -> dict:
    found = session(model)
    names = [o.name for o in found.get_outputs()]
    return dict(zip(names, found.run(None, feed)))


def checked(model):
    """The model, after onnx's full check; and its tensors' shapes as strict shape
    inference gives them (symbolic dims as their names)."""
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    values = list(inferred.graph.value_info) + list(inferred.graph.output) + \
        list(inferred.graph.input)
    return {v.name: tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim)
            for v in values}


def assert_close(got, want, dtype, scale=None):
    """Within the dtype's tolerance, relative to the largest value compared, or to
    `scale` (a sum of terms near zero is as exact as the terms)."""
    want = np.asarray(want, dtype=np.float64)
    if scale is None:
        scale = max(float(np.max(np.abs(want))), 1e-300) if want.size else 1.0
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * scale)


# ---------------------------------------------------------------- the lowering table


def test_every_op_has_an_onnx_lowering():
    missing = [name for name, op in OPS.items()
               if op.kind not in LEAF_KINDS and type(op) not in export.LOWERINGS]
    assert missing == [], "add a row to mfc.backends.onnx.LOWERINGS for each new op"


def test_every_classifying_loss_says_how_onnx_finds_its_labels():
    missing = [name for name, op in OPS.items()
               if op.labels and type(op) not in export.CLASSIFIERS]
    assert missing == [], "add a row to mfc.backends.onnx.CLASSIFIERS"


def assert_onnxruntime_computes_what_mfc_does(name, case, rng, dtype):
    """`v = name(operands)` and its cost, exported (with shapes onnx infers as mfc's)
    and run in onnxruntime, equal mfc's values."""
    text, params, feed, value = op_spec(name, case, rng)
    model = mfc.compile(text)
    for key, array in params.items():
        model.params[key] = array
    program = replace(model.program, outputs=("v",))
    exported = export.export(program, dict(model.params), dtype=dtype, with_loss=True)
    shapes = checked(exported)
    assert shapes["v"] == program.nodes["v"].shape
    assert shapes["cost"] == program.nodes["cost"].shape
    outputs = run_onnx(exported, {k: v.astype(np.int64) for k, v in feed.items()})
    assert_close(outputs["v"], value, dtype)
    terms = float(np.sum(np.abs(value * params["w"])))  # cost = Sum(v * w)
    assert_close(outputs["cost"], model.forward(feed)["cost"], dtype, scale=terms)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,index", case_ids())
def test_every_op_computes_in_onnxruntime_what_it_computes_in_mfc(name, index, dtype):
    rng = np.random.default_rng(index)
    assert_onnxruntime_computes_what_mfc_does(name, CASES[name][index], rng, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,shapes,attrs", ADMITTED, ids=admitted_ids(ADMITTED))
def test_every_op_exports_at_every_rank_its_rule_admits(name, shapes, attrs, dtype):
    """A 0-d Transpose, a 0-d Reshape, a vector MatMul...: whatever the checker lets
    a spec write, the export writes and onnxruntime computes as mfc does."""
    rng = np.random.default_rng(len(shapes))
    xs = operands_at_rank(OPS[name], shapes, rng)
    makers = [lambda _, x=x: x for x in xs]
    assert_onnxruntime_computes_what_mfc_does(name, (*makers, attrs), rng, dtype)


# ---------------------------------------------------------------- every spec


def trained(spec, tmp_path):
    """The spec's model after an epoch of training (its preprocessing fitted), saved
    and loaded back as `mfc export --load` reads it."""
    model = mfc.load(spec)
    model.train(epochs=1)
    path = tmp_path / f"{Path(spec).stem}.npz"
    model.save(path)
    loaded = mfc.load(spec)
    loaded.restore(path)
    return loaded, path


def raw_rows(model, rows=13, seed=0):
    """Random raw feature rows, spread as the training data's are."""
    rng = np.random.default_rng(seed)
    pre = model.preprocessing
    X = rng.standard_normal((rows, pre.features)) * 2
    return X * pre.std + pre.mean if pre.standardized else X


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_every_spec_exports_checks_and_predicts_as_mfc(spec, dtype, tmp_path):
    model, _ = trained(spec, tmp_path)
    exported = export.export(model.program, dict(model.params), model.preprocessing,
                             dtype=dtype)
    shapes = checked(exported)
    for name, node in model.program.nodes.items():
        if name in shapes:  # every spec node the export computes, with mfc's shape
            assert shapes[name] == node.shape, name
    if not model.outputs:  # the warm-up: no data, no prediction; its loss
        assert run_onnx(exported, {})[model.loss] == pytest.approx(
            model.forward({})[model.loss], rel=RTOL[dtype])
        return
    X = raw_rows(model)
    outputs = run_onnx(exported, {"X": X.astype(dtype)})
    for name in model.outputs:
        assert_close(outputs[name], model.network().values(model._feed(X), [name])[name], dtype)
        if f"{name}_label" in outputs:
            np.testing.assert_array_equal(outputs[f"{name}_label"], model.predict(X))
            assert_close(outputs[f"{name}_probabilities"], model.predict_proba(X), dtype)
        else:
            assert_close(outputs[name], model.predict(X), dtype)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.stem != "warmup"], ids=lambda p: p.name)
def test_with_the_loss_onnxruntime_evaluates_as_mfc(spec, tmp_path):
    model, _ = trained(spec, tmp_path)
    exported = export.export(model.program, dict(model.params), model.preprocessing,
                             dtype="float64", with_loss=True)
    checked(exported)
    X = raw_rows(model, seed=3)
    if "y" not in model.program.nodes:  # an autoencoder: its loss reads the features alone
        outputs = run_onnx(exported, {"X": X})
        assert outputs[model.loss] == pytest.approx(model.evaluate(X).loss, rel=1e-12)
        return
    rng = np.random.default_rng(4)
    classes = model.preprocessing.classes
    if classes is not None:
        indices = rng.integers(0, len(classes), len(X))
        targets, y = np.asarray(classes)[indices], indices.astype(np.int64)
    else:
        targets = y = rng.normal(150, 50, len(X))
    y = y.reshape((-1,) + tuple(model.program.nodes["y"].shape[1:]))
    outputs = run_onnx(exported, {"X": X, "y": y})
    assert outputs[model.loss] == pytest.approx(model.evaluate(X, targets).loss, rel=1e-12)


def test_string_labels_come_out_as_the_original_labels(tmp_path):
    csv = tmp_path / "flowers.csv"
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{'big' if a + b > 0 else 'small'}"
            for a, b in rng.standard_normal((60, 2))]
    csv.write_text("a,b,kind\n" + "\n".join(rows) + "\n")
    model = mfc.compile(f'X, y = Input(), Input()\nW = Param(_, 2)\nb = Param(2)\n'
                        f'scores = Linear(X, W, b)\ncost = CrossEntropy(y, scores)\n'
                        f'train {{ data = "{csv}"; epochs = 5; batch_size = 6 }}\n')
    model.train()
    exported = export.export(model.program, dict(model.params), model.preprocessing)
    checked(exported)
    X = rng.standard_normal((9, 2))
    labels = run_onnx(exported, {"X": X.astype(np.float32)})["scores_label"]
    assert list(labels) == list(model.predict(X))
    assert set(labels) <= {"big", "small"}


def test_the_graph_names_inputs_params_and_nodes_as_the_spec_does(tmp_path):
    model, _ = trained(SPEC["iris"], tmp_path)
    exported = export.export(model.program, dict(model.params), model.preprocessing)
    graph = exported.graph
    assert [i.name for i in graph.input] == ["X"]
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == ["N", 4]
    assert {"W1", "b1", "W2", "b2"} <= {i.name for i in graph.initializer}
    assert [o.name for o in graph.output] == ["scores", "scores_label", "scores_probabilities"]
    assert {"h", "h.linear1", "X/standardized"} <= {o for n in graph.node for o in n.output}
    assert exported.opset_import[0].version >= 18
    np.testing.assert_array_equal(
        onnx.numpy_helper.to_array(next(i for i in graph.initializer if i.name == "W1")),
        model.params["W1"].astype(np.float32))


def test_the_export_needs_no_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import mfc; from mfc.backends import onnx as e\n"
            f"m = mfc.load({str(SPEC['iris'])!r}); e.export(m.program, dict(m.params))\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


# ---------------------------------------------------------------- refusals


def test_an_op_without_a_lowering_is_refused_where_it_stands(monkeypatch):
    monkeypatch.delitem(export.LOWERINGS, OPS["Tanh"].__class__)
    model = mfc.load(SPEC["iris"])
    with pytest.raises(mfc.SpecError) as info:
        export.export(model.program, dict(model.params))
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("E501", 7, 5)


def test_a_lowering_that_refuses_is_reported_for_every_node(monkeypatch):
    def refuse(g, k, out, *xs):
        raise export.Refused("not today")

    monkeypatch.setitem(export.LOWERINGS, OPS["Linear"].__class__, refuse)
    model = mfc.load(SPEC["digits"])
    with pytest.raises(mfc.SpecError) as info:
        export.export(model.program, dict(model.params))
    assert [(d.code, d.line, d.column) for d in info.value.diagnostics] == \
        [("E501", 6, 10), ("E501", 7, 10)]


# ---------------------------------------------------------------- the command


def test_export_command_writes_a_model_onnxruntime_runs(tmp_path, capsys):
    model, path = trained(SPEC["iris"], tmp_path)
    out = tmp_path / "iris.onnx"
    assert main(["export", str(SPEC["iris"]), "--load", str(path), "-o", str(out)]) == 0
    loaded = onnx.load(out)
    checked(loaded)
    X = raw_rows(model)
    labels = run_onnx(loaded, {"X": X.astype(np.float32)})["scores_label"]
    np.testing.assert_array_equal(labels, model.predict(X))
    assert "wrote" in capsys.readouterr().err
    # again: an ONNX model mfc wrote may be replaced
    assert main(["export", str(SPEC["iris"]), "--load", str(path), "-o", str(out),
                 "--dtype", "float64", "--with-loss"]) == 0
    assert [i.name for i in onnx.load(out).graph.input] == ["X", "y"]


def test_export_refuses_to_replace_what_is_not_an_onnx_model(tmp_path, capsys):
    notes = tmp_path / "notes.onnx"
    notes.write_text("keep me\n")
    assert main(["export", str(SPEC["iris"]), "-o", str(notes)]) == 2
    assert notes.read_text() == "keep me\n"
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mfc: error: -o") and "--force" in err[-1]
    assert main(["export", str(SPEC["iris"]), "-o", str(notes), "--force"]) == 0


def test_export_refuses_a_model_file_of_another_spec(tmp_path, capsys):
    _, path = trained(SPEC["iris"], tmp_path)
    assert main(["export", str(SPEC["digits"]), "--load", str(path), "-o",
                 str(tmp_path / "d.onnx")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "d.onnx").exists()


def test_export_to_stdout(tmp_path, capsysbinary):
    assert main(["export", str(SPEC["warmup"]), "-o", "-"]) == 0
    model = onnx.load_from_string(capsysbinary.readouterr().out)
    assert [o.name for o in model.graph.output] == ["cost"]


def test_an_unexportable_spec_is_a_located_error_and_writes_nothing(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.delitem(export.LOWERINGS, OPS["Tanh"].__class__)
    out = tmp_path / "iris.onnx"
    assert main(["export", str(SPEC["iris"]), "-o", str(out)]) == 1
    assert "iris.mf:7:5: error[E501]: Tanh cannot be exported" in capsys.readouterr().err
    assert not out.exists()


def test_the_readmes_export_is_what_mfc_prints_and_runs(tmp_path, monkeypatch, capsys):
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    (tmp_path / "specs").mkdir()
    for name in ("flowers.mf", "flowers.csv"):
        (tmp_path / "specs" / name).write_bytes((root / "specs" / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    assert main(["run", "specs/flowers.mf", "--set", "test=0.2", "--save", "flowers.npz"]) == 0
    command = "mfc export specs/flowers.mf --load flowers.npz -o flowers.onnx"
    shown = readme.split(f"$ {command}\n", 1)[1].split("```", 1)[0].splitlines()
    capsys.readouterr()
    assert main(command.split()[1:]) == 0
    assert capsys.readouterr().err.splitlines() == shown
    snippet = readme.split("```python\nimport numpy as np, onnxruntime\n", 1)[1].split("```")[0]
    scope = {}
    exec("import numpy as np, onnxruntime\n" + snippet, scope)  # noqa: S102: the README's
    assert list(scope["labels"]) == ["setosa", "virginica"]  # as its comment says
    assert scope["probabilities"].shape == (2, 3)


def test_without_the_onnx_package_export_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['onnx'] = None\nfrom mfc.cli import main\n"
            f"sys.exit(main(['export', {str(SPEC['iris'])!r}, '-o', {str(tmp_path / 'x.onnx')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == \
        "mfc: error: ONNX export needs the onnx package, which is not installed here: " \
        "pip install 'mfc[onnx]'"
