"""The op registry: every op of the language, declared once.

Each op says how it is called (arity, keywords), how shapes flow through it (`shape`,
given a `mfc.shapes.ShapeRules` and its operands), what it computes (`forward`) and its
gradient (`backward`: one array per input, or None where no gradient flows), and how it
draws (`kind`, `symbol`). Adding an op means adding one class here.

`forward(attrs, *xs)` returns a new array; `backward(attrs, g, out, *xs)` gets the summed
upstream gradient `g` and this op's own output `out`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INIT_NAMES = ("zeros", "ones", "normal", "uniform", "xavier", "he")


@dataclass(frozen=True)
class KeywordSpec:
    """A keyword an op takes: `parse(literal_value, kind)` returns the value or raises
    ValueError with a message for the user."""

    parse: object
    default: object = None
    hint: str = ""


def _int_value(value, kind):
    if kind != "number" or not float(value).is_integer():
        raise ValueError("expected a whole number")
    return int(value)


def _init_value(value, kind):
    if kind == "number":
        return float(value)
    if value not in INIT_NAMES:
        raise ValueError(f"unknown init '{value}'")
    return value


class Op:
    name = ""
    operands: tuple[str, ...] | None = ("x",)  # None: positional args are dims
    keywords: dict = {}
    kind = "op"  # data | param | const | op | loss: how the node draws
    symbol: str | None = None  # infix ops draw compactly as their symbol

    def shape(self, s, node, *xs):
        raise NotImplementedError

    def shape_of_unknown(self, node):
        """The output shape when some input's shape is unknown: usually unknown too."""
        return None

    def forward(self, attrs, *xs):
        raise NotImplementedError

    def backward(self, attrs, g, out, *xs):
        raise NotImplementedError


def _unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing numpy broadcasting."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _column(a):
    """Reshape to (m, 1): (m,) − (m, 1) would otherwise broadcast to (m, m)."""
    return a.reshape(-1, 1)


# ---------------------------------------------------------------- leaves


class Input(Op):
    """Fed from outside at run time: the features, the targets, or any array."""

    name, operands, kind = "Input", None, "data"

    def shape(self, s, node):
        return s.declared(node, batch_first=True)


class Param(Op):
    """Trainable. `init`: zeros, ones, normal (standard normal), uniform
    (U(±1/√fan_in)), xavier (U(±√(6/(fan_in+fan_out)))), he (normal·√(2/fan_in)), or a
    number (fill). Default: normal for two or more dims, zeros for one."""

    name, operands, kind = "Param", None, "param"
    keywords = {"init": KeywordSpec(_init_value, None, "zeros, ones, normal, uniform, "
                                    "xavier, he or a number")}

    def shape(self, s, node):
        return s.declared(node, batch_first=False)

    def initialize(self, attrs, shape, rng):
        init = attrs.get("init") or ("normal" if len(shape) >= 2 else "zeros")
        fan_in = shape[0] if shape else 1
        fan_out = shape[1] if len(shape) >= 2 else fan_in
        if isinstance(init, float):
            return np.full(shape, init)
        if init in ("zeros", "ones"):
            return np.zeros(shape) if init == "zeros" else np.ones(shape)
        if init == "normal":
            return rng.standard_normal(shape)
        if init == "he":
            return rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        limit = 1 / math.sqrt(fan_in) if init == "uniform" else math.sqrt(6 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


class Const(Op):
    """A numeric constant written in an expression (`x ** 2`)."""

    name, operands, kind = "Const", (), "const"

    def shape(self, s, node):
        return ()

    def forward(self, attrs):
        return np.asarray(attrs["value"], dtype=float)


# ---------------------------------------------------------------- unary, elementwise


class Identity(Op):
    """y = x: a second name for a node (`a = b`)."""

    name = "Identity"

    def shape(self, s, node, x):
        return x.shape

    def forward(self, attrs, x):
        return x

    def backward(self, attrs, g, out, x):
        return (g,)


class Neg(Identity):
    """y = −x"""

    name, symbol = "Neg", "−"

    def forward(self, attrs, x):
        return -x

    def backward(self, attrs, g, out, x):
        return (-g,)


class Sigmoid(Identity):
    """y = 1 / (1 + e^(−x)); dx = y·(1 − y)·g"""

    name = "Sigmoid"

    def forward(self, attrs, x):
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # the same function, without exp overflow

    def backward(self, attrs, g, out, x):
        return (g * out * (1.0 - out),)


class ReLU(Identity):
    """y = max(x, 0); dx = g where x > 0"""

    name = "ReLU"

    def forward(self, attrs, x):
        return np.maximum(x, 0.0)

    def backward(self, attrs, g, out, x):
        return (g * (x > 0),)


class Tanh(Identity):
    """y = tanh(x); dx = (1 − y²)·g"""

    name = "Tanh"

    def forward(self, attrs, x):
        return np.tanh(x)

    def backward(self, attrs, g, out, x):
        return (g * (1.0 - out * out),)


class Softmax(Identity):
    """y = e^x / Σ e^x along `axis` (default the last); dx = y·(g − Σ g·y)"""

    name = "Softmax"
    keywords = {"axis": KeywordSpec(_int_value, -1, "a whole number")}

    def shape(self, s, node, x):
        s.axis(node, x, node.attrs.get("axis", -1))
        return x.shape

    def forward(self, attrs, x):
        axis = attrs.get("axis", -1)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def backward(self, attrs, g, out, x):
        axis = attrs.get("axis", -1)
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)


# ---------------------------------------------------------------- reductions


class Sum(Op):
    """y = Σ x, over every element or along `axis`"""

    name = "Sum"
    keywords = {"axis": KeywordSpec(_int_value, None, "a whole number")}

    def shape(self, s, node, x):
        return s.reduce(node, x, node.attrs.get("axis"))

    def shape_of_unknown(self, node):
        return () if node.attrs.get("axis") is None else None

    def forward(self, attrs, x):
        return np.sum(x, axis=attrs.get("axis"))

    def backward(self, attrs, g, out, x):
        axis = attrs.get("axis")
        g = g if axis is None else np.expand_dims(g, axis)
        return (np.broadcast_to(g, x.shape) * self._scale(x, axis),)

    def _scale(self, x, axis):
        return 1.0


class Mean(Sum):
    """y = mean of x, over every element or along `axis`"""

    name = "Mean"

    def forward(self, attrs, x):
        return np.mean(x, axis=attrs.get("axis"))

    def _scale(self, x, axis):
        return 1.0 / (x.size if axis is None else x.shape[axis])


# ---------------------------------------------------------------- binary, broadcasting


class Add(Op):
    """y = a + b (numpy broadcasting)"""

    name, operands, symbol = "Add", ("a", "b"), "+"

    def shape(self, s, node, a, b):
        return s.broadcast(node, a, b)

    def forward(self, attrs, a, b):
        return a + b

    def backward(self, attrs, g, out, a, b):
        return _unbroadcast(g, np.shape(a)), _unbroadcast(g, np.shape(b))


class Sub(Add):
    """y = a − b"""

    name, symbol = "Sub", "−"

    def forward(self, attrs, a, b):
        return a - b

    def backward(self, attrs, g, out, a, b):
        return _unbroadcast(g, np.shape(a)), _unbroadcast(-g, np.shape(b))


class Mul(Add):
    """y = a · b (elementwise)"""

    name, symbol = "Mul", "×"

    def forward(self, attrs, a, b):
        return a * b

    def backward(self, attrs, g, out, a, b):
        return _unbroadcast(g * b, np.shape(a)), _unbroadcast(g * a, np.shape(b))


class Div(Add):
    """y = a / b"""

    name, symbol = "Div", "÷"

    def forward(self, attrs, a, b):
        return a / b

    def backward(self, attrs, g, out, a, b):
        return _unbroadcast(g / b, np.shape(a)), _unbroadcast(-g * out / b, np.shape(b))


class Pow(Add):
    """y = a ** b; da = g·b·a^(b−1); db = g·y·ln a (taken as 0 where a ≤ 0)"""

    name, symbol = "Pow", "**"

    def forward(self, attrs, a, b):
        return np.power(a, b)

    def backward(self, attrs, g, out, a, b):
        da = g * b * np.power(a, b - 1.0)
        safe = np.where(a > 0, a, 1.0)
        db = g * out * np.where(a > 0, np.log(safe), 0.0)
        return _unbroadcast(da, np.shape(a)), _unbroadcast(db, np.shape(b))


# ---------------------------------------------------------------- linear algebra


class MatMul(Op):
    """y = a @ b, for 1-D and 2-D operands; da = g·bᵀ, db = aᵀ·g"""

    name, operands, symbol = "MatMul", ("a", "b"), "@"

    def shape(self, s, node, a, b):
        return s.matmul(node, a, b)

    def forward(self, attrs, a, b):
        return a @ b

    def backward(self, attrs, g, out, a, b):
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g2 = np.reshape(g, (a2.shape[0], b2.shape[1]))
        return (g2 @ b2.T).reshape(a.shape), (a2.T @ g2).reshape(b.shape)


class Linear(Op):
    """y = X·W + b; dX = g·Wᵀ, dW = Xᵀ·g, db = g summed over the batch rows"""

    name, operands = "Linear", ("X", "W", "b")

    def shape(self, s, node, x, w, b):
        return s.linear(node, x, w, b)

    def forward(self, attrs, x, w, b):
        return x @ w + b

    def backward(self, attrs, g, out, x, w, b):
        return g @ w.T, x.T @ g, g.sum(axis=0)


# ---------------------------------------------------------------- losses


class MSE(Op):
    """value = mean over the batch of (y − a)², both taken as columns;
    dy = (2/m)·(y − a), da = −(2/m)·(y − a)"""

    name, operands, kind = "MSE", ("y", "a"), "loss"

    def shape(self, s, node, y, a):
        return s.columns(node, y, a)

    def shape_of_unknown(self, node):
        return ()

    def forward(self, attrs, y, a):
        diff = _column(y) - _column(a)
        return np.mean(diff * diff)

    def backward(self, attrs, g, out, y, a):
        diff = (2.0 / _column(y).shape[0]) * g * (_column(y) - _column(a))
        return diff.reshape(np.shape(y)), (-diff).reshape(np.shape(a))


class CrossEntropy(Op):
    """value = mean over the batch of −log softmax(logits)[label];
    dlogits = (softmax(logits) − onehot(labels)) / m; labels get no gradient"""

    name, operands, kind = "CrossEntropy", ("labels", "logits"), "loss"

    def shape(self, s, node, labels, logits):
        return s.labels(node, labels, logits)

    def shape_of_unknown(self, node):
        return ()

    def forward(self, attrs, labels, logits):
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        picked = shifted[np.arange(len(shifted)), labels.astype(np.intp).ravel()]
        return np.mean(log_norm - picked)

    def backward(self, attrs, g, out, labels, logits):
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        probs[np.arange(len(probs)), labels.astype(np.intp).ravel()] -= 1.0
        return None, probs * (g / len(probs))


def _registry() -> dict[str, Op]:
    ops = [Input, Param, Const, Identity, Neg, Sigmoid, ReLU, Tanh, Softmax, Sum, Mean,
           Add, Sub, Mul, Div, Pow, MatMul, Linear, MSE, CrossEntropy]
    return {op.name: op() for op in ops}


OPS: dict[str, Op] = _registry()
USER_OPS = tuple(name for name in OPS if name != "Const")
