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
into its place in the flat gradient vector. The same numpy calls in the same order as
the node runtime, without its Python per node: the losses and params are those of
`--backend miniflow`, to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfc.backends import miniflow
from mfc.codegen import Emitter, Names, Var, link, numpy_namespace, setup_lines

_KEPT_SIGNATURES = miniflow._KEPT_SIGNATURES
NOISE = "#noise"  # the slot of the network's Noise: no node's name starts with '#'


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
    code: object = field(default=None, repr=False)  # the compiled text, once compiled

    def build(self, network, sample=None, optimizer=None) -> dict:
        if self.code is None:
            self.code = compile(self.text, "<mfc generated step>", "exec")
        scope = numpy_namespace()
        exec(self.code, scope)  # noqa: S102: our own generated source
        slots = {node.name: node for node in network.inputs}
        slots[NOISE] = network.noise  # what Dropout draws from (mfc.backends.miniflow.Noise)
        return scope["build"](network.theta, network.grad, slots, sample, optimizer)


class Network(miniflow.Network):
    """A lowered program whose passes run as generated numpy (see the module's
    docstring); everything else (params, feeds, checks) is the MiniFlow network's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sources: dict[tuple, Source] = {}
        self._passes: dict = {}

    # -- code, per signature

    def signature(self) -> tuple:
        return tuple((n.name, n.value.shape, n.value.dtype.str)
                     for n in self.inputs if n.value is not None)

    def source(self, names=(), plain: bool = False) -> Source:
        """The generated code for the Inputs' current values (written on the first
        run of their shapes), with `evaluate` returning the values of `names` too, and
        `step` writing the update out when it is `plain` (see `write`)."""
        return _kept(self._sources, (self.signature(), tuple(names), plain),
                     lambda: write(self, names, plain=plain))

    def _functions(self, names=()) -> dict:
        return _kept(self._passes, (self.signature(), tuple(names)),
                     lambda: self.source(names).build(self))

    # -- what the training loop asks of a backend

    def ready(self) -> None:
        self._training = self._functions()

    def loss_and_gradients(self) -> float:
        return self._training["loss_and_gradients"]()

    def step_function(self, sample, optimizer):
        """One whole training step as one generated function: `sample()` (if given),
        forward, backward, the optimizer's update when the loss is finite (written out
        when it is plain SGD: `optimizer.plain`); returns the loss."""
        source = self.source(plain=optimizer.plain)
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
        values = self._functions()["forward"]()
        leaves = {n.name: n.value for n in self.nodes.values()
                  if isinstance(n, miniflow.Leaf) and n.value is not None}
        return {name: np.array(value, copy=True) for name, value in {**leaves, **values}.items()}

    def gradients(self, feed: dict) -> dict[str, np.ndarray]:
        self._set(feed, self.loss_plan)
        self._functions()["loss_and_gradients"]()
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


def _reads(plan, node) -> bool:
    return any(node in n.inbound_nodes for n in plan)


# ---------------------------------------------------------------- writing the code


def write(network: miniflow.Network, names=(), only=None, plain: bool = False) -> Source:
    """The generated code of `network` for its Inputs' current values: every pass, or
    those named in `only`. `step` ends with `optimizer.update()`, or with plain SGD's
    two calls written out when `plain` (mfc.train.optim.SGD.is_plain)."""
    return _Writer(network).source(names, only, plain)


def explain(network: miniflow.Network, slots: dict | None, batch_size: int,
            plain: bool = False) -> str:
    """The source of the training step, for batches of `batch_size` rows of `slots`
    (slot → array, as `checked_slots` gives; None: no data), `plain` as `write`'s."""
    for slot, array in (slots or {}).items():
        slot.value = array[:batch_size]
    return write(network, only=("step",), plain=plain).text


class _Writer:
    """Writes each node's forward and backward code once, then the passes from them."""

    def __init__(self, network: miniflow.Network):
        self.net = network
        self.c = Emitter(Names(["build", "theta", "grad", "slots", "sample", "optimizer",
                                "update", "loss"]), network.dtype.name)
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
                slot = c.define(f"{node.name}_slot", f"slots[{node.name!r}]", ())
                var = c.local(node.name, shape, dtype)
                self.value[node] = var
                self.reads[node] = f"{var} = {slot}.value"

    def _forward(self, node) -> None:
        shape, dtype = self.shapes[node]
        out = self.c.temp(shape, dtype, hint=node.name)
        xs = [self.value[i] for i in node.inbound_nodes]
        self.value[node] = node.op.forward_code(self.c, node.attrs, out, *xs,
                                                **self._noise(node))
        self.forward_code[node] = [f"# {node.name} = {node.op.name}"
                                   f"({', '.join(i.name for i in node.inbound_nodes)})"
                                   f"  {shape}"] + self.c.take_lines()

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
        direct = self.net._direct
        into = tuple(grad_view[n] if (node, i) in direct else
                     self.c.temp(self.shapes[n][0], self.shapes[n][1], hint=f"d_{n.name}")
                     if n in self.net.needs_grad else None
                     for i, n in enumerate(node.inbound_nodes))
        xs = [self.value[i] for i in node.inbound_nodes]
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

    def source(self, names=(), only=None, plain: bool = False) -> Source:
        net = self.net
        loss = self.value[net.loss]
        forward = self._body(net.loss_plan)
        finite = [f"loss = {loss}.item()", "if not isfinite(loss):", "    return loss"]
        # SGD written out, as optim.SGD._step makes it: the same two calls, without the
        # method calls that lead to them
        update = (["multiply(grad, optimizer.rate, out=optimizer.step); "
                   "subtract(theta, optimizer.step, out=theta)"] if plain
                  else ["optimizer.update()"])
        functions = {
            "step": ["sample()"] + forward + finite + self.backward_lines + update
            + ["return loss"],
            "loss_and_gradients": forward + finite + self.backward_lines + ["return loss"],
            "evaluate": forward + [f"return {loss}.item(), ("
                                   + "".join(f"{self.value[net.nodes[n]]}, " for n in names)
                                   + ")"],
        }
        if all(node in self.forward_code for node in net.all_plan):
            functions["forward"] = self._body(net.all_plan) + ["return {" + ", ".join(
                f"{n.name!r}: {self.value[n]}" for n in net.all_plan) + "}"]
        if only is not None:
            functions = {name: functions[name] for name in only}
        return Source(_factory(self.c.setup, functions), tuple(functions))

    def _body(self, plan) -> list[str]:
        reads = [line for node, line in self.reads.items() if _reads(plan, node)]
        return reads + [line for node in plan for line in self.forward_code[node]]


def _factory(setup, functions: dict[str, list[str]]) -> str:
    """The text of `build(theta, grad, slots, sample, optimizer)`: the setup, then each
    function as a closure over it."""
    bodies = [f"def {name}():\n" + "".join(f"    {line}\n" for line in lines)
              for name, lines in functions.items()]
    text = "def build(theta, grad, slots, sample, optimizer):\n"
    text += "".join(f"    {line}\n" for line in setup_lines(setup, "\n".join(bodies)))
    for body in bodies:
        text += "".join(f"    {line}\n" for line in body.splitlines())
    return text + "    return {" + ", ".join(f"{n!r}: {n}" for n in functions) + "}\n"


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
