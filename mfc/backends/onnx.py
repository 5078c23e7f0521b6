"""ONNX export: a `Program`, its params and its preprocessing as an ONNX model.

`LOWERINGS` is the one table from op class to the ONNX nodes that compute what the op's
numpy `forward` computes, written with the `onnx` package's own helpers (no torch), for
opset `OPSET`. A row is `function(g, keywords, out, *operands)`: it adds nodes to the
graph `g` that compute the tensor named `out` from the tensors named `operands`
(`keywords`: every keyword of the op, defaults filled in). A row that cannot express
what the op computes raises `Refused`; an op with no row is refused too; either way the
export stops with E501 at the node's place in the spec, and nothing is written wrong.

The graph: one input per Input the outputs need, named as in the spec, with the batch
dim `N` symbolic (class labels as int64); the params as initializers with their spec
names; every node's tensor named as its node (`h.linear1` for an anonymous one); the
outputs `Program.outputs` (a classifier's also as `NAME_label`, the predicted labels,
and `NAME_probabilities`, as `predict` and `predict_proba` give them), and the loss
with `with_loss`. With preprocessing, the features Input takes raw rows: the saved
training mean and std are subtracted and divided by (`X/standardized`).
"""

from __future__ import annotations

import math

import numpy as np

from mfc import ops
from mfc.diagnostics import E501, Diagnostic, MfcError, SpecError

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # pragma: no cover - the message is tested where onnx is absent
    raise MfcError("ONNX export needs the onnx package, which is not installed here: "
                   "pip install 'mfc[onnx]'") from None

OPSET = 18
DTYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}


class Refused(Exception):
    """A row cannot write what its op computes (the message says why)."""


class Graph:
    """The nodes and initializers of the graph being written."""

    def __init__(self, dtype: str):
        self.dtype, self.float = np.dtype(dtype), DTYPES[dtype]
        self.nodes: list = []
        self.initializers: list = []
        self.shapes: dict[str, tuple] = {}  # tensor name → mfc's shape, where known
        self.integers: set[str] = set()  # the tensors of int64 class labels
        self._count = 0

    def node(self, op_type: str, inputs, out: str | None = None, **attributes) -> str:
        """Add an `op_type` node reading `inputs`; its output is `out` (a fresh name
        when None), which is returned."""
        self._count += 1
        out = out or f"{inputs[0]}/{op_type}{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out],
                                           name=f"{out}/{op_type}", **attributes))
        return out

    def constant(self, value, name: str | None = None, dtype=None) -> str:
        """An initializer holding `value` (the graph's float dtype unless `dtype`)."""
        self._count += 1
        array = np.asarray(value, dtype=dtype or self.dtype)
        name = name or f"const{self._count}"
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def axes(self, *axes: int) -> str:
        return self.constant(np.array(axes, np.int64), dtype=np.int64)


# ---------------------------------------------------------------- the rows


def _unary(op_type: str, **attributes):
    return lambda g, k, out, x: g.node(op_type, [x], out, **attributes)


def _binary(op_type: str):
    return lambda g, k, out, a, b: g.node(op_type, [a, b], out)


def _exact_in_an_attribute(g, value: float) -> bool:
    """Whether a float attribute (32 bits in ONNX) holds `value` as the graph computes
    with it: exactly, or in a float32 graph, which rounds it so anyway."""
    return float(np.float32(value)) == value or g.dtype == np.float32


def _leaky_relu(g, k, out, x):
    alpha = k["alpha"]
    if _exact_in_an_attribute(g, alpha):
        return g.node("LeakyRelu", [x], out, alpha=float(alpha))
    negative = g.node("Mul", [x, g.constant(alpha)])
    return g.node("Where", [g.node("Greater", [x, g.constant(0.0)]), x, negative], out)


def _elu(g, k, out, x):
    """x where x > 0, else alpha·(e^x − 1), e^x − 1 taken accurately near 0."""
    alpha = k["alpha"]  # not Elu: onnxruntime's loses e^x − 1 near 0
    negative = g.node("Mul", [_expm1(g, g.node("Min", [x, g.constant(0.0)])), g.constant(alpha)])
    return g.node("Where", [g.node("Greater", [x, g.constant(0.0)]), x, negative], out)


def _expm1(g, x) -> str:
    """e^x − 1, accurate near 0 (ONNX has no Expm1): (u − 1)·x / ln u, u = e^x, and x
    itself where u rounds to 1 (Kahan's way)."""
    u = g.node("Exp", [x])
    ratio = g.node("Div", [g.node("Mul", [g.node("Sub", [u, g.constant(1.0)]), x]),
                           g.node("Log", [u])])
    return g.node("Where", [g.node("Equal", [u, g.constant(1.0)]), x, ratio])


def _log1p(g, u, out=None) -> str:
    """ln(1 + u), accurate for small u (ONNX has no Log1p): u·ln(w)/(w − 1), w = 1 + u,
    and u itself where w rounds to 1 (Kahan's way)."""
    w = g.node("Add", [u, g.constant(1.0)])
    ratio = g.node("Div", [g.node("Mul", [u, g.node("Log", [w])]),
                           g.node("Sub", [w, g.constant(1.0)])])
    return g.node("Where", [g.node("Equal", [w, g.constant(1.0)]), u, ratio], out)


def _softplus(g, x, out=None) -> str:
    """ln(1 + e^x) = max(x, 0) + ln(1 + e^−|x|): ONNX's Softplus overflows past 709 in
    float64 and loses e^x below −37, where numpy's logaddexp does neither."""
    tail = _log1p(g, g.node("Exp", [g.node("Neg", [g.node("Abs", [x])])]))
    return g.node("Add", [g.node("Relu", [x]), tail], out)


def _gelu(g, k, out, x):
    """x·Φ(x), Φ(x) = (1 + erf(x/√2))/2 (Gelu itself is opset 20)."""
    erf = _erf(g, g.node("Mul", [x, g.constant(1.0 / math.sqrt(2.0))]))
    cdf = g.node("Mul", [g.node("Add", [erf, g.constant(1.0)]), g.constant(0.5)])
    return g.node("Mul", [x, cdf], out)


def _erf(g, x) -> str:
    """erf(x): onnxruntime's Erf in float32; in float64, where it has no Erf, mfc's own
    (mfc.ops.erf, Cephes's): a rational function of x² for |x| ≤ 1, and
    1 − e^(−x²)·P(|x|)/Q(|x|) beyond."""
    if g.dtype == np.float32:
        return g.node("Erf", [x])
    near = g.node("Clip", [x, g.constant(-1.0), g.constant(1.0)])
    z = g.node("Mul", [near, near])
    small = g.node("Div", [g.node("Mul", [near, _polynomial(g, z, ops._ERF_T)]),
                           _polynomial(g, z, ops._ERF_U, monic=True)])
    size = g.node("Abs", [x])
    a = g.node("Clip", [size, g.constant(1.0), g.constant(8.0)])  # past 8, erf is 1
    tail = g.node("Div", [g.node("Mul", [g.node("Exp", [g.node("Neg", [g.node("Mul", [a, a])])]),
                                         _polynomial(g, a, ops._ERFC_P)]),
                          _polynomial(g, a, ops._ERFC_Q, monic=True)])
    large = g.node("Mul", [g.node("Sign", [x]), g.node("Sub", [g.constant(1.0), tail])])
    return g.node("Where", [g.node("LessOrEqual", [size, g.constant(1.0)]), small, large])


def _polynomial(g, x, coefficients, monic: bool = False) -> str:
    """Horner's rule, as mfc.ops._polynomial: with a leading 1 when `monic`."""
    if monic:
        result = g.node("Add", [x, g.constant(coefficients[0])])
    else:
        result = g.node("Add", [g.node("Mul", [x, g.constant(0.0)]), g.constant(coefficients[0])])
    for coefficient in coefficients[1:]:
        result = g.node("Add", [g.node("Mul", [result, x]), g.constant(coefficient)])
    return result


def _reduce(op_type: str):
    def row(g, k, out, x):
        if k["axis"] is None:  # every element, to a 0-d value
            return g.node(op_type, [x], out, keepdims=0)
        return g.node(op_type, [x, g.axes(k["axis"])], out, keepdims=0)
    return row


def _transpose(g, k, out, x):
    """Every axis reversed; below 2 dims that changes nothing (and ONNX cannot write
    the empty `perm` of a 0-d value)."""
    rank = len(g.shapes[x])
    if rank < 2:
        return g.node("Identity", [x], out)
    return g.node("Transpose", [x], out, perm=list(reversed(range(rank))))


def _reshape(g, k, out, x):
    """Reshape to the node's own shape: its whole numbers, the batch dim copied from the
    operand's (0) where both have it at the same place, else −1 (one at most)."""
    source, target = g.shapes[x], g.shapes[out]
    dims = [d if isinstance(d, int) else
            0 if i < len(source) and source[i] == d == "N" else -1 for i, d in enumerate(target)]
    if dims.count(-1) > 1:
        raise Refused(f"its shape {target} has more than one size that only the data gives")
    return g.node("Reshape", [x, g.constant(np.array(dims, np.int64), dtype=np.int64)], out)


def _linear(g, k, out, x, w, b=None):
    if b is None:
        return g.node("MatMul", [x, w], out)
    return g.node("Gemm", [x, w, b], out)  # X·W + b in one node


def _flat(g, x) -> str:
    """A loss's operand as a flat vector: mfc takes (m,) and (m, 1) alike as columns."""
    return g.node("Reshape", [x, g.constant(np.array([-1], np.int64), dtype=np.int64)])


def _as_float(g, x) -> str:
    return g.node("Cast", [x], to=g.float) if x in g.integers else x


def _mse(g, k, out, y, a):
    diff = g.node("Sub", [_flat(g, y), _flat(g, a)])
    return g.node("ReduceMean", [g.node("Mul", [diff, diff])], out, keepdims=0)


def _mae(g, k, out, y, a):
    diff = g.node("Sub", [_flat(g, y), _flat(g, a)])
    return g.node("ReduceMean", [g.node("Abs", [diff])], out, keepdims=0)


def _huber(g, k, out, y, a):
    """mean of ½·near² + delta·(|d| − near), near = min(|d|, delta): h(d) both sides."""
    delta = g.constant(k["delta"])
    distance = g.node("Abs", [g.node("Sub", [_flat(g, a), _flat(g, y)])])
    near = g.node("Min", [distance, delta])
    square = g.node("Mul", [g.node("Mul", [near, near]), g.constant(0.5)])
    beyond = g.node("Mul", [g.node("Sub", [distance, near]), delta])
    return g.node("ReduceMean", [g.node("Add", [square, beyond])], out, keepdims=0)


def _binary_cross_entropy(g, k, out, y, z):
    z = _flat(g, z)
    terms = g.node("Sub", [_softplus(g, z), g.node("Mul", [z, _flat(g, _as_float(g, y))])])
    return g.node("ReduceMean", [terms], out, keepdims=0)


def _cross_entropy(g, k, out, labels, logits):
    if labels not in g.integers:  # labels computed as floats: truncated, as numpy's astype
        labels = g.node("Cast", [labels], to=TensorProto.INT64)
    return g.node("SoftmaxCrossEntropyLoss", [logits, labels], out, reduction="mean")


LOWERINGS = {
    ops.Identity: _unary("Identity"),
    ops.Dropout: _unary("Identity"),  # a prediction is never a training pass
    ops.Neg: _unary("Neg"),
    ops.Sigmoid: _unary("Sigmoid"),
    ops.ReLU: _unary("Relu"),
    ops.LeakyReLU: _leaky_relu,
    ops.Tanh: _unary("Tanh"),
    ops.Softmax: lambda g, k, out, x: g.node("Softmax", [x], out, axis=k["axis"]),
    ops.Exp: _unary("Exp"),
    ops.Log: _unary("Log"),
    ops.Sqrt: _unary("Sqrt"),
    ops.Abs: _unary("Abs"),
    ops.ELU: _elu,
    ops.Softplus: lambda g, k, out, x: _softplus(g, x, out),
    ops.GELU: _gelu,
    ops.Sum: _reduce("ReduceSum"),
    ops.Mean: _reduce("ReduceMean"),
    ops.Max: _reduce("ReduceMax"),
    ops.Min: _reduce("ReduceMin"),
    ops.Add: _binary("Add"),
    ops.Sub: _binary("Sub"),
    ops.Mul: _binary("Mul"),
    ops.Div: _binary("Div"),
    ops.Pow: _binary("Pow"),
    ops.Transpose: _transpose,
    ops.Reshape: _reshape,
    ops.Concat: lambda g, k, out, a, b: g.node("Concat", [a, b], out, axis=k["axis"]),
    ops.MatMul: _binary("MatMul"),
    ops.Linear: _linear,
    ops.MSE: _mse,
    ops.MAE: _mae,
    ops.Huber: _huber,
    ops.BinaryCrossEntropy: _binary_cross_entropy,
    ops.CrossEntropy: _cross_entropy,
}


# ---------------------------------------------------------------- classifiers' labels
# loss op class -> function(g, scores, indices, probabilities): writes the tensors named
# `indices` (N,) int64, the class each row predicts (a fresh name when None), and
# `probabilities` (N, classes); returns the name of the indices. What the op's
# `predicted_classes` and `probabilities` compute.


def _softmax_classes(g, scores, indices, probabilities):
    g.node("Softmax", [scores], probabilities, axis=-1)
    return g.node("ArgMax", [scores], indices, axis=-1, keepdims=0)  # the first of ties


def _sigmoid_classes(g, logits, indices, probabilities):
    column = g.node("Reshape", [logits, g.constant(np.array([-1, 1], np.int64), dtype=np.int64)])
    p = g.node("Sigmoid", [column])
    g.node("Concat", [g.node("Sub", [g.constant(1.0), p]), p], probabilities, axis=1)
    positive = g.node("Greater", [_flat(g, logits), g.constant(0.0)])  # σ(z) > 1/2
    return g.node("Cast", [positive], indices, to=TensorProto.INT64)


CLASSIFIERS = {
    ops.CrossEntropy: _softmax_classes,
    ops.BinaryCrossEntropy: _sigmoid_classes,
}


# ---------------------------------------------------------------- the model


def export(program, params: dict, preprocessing=None, *, dtype: str = "float32",
           with_loss: bool = False) -> "onnx.ModelProto":
    """The ONNX model of `program` with `params` (name → array).

    Parameters
    ----------
    program : mfc.ir.Program
    params : every Param's value, by name.
    preprocessing : mfc.preprocess.Preprocessing or None; its standardisation is
        written into the graph, and its classes are the labels a classifier outputs.
    dtype : "float32" or "float64", the type of the params and of every float tensor.
    with_loss : output the loss too (and take the Inputs it needs, the targets). A
        spec without a prediction output outputs its loss whatever this says.

    Raises
    ------
    SpecError (E501) for each node whose op cannot be written in ONNX, at its place.
    """
    g = Graph(dtype)
    outputs = list(dict.fromkeys(program.outputs + ((program.loss,) if with_loss or
                                                    not program.outputs else ())))
    inputs, alias, problems = [], {}, []
    for name in program.needed_by(*outputs):
        node = program.nodes[name]
        g.shapes[name] = node.shape
        if node.kind == "data":
            inputs.append(_graph_input(g, program, node, preprocessing, alias))
        elif node.kind == "param":
            g.constant(params[name], name)
        elif node.kind == "const":
            g.constant(float(node.attrs["value"]), name)
        else:
            problems += _lower(g, node, [alias.get(i, i) for i in node.inputs])
    if problems:
        raise SpecError(problems, program.source, program.filename)
    results = [_value_info(g, name, program.nodes[name].shape) for name in outputs]
    results += _classified(g, program, outputs, preprocessing)
    graph = helper.make_graph(g.nodes, _graph_name(program), inputs, results, g.initializers)
    return _model(graph, program, preprocessing)


def _lower(g: Graph, node, operands) -> list[Diagnostic]:
    """Write one node; the diagnostic that refuses it, if it cannot be."""
    row = LOWERINGS.get(type(node.op))
    try:
        if row is None:
            raise Refused("ONNX export has no lowering for it")
        row(g, node.keywords, node.name, *operands)
    except Refused as why:
        return [Diagnostic(E501, f"{node.op.name} cannot be exported to ONNX: {why}",
                           node.span, help="write the computation with other ops, or "
                           "train and predict with mfc")]
    return []


def _graph_input(g: Graph, program, node, preprocessing, alias: dict):
    """The graph input of an Input: raw features standardised inside (its readers read
    `NAME/standardized`), class labels as int64."""
    if node.name in program.label_inputs:
        g.integers.add(node.name)
        return _value_info(g, node.name, node.shape, TensorProto.INT64)
    info = _value_info(g, node.name, node.shape)
    features = node.name == program.settings.features
    if features and preprocessing is not None and preprocessing.standardized:
        centred = g.node("Sub", [node.name, g.constant(preprocessing.mean, "preprocessing/mean")],
                         f"{node.name}/centred")
        alias[node.name] = g.node("Div", [centred, g.constant(preprocessing.std,
                                                               "preprocessing/std")],
                                  f"{node.name}/standardized")
        g.shapes[alias[node.name]] = node.shape
        info.doc_string = "raw features: standardised inside with the training mean and std"
    return info


def _value_info(g: Graph, name: str, shape, elements=None):
    dims = None if shape is None else [d if isinstance(d, int) else "N" if d == "N" else None
                                       for d in shape]
    return helper.make_tensor_value_info(name, elements or g.float, dims)


def _classified(g: Graph, program, outputs, preprocessing) -> list:
    """`NAME_label` and `NAME_probabilities` for each output a loss scores as class
    labels: what `predict` and `predict_proba` give."""
    classes = preprocessing.classes if preprocessing is not None else None
    renamed = classes is not None and tuple(classes) != tuple(range(len(classes)))
    found = []
    for name in outputs:
        loss = program.scored.get(name)
        if loss is None or not loss.op.labels or type(loss.op) not in CLASSIFIERS:
            continue
        label = _output_name(program, name, "label")
        probabilities = _output_name(program, name, "probabilities")
        indices = CLASSIFIERS[type(loss.op)](g, name, None if renamed else label, probabilities)
        label_type = _labels(g, indices, classes, label, name) if renamed else TensorProto.INT64
        rows = program.nodes[name].shape[0] if program.nodes[name].shape else None
        found += [_value_info(g, label, (rows,), label_type),
                  _value_info(g, probabilities, (rows, None))]
    return found


def _labels(g: Graph, indices: str, classes, out: str, name: str) -> int:
    """The original labels of class `indices`, from the table `NAME/classes`; their
    type (string or int64)."""
    text = isinstance(classes[0], str)
    kind = object if text else np.int64
    table = g.constant(np.array(classes, dtype=kind), f"{name}/classes", dtype=kind)
    g.node("Gather", [table, indices], out, axis=0)
    return TensorProto.STRING if text else TensorProto.INT64


def _output_name(program, name: str, what: str) -> str:
    """`NAME_what`, or `NAME/what` when the spec has a node of that name."""
    plain = f"{name}_{what}"
    return plain if plain not in program.nodes else f"{name}/{what}"


def _graph_name(program) -> str:
    from pathlib import Path

    return Path(program.filename).stem or "mfc"


def _model(graph, program, preprocessing) -> "onnx.ModelProto":
    import json

    from mfc import __version__

    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="mfc",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              doc_string=f"{program.filename}, exported by mfc {__version__}")
    metadata = {"mfc:spec": program.filename, "mfc:fingerprint": program.fingerprint,
                "mfc:loss": program.loss}
    if preprocessing is not None and preprocessing.classes is not None:
        metadata["mfc:classes"] = json.dumps(list(preprocessing.classes))
    helper.set_model_props(model, metadata)
    return model
