"""The op registry: every op of the language, declared once.

Each op says how it is called (arity, keywords), how shapes flow through it (`shape`,
given a `mfc.lang.shapes.ShapeRules` and its operands), what it computes (`forward`) and its
gradient (`backward`: one array per input, or None where no gradient flows), what role
its operands play (`target`, `labels`: a loss's targets and whether they are class
labels) and how it draws (`kind`, `symbol`). A class that sets `name` registers itself
in `OPS`: adding an op means adding one class here.

`forward(attrs, *xs, out=None)` returns the value; given `out`, a buffer of the value's shape
and dtype, it may write the value there and return it (the runtime preallocates one per
node, so that a training step allocates nothing). `backward(attrs, g, out, *xs, into=...)`
gets the summed upstream gradient `g` and this op's own output `out`, and returns one
gradient per operand, each with that operand's shape. `into` holds, per operand, a buffer
to write its gradient into, None to allocate one, or False when no gradient is wanted
(data, constants): an op may skip that work and return None there. Either way an op may
return an array other than the one offered (`g` itself, say): the runtime uses what is
returned. Called with no buffers, every op is a plain function of its operands.

An op active only while training (`random`, Dropout) takes `noise=` in both: the pass's
uniform draws in [0, 1), of its operand's shape, which the runtime makes for a training
pass (seeded) and gives as None in any other pass, where the op is the identity.

Every op takes every shape its `shape` rule admits, a 0-d value included, whether it
comes as a 0-d array or as the numpy scalar a reduction or a ufunc returns for one (a
scalar cannot be an `out=`: see `_writable`). tests/test_ops.py tries each op at every
rank its rule accepts.

Beside them, each op writes the same computation as numpy source for the generated step
(mfc.backends.generated, `mfc emit`): `forward_code(c, attrs, out, *xs)` and
`backward_code(c, attrs, g, out, *xs, into=...)` take `mfc.codegen.Var`s (names in the
generated code, with their concrete shapes) where `forward` and `backward` take arrays,
write lines through the emitter `c`, and return the Var holding the value (`out`, an
operand, or a new local) or one Var per operand (None where `into` has None: not
wanted). They make the same numpy calls in the same order as `forward` and `backward`,
so the generated step computes exactly what the node runtime does. (Linear has two more,
`folded_forward_code` and `folded_backward_code`, for data that carries a column of
ones: mfc.backends.generated uses them where they give the same bits.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from dataclasses import dataclass
from functools import lru_cache

from mfc.lazy import LazyModule

np = LazyModule("numpy", globals(), "np")  # imported when an op first runs

LEAF_KINDS = frozenset({"data", "param", "const"})  # kinds of node that compute nothing
INIT_NAMES = ("zeros", "ones", "normal", "uniform", "xavier", "he")


@dataclass(frozen=True)
class KeywordSpec:
    """A keyword an op takes: `parse(literal_value, kind)` returns the value or raises
    ValueError with a message for the user."""

    parse: object
    default: object = None
    hint: str = ""


def _int_value(value, kind):
    if kind != "number" or not float(value).is_integer() or abs(value) >= 2**31:
        raise ValueError("expected a whole number")
    return int(value)


def _number_value(value, kind):
    if kind != "number" or not math.isfinite(value):
        raise ValueError("expected a finite number")
    return float(value)


def _positive_value(value, kind):
    if _number_value(value, kind) <= 0:
        raise ValueError("expected a number above 0")
    return float(value)


def _rate_value(value, kind):
    if not 0 <= _number_value(value, kind) < 1:
        raise ValueError("expected a number in [0, 1)")
    return float(value)


def _init_value(value, kind):
    if kind == "number":
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return float(value)
    if value not in INIT_NAMES:
        raise ValueError(f"unknown init '{value}'")
    return value


_REGISTRY: dict[str, "Op"] = {}
OPS: Mapping[str, "Op"] = MappingProxyType(_REGISTRY)  # op name → the op; read-only


class Op:
    name = ""
    operands: tuple[str, ...] | None = ("x",)  # None: positional args are dims
    keywords: Mapping[str, KeywordSpec] = MappingProxyType({})  # shared, so read-only
    kind = "op"  # data | param | const | op | loss: what the node is, and how it draws
    symbol: str | None = None  # infix ops draw compactly as their symbol
    user = True  # written in specs by name (a Const is written as a number)
    needs_dims = False  # a leaf that must be given at least one dim
    optional = 0  # how many of the last operands a call may leave out (Linear's b)
    trailing_dims = False  # whether dims follow the operands, as in Reshape(x, 8, 8)
    random = False  # draws noise while training: forward and backward take `noise=`
    folds_bias = False  # Linear's generated code may fold its bias (`folded_forward_code`)
    target: int | None = None  # a loss's operand that holds the targets
    labels = False  # whether those targets are class labels (indices into the scores)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a concrete op, not a base that others share
            if cls.name in _REGISTRY:
                raise TypeError(f"two ops are named {cls.name!r}")
            _REGISTRY[cls.name] = cls()

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    @property
    def is_loss(self) -> bool:
        return self.kind == "loss"

    @property
    def prediction(self) -> int | None:
        """A loss's operand that holds what the network predicts: the one that is not
        the targets (`l2` in `MSE(y, l2)`)."""
        if self.target is None:
            return None
        return next(i for i in range(len(self.operands)) if i != self.target)

    def classes(self, shapes) -> int | None:
        """How many classes the targets index, given the operands' shapes (ints, 'N',
        '?'): the width of the scores, for an op whose targets are labels."""
        if not self.labels or shapes[self.prediction] is None:
            return None
        width = shapes[self.prediction][-1]
        return width if isinstance(width, int) else None

    def probabilities(self, scores):
        """For a loss on class labels: each class's probability, row by row, from the
        scores it reads (what `predict_proba` gives)."""
        raise NotImplementedError(f"{self.name} gives no class probabilities")

    def predicted_classes(self, scores):
        """For a loss on class labels: the class each row of `scores` (the prediction
        operand's value) predicts, as the labels are given (a vector)."""
        return scores.argmax(axis=-1)

    def multiply_adds(self, *shapes) -> int:
        """The multiply-adds of the matrix products its forward pass runs for operands of
        these shapes (ints): the work a BLAS library may split over threads, and so what
        decides whether its threads pay (mfc.threads). 0 for an op that runs none."""
        return 0

    def shape(self, s, node, *xs):
        raise NotImplementedError

    def shape_of_unknown(self, node):
        """The output shape when some input's shape is unknown: usually unknown too."""
        return None

    def operand_shape(self, s, index: int, *shapes):
        """The shape operand `index` must have, given the other operands' shapes (that
        one's is None), in `s`'s dims (`s.dims.batch` for the batch); None when this op
        does not fix it. What gives an `Input()` without dims its shape."""
        return None

    def forward(self, attrs, *xs, out=None):
        raise NotImplementedError

    def backward(self, attrs, g, out, *xs, into=None):
        raise NotImplementedError

    def forward_code(self, c, attrs, out, *xs):
        raise NotImplementedError(f"{self.name} has no forward_code")

    def backward_code(self, c, attrs, g, out, *xs, into):
        raise NotImplementedError(f"{self.name} has no backward_code")


def _unbroadcast(grad, shape, out=None):
    """Sum `grad` down to `shape`, undoing numpy broadcasting; `grad` itself when it
    already has that shape (no copy), else the sum, written into `out` if given."""
    if grad.shape == shape:
        return grad
    axes, kept = _broadcast_axes(grad.shape, shape)
    if out is None:
        return grad.sum(axis=axes, keepdims=True).reshape(shape)
    grad.sum(axis=axes, keepdims=True, out=out.reshape(kept))
    return out


@lru_cache(maxsize=256)
def _broadcast_axes(grad_shape: tuple, shape: tuple) -> tuple[tuple, tuple]:
    """The axes numpy stretched to take `shape` to `grad_shape`, and `shape` padded
    with leading 1s (the sum's keepdims shape)."""
    lead = len(grad_shape) - len(shape)
    kept = (1,) * lead + tuple(shape)
    axes = tuple(i for i, (n, k) in enumerate(zip(grad_shape, kept)) if k == 1 and n != 1)
    return axes, kept


def _writable(value):
    """`value` as an array to go on writing into. A ufunc given out=None returns a
    numpy scalar, not a 0-d array, for a 0-d result, and a scalar cannot be an `out=`."""
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _unbroadcast_code(c, grad, shape, into):
    """`_unbroadcast` as code: `grad` itself when it has `shape`, else its sum into `into`."""
    if into is None:
        return None
    if grad.shape == tuple(shape):
        return grad
    axes, kept = _broadcast_axes(grad.shape, tuple(shape))
    c.line(f"add.reduce({grad}, axis={axes!r}, out={c.reshaped(into, kept)}, keepdims=True)")
    return into


def _column(a):
    """Reshape to (m, 1): (m,) − (m, 1) would otherwise broadcast to (m, m)."""
    return a.reshape(-1, 1)


def _column_out(buffer):
    """A (m, 1) view of a gradient buffer shaped like its operand ((m,) or (m, 1))."""
    return None if buffer is None else buffer.reshape(-1, 1)


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

    name, operands, kind, needs_dims = "Param", None, "param", True
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

    def initialize_code(self, attrs, shape) -> str:
        """`initialize` as an expression of numpy (`np`) and the Generator `rng`, drawing
        the same numbers (for `mfc emit`)."""
        init = attrs.get("init") or ("normal" if len(shape) >= 2 else "zeros")
        fan_in = shape[0] if shape else 1
        fan_out = shape[1] if len(shape) >= 2 else fan_in
        shape = tuple(shape)
        if isinstance(init, float):
            return f"np.full({shape!r}, {init!r})"
        if init in ("zeros", "ones"):
            return f"np.{init}({shape!r})"
        if init == "normal":
            return f"rng.standard_normal({shape!r})"
        if init == "he":
            return f"rng.standard_normal({shape!r}) * {math.sqrt(2.0 / fan_in)!r}"
        limit = 1 / math.sqrt(fan_in) if init == "uniform" else math.sqrt(6 / (fan_in + fan_out))
        return f"rng.uniform({-limit!r}, {limit!r}, {shape!r})"


class Const(Op):
    """A numeric constant written in an expression (`x ** 2`)."""

    name, operands, kind, user = "Const", (), "const", False

    def shape(self, s, node):
        return ()

    def forward(self, attrs, out=None):
        return np.asarray(attrs["value"], dtype=float)

    def forward_code(self, c, attrs, out):
        return c.constant("c", f"asarray({float(attrs['value'])!r}, {c.dtype!r})", ())


# ---------------------------------------------------------------- unary, elementwise
# A unary op in the backward pass always has its operand wanted (the op is there only
# because a Param flows through that operand), so these never see into=(False,).


class Identity(Op):
    """y = x: a second name for a node (`a = b`)."""

    name = "Identity"

    def shape(self, s, node, x):
        return x.shape

    def forward(self, attrs, x, out=None):
        return x

    def backward(self, attrs, g, out, x, into=(None,)):
        return (g,)

    def forward_code(self, c, attrs, out, x):
        return x

    def backward_code(self, c, attrs, g, out, x, into):
        return (g,)


class Neg(Identity):
    """y = −x; dx = −g"""

    name, symbol = "Neg", "−"

    def forward(self, attrs, x, out=None):
        return np.negative(x, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        return (np.negative(g, out=into[0]),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"negative({x}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        c.line(f"negative({g}, out={into[0]})")
        return into


class Sigmoid(Identity):
    """y = 1 / (1 + e^(−x)) = (1 + tanh(x/2)) / 2; dx = y·(1 − y)·g"""

    name = "Sigmoid"

    def forward(self, attrs, x, out=None):
        # The tanh form cannot overflow as e^(−x) can.
        out = _writable(np.multiply(x, 0.5, out=out))
        np.tanh(out, out=out)
        np.multiply(out, 0.5, out=out)
        return np.add(out, 0.5, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        dx = _writable(np.subtract(1.0, out, out=into[0]))
        np.multiply(dx, out, out=dx)
        return (np.multiply(dx, g, out=dx),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"multiply({x}, 0.5, out={out}); tanh({out}, out={out}); "
               f"multiply({out}, 0.5, out={out}); add({out}, 0.5, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        dx = into[0]
        c.line(f"subtract(1.0, {out}, out={dx}); multiply({dx}, {out}, out={dx}); "
               f"multiply({dx}, {g}, out={dx})")
        return into


class ReLU(Identity):
    """y = max(x, 0); dx = g where x > 0"""

    name = "ReLU"

    def forward(self, attrs, x, out=None):
        return np.maximum(x, 0.0, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        if into[0] is None:
            return (g * (x > 0.0),)
        dx = np.greater(x, 0.0, out=into[0])  # the mask as 0.0 and 1.0, in the buffer
        return (np.multiply(dx, g, out=dx),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"maximum({x}, 0.0, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        dx = into[0]
        c.line(f"greater({x}, 0.0, out={dx}); multiply({dx}, {g}, out={dx})")
        return into


class LeakyReLU(Identity):
    """y = x where x > 0, else alpha·x (alpha 0.01 by default); dx = g where x > 0,
    else alpha·g"""

    name = "LeakyReLU"
    keywords = {"alpha": KeywordSpec(_number_value, 0.01, "a number, such as 0.01")}

    def forward(self, attrs, x, out=None):
        alpha = attrs.get("alpha", 0.01)
        if out is None:
            return np.where(x > 0.0, x, x * alpha)
        np.multiply(x, alpha, out=out)
        np.copyto(out, x, where=x > 0.0)
        return out

    def backward(self, attrs, g, out, x, into=(None,)):
        alpha = attrs.get("alpha", 0.01)
        if into[0] is None:
            return (np.where(x > 0.0, g, g * alpha),)
        dx = np.multiply(g, alpha, out=into[0])
        np.copyto(dx, g, where=x > 0.0)
        return (dx,)

    def forward_code(self, c, attrs, out, x):
        alpha = float(attrs.get("alpha", 0.01))
        c.line(f"multiply({x}, {alpha!r}, out={out}); copyto({out}, {x}, where={x} > 0.0)")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        alpha = float(attrs.get("alpha", 0.01))
        dx = into[0]
        c.line(f"multiply({g}, {alpha!r}, out={dx}); copyto({dx}, {g}, where={x} > 0.0)")
        return into


class Tanh(Identity):
    """y = tanh(x); dx = (1 − y²)·g"""

    name = "Tanh"

    def forward(self, attrs, x, out=None):
        return np.tanh(x, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        dx = _writable(np.multiply(out, out, out=into[0]))
        np.subtract(1.0, dx, out=dx)
        return (np.multiply(dx, g, out=dx),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"tanh({x}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        dx = into[0]
        c.line(f"multiply({out}, {out}, out={dx}); subtract(1.0, {dx}, out={dx}); "
               f"multiply({dx}, {g}, out={dx})")
        return into


class Softmax(Identity):
    """y = e^x / Σ e^x along `axis` (default the last); dx = y·(g − Σ g·y)"""

    name = "Softmax"
    keywords = {"axis": KeywordSpec(_int_value, -1, "a whole number")}

    def shape(self, s, node, x):
        s.axis(node, x, node.attrs.get("axis", -1))
        return x.shape

    def forward(self, attrs, x, out=None):
        axis = attrs.get("axis", -1)
        out = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)  # e^x cannot overflow
        np.exp(out, out=out)
        return np.divide(out, out.sum(axis=axis, keepdims=True), out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        axis = attrs.get("axis", -1)
        dx = np.multiply(g, out, out=into[0])
        np.subtract(g, dx.sum(axis=axis, keepdims=True), out=dx)
        return (np.multiply(dx, out, out=dx),)

    def forward_code(self, c, attrs, out, x):
        axis = attrs.get("axis", -1)
        c.line(f"subtract({x}, {x}.max(axis={axis}, keepdims=True), out={out}); "
               f"exp({out}, out={out}); "
               f"divide({out}, {out}.sum(axis={axis}, keepdims=True), out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        axis = attrs.get("axis", -1)
        dx = into[0]
        c.line(f"multiply({g}, {out}, out={dx}); "
               f"subtract({g}, {dx}.sum(axis={axis}, keepdims=True), out={dx}); "
               f"multiply({dx}, {out}, out={dx})")
        return into


class Exp(Identity):
    """y = e^x; dx = y·g"""

    name = "Exp"

    def forward(self, attrs, x, out=None):
        return np.exp(x, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        return (np.multiply(out, g, out=into[0]),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"exp({x}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        c.line(f"multiply({out}, {g}, out={into[0]})")
        return into


class Log(Identity):
    """y = ln x (NaN below 0, −inf at 0); dx = g / x"""

    name = "Log"

    def forward(self, attrs, x, out=None):
        return np.log(x, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        return (np.divide(g, x, out=into[0]),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"log({x}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        c.line(f"divide({g}, {x}, out={into[0]})")
        return into


class Sqrt(Identity):
    """y = √x (NaN below 0); dx = g / (2y)"""

    name = "Sqrt"

    def forward(self, attrs, x, out=None):
        return np.sqrt(x, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        dx = _writable(np.multiply(out, 2.0, out=into[0]))
        return (np.divide(g, dx, out=dx),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"sqrt({x}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        dx = into[0]
        c.line(f"multiply({out}, 2.0, out={dx}); divide({g}, {dx}, out={dx})")
        return into


class Abs(Identity):
    """y = |x|; dx = sign(x)·g (0 at x = 0)"""

    name = "Abs"

    def forward(self, attrs, x, out=None):
        return np.absolute(x, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        dx = _writable(np.sign(x, out=into[0]))
        return (np.multiply(dx, g, out=dx),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"absolute({x}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        dx = into[0]
        c.line(f"sign({x}, out={dx}); multiply({dx}, {g}, out={dx})")
        return into


class ELU(Identity):
    """y = x where x > 0, else alpha·(e^x − 1) (alpha 1 by default); dx = g where
    x > 0, else (y + alpha)·g"""

    name = "ELU"
    keywords = {"alpha": KeywordSpec(_number_value, 1.0, "a number, such as 1.0")}

    def forward(self, attrs, x, out=None):
        alpha = attrs.get("alpha", 1.0)
        out = _writable(np.minimum(x, 0.0, out=out))  # e^x of the positive part could overflow
        np.expm1(out, out=out)
        np.multiply(out, alpha, out=out)
        np.copyto(out, x, where=x > 0.0)
        return out

    def backward(self, attrs, g, out, x, into=(None,)):
        alpha = attrs.get("alpha", 1.0)
        dx = _writable(np.add(out, alpha, out=into[0]))
        np.multiply(dx, g, out=dx)
        np.copyto(dx, g, where=x > 0.0)
        return (dx,)

    def forward_code(self, c, attrs, out, x):
        alpha = float(attrs.get("alpha", 1.0))
        c.line(f"minimum({x}, 0.0, out={out}); expm1({out}, out={out}); "
               f"multiply({out}, {alpha!r}, out={out}); copyto({out}, {x}, where={x} > 0.0)")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        alpha = float(attrs.get("alpha", 1.0))
        dx = into[0]
        c.line(f"add({out}, {alpha!r}, out={dx}); multiply({dx}, {g}, out={dx}); "
               f"copyto({dx}, {g}, where={x} > 0.0)")
        return into


class Softplus(Identity):
    """y = ln(1 + e^x), computed so that it cannot overflow; dx = sigmoid(x)·g"""

    name = "Softplus"

    def forward(self, attrs, x, out=None):
        return np.logaddexp(x, 0.0, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        dx = _writable(np.multiply(x, 0.5, out=into[0]))  # sigmoid as Sigmoid computes it
        np.tanh(dx, out=dx)
        np.multiply(dx, 0.5, out=dx)
        np.add(dx, 0.5, out=dx)
        return (np.multiply(dx, g, out=dx),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"logaddexp({x}, 0.0, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        dx = into[0]
        c.line(f"multiply({x}, 0.5, out={dx}); tanh({dx}, out={dx}); "
               f"multiply({dx}, 0.5, out={dx}); add({dx}, 0.5, out={dx}); "
               f"multiply({dx}, {g}, out={dx})")
        return into


class GELU(Identity):
    """y = x·Φ(x), Φ the standard normal's CDF, (1 + erf(x/√2))/2 (the exact form, as
    PyTorch's default); dx = (Φ(x) + x·φ(x))·g, φ its density"""

    name = "GELU"

    def forward(self, attrs, x, out=None):
        cdf = normal_cdf(x)
        return np.multiply(x, cdf, out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        cdf = normal_cdf(x)
        dx = _writable(np.multiply(x, x, out=into[0]))
        np.multiply(dx, -0.5, out=dx)
        np.exp(dx, out=dx)
        np.multiply(dx, _INV_SQRT_2PI, out=dx)  # φ(x)
        np.multiply(dx, x, out=dx)
        np.add(dx, cdf, out=dx)
        return (np.multiply(dx, g, out=dx),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"multiply({x}, normal_cdf({x}), out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        dx = into[0]
        c.line(f"multiply({x}, {x}, out={dx}); multiply({dx}, -0.5, out={dx}); "
               f"exp({dx}, out={dx}); multiply({dx}, {_INV_SQRT_2PI!r}, out={dx}); "
               f"multiply({dx}, {x}, out={dx}); add({dx}, normal_cdf({x}), out={dx}); "
               f"multiply({dx}, {g}, out={dx})")
        return into


_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# erf as Cephes computes it (within 2.3e-16 of math.erf): a rational function of x² for
# |x| ≤ 1, and 1 − e^(−x²)·P(|x|)/Q(|x|) beyond. numpy has no erf, and scipy.special
# takes longer to import than checking a spec.
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)


def _polynomial(x, coefficients, monic: bool = False):
    """Horner's rule; `monic`: with a leading coefficient of 1 before `coefficients`."""
    result = x + coefficients[0] if monic else np.full_like(x, coefficients[0])
    for coefficient in coefficients[1:]:
        result = result * x + coefficient
    return result


def erf(x):
    """The error function, elementwise: a new array of x's float dtype (float64 for
    other dtypes)."""
    x = np.asarray(x)
    x = x if x.dtype.kind == "f" else x.astype(float)
    near = np.clip(x, -1.0, 1.0)  # x where the small branch is used, finite elsewhere
    z = near * near
    small = near * _polynomial(z, _ERF_T) / _polynomial(z, _ERF_U, monic=True)
    a = np.clip(np.absolute(x), 1.0, 8.0)  # past 8, erf is 1 to double precision
    tail = np.exp(-a * a) * _polynomial(a, _ERFC_P) / _polynomial(a, _ERFC_Q, monic=True)
    return np.where(np.absolute(x) <= 1.0, small, np.sign(x) * (1.0 - tail)).astype(x.dtype)


def normal_cdf(x):
    """Φ(x) = (1 + erf(x/√2))/2, elementwise: a new array (generated code calls it as
    `normal_cdf`)."""
    cdf = erf(np.multiply(x, 1.0 / math.sqrt(2.0)))
    np.add(cdf, 1.0, out=cdf)
    return np.multiply(cdf, 0.5, out=cdf)



class Dropout(Identity):
    """While training: y = x·m/(1 − rate), m = 1 where the pass's noise (uniform in
    [0, 1), one draw per element, from the runtime) is ≥ rate, else 0; dx = g·m/(1 − rate).
    Without noise (predict, eval, validation): the identity."""

    name, random = "Dropout", True
    keywords = {"rate": KeywordSpec(_rate_value, 0.5, "a number in [0, 1), such as 0.5")}

    def forward(self, attrs, x, out=None, noise=None):
        if noise is None:
            return x
        return self._scaled_mask(attrs, noise, x, out)

    def backward(self, attrs, g, out, x, into=(None,), noise=None):
        if noise is None:
            return (g,)
        return (self._scaled_mask(attrs, noise, g, into[0]),)

    def _scaled_mask(self, attrs, noise, factor, buffer):
        """factor·m/(1 − rate), written into `buffer` if given."""
        rate = attrs.get("rate", 0.5)
        kept = np.greater_equal(noise, rate, out=buffer)
        if buffer is None:
            kept = _writable(kept).astype(np.result_type(factor))
        np.multiply(kept, 1.0 / (1.0 - rate), out=kept)
        return np.multiply(kept, factor, out=kept)

    def forward_code(self, c, attrs, out, x, noise=None):
        if noise is None:
            c.line(f"copyto({out}, {x})")
            return out
        with c.block(f"if {noise} is None:"):
            c.line(f"copyto({out}, {x})")
        with c.block("else:"):
            self._scaled_mask_code(c, attrs, noise, x, out)
        return out

    def backward_code(self, c, attrs, g, out, x, into, noise=None):
        if noise is None:
            c.line(f"copyto({into[0]}, {g})")
            return into
        with c.block(f"if {noise} is None:"):
            c.line(f"copyto({into[0]}, {g})")
        with c.block("else:"):
            self._scaled_mask_code(c, attrs, noise, g, into[0])
        return into

    def _scaled_mask_code(self, c, attrs, noise, factor, buffer):
        rate = attrs.get("rate", 0.5)
        c.line(f"greater_equal({noise}, {rate!r}, out={buffer}); "
               f"multiply({buffer}, {1.0 / (1.0 - rate)!r}, out={buffer}); "
               f"multiply({buffer}, {factor}, out={buffer})")


# ---------------------------------------------------------------- reductions


class Sum(Op):
    """y = Σ x, over every element or along `axis`; dx = g, spread back over x"""

    name = "Sum"
    keywords = {"axis": KeywordSpec(_int_value, None, "a whole number")}

    def shape(self, s, node, x):
        return s.reduce(node, x, node.attrs.get("axis"))

    def shape_of_unknown(self, node):
        return () if node.attrs.get("axis") is None else None

    def forward(self, attrs, x, out=None):
        return x.sum(axis=attrs.get("axis"), out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        axis = attrs.get("axis")
        g = g if axis is None else np.expand_dims(g, axis)
        if into[0] is None:
            return (np.broadcast_to(g, x.shape) * self._scale(x, axis),)
        return (np.multiply(g, self._scale(x, axis), out=into[0]),)

    def _scale(self, x, axis):
        return 1.0

    def forward_code(self, c, attrs, out, x):
        c.line(f"add.reduce({x}, axis={attrs.get('axis')!r}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        axis = attrs.get("axis")
        if axis is not None:  # np.expand_dims(g, axis), as a reshape
            kept = list(x.shape)
            kept[axis] = 1
            g = c.reshaped(g, kept)
        c.line(f"multiply({g}, {self._scale(x, axis)!r}, out={into[0]})")
        return into


class Mean(Sum):
    """y = mean of x, over every element or along `axis`; dx = g / count, spread back"""

    name = "Mean"

    def forward(self, attrs, x, out=None):
        return x.mean(axis=attrs.get("axis"), out=out)

    def forward_code(self, c, attrs, out, x):
        c.line(f"{x}.mean(axis={attrs.get('axis')!r}, out={out})")
        return out

    def _scale(self, x, axis):
        return 1.0 / (x.size if axis is None else x.shape[axis])


class Max(Sum):
    """y = the largest element of x, over every element or along `axis`; dx = g where
    x is that largest element (shared equally between ties), else 0"""

    name = "Max"
    _pick = "amax"

    def forward(self, attrs, x, out=None):
        return getattr(np, self._pick)(x, axis=attrs.get("axis"), out=out)

    def backward(self, attrs, g, out, x, into=(None,)):
        axis = attrs.get("axis")
        if axis is not None:
            out, g = np.expand_dims(out, axis), np.expand_dims(g, axis)
        mask = np.equal(x, out, out=into[0])
        dx = mask if into[0] is not None else np.asarray(mask, dtype=np.result_type(g))
        np.divide(dx, dx.sum(axis=axis, keepdims=True), out=dx)
        return (np.multiply(dx, g, out=dx),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"np.{self._pick}({x}, axis={attrs.get('axis')!r}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        axis = attrs.get("axis")
        if axis is not None:
            kept = list(x.shape)
            kept[axis] = 1
            out, g = c.reshaped(out, kept), c.reshaped(g, kept)
        dx = into[0]
        c.line(f"equal({x}, {out}, out={dx}); "
               f"divide({dx}, {dx}.sum(axis={axis!r}, keepdims=True), out={dx}); "
               f"multiply({dx}, {g}, out={dx})")
        return into


class Min(Max):
    """y = the smallest element of x, over every element or along `axis`; dx = g where
    x is that smallest element (shared equally between ties), else 0"""

    name = "Min"
    _pick = "amin"


# ---------------------------------------------------------------- binary, broadcasting
# Gradients are summed back down to each operand's shape (`_unbroadcast`): b of shape
# (10,) added to (N, 10) gets the column sums of g.


class Add(Op):
    """y = a + b (numpy broadcasting); da = g, db = g (each summed to its shape)"""

    name, operands, symbol = "Add", ("a", "b"), "+"

    def shape(self, s, node, a, b):
        return s.broadcast(node, a, b)

    def forward(self, attrs, a, b, out=None):
        return np.add(a, b, out=out)

    def backward(self, attrs, g, out, a, b, into=(None, None)):
        da = _unbroadcast(g, a.shape, into[0]) if into[0] is not False else None
        db = _unbroadcast(g, b.shape, into[1]) if into[1] is not False else None
        return da, db

    def forward_code(self, c, attrs, out, a, b):
        c.line(f"add({a}, {b}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, a, b, into):
        return (_unbroadcast_code(c, g, a.shape, into[0]),
                _unbroadcast_code(c, g, b.shape, into[1]))


class Sub(Add):
    """y = a − b; da = g, db = −g"""

    name, symbol = "Sub", "−"

    def forward(self, attrs, a, b, out=None):
        return np.subtract(a, b, out=out)

    def backward(self, attrs, g, out, a, b, into=(None, None)):
        da = _unbroadcast(g, a.shape, into[0]) if into[0] is not False else None
        db = None
        if into[1] is not False:
            db = _unbroadcast(g, b.shape, into[1])
            db = np.negative(db, out=into[1] if db is g else db)  # never negate g in place
        return da, db

    def forward_code(self, c, attrs, out, a, b):
        c.line(f"subtract({a}, {b}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, a, b, into):
        da = _unbroadcast_code(c, g, a.shape, into[0])
        db = _unbroadcast_code(c, g, b.shape, into[1])
        if db is not None:
            target = into[1] if db is g else db
            c.line(f"negative({db}, out={target})")
            db = target
        return da, db


class Mul(Add):
    """y = a · b (elementwise); da = g·b, db = g·a"""

    name, symbol = "Mul", "×"

    def forward(self, attrs, a, b, out=None):
        return np.multiply(a, b, out=out)

    def backward(self, attrs, g, out, a, b, into=(None, None)):
        da = _product_grad(g, b, a.shape, into[0])
        db = _product_grad(g, a, b.shape, into[1])
        return da, db

    def forward_code(self, c, attrs, out, a, b):
        c.line(f"multiply({a}, {b}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, a, b, into):
        return (_product_grad_code(c, g, b, a.shape, into[0]),
                _product_grad_code(c, g, a, b.shape, into[1]))


def _product_grad(g, factor, shape, buffer):
    """g·factor summed down to `shape`; straight into `buffer` when nothing is summed
    (g has the shape of the broadcast product, so then g·factor has `shape` too)."""
    if buffer is False:
        return None
    if g.shape == shape:
        return np.multiply(g, factor, out=buffer)
    return _unbroadcast(g * factor, shape, buffer)


def _expression_grad(c, expression, shape, operand_shape, buffer):
    """A gradient the runtime computes as `expression`, a new array of the broadcast
    `shape`, summed down to the operand's shape (None when not wanted)."""
    if buffer is None:
        return None
    value = c.local("grad", shape)
    c.line(f"{value} = {expression}")
    return _unbroadcast_code(c, value, operand_shape, buffer)


def _product_grad_code(c, g, factor, shape, buffer):
    """`_product_grad` as code."""
    if buffer is None:
        return None
    if g.shape == tuple(shape):
        c.line(f"multiply({g}, {factor}, out={buffer})")
        return buffer
    product = c.local("product", g.shape)
    c.line(f"{product} = {g} * {factor}")
    return _unbroadcast_code(c, product, shape, buffer)


class Div(Add):
    """y = a / b; da = g / b, db = −g·y / b"""

    name, symbol = "Div", "÷"

    def forward(self, attrs, a, b, out=None):
        return np.divide(a, b, out=out)

    def backward(self, attrs, g, out, a, b, into=(None, None)):
        da = _unbroadcast(g / b, a.shape, into[0]) if into[0] is not False else None
        db = _unbroadcast(-g * out / b, b.shape, into[1]) if into[1] is not False else None
        return da, db

    def forward_code(self, c, attrs, out, a, b):
        c.line(f"divide({a}, {b}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, a, b, into):
        return (_expression_grad(c, f"{g} / {b}", out.shape, a.shape, into[0]),
                _expression_grad(c, f"-{g} * {out} / {b}", out.shape, b.shape, into[1]))


class Pow(Add):
    """y = a ** b; da = g·b·a^(b−1); db = g·y·ln a (taken as 0 where a ≤ 0)"""

    name, symbol = "Pow", "**"

    def forward(self, attrs, a, b, out=None):
        return np.power(a, b, out=out)

    def backward(self, attrs, g, out, a, b, into=(None, None)):
        da = db = None
        if into[0] is not False:
            da = _unbroadcast(g * b * np.power(a, b - 1.0), a.shape, into[0])
        if into[1] is not False:  # skipped for `x ** 2`, whose exponent is a constant
            safe = np.where(a > 0, a, 1.0)
            log_a = np.where(a > 0, np.log(safe), 0.0)
            db = _unbroadcast(g * out * log_a, b.shape, into[1])
        return da, db

    def forward_code(self, c, attrs, out, a, b):
        c.line(f"power({a}, {b}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, a, b, into):
        da = _expression_grad(c, f"{g} * {b} * power({a}, {b} - 1.0)", out.shape, a.shape,
                              into[0])
        db = None
        if into[1] is not None:
            log_a = c.local("log_a", a.shape)
            c.line(f"{log_a} = where({a} > 0, log(where({a} > 0, {a}, 1.0)), 0.0)")
            db = _expression_grad(c, f"{g} * {out} * {log_a}", out.shape, b.shape, into[1])
        return da, db


# ---------------------------------------------------------------- shape


class Transpose(Identity):
    """y = xᵀ, every axis reversed (numpy's x.T; a 2-D matrix's transpose); dx = gᵀ"""

    name, symbol = "Transpose", "ᵀ"

    def shape(self, s, node, x):
        return tuple(reversed(x.shape))

    def forward(self, attrs, x, out=None):
        if out is None:
            return np.transpose(x)
        np.copyto(out, np.transpose(x))
        return out

    def backward(self, attrs, g, out, x, into=(None,)):
        return (self.forward(attrs, g, out=into[0]),)

    def forward_code(self, c, attrs, out, x):
        c.line(f"copyto({out}, {x}.T)")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        c.line(f"copyto({into[0]}, {g}.T)")
        return into


class Reshape(Identity):
    """y = x with the dims written after it (one of them may be `_`: whatever makes
    the element count match, as numpy's −1); dx = g with x's shape"""

    name, trailing_dims = "Reshape", True

    def shape(self, s, node, x):
        return s.reshape(node, x, node.attrs.get("dims", (None,)))

    def forward(self, attrs, x, out=None):
        shape = tuple(-1 if d is None else d for d in attrs.get("dims", (None,)))
        if out is None:
            return np.reshape(x, shape)
        np.copyto(out, np.reshape(x, out.shape))
        return out

    def backward(self, attrs, g, out, x, into=(None,)):
        if into[0] is None:
            return (np.reshape(g, np.shape(x)),)
        np.copyto(into[0], np.reshape(g, into[0].shape))
        return into

    def forward_code(self, c, attrs, out, x):
        c.line(f"copyto({out}, {x}.reshape({out.shape!r}))")
        return out

    def backward_code(self, c, attrs, g, out, x, into):
        c.line(f"copyto({into[0]}, {g}.reshape({x.shape!r}))")
        return into


class Concat(Op):
    """y = a and b joined along `axis` (default the last); da, db = g cut at a's size"""

    name, operands = "Concat", ("a", "b")
    keywords = {"axis": KeywordSpec(_int_value, -1, "a whole number")}

    def shape(self, s, node, a, b):
        return s.concat(node, a, b, node.attrs.get("axis", -1))

    def forward(self, attrs, a, b, out=None):
        return np.concatenate((a, b), axis=attrs.get("axis", -1), out=out)

    def backward(self, attrs, g, out, a, b, into=(None, None)):
        axis = attrs.get("axis", -1)
        parts = np.split(g, [np.shape(a)[axis]], axis=axis)
        return tuple(None if buffer is False else part if buffer is None else
                     _copied(buffer, part) for part, buffer in zip(parts, into))

    def forward_code(self, c, attrs, out, a, b):
        c.line(f"np.concatenate(({a}, {b}), axis={attrs.get('axis', -1)!r}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, a, b, into):
        axis = attrs.get("axis", -1)
        parts = c.local("parts", ())
        c.line(f"{parts} = np.split({g}, [{a.shape[axis]}], axis={axis!r})")
        for i, buffer in enumerate(into):
            if buffer is not None:
                c.line(f"copyto({buffer}, {parts}[{i}])")
        return into


def _copied(buffer, value):
    np.copyto(buffer, value)
    return buffer


# ---------------------------------------------------------------- linear algebra


class MatMul(Op):
    """y = a @ b, for 1-D and 2-D operands; da = g·bᵀ, db = aᵀ·g"""

    name, operands, symbol = "MatMul", ("a", "b"), "@"

    def shape(self, s, node, a, b):
        if not (s.rank(node, a, 1, 2) and s.rank(node, b, 1, 2)):
            return None
        if not s.same(node, a, -1, b, 0):
            return None
        return a.shape[:-1] + b.shape[1:]

    def multiply_adds(self, a, b) -> int:
        return math.prod(a[:-1]) * a[-1] * math.prod(b[1:])

    def operand_shape(self, s, index, a, b):
        return (s.dims.batch, b[0]) if index == 0 and len(b) == 2 else None

    def forward(self, attrs, a, b, out=None):
        if a.ndim == 2 and b.ndim == 2:
            return np.dot(a, b, out=out)
        return np.matmul(a, b, out=out)

    def backward(self, attrs, g, out, a, b, into=(None, None)):
        if a.ndim == 2 and b.ndim == 2:
            return _matmul_grads(g, a, b, into)
        a2 = a.reshape(1, -1) if a.ndim == 1 else a  # a vector is a row on the left,
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b  # a column on the right
        g2 = np.reshape(g, (a2.shape[0], b2.shape[1]))
        da, db = _matmul_grads(g2, a2, b2, tuple(False if i is False else None for i in into))
        return (None if da is None else da.reshape(a.shape),
                None if db is None else db.reshape(b.shape))

    def forward_code(self, c, attrs, out, a, b):
        call = "dot" if a.ndim == 2 and b.ndim == 2 else "matmul"
        c.line(f"{call}({a}, {b}, out={out})")
        return out

    def backward_code(self, c, attrs, g, out, a, b, into):
        if a.ndim == 2 and b.ndim == 2:
            return _matmul_grads_code(c, g, a, b, into)
        a2 = c.reshaped(a, (1, a.size) if a.ndim == 1 else a.shape)
        b2 = c.reshaped(b, (b.size, 1) if b.ndim == 1 else b.shape)
        g2 = c.reshaped(g, (a2.shape[0], b2.shape[1]))
        wanted = tuple(None if buffer is None else c.temp(operand.shape, hint="d")
                       for buffer, operand in zip(into, (a2, b2)))
        da, db = _matmul_grads_code(c, g2, a2, b2, wanted)
        for grad, buffer in zip((da, db), into):  # reshaped, as the runtime returns them
            if grad is not None:
                c.line(f"copyto({buffer}, {grad}.reshape({buffer.shape!r}))")
        return into


@lru_cache(maxsize=16)
def _ones(n: int, dtype):
    """A read-only vector of n ones (what sums by matrix product take), kept per size."""
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


def _matmul_grads(g, a, b, into):
    """g·bᵀ and aᵀ·g for 2-D operands. np.dot, not matmul: for small matrices its
    call costs half as much; it needs C-contiguous buffers of the operands' dtype,
    which the runtime's are."""
    da = np.dot(g, b.T, out=into[0]) if into[0] is not False else None
    db = np.dot(a.T, g, out=into[1]) if into[1] is not False else None
    return da, db


def _matmul_grads_code(c, g, a, b, into):
    """`_matmul_grads` as code."""
    if into[0] is not None:
        c.line(f"dot({g}, {c.transposed(b)}, out={into[0]})")
    if into[1] is not None:
        c.line(f"dot({c.transposed(a)}, {g}, out={into[1]})")
    return into[0], into[1]


class Linear(Op):
    """y = X·W + b, or X·W without b; dX = g·Wᵀ, dW = Xᵀ·g, db = g summed over the
    batch rows, as 1ᵀ·g (a matrix-vector product: on a (256, 10) g, five times faster
    than numpy's sum down the rows)"""

    name, operands, optional = "Linear", ("X", "W", "b"), 1
    folds_bias = True  # generated code may read X with a column of ones: see below

    def shape(self, s, node, x, w, b=None):
        if not (s.rank(node, x, 2) and s.rank(node, w, 2)):
            return None
        if b is not None and not s.rank(node, b, 1):
            return None
        if not s.same(node, x, 1, w, 0) or (b is not None and not s.same(node, w, 1, b, 0)):
            return None
        return (x.shape[0], w.shape[1])

    def multiply_adds(self, x, w, *b) -> int:
        return x[0] * w[0] * w[1]

    def operand_shape(self, s, index, x, w, b=None):
        return (s.dims.batch, w[0]) if index == 0 and len(w) == 2 else None

    def forward(self, attrs, x, w, b=None, out=None):
        out = np.dot(x, w, out=out)  # see _matmul_grads for why not matmul
        return out if b is None else np.add(out, b, out=out)

    def backward(self, attrs, g, out, x, w, b=None, into=(None, None, None)):
        dx, dw = _matmul_grads(g, x, w, into)  # dX is skipped for the data: costly, unused
        if b is None:
            return dx, dw
        db = np.dot(_ones(len(g), g.dtype), g, out=into[2]) if into[2] is not False else None
        return dx, dw, db

    def forward_code(self, c, attrs, out, x, w, b=None):
        c.line(f"dot({x}, {w}, out={out})" + ("" if b is None else f"; add({out}, {b}, out={out})"))
        return out

    def folded_forward_code(self, c, out, xa, wb):
        """y = [X, 1]·[W; b], for `xa` the data with a column of ones and `wb` W's
        entries followed by b's (mfc.backends.generated.WithOnes)."""
        c.line(f"dot({xa}, {wb}, out={out})  # [X, 1]·[W; b]")
        return out

    def folded_backward_code(self, c, g, xa, into_wb, into_b):
        """dW as the first rows of [X, 1]ᵀ·g, written into `into_wb` (the view of both
        gradients: faster than Xᵀ·g over X without its ones, whose rows are strided),
        then db = 1ᵀ·g over the row [X, 1]ᵀ·g summed in BLAS's own order."""
        c.line(f"dot({c.transposed(xa)}, {g}, out={into_wb})  # [X, 1]ᵀ·g: dW, db next")
        self._bias_grad_code(c, g, into_b)

    def backward_code(self, c, attrs, g, out, x, w, b=None, into=(None, None, None)):
        dx, dw = _matmul_grads_code(c, g, x, w, into)
        if b is None:
            return dx, dw
        if into[2] is not None:
            self._bias_grad_code(c, g, into[2])
        return dx, dw, into[2]

    def _bias_grad_code(self, c, g, into):
        m = g.shape[0]
        ones = c.constant(f"ones_{m}", f"ones({m}, {c.dtype!r})", (m,))
        c.line(f"dot({ones}, {g}, out={into})")


# ---------------------------------------------------------------- losses


class MSE(Op):
    """value = mean over the batch of (y − a)², both taken as columns;
    dy = (2/m)·(y − a)·g, da = −(2/m)·(y − a)·g"""

    name, operands, kind, target = "MSE", ("y", "a"), "loss", 0

    def shape(self, s, node, y, a):
        """Both operands taken as columns: equal rows, and equal columns (1 if 1-D)."""
        if not (s.rank(node, y, 1, 2) and s.rank(node, a, 1, 2)):
            return None
        if not s.same(node, y, 0, a, 0):
            return None
        y_cols = y.shape[1] if len(y.shape) == 2 else 1
        a_cols = a.shape[1] if len(a.shape) == 2 else 1
        if not s.dims.unify(y_cols, a_cols):
            y_text, a_text = s.dims.show(y_cols), s.dims.show(a_cols)
            return s.mismatch(node, f"{y.label} has {y_text} column"
                              f"{'' if y_text == '1' else 's'} but {a.label} has {a_text}",
                              y, a)
        return ()

    def shape_of_unknown(self, node):
        return ()

    def operand_shape(self, s, index, y, a):
        """Targets as the data feeds them: (N,) for one column of predictions."""
        if index != self.target or len(a) not in (1, 2):
            return None
        return (a[0],) if len(a) == 1 or s.dims.get(a[1]) == 1 else a

    def forward(self, attrs, y, a, out=None):
        diff = np.subtract(_column(y), _column(a))
        return np.vdot(diff, diff) / diff.size  # a scalar: the value needs no buffer

    def backward(self, attrs, g, out, y, a, into=(None, None)):
        da = None if into[1] is False else _column_out(into[1])
        da = np.subtract(_column(a), _column(y), out=da)  # a − y: d/da, up to the scale
        np.multiply(da, float(g) * 2.0 / da.size, out=da)  # g is one element
        dy = None
        if into[0] is not False:
            dy = np.negative(da, out=_column_out(into[0])).reshape(y.shape)
        return dy, (da.reshape(a.shape) if into[1] is not False else None)

    def forward_code(self, c, attrs, out, y, a):
        # a − y, flat: −(y − a) exactly, with the same squares, and it is what the
        # backward pass needs (so it is kept for it, not computed again)
        flat = (a.size,)
        diff = c.temp(flat, hint="diff")
        value = c.local("mse", ())
        c.line(f"subtract({c.reshaped(a, flat)}, {c.reshaped(y, flat)}, out={diff}); "
               f"{value} = vdot({diff}, {diff}) / {a.size}")
        c.notes[self, value] = diff
        return value

    def backward_code(self, c, attrs, g, out, y, a, into):
        flat = (a.size,)
        da = c.temp(flat, hint="da") if into[1] is None else c.reshaped(into[1], flat)
        scale = _scaled(c, g, 2.0 / a.size, f"float({g}) * 2.0 / {a.size}")
        c.line(f"multiply({c.notes[self, out]}, {scale}, out={da})")
        if into[0] is not None:
            c.line(f"negative({da}, out={c.reshaped(into[0], flat)})")
        return into[0], into[1]


class MAE(MSE):
    """value = mean of |y − a|, both taken as columns; da = sign(a − y)·g/m·c, dy = −da"""

    name = "MAE"

    def forward(self, attrs, y, a, out=None):
        diff = np.subtract(_column(y), _column(a))
        return np.absolute(diff, out=diff).sum() / diff.size

    def backward(self, attrs, g, out, y, a, into=(None, None)):
        da = None if into[1] is False else _column_out(into[1])
        da = np.subtract(_column(a), _column(y), out=da)
        np.sign(da, out=da)
        np.multiply(da, float(g) / da.size, out=da)
        return _loss_grads(da, y, a, into)

    def forward_code(self, c, attrs, out, y, a):
        diff = c.temp((y.size, 1), hint="diff")
        value = c.local("mae", ())
        c.line(f"subtract({c.reshaped(y, diff.shape)}, {c.reshaped(a, diff.shape)}, "
               f"out={diff}); {value} = absolute({diff}, out={diff}).sum() / {diff.size}")
        return value

    def backward_code(self, c, attrs, g, out, y, a, into):
        da = _loss_grad_buffer(c, a, into)
        scale = _scaled(c, g, 1.0 / a.size, f"float({g}) / {a.size}")
        c.line(f"subtract({c.reshaped(a, da.shape)}, {c.reshaped(y, da.shape)}, out={da}); "
               f"sign({da}, out={da}); multiply({da}, {scale}, out={da})")
        return _loss_grads_code(c, da, y, into)


class Huber(MSE):
    """value = mean of h(a − y), both taken as columns, where h(d) = d²/2 for
    |d| ≤ delta, else delta·(|d| − delta/2) (delta 1 by default; PyTorch's HuberLoss);
    da = clip(a − y, −delta, delta)·g/m·c, dy = −da"""

    name = "Huber"
    keywords = {"delta": KeywordSpec(_positive_value, 1.0, "a number above 0, such as 1.0")}

    def forward(self, attrs, y, a, out=None):
        delta = attrs.get("delta", 1.0)
        size = np.size(a)
        distance = np.subtract(_column(a), _column(y))
        np.absolute(distance, out=distance)
        near = np.minimum(distance, delta)  # the part of |d| within delta
        beyond = distance.sum() - near.sum()
        return (0.5 * np.vdot(near, near) + delta * beyond) / size

    def backward(self, attrs, g, out, y, a, into=(None, None)):
        delta = attrs.get("delta", 1.0)
        da = None if into[1] is False else _column_out(into[1])
        da = np.subtract(_column(a), _column(y), out=da)
        np.clip(da, -delta, delta, out=da)
        np.multiply(da, float(g) / da.size, out=da)
        return _loss_grads(da, y, a, into)

    def forward_code(self, c, attrs, out, y, a):
        delta = float(attrs.get("delta", 1.0))
        distance = c.temp((a.size, 1), hint="distance")
        near, value = c.local("near", distance.shape), c.local("huber", ())
        c.line(f"subtract({c.reshaped(a, distance.shape)}, {c.reshaped(y, distance.shape)}, "
               f"out={distance}); absolute({distance}, out={distance}); "
               f"{near} = minimum({distance}, {delta!r})")
        c.line(f"{value} = (0.5 * vdot({near}, {near}) + {delta!r} * ({distance}.sum() - "
               f"{near}.sum())) / {a.size}")
        return value

    def backward_code(self, c, attrs, g, out, y, a, into):
        delta = float(attrs.get("delta", 1.0))
        da = _loss_grad_buffer(c, a, into)
        scale = _scaled(c, g, 1.0 / a.size, f"float({g}) / {a.size}")
        c.line(f"subtract({c.reshaped(a, da.shape)}, {c.reshaped(y, da.shape)}, out={da}); "
               f"clip({da}, {-delta!r}, {delta!r}, out={da}); multiply({da}, {scale}, out={da})")
        return _loss_grads_code(c, da, y, into)


class BinaryCrossEntropy(MSE):
    """value = mean of softplus(z) − y·z over the logits z and the targets y in {0, 1}
    (−y·log σ(z) − (1 − y)·log(1 − σ(z)), computed from the logits so that it cannot
    overflow), both taken as columns; dz = (σ(z) − y)·g/m·c; the labels y get no
    gradient"""

    name, labels = "BinaryCrossEntropy", True

    def classes(self, shapes) -> int | None:
        return 2  # whatever the shape of the logits: one column scores both classes

    def predicted_classes(self, scores):
        return (np.asarray(scores) > 0).reshape(-1).astype(np.intp)  # σ(z) > 1/2

    def probabilities(self, scores):
        """(1 − σ(z), σ(z)) for each row's logit z: the probabilities of classes 0 and 1."""
        p = OPS["Sigmoid"].forward({}, np.asarray(scores, dtype=float).reshape(-1, 1))
        return np.hstack([1.0 - p, p])

    def forward(self, attrs, y, z, out=None):
        z = _column(z)
        return (np.logaddexp(z, 0.0).sum() - np.vdot(z, _column(y))) / z.size

    def backward(self, attrs, g, out, y, z, into=(None, None)):
        if into[1] is False:
            return None, None
        dz = _writable(np.multiply(_column(z), 0.5, out=_column_out(into[1])))  # σ(z) as
        np.tanh(dz, out=dz)                                                   # Sigmoid's
        np.multiply(dz, 0.5, out=dz)
        np.add(dz, 0.5, out=dz)
        np.subtract(dz, _column(y), out=dz)
        np.multiply(dz, float(g) / np.size(z), out=dz)
        return None, dz.reshape(np.shape(z))

    def forward_code(self, c, attrs, out, y, z):
        value = c.local("bce", ())
        column = (z.size, 1)
        c.line(f"{value} = (logaddexp({c.reshaped(z, column)}, 0.0).sum() - "
               f"vdot({c.reshaped(z, column)}, {c.reshaped(y, column)})) / {z.size}")
        return value

    def backward_code(self, c, attrs, g, out, y, z, into):
        if into[1] is None:
            return None, None
        column = (z.size, 1)
        scale = _scaled(c, g, 1.0 / z.size, f"float({g}) / {z.size}")
        dz = c.reshaped(into[1], column)
        c.line(f"multiply({c.reshaped(z, column)}, 0.5, out={dz}); tanh({dz}, out={dz}); "
               f"multiply({dz}, 0.5, out={dz}); add({dz}, 0.5, out={dz}); "
               f"subtract({dz}, {c.reshaped(y, column)}, out={dz}); "
               f"multiply({dz}, {scale}, out={dz})")
        return None, into[1]


def _loss_grads(da, y, a, into):
    """(dy, da) of a loss whose dy is −da, from da as a column."""
    dy = None
    if into[0] is not False:
        dy = np.negative(da, out=_column_out(into[0])).reshape(np.shape(y))
    return dy, (da.reshape(np.shape(a)) if into[1] is not False else None)


def _loss_grad_buffer(c, a, into):
    """Where a loss's code writes da, as a column: a's gradient buffer, or a temporary
    when only dy is wanted."""
    column = (a.size, 1)
    return c.temp(column, hint="da") if into[1] is None else c.reshaped(into[1], column)


def _loss_grads_code(c, da, y, into):
    if into[0] is not None:
        c.line(f"negative({da}, out={c.reshaped(into[0], da.shape)})")
    return into[0], into[1]


class CrossEntropy(Op):
    """value = mean over the batch of −log softmax(logits)[label];
    dlogits = (softmax(logits) − onehot(labels))·g / m; labels get no gradient"""

    name, operands, kind, target, labels = "CrossEntropy", ("labels", "logits"), "loss", 0, True

    def shape(self, s, node, labels, logits):
        if not (s.rank(node, labels, 1) and s.rank(node, logits, 2)):
            return None
        return () if s.same(node, labels, 0, logits, 0) else None

    def shape_of_unknown(self, node):
        return ()

    def operand_shape(self, s, index, labels, logits):
        return (logits[0],) if index == 0 and len(logits) == 2 else None

    def forward(self, attrs, labels, logits, out=None):
        e, sums, shifts = _exp_shifted(logits)
        picked = logits[np.arange(len(logits)), _label_indices(labels)]
        return (np.log(sums).sum() + shifts - picked.sum()) / len(logits)

    def probabilities(self, scores):
        """softmax(scores), row by row: the distribution the loss scores the labels by."""
        e, sums, _ = _exp_shifted(np.asarray(scores))
        return e / sums.reshape(-1, 1)

    def backward(self, attrs, g, out, labels, logits, into=(None, None)):
        if into[1] is False:
            return None, None
        probs, sums, _ = _exp_shifted(logits, into[1])
        scale = float(g) / len(probs)
        np.multiply(probs, np.divide(scale, sums).reshape(-1, 1), out=probs)  # softmax·g/m
        probs[np.arange(len(probs)), _label_indices(labels)] -= scale
        return None, probs

    def forward_code(self, c, attrs, out, labels, logits):
        e, sums, shifts = _exp_shifted_code(c, logits)
        rows = c.constant("rows", f"arange({logits.shape[0]})", (logits.shape[0],), "intp")
        value = c.local("cross_entropy", ())
        c.notes[self, value] = e, sums  # the backward pass reuses them, unchanged
        logs = c.temp(sums.shape, hint="logs")
        c.line(f"{value} = (add.reduce(log({sums}, out={logs}), axis=None) + {shifts} - "
               f"add.reduce({logits}[{rows}, {labels}], axis=None)) / {logits.shape[0]}")
        return value

    def backward_code(self, c, attrs, g, out, labels, logits, into):
        if into[1] is None:
            return None, None
        e, sums = c.notes[self, out]  # e^(logits − shift) and its row sums, as `forward`'s
        m = logits.shape[0]
        rows = c.constant("rows", f"arange({m})", (m,), "intp")
        scale = _scaled(c, g, 1.0 / m, f"float({g}) / {m}")
        factors = c.temp((m, 1), hint="factors")  # scale / each row's sum, as a column
        c.line(f"divide({scale}, {c.reshaped(sums, (m, 1))}, out={factors}); "
               f"multiply({e}, {factors}, out={into[1]})")
        c.line(f"{into[1]}[{rows}, {labels}] -= {scale}")
        return None, into[1]


def _exp_shifted(logits, out=None):
    """(e^(logits − shift), its row sums, the shifts summed over the rows).

    Softmax is the same whatever each row is shifted by; the shift only keeps e^x
    finite and the sums away from 0. Each row's max is the safe shift, but on a (256, 10)
    batch that reduction costs more than the rest of the loss, so the logits go
    unshifted when they are small enough for e^x to stay finite and every row's sum is
    comfortably above underflow; otherwise each row is shifted by its max. Row sums
    come from a matrix-vector product, five times faster than sum(axis=1).
    """
    ones = np.ones(logits.shape[1], logits.dtype)
    if logits.max() < _exp_limit(logits.dtype):
        e = np.exp(logits, out=out)
        sums = np.dot(e, ones)
        if sums.min() > 1e-30:  # float32 is normal down to 1e-38
            return e, sums, 0.0
    shift = logits.max(axis=1, keepdims=True)
    e = np.subtract(logits, shift, out=out)
    np.exp(e, out=e)
    return e, np.dot(e, ones), shift.sum()


def _scaled(c, g, constant: float, expression: str):
    """A loss's scale of its upstream gradient `g`: `constant` (its value for g = 1,
    computed as `expression` would) when g is the loss's own gradient of ones, else a
    local assigned `expression`."""
    if g.ones:
        return repr(constant)
    scale = c.local("scale", ())
    c.line(f"{scale} = {expression}")
    return scale


def _exp_shifted_code(c, logits):
    """`_exp_shifted` as code: (Vars of e, its row sums, the shifts summed)."""
    m, k = logits.shape
    e, sums = c.temp(logits.shape, hint="e"), c.temp((m,), hint="sums")
    ones = c.constant("ones_k", f"ones({k}, {c.dtype!r})", (k,))
    small, shifts = c.local("small", ()), c.local("shifts", ())
    c.line(f"{small} = maximum.reduce({logits}, axis=None) < {_exp_limit(np.dtype(c.dtype))!r}")
    with c.block(f"if {small}:"):
        c.line(f"exp({logits}, out={e}); dot({e}, {ones}, out={sums}); "
               f"{small} = minimum.reduce({sums}, axis=None) > 1e-30")
    with c.block(f"if {small}:"):
        c.line(f"{shifts} = 0.0")
    with c.block("else:"):
        shift = c.local("shift", (m, 1))
        c.line(f"{shift} = {logits}.max(axis=1, keepdims=True)")
        c.line(f"subtract({logits}, {shift}, out={e}); exp({e}, out={e}); "
               f"dot({e}, {ones}, out={sums}); {shifts} = {shift}.sum()")
    return e, sums, shifts


@lru_cache(maxsize=8)
def _exp_limit(dtype) -> float:
    """A logit below which e^x, summed over any row, stays finite (638 for float64)."""
    return 0.9 * math.log(np.finfo(dtype).max)


def _label_indices(labels):
    """Labels as indices (a view when they are integers already)."""
    return labels.astype(np.intp, copy=False).reshape(-1)


USER_OPS = tuple(name for name, op in OPS.items() if op.user)  # the ops a spec names
