"""The numpy backend: a spec's passes generated as straight-line numpy source.

The program is lowered exactly as the MiniFlow backend lowers it (the same nodes, the
same params as views into one flat vector, the same wiring of the backward pass); then,
for each signature of the fed Inputs (their shapes and dtypes: the training batch, the
validation set), each node's forward and backward *code* comes from its op
(`Op.forward_code`, `Op.backward_code`), in the order the node runtime would call them,
and the whole is compiled once into Python functions:

- `step()`: sample a batch, forward, backward, update the params; returns the loss;
- `loss_and_gradients()`: forward and backward at the Inputs' current values;
- `evaluate()`: forward to the loss (validation), with the values of some nodes;
- `forward()`: every node's value.

Every buffer is allocated once per signature, outside the functions; gradients of a
node with several consumers are summed in place; a param's gradient is written straight
into its place in the flat gradient vector; the step takes its batch in one call of the
sampler's `next()`, and plain SGD's update is written out, the learning rate folded
into the loss's gradient as the node runtime folds it (`Network.folds_rate`). The same
numpy calls in the same order as the node runtime, without its Python per node, but
for one rewrite: a Linear reading an Input whose data carries a column of ones
(`WithOnes`, `folding`) is one product [X, 1]·[W; b], and its dW the first rows of
[X, 1]ᵀ·g, used only where this BLAS gives those the bits of X·W + b and Xᵀ·g
(`_fold_is_exact`). So the losses and params are those of `--backend miniflow`, to the
last bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from mfc.backends import miniflow
from mfc.codegen import Emitter, Names, Var, link, numpy_namespace, setup_lines

_KEPT_SIGNATURES = miniflow._KEPT_SIGNATURES
NOISE = "#noise"  # the slot of the network's Noise: no node's name starts with '#'
RATE = "rate"  # d(loss)/d(loss) of a loss op: 1.0, or the learning rate folded in


def lower(program, dtype: str | None = None, seed: int | None = None) -> "Network":
    """Lower `program` as `mfc.backends.miniflow.lower` does, to a network whose passes
    are generated code. Raises DataError as that does."""
    return miniflow.lower(program, dtype, seed, network=Network)


@dataclass
class Source:
    """The generated code of one signature: the text of a factory function `build`
    that takes (theta, grad, slots, sample, optimizer) and returns its passes by name."""

    text: str
    functions: tuple[str, ...]
    folded: bool = False  # the Inputs read from `checked_slots`' slots (see WithOnes)
    sampled: tuple | None = None  # the Inputs `step` takes from `sample.next()`, in order
    code: object = field(default=None, repr=False)  # the compiled text, once compiled

    def build(self, network, sample=None, optimizer=None) -> dict:
        if self.sampled and tuple(slot.name for slot in sample.nodes) != self.sampled:
            raise ValueError(f"the step takes {self.sampled} from its sampler, which holds "
                             f"{tuple(slot.name for slot in sample.nodes)}")  # a bug
        if self.code is None:
            self.code = compile(self.text, "<mfc generated step>", "exec")
        scope = numpy_namespace()
        exec(self.code, scope)  # noqa: S102: our own generated source
        slots = {node.name: network.slot(node, self.folded) for node in network.inputs}
        slots[NOISE] = network.noise  # what Dropout draws from (mfc.backends.miniflow.Noise)
        return scope["build"](network.theta, network.grad, slots, sample, optimizer)


class WithOnes:
    """The slot of an Input whose every reader is a Linear that folds its bias into its
    weights (`folding`): its value is the batch with a column of ones appended, which
    `checked_slots` adds once to the whole data, so that each reader is one product
    [X, 1]·[W; b] and its weights' and bias' gradients one product [X, 1]ᵀ·g."""

    def __init__(self, node):
        self.node, self.name, self.value = node, node.name, None

    def __repr__(self) -> str:
        return f"<WithOnes {self.name}>"


class Network(miniflow.Network):
    """A lowered program whose passes run as generated numpy (see the module's
    docstring); everything else (params, feeds, checks) is the MiniFlow network's, but
    for the slots of the Inputs whose readers fold their bias (`WithOnes`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sources: dict[tuple, Source] = {}
        self._passes: dict = {}
        self.folded = {node: WithOnes(node) for node in folding(self)}

    # -- slots

    def checked_slots(self, values: dict) -> dict:
        """As the MiniFlow network's, but an Input whose readers fold their bias gets a
        `WithOnes` slot and its array a column of ones."""
        checked = super().checked_slots(values)
        return {self.slot(node, True): _with_ones(array) if node in self.folded else array
                for node, array in checked.items()}

    def slot(self, node, folded: bool):
        """Where the passes read `node`'s value: its `WithOnes` slot in the passes over
        `checked_slots`' arrays (`folded`: training, validation), else the node."""
        return self.folded.get(node, node) if folded else node

    # -- code, per signature

    def signature(self, folded: bool = True) -> tuple:
        slots = [self.slot(n, folded) for n in self.inputs]
        return (folded,) + tuple((s.name, s.value.shape, s.value.dtype.str)
                                 for s in slots if s.value is not None)

    def source(self, names=(), plain: bool = False, folded: bool = True,
               sampled: bool = False, only=None) -> Source:
        """The generated code for the Inputs' current values (written on the first
        run of their shapes), with `evaluate` returning the values of `names` too, and
        `plain`, `folded`, `sampled` and `only` as `write` takes them."""
        key = (self.signature(folded), tuple(names), plain, sampled, only)
        return _kept(self._sources, key, lambda: write(self, names, only, plain=plain,
                                                       folded=folded, sampled=sampled))

    def _functions(self, names=(), folded: bool = True) -> dict:
        return _kept(self._passes, (self.signature(folded), tuple(names)),
                     lambda: self.source(names, folded=folded).build(self))

    # -- what the training loop asks of a backend

    def ready(self) -> None:
        self._training = self._functions()

    def loss_and_gradients(self) -> float:
        return self._training["loss_and_gradients"]()

    def step_function(self, sample, optimizer):
        """One whole training step as one generated function: `sample()` (if given),
        forward, backward, the optimizer's update when the loss is finite (written out
        when it is plain SGD: `optimizer.plain`); returns the loss."""
        source = self.source(plain=optimizer.plain, sampled=sample is not None,
                             only=("step",))  # the other passes: `_functions`'
        return source.build(self, sample or _nothing, optimizer)["step"]

    def evaluate(self, arrays: dict, names=()) -> tuple[float, list]:
        batch = {node: node.value for node in arrays}
        for node, array in arrays.items():
            node.value = array
        try:
            with self.noise.off():
                loss, values = self._functions(names)["evaluate"]()
        finally:
            for node, array in batch.items():
                node.value = array
        return loss, [np.array(v, copy=True) for v in values]

    # -- the API's entry points

    def forward(self, feed: dict) -> dict[str, np.ndarray]:
        if isinstance(feed, dict) and {n.name for n in self.inputs} - set(feed):
            return super().forward(feed)  # an Input missing: what does not need it, node by node
        self._set(feed, self.all_plan)
        values = self._functions(folded=False)["forward"]()
        leaves = {n.name: n.value for n in self.nodes.values()
                  if isinstance(n, miniflow.Leaf) and n.value is not None}
        return {name: np.array(value, copy=True) for name, value in {**leaves, **values}.items()}

    def gradients(self, feed: dict) -> dict[str, np.ndarray]:
        self._set(feed, self.loss_plan)
        self._functions(folded=False)["loss_and_gradients"]()
        return {name: self.nodes[name].total.copy() for name in self.params}

    def _set(self, feed: dict, plan) -> None:
        checked = self.checked_feed(feed, plan)
        for node in self.inputs:
            node.value = checked.get(node.name)
        self.noise.training = False  # the API's passes are never training ones


def _kept(cache: dict, key, make):
    """`cache[key]`, made on first use; the least recently used of more than
    `_KEPT_SIGNATURES` entries is dropped (their buffers with it)."""
    value = cache.pop(key, None)
    if value is None:
        if len(cache) >= _KEPT_SIGNATURES:
            del cache[next(iter(cache))]
        value = make()
    cache[key] = value
    return value


def _nothing() -> None:
    pass


def _with_ones(array: np.ndarray) -> np.ndarray:
    return np.hstack([array, np.ones((len(array), 1), array.dtype)])


@lru_cache(maxsize=64)
def _fold_is_exact(rows: int, k: int, n: int, dtype: str) -> tuple[bool, bool]:
    """Whether this BLAS gives [X, 1]·[W; b] the bits of X·W + b, and the first rows of
    [X, 1]ᵀ·g the bits of Xᵀ·g, for these shapes: it does when it sums each entry's
    products in order, the bias's last (OpenBLAS's kernels do, for every spec in
    specs/). Only then does a fold keep the step equal to the node runtime's, so each is
    checked once per shape, on random numbers."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((rows, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    b, g = rng.standard_normal(n).astype(dtype), rng.standard_normal((rows, n)).astype(dtype)
    xa = _with_ones(x)
    return (np.array_equal(np.dot(xa, np.vstack([w, b])), np.dot(x, w) + b),
            np.array_equal(np.dot(xa.T, g)[:-1], np.dot(x.T, g)))


def folding(network: miniflow.Network) -> list:
    """The Inputs whose every reader is a Linear that can fold its bias into its
    weights: one that reads the Input as its data, with a bias, W and b Params whose
    entries lie one after the other in theta (as `W, b = Param(k, n), Param(n)` lays
    them out), so that [W; b] is one view of theta. (Their gradients are computed as
    the node runtime computes them: [X, 1]ᵀ·g would sum db in another order.)"""
    return [node for node in network.inputs if node.outbound_nodes and
            all(_folds_bias(network, reader, node) for reader in node.outbound_nodes)]


def _folds_bias(network, linear, x) -> bool:
    if not linear.op.folds_bias or len(linear.inbound_nodes) != 3:
        return False
    data, w, b = linear.inbound_nodes
    if data is not x or w is b or not all(isinstance(p, miniflow.ParamNode) for p in (w, b)):
        return False
    (w_start, w_shape), (b_start, b_shape) = network.layout[w.name], network.layout[b.name]
    return len(w_shape) == 2 and b_start == w_start + w_shape[0] * w_shape[1] \
        and tuple(b_shape) == (w_shape[1],)


def _reads(plan, node) -> bool:
    return any(node in n.inbound_nodes for n in plan)


# ---------------------------------------------------------------- writing the code


def write(network: miniflow.Network, names=(), only=None, plain: bool = False,
          folded: bool = True, sampled: bool = False) -> Source:
    """The generated code of `network` for its Inputs' current values: every pass, or
    those named in `only`. `step` ends with `optimizer.update()`, or with plain SGD's
    two calls written out when `plain` (mfc.train.optim.SGD.is_plain). With `folded`,
    the Inputs are read from the slots `checked_slots` gives, and the Linears that
    read a `WithOnes` slot fold their bias. With `sampled`, `step` takes its batch from
    `sample.next()` (mfc.train.sampling), else it calls `sample()`."""
    folds = getattr(network, "folded", {}) if folded else {}
    for node, slot in folds.items():  # the node runtime, which sizes buffers, reads X
        node.value = None if slot.value is None else slot.value[:, :-1]
    source = _Writer(network, folds).source(names, only, plain, sampled)
    source.folded = folded
    return source


def explain(network: miniflow.Network, slots: dict | None, batch_size: int,
            plain: bool = False) -> str:
    """The source of the training step, for batches of `batch_size` rows of `slots`
    (slot → array, as `checked_slots` gives; None: no data), `plain` as `write`'s."""
    for slot, array in (slots or {}).items():
        slot.value = array[:batch_size]
    return write(network, only=("step",), plain=plain, sampled=slots is not None).text


class _Writer:
    """Writes each node's forward and backward code once, then the passes from them."""

    def __init__(self, network: miniflow.Network, folds: dict):
        self.net, self.folds = network, folds
        self.c = Emitter(Names(["build", "theta", "grad", "slots", "sample", "optimizer",
                                "update", "loss", RATE]), network.dtype.name)
        self.value: dict = {}  # node → Var of its value
        self.reads: dict = {}  # Input node → (Var, the line that reads it from its slot)
        self.forward_code: dict = {}  # op node → lines
        self.noise: dict = {}  # node of an op active only while training → Var of its draw
        self.shapes = _value_shapes(network)
        self._leaves()
        for node in network.all_plan:
            if node in self.shapes:  # not one that reads an Input given no value
                self._forward(node)
        self.backward_lines = self._backward() if network.backward_plan else []

    # -- values

    def _leaves(self) -> None:
        c, net = self.c, self.net
        for name, (start, shape) in net.layout.items():
            size = int(np.prod(shape))
            self.value[net.nodes[name]] = c.define(
                name, f"theta[{start}:{start + size}].reshape({tuple(shape)!r})", shape)
        for node in net.nodes.values():
            if node.op.kind == "const":
                self.value[node] = node.op.forward_code(c, node.attrs, None)
            elif node.op.kind == "data" and node in self.shapes:
                shape, dtype = self.shapes[node]
                if node in self.folds:  # with its column of ones
                    shape = shape[:-1] + (shape[-1] + 1,)
                slot = c.define(f"{node.name}_slot", f"slots[{node.name!r}]", ())
                var = c.local(node.name, shape, dtype)
                self.value[node] = var
                self.reads[node] = f"{var} = {slot}.value"

    def _forward(self, node) -> None:
        shape, dtype = self.shapes[node]
        out = self.c.temp(shape, dtype, hint=node.name)
        if self._folding(node) and self._exact(node)[0]:
            self.value[node] = node.op.folded_forward_code(
                self.c, out, self.value[node.inbound_nodes[0]], self._stacked(node))
        else:
            xs = [self._unfolded(i) for i in node.inbound_nodes]
            self.value[node] = node.op.forward_code(self.c, node.attrs, out, *xs,
                                                    **self._noise(node))
        self.forward_code[node] = [f"# {node.name} = {node.op.name}"
                                   f"({', '.join(i.name for i in node.inbound_nodes)})"
                                   f"  {shape}"] + self.c.take_lines()

    def _folding(self, node) -> bool:
        """Whether `node` is a Linear that folds its bias (it reads a WithOnes slot)."""
        return bool(node.inbound_nodes) and node.inbound_nodes[0] in self.folds

    def _unfolded(self, node) -> Var:
        """The value of `node` without the column of ones a WithOnes slot adds."""
        var = self.value[node]
        if node not in self.folds:
            return var
        return Var(f"{var}[:, :-1]", self.shapes[node][0], var.dtype)  # a view, in place

    def _exact(self, linear) -> tuple[bool, bool]:
        """Whether its folded forward pass, and its folded gradient, give the node
        runtime's bits (`_fold_is_exact`)."""
        (rows, k), dtype = self.shapes[linear.inbound_nodes[0]]
        return _fold_is_exact(rows, k, self.shapes[linear][0][1], dtype)

    def _folds_gradient(self, linear) -> bool:
        """Whether a Linear that folds its bias writes W's gradient as the first rows of
        [X, 1]ᵀ·g, straight into [dW; db] (W and b read by it alone), then db."""
        direct = self.net._direct
        return self._folding(linear) and self._exact(linear)[1] and \
            (linear, 1) in direct and (linear, 2) in direct

    def _stacked(self, linear, vector: str = "theta") -> Var:
        """[W; b] of a Linear that folds its bias: one view of `vector` (theta, grad)."""
        _, w, b = linear.inbound_nodes
        start, (k, n) = self.net.layout[w.name]
        hint = f"{w.name}_{b.name}" if vector == "theta" else f"d_{w.name}_{b.name}"
        return self.c.define(hint, f"{vector}[{start}:{start + (k + 1) * n}]"
                             f".reshape({(k + 1, n)!r})", (k + 1, n))

    def _noise(self, node) -> dict:
        """For an op active only while training: its draw (None outside training), as
        the node runtime makes it, as the keyword its code takes."""
        if not node.op.random:
            return {}
        source = self.c.constant("noise", f"slots[{NOISE!r}]", ())
        shape = self.shapes[node.inbound_nodes[0]][0]
        draw = self.noise[node] = self.c.local(f"{node.name}_noise", shape, "float64")
        self.c.line(f"{draw} = {source}.draw({node.name!r}, {shape!r})")
        return {"noise": draw}

    # -- gradients, in the node runtime's order

    def _backward(self) -> list[str]:
        net, c = self.net, self.c
        contribution: dict = {}  # (consumer, node) → Var of that consumer's share
        grad_view = {net.nodes[name]: self._grad_view(name) for name in net.layout}
        lines: list[str] = []
        for node in net.backward_plan:
            g = self._upstream(node, contribution, grad_view)
            if isinstance(node, miniflow.ParamNode):
                if g is not grad_view[node]:
                    c.line(f"copyto({grad_view[node]}, {g})")
            else:
                self._backward_of(node, g, contribution, grad_view)
            lines += c.take_lines()
        return lines

    def _grad_view(self, name: str) -> Var:
        start, shape = self.net.layout[name]
        size = int(np.prod(shape))
        return self.c.define(f"d_{name}", f"grad[{start}:{start + size}]"
                             f".reshape({tuple(shape)!r})", shape)

    def _upstream(self, node, contribution: dict, grad_view: dict) -> Var:
        """d(loss)/d(node): its consumers' shares, summed in place (by reference when
        there is one; ones for the loss itself)."""
        c, shape = self.c, self.shapes[node][0]
        shares = [contribution[consumer, node] for consumer in node.consumers]
        if not shares and node.op.is_loss:  # a number, 1.0 or the rate (see `source`)
            return Var(RATE, shape, c.dtype)
        if not shares:
            return c.constant("seed", f"ones({tuple(shape)!r}, {c.dtype!r})", shape, ones=True)
        if len(shares) == 1:
            return shares[0]
        total = grad_view.get(node) or c.temp(shape, hint=f"d_{node.name}")
        c.line(f"add({shares[0]}, {shares[1]}, out={total})")
        for share in shares[2:]:
            c.line(f"add({total}, {share}, out={total})")
        return total

    def _backward_of(self, node, g: Var, contribution: dict, grad_view: dict) -> None:
        if self._folds_gradient(node):
            _, w, b = node.inbound_nodes
            node.op.folded_backward_code(self.c, g, self.value[node.inbound_nodes[0]],
                                         self._stacked(node, "grad"), grad_view[b])
            contribution[node, w], contribution[node, b] = grad_view[w], grad_view[b]
            return
        direct = self.net._direct
        into = tuple(grad_view[n] if (node, i) in direct else
                     self.c.temp(self.shapes[n][0], self.shapes[n][1], hint=f"d_{n.name}")
                     if n in self.net.needs_grad else None
                     for i, n in enumerate(node.inbound_nodes))
        xs = [self._unfolded(i) for i in node.inbound_nodes]
        noise = {"noise": self.noise[node]} if node in self.noise else {}
        grads = node.op.backward_code(self.c, node.attrs, g, self.value[node], *xs, into=into,
                                      **noise)
        for i, inbound in node.wanted:
            contribution[node, inbound] = grads[i]
        for i, inbound in node.repeats:  # rare (Mul(x, x)): a fresh array, as the runtime
            total = self.c.local(f"d_{inbound.name}", self.shapes[inbound][0])
            self.c.line(f"{total} = {contribution[node, inbound]} + {grads[i]}")
            contribution[node, inbound] = total

    # -- the passes

    def source(self, names=(), only=None, plain: bool = False,
               sampled: bool = False) -> Source:
        net = self.net
        loss = self.value[net.loss]
        forward = self._body(net.loss_plan)
        finite = [f"loss = {loss}.item()", "if not isfinite(loss):", "    return loss"]
        seed, update = self._update(plain)
        unseeded = [f"{RATE} = 1.0"] if self._seeded() else []
        functions = {
            "step": self._batch(sampled) + forward[len(self._read(sampled)):] + finite + seed
            + self.backward_lines + update + ["return loss"],
            "loss_and_gradients": forward + finite + unseeded + self.backward_lines
            + ["return loss"],
            "evaluate": forward + [f"return {loss}.item(), ("
                                   + "".join(f"{self.value[net.nodes[n]]}, " for n in names)
                                   + ")"],
        }
        if all(node in self.forward_code for node in net.all_plan):
            functions["forward"] = self._body(net.all_plan) + ["return {" + ", ".join(
                f"{n.name!r}: {self.value[n]}" for n in net.all_plan) + "}"]
        if only is not None:
            functions = {name: functions[name] for name in only}
        return Source(_factory(self.c.setup, functions), tuple(functions),
                      sampled=self.sampled_names() if sampled else None)

    def _seeded(self) -> bool:
        """Whether the backward pass starts from the number `rate` (a loss op's)."""
        return self.net.loss.op.is_loss and bool(self.backward_lines)

    def _update(self, plain: bool) -> tuple[list[str], list[str]]:
        """The step's seed of the backward pass, and its update: plain SGD with the
        rate folded into the seed (as the node runtime folds it: `folds_rate`) is one
        subtraction; plain SGD otherwise its two calls written out, as optim.SGD._step
        makes them (without the method calls that lead there); else the optimizer's."""
        unseeded = [f"{RATE} = 1.0"] if self._seeded() else []
        if plain and self._seeded():
            return [f"{RATE} = optimizer.rate  # folded into the gradient"], \
                ["subtract(theta, grad, out=theta)"]
        if plain:
            return unseeded, ["multiply(grad, optimizer.rate, out=optimizer.step); "
                              "subtract(theta, optimizer.step, out=theta)"]
        return unseeded, ["optimizer.update()"]

    def _body(self, plan) -> list[str]:
        return self._reads_of(plan) + [line for node in plan for line in self.forward_code[node]]

    def _reads_of(self, plan) -> list[str]:
        return [line for node, line in self.reads.items() if _reads(plan, node)]

    def _read(self, sampled: bool) -> list[str]:
        """The step's lines that read its Inputs from their slots (the forward pass's
        first), which a sampled step replaces by `_batch`."""
        return self._reads_of(self.net.loss_plan) if sampled else []

    def _batch(self, sampled: bool) -> list[str]:
        """How the step takes its batch: from the sampler's `next()`, a view per Input
        in the order `sampled_names` says (checked when it is built), or by calling
        `sample()`, which sets the slots that the forward pass reads."""
        names = self.sampled_names() if sampled else None
        if not names:
            return ["sample()"]
        values = [str(self.value[self.net.nodes[n]]) for n in names]
        return [f"{', '.join(values)}{',' if len(values) == 1 else ''} = sample.next()"]

    def sampled_names(self) -> tuple:
        """The Inputs the training step reads, in order: those a sampler holds."""
        return tuple(node.name for node in self.reads if _reads(self.net.loss_plan, node))


# The first lines of `build`: a check that ends its first basic block (see `_factory`).
_FLAT_THETA = ["if theta.ndim != 1:  # (a branch first: compiles in linear time)",
               "    raise ValueError('theta is the flat vector of the params')"]


def _factory(setup, functions: dict[str, list[str]]) -> str:
    """The text of `build(theta, grad, slots, sample, optimizer)`: the setup, then each
    function as a closure over it.

    It opens with a branch: CPython (3.11) inserts each closed-over name's MAKE_CELL
    at the head of the function's first basic block, moving the rest of that block
    each time; without a branch, that block is the whole setup, and compiling a chain
    of 8,000 ops took 4.6 s (50,000: minutes) instead of 0.6 s."""
    bodies = [[f"def {name}():", *(f"    {line}" for line in lines)]
              for name, lines in functions.items()]
    setup = setup_lines(setup, "\n".join(line for body in bodies for line in body))
    lines = ["def build(theta, grad, slots, sample, optimizer):", *_FLAT_THETA, *setup,
             *(line for body in bodies for line in body),
             "return {" + ", ".join(f"{n!r}: {n}" for n in functions) + "}"]
    return lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])


def _value_shapes(network) -> dict:
    """node → (shape, dtype) of its value for the Inputs' current values: one run of
    the node runtime's forward pass (allocating) over the nodes they can reach."""
    shapes = {}
    for node in network.nodes.values():
        if node.value is not None and isinstance(node, miniflow.Leaf):
            shapes[node] = (np.shape(node.value), np.result_type(node.value).name)
    with network.noise.off():  # a training pass's draws are the training's own
        for node in network.all_plan:
            if all(i in shapes for i in node.inbound_nodes):
                node.out = None
                node.forward()
                shapes[node] = (np.shape(node.value), np.result_type(node.value).name)
    return shapes
