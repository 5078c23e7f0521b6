"""Writing numpy source: what ops write their code into, and turning source into functions.

Generated code has two parts. The *setup* defines, once, every array the code reuses:
buffers (`empty(...)`), views of the flat params and gradients, constants. The *body*
is straight-line numpy over those names, one function per pass (forward, step, ...).
An op writes its part of a body through an `Emitter` (`c.line(...)`), asking it for
buffers (`c.temp`), views and fresh local names, so that ops never pick names
themselves. The setup and the functions are compiled together (`link`): the functions
are closures over the setup's names, which Python reads faster than globals.

Generated code calls numpy's functions by their bare names (`dot`, `add`, ...), taken
from `NUMPY_NAMES` (and the few of mfc.ops' own in `MFC_NAMES`); a spec's node named
like one of them is renamed (`Names`).
"""

from __future__ import annotations

import keyword
import re
from contextlib import contextmanager
from dataclasses import dataclass

# numpy's functions generated code calls by bare name, and Python's it uses.
NUMPY_NAMES = ("absolute", "add", "arange", "asarray", "clip", "copyto", "divide", "dot",
               "empty", "equal", "exp", "expm1", "greater", "greater_equal", "log",
               "logaddexp", "matmul", "maximum", "minimum", "multiply", "negative", "ones",
               "power", "sign", "sqrt", "subtract", "tanh", "vdot", "where", "zeros")
PYTHON_NAMES = ("isfinite", "float", "len", "range", "sum", "np")
MFC_NAMES = ("normal_cdf",)  # mfc.ops' own functions, where numpy has none (GELU's Φ)
_WORD = re.compile(r"\w+")  # a name in generated code is a whole word (see `Names`)


@dataclass(frozen=True)
class Var:
    """A value in generated code: the name it goes by, its shape and dtype, and whether
    it is defined once in the setup (`fixed`: a buffer, a param, a constant) or in
    the body (an Input's current batch, a value an op returned)."""

    name: str
    shape: tuple
    dtype: str = "float64"
    fixed: bool = False
    ones: bool = False  # every element is 1.0 (the loss's gradient of itself)

    def __str__(self) -> str:
        return self.name

    @property
    def size(self) -> int:
        size = 1
        for n in self.shape:
            size *= n
        return size

    @property
    def ndim(self) -> int:
        return len(self.shape)


class Names:
    """Unique identifiers for generated code, close to the spec's names (`l1`, `d_l1`):
    never a Python keyword, a numpy function the code calls, or a name given before."""

    def __init__(self, reserved=()):
        self.taken = set(NUMPY_NAMES) | set(PYTHON_NAMES) | set(MFC_NAMES) | set(reserved)
        self._next: dict[str, int] = {}  # base → the suffix to try first (1: none)

    def new(self, hint: str) -> str:
        base = re.sub(r"\W", "_", hint) or "v"
        if base[0].isdigit() or keyword.iskeyword(base):
            base = "_" + base
        # The suffixes tried before were taken, and stay taken: go on from there, so
        # that a thousand buffers of one hint cost a thousand tries, not half a million.
        n = self._next.get(base, 1)
        name = base if n == 1 else f"{base}_{n}"
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self._next[base] = n + 1
        self.taken.add(name)
        return name


class Emitter:
    """Where ops write their code: lines of the current body, and definitions of the
    setup (shared by every body of one generated module).

    `notes` holds what an op's forward leaves for its backward (a node's softmax, say),
    by key; it lives as long as the Emitter.
    """

    def __init__(self, names: Names, dtype: str = "float64"):
        self.names, self.dtype = names, dtype
        self.setup: list[tuple[str, str]] = []  # (name, expression), in order
        self._defined: dict[str, str] = {}  # expression → the first name bound to it
        self.lines: list[str] = []
        self.notes: dict = {}
        self._indent = 0

    # -- the body

    def line(self, text: str) -> None:
        self.lines.append("    " * self._indent + text)

    @contextmanager
    def block(self, header: str):
        """`with c.block("if ok:"):` indents the lines written inside it."""
        self.line(header)
        self._indent += 1
        try:
            yield
        finally:
            self._indent -= 1

    def local(self, hint: str, shape: tuple, dtype: str | None = None) -> Var:
        """A fresh name for a value the body assigns."""
        return Var(self.names.new(hint), tuple(shape), dtype or self.dtype)

    def take_lines(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines

    # -- the setup

    def define(self, hint: str, expression: str, shape: tuple, dtype: str | None = None) -> Var:
        """A name the setup binds once to `expression` (a buffer, a constant)."""
        var = Var(self.names.new(hint), tuple(shape), dtype or self.dtype, fixed=True)
        self.setup.append((var.name, expression))
        self._defined.setdefault(expression, var.name)
        return var

    def constant(self, hint: str, expression: str, shape: tuple, dtype: str | None = None,
                 ones: bool = False) -> Var:
        """A constant the setup defines once, shared by every op that asks for the same
        `expression` (an `arange`, a vector of ones)."""
        dtype = dtype or self.dtype
        if expression in self._defined:
            return Var(self._defined[expression], tuple(shape), dtype, fixed=True, ones=ones)
        var = self.define(hint, expression, shape, dtype)
        return Var(var.name, var.shape, dtype, fixed=True, ones=ones)

    def temp(self, shape: tuple, dtype: str | None = None, hint: str = "t") -> Var:
        """A buffer of `shape` allocated once (uninitialised)."""
        dtype = dtype or self.dtype
        return self.define(hint, f"empty({tuple(shape)!r}, {dtype!r})", shape, dtype)

    def reshaped(self, var: Var, shape: tuple) -> Var:
        """`var` seen with another shape: defined once in the setup when `var` is, else
        reshaped in the body."""
        shape = tuple(shape)
        if shape == var.shape:
            return var
        expression = f"{var}.reshape({shape!r})"
        if var.fixed:
            return self.define(f"{var}_r", expression, shape, var.dtype)
        view = self.local(f"{var}_r", shape, var.dtype)
        self.line(f"{view} = {expression}")
        return view

    def transposed(self, var: Var) -> Var:
        """`var.T`: bound once in the setup when `var` is (a param, say), else written
        in place."""
        shape = tuple(reversed(var.shape))
        if var.fixed:
            return self.constant(f"{var}_T", f"{var}.T", shape, var.dtype)
        return Var(f"{var}.T", shape, var.dtype)


def setup_lines(setup: list[tuple[str, str]], bodies: str) -> list[str]:
    """The setup's definitions that `bodies` (or a later definition) use, in order: a
    buffer an op asked for but did not use is left out.

    A name is used where it is a whole word of the text (`d_l1` does not use `l1`).
    Each text is split into its words once, which is linear in the code's length
    (searching the growing text for each name was quadratic: 15 s at 2,000 ops)."""
    used, kept = set(_WORD.findall(bodies)), []
    for name, expression in reversed(setup):
        if name in used:
            kept.append(f"{name} = {expression}")
            used.update(_WORD.findall(expression))
    return kept[::-1]


def link(source: str, factory: str, namespace: dict, *args):
    """Compile `source`, which defines the function `factory`, and call it with `args`;
    `namespace` gives the names the source reads (numpy's functions, say)."""
    scope = dict(namespace)
    exec(compile(source, f"<mfc generated {factory}>", "exec"), scope)  # noqa: S102
    return scope[factory](*args)


def numpy_namespace() -> dict:
    """numpy's functions by the bare names generated code calls them, and Python's."""
    import math

    import numpy as np

    from mfc import ops

    namespace = {name: getattr(np, name) for name in NUMPY_NAMES}
    namespace.update({name: getattr(ops, name) for name in MFC_NAMES})
    namespace.update(np=np, isfinite=math.isfinite)
    return namespace
