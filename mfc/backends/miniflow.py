"""The MiniFlow backend: a `Program` (mfc.ir) lowered to the lesson's nodes, and run.

`lower(program)` builds one `Node` per node of the program, in its order, and wraps them
in a `Network`: forward in order, backward in reverse, each node's gradient summed over
its consumers. What each op computes comes from the registry (mfc.ops); this module only
wires nodes together and owns their memory. It reads the program's typed nodes and
nothing else: not the compiler, not the data.

Speed comes from reusing memory, not from a second copy of the ops. Each node gets a
buffer for its value and one per operand for its gradient, allocated once for each shape
of the fed inputs (a "signature": the training batch, the validation set) and written
with `out=` from then on. A node with one consumer takes that consumer's gradient array
by reference instead of summing it into zeros. The params are views into one flat
vector, and so are their gradients, so that an optimizer updates every param with a few
ufunc calls, and a consumer writes a param's gradient straight into its place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from contextlib import contextmanager

import numpy as np

from mfc.diagnostics import DataError
from mfc.text import format_shape, plural

# Signatures whose buffers are kept: training batch, validation set, and a few API feeds.
_KEPT_SIGNATURES = 4


class Node:
    """One op of the spec at run time: MiniFlow's node.

    Attributes
    ----------
    inbound_nodes : the nodes it reads, in operand order (a repeat stays: `Mul(x, x)`).
    outbound_nodes : the nodes that read it, each listed once.
    value : set by `forward()`.
    gradients : d(loss)/d(value), keyed by node: by each inbound node, this node's
        contribution to that node's gradient (summed when it reads the node twice), and
        by the node itself, its own gradient summed over every consumer. Only nodes on a
        path from a Param to the loss take part in the backward pass: data and
        constants get no gradient, because computing it would be wasted work (for the
        first layer's input, as costly as the weights' gradient).
    """

    def __init__(self, name: str, op, attrs: dict, inbound_nodes=()):
        self.name, self.op, self.attrs = name, op, attrs
        self.inbound_nodes = list(inbound_nodes)
        self.outbound_nodes: list[Node] = []
        for node in dict.fromkeys(self.inbound_nodes):
            node.outbound_nodes.append(self)
        self.value = None
        self.gradients: dict[Node, object] = {}
        # Wiring of the backward pass, set by `Network`:
        self.consumers: tuple[Node, ...] = ()  # outbound nodes that lead to the loss
        self.wanted: tuple = ()  # (operand index, node) for each inbound wanting a gradient
        self.repeats: tuple = ()  # (operand index, node) for later reads of the same node
        # Buffers of the current signature, set by `Network`:
        self.out = None  # forward's output
        self.into = None  # backward's output, one per operand (False: not wanted)
        self.total = None  # where the gradients of several consumers are summed
        self.seed = None  # d(loss)/d(loss): ones, on the loss only

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.op.name}>"

    def forward(self) -> None:
        self.value = self.op.forward(self.attrs, *[n.value for n in self.inbound_nodes],
                                     out=self.out)

    def backward(self) -> None:
        g = self.gradients[self] = self.upstream()
        self.keep(self.op.backward(self.attrs, g, self.value,
                                   *[n.value for n in self.inbound_nodes], into=self.into))

    def keep(self, grads) -> None:
        """Store the op's gradients under the inbound nodes that want them."""
        gradients = self.gradients
        for i, node in self.wanted:
            gradients[node] = grads[i]
        for i, node in self.repeats:  # rare (Mul(x, x)): a fresh array is fine
            gradients[node] = gradients[node] + grads[i]

    def upstream(self):
        """d(loss)/d(value): the consumers' contributions, summed; by reference when
        there is one consumer; ones for the loss itself."""
        consumers = self.consumers
        if len(consumers) == 1:
            return consumers[0].gradients[self]
        if not consumers:
            return self.seed
        total = np.add(consumers[0].gradients[self], consumers[1].gradients[self],
                       out=self.total)
        for node in consumers[2:]:
            np.add(total, node.gradients[self], out=total)
        return total


# The same node with its operands unpacked by name: building the argument list and the
# star call cost 0.5 µs a node in each pass, a sixth of a small network's whole step.


class Unary(Node):
    def forward(self) -> None:
        x, = self.inbound_nodes
        self.value = self.op.forward(self.attrs, x.value, out=self.out)

    def backward(self) -> None:
        x, = self.inbound_nodes
        g = self.gradients[self] = self.upstream()
        self.gradients[x] = self.op.backward(self.attrs, g, self.value, x.value,
                                             into=self.into)[0]


class Binary(Node):
    def forward(self) -> None:
        a, b = self.inbound_nodes
        self.value = self.op.forward(self.attrs, a.value, b.value, out=self.out)

    def backward(self) -> None:
        a, b = self.inbound_nodes
        g = self.gradients[self] = self.upstream()
        self.keep(self.op.backward(self.attrs, g, self.value, a.value, b.value,
                                   into=self.into))


class Ternary(Node):
    def forward(self) -> None:
        a, b, c = self.inbound_nodes
        self.value = self.op.forward(self.attrs, a.value, b.value, c.value, out=self.out)

    def backward(self) -> None:
        a, b, c = self.inbound_nodes
        g = self.gradients[self] = self.upstream()
        self.keep(self.op.backward(self.attrs, g, self.value, a.value, b.value, c.value,
                                   into=self.into))


_BY_ARITY = {1: Unary, 2: Binary, 3: Ternary}


class Noisy(Node):
    """A node whose op is active only while training (Dropout): each pass asks the
    network's `Noise` for a draw, None outside training, and its backward uses the same."""

    noise_source: "Noise"

    def forward(self) -> None:
        x, = self.inbound_nodes
        self.noise = self.noise_source.draw(self.name, np.shape(x.value))
        self.value = self.op.forward(self.attrs, x.value, out=self.out, noise=self.noise)

    def backward(self) -> None:
        x, = self.inbound_nodes
        g = self.gradients[self] = self.upstream()
        self.gradients[x] = self.op.backward(self.attrs, g, self.value, x.value,
                                             into=self.into, noise=self.noise)[0]


class Noise:
    """The draws of ops active only while training (Dropout): in a training pass, a
    uniform [0, 1) float64 array of the node's operand's shape, from a generator seeded
    by the training's seed, in the order the nodes run; None in any other pass (predict,
    eval, validation, the API's forward and gradients), where those ops are the identity.
    Both backends draw through it, so they draw alike."""

    def __init__(self, seed: int):
        self.training = False
        self.restart(seed)
        self._buffers: dict[tuple, np.ndarray] = {}

    def restart(self, seed: int) -> None:
        self.rng = np.random.default_rng((seed, 3))

    def state(self) -> dict:
        """The generator's state, for a checkpoint: the draws to come depend on it."""
        return self.rng.bit_generator.state

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def draw(self, name: str, shape: tuple):
        if not self.training:
            return None
        buffer = self._buffers.get((name, shape))
        if buffer is None:
            buffer = self._buffers[name, shape] = np.empty(shape)
        return self.rng.random(out=buffer)

    @contextmanager
    def off(self):
        """Passes that are not training (validation, a first run that sizes buffers)."""
        training, self.training = self.training, False
        try:
            yield
        finally:
            self.training = training


class Leaf(Node):
    """An Input (value fed from outside) or a Const (value set once)."""

    def forward(self) -> None:
        pass


class ParamNode(Leaf):
    """A trainable value; `value` and `total` are views into the network's flat
    vectors of params and of their gradients."""

    def backward(self) -> None:
        g = self.upstream()
        if g is not self.total:  # a consumer returned its own array, not the offered view
            np.copyto(self.total, g)
        self.gradients[self] = self.total


class Params(MutableMapping):
    """name → the live array of each Param, in topological order.

    The arrays are the network's own: writing into one (`params["W1"][...] = 0`)
    changes the network. Assigning an array copies it in, after checking its shape.
    """

    def __init__(self, arrays: dict[str, np.ndarray], where: dict[str, str]):
        self._arrays, self._where = arrays, where

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __setitem__(self, name: str, value) -> None:
        if name not in self._arrays:
            raise KeyError(f"no Param named {name!r}; the params are "
                           f"{', '.join(self._arrays) or '(none)'}")
        target, value = self._arrays[name], np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{name} has shape {target.shape} ({self._where[name]}); "
                             f"cannot assign an array of shape {value.shape}")
        target[...] = value

    def __delitem__(self, name: str) -> None:
        raise TypeError("a spec's params cannot be removed")

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.shape}" for k, v in self._arrays.items())
        return f"Params({shapes})"

    def where(self, name: str) -> str:
        """Where the Param is declared, for messages: 'declared at line 3'."""
        return self._where[name]


# ---------------------------------------------------------------- lowering


def lower(program, dtype: str | None = None, seed: int | None = None,
          network: type | None = None) -> "Network":
    """Build the MiniFlow nodes of a compiled `Program`, with its params initialised.

    Parameters
    ----------
    program : the front end's `Program`.
    dtype : 'float64' (default: the program's `dtype` setting) or 'float32'.
    seed : seeds the params' initialisation (default: the program's `seed` setting).
    network : the class of network to build (a subclass of `Network`, whose passes run
        otherwise: the numpy backend's).

    Raises
    ------
    DataError when a param's size depends on data that could not be read when the spec
    was compiled (a file not there yet).
    """
    settings = program.settings
    dtype = np.dtype(dtype or settings.dtype)
    nodes: dict[str, Node] = {}
    for record in program.nodes.values():
        nodes[record.name] = _node_class(record)(
            record.name, record.op, record.attrs, [nodes[i] for i in record.inputs])
    for node in nodes.values():
        if node.op.kind == "const":
            node.value = node.op.forward(node.attrs).astype(dtype)
    return (network or Network)(program, nodes, dtype, settings.seed if seed is None else seed)


def _node_class(record) -> type:
    op = record.op
    if op.kind == "param":
        return ParamNode
    if op.random:
        return Noisy
    if op.operands is None or op.kind == "const":
        return Leaf
    return _BY_ARITY.get(len(record.inputs), Node)  # Linear(X, W) is binary


class Network:
    """The lowered spec: nodes, params, and the passes that run them.

    Attributes
    ----------
    nodes : name → Node, in topological order.
    loss : the node to minimise.
    params : `Params`, name → live array.
    theta, grad : the flat vectors the params and their gradients are views into.
    loss_plan : the op nodes the loss depends on, in order (what training runs).
    backward_plan : the nodes between a Param and the loss, in reverse order.
    """

    def __init__(self, program, nodes: dict[str, Node], dtype, seed: int):
        self.records, self.nodes, self.dtype = program.nodes, nodes, np.dtype(dtype)
        self.loss = nodes[program.loss]
        self.inputs = [n for n in nodes.values() if n.op.kind == "data"]
        reaches_loss, from_param = _reach(nodes, self.loss)
        self.needs_grad = reaches_loss & from_param
        ops = [n for n in nodes.values() if not isinstance(n, Leaf)]
        self.all_plan = ops
        self.loss_plan = [n for n in ops if n in reaches_loss]
        self.backward_plan = [n for n in reversed(nodes.values()) if n in self.needs_grad]
        self.label_inputs = {nodes[name]: classes
                             for name, classes in program.label_inputs.items()}
        self.scores_and_labels = program.scores_and_labels()  # names, or None
        classifier = program.classifier()
        self.predicted_classes = classifier.predicted_classes if classifier else None
        self._make_params(program, seed)
        self.noise = Noise(seed)
        for node in nodes.values():
            if isinstance(node, Noisy):
                node.noise_source = self.noise
        self._wire()
        if isinstance(self.loss, ParamNode):  # `loss = x`: a param minimised directly
            self.loss.seed = np.ones_like(self.loss.value)
        self._buffers: dict[tuple, dict[Node, tuple]] = {}

    # -- building

    def _make_params(self, program, seed: int) -> None:
        """Params as views into one flat vector, initialised in order from `seed`."""
        params = [n for n in self.nodes.values() if isinstance(n, ParamNode)]
        shapes = [_param_shape(program, program.nodes[n.name]) for n in params]
        sizes = [int(np.prod(s)) for s in shapes]
        self.theta = np.zeros(sum(sizes), self.dtype)
        self.grad = np.zeros(sum(sizes), self.dtype)
        rng, start, arrays = np.random.default_rng(seed), 0, {}
        self.layout = {}  # name → (first index in theta, shape)
        for node, shape, size in zip(params, shapes, sizes):
            self.layout[node.name] = (start, shape)
            node.value = self.theta[start:start + size].reshape(shape)
            node.total = self.grad[start:start + size].reshape(shape)
            node.value[...] = node.op.initialize(node.attrs, shape, rng)
            arrays[node.name] = node.value
            start += size
        self.params = Params(arrays, {n.name: program.nodes[n.name].declared_at()
                                      for n in params})

    def _wire(self) -> None:
        """Who sends gradients to whom, and which gradients go straight into a param's
        place in the flat gradient vector."""
        needs = self.needs_grad
        for node in self.backward_plan:
            node.consumers = tuple(c for c in node.outbound_nodes if c in needs)
            first = {}
            for i, inbound in enumerate(node.inbound_nodes):
                if inbound in needs:
                    first.setdefault(inbound, i)
            node.wanted = tuple((i, n) for n, i in first.items())
            node.repeats = tuple((i, n) for i, n in enumerate(node.inbound_nodes)
                                 if n in first and first[n] != i)
        self._direct = {}  # (consumer, operand index) → the param's gradient view
        for node in self.backward_plan:
            if isinstance(node, ParamNode) and len(node.consumers) == 1:
                consumer = node.consumers[0]
                if consumer.inbound_nodes.count(node) == 1:
                    self._direct[consumer, consumer.inbound_nodes.index(node)] = node.total

    # -- buffers

    def activate(self, plan: list[Node]) -> None:
        """Point the nodes of `plan` (and the backward pass) at the buffers of the
        current inputs' shapes, allocating them on the first run of those shapes."""
        signature = tuple((n.name, n.value.shape, n.value.dtype.str)
                          for n in self.inputs if n.value is not None)
        buffers = self._buffers.pop(signature, None)
        if buffers is None:
            buffers = {}
            if len(self._buffers) >= _KEPT_SIGNATURES:
                del self._buffers[next(iter(self._buffers))]  # the least recently used
        self._buffers[signature] = buffers
        missing = [n for n in plan if n not in buffers]
        for node in plan:
            node.out, node.into, node.total, node.seed = buffers.get(node, (None,) * 4)
        if missing:
            with self.noise.off():  # one run that allocates, to learn every value's shape
                for node in plan:
                    node.forward()
            for node in missing:
                buffers[node] = self._allocate(node)
            for node in plan:
                node.out, node.into, node.total, node.seed = buffers[node]

    def _allocate(self, node: Node) -> tuple:
        out = _buffer_like(node.value)
        if node not in self.needs_grad:
            return out, None, None, None
        into = tuple(self._direct.get((node, i)) if (node, i) in self._direct else
                     _buffer_like(n.value) if n in self.needs_grad else False
                     for i, n in enumerate(node.inbound_nodes))
        total = _buffer_like(node.value) if len(node.consumers) > 1 else None
        seed = np.ones_like(node.value) if node is self.loss else None
        return out, into, total, seed

    # -- running

    def run_forward(self, plan: list[Node]) -> None:
        for node in plan:
            node.forward()

    def run_backward(self) -> None:
        """Gradients of every node between a Param and the loss; afterwards `grad`
        holds every param's gradient (zeros for a param that does not reach the loss)."""
        for node in self.backward_plan:
            node.backward()

    def loss_value(self) -> float:
        return self.loss.value.item()

    # -- what the training loop asks of a backend

    def train_mode(self, seed: int | None = None) -> None:
        """The passes that follow are training passes, until an API call: ops active
        only while training (Dropout) draw their noise, from `seed` (restarted), or
        going on with the draws so far (None)."""
        if seed is not None:
            self.noise.restart(seed)
        self.noise.training = True

    def ready(self) -> None:
        """Point the training passes at buffers for the Inputs' current shapes (a
        sampler's first batch, say)."""
        self.activate(self.loss_plan)
        self._passes = ([n.forward for n in self.loss_plan],
                        [n.backward for n in self.backward_plan])

    def loss_and_gradients(self, seed: float = 1.0) -> float:
        """Forward at the Inputs' current values, then backward: the loss, with every
        param's gradient in `grad` (left as it was when the loss is not finite: no
        update should follow). `seed` is d(loss)/d(loss), 1 but when the learning rate
        is folded in (`folds_rate`: then `grad` holds the rate times the gradient)."""
        forward, backward = self._passes
        for run in forward:
            run()
        loss = self.loss.value.item()
        if math.isfinite(loss):
            if self.loss.seed is not None:
                self.loss.seed.fill(seed)
            for run in backward:
                run()
        return loss

    def folds_rate(self, optimizer) -> bool:
        """Whether a training step seeds the backward pass with the learning rate, so
        that `grad` holds η·g and plain SGD is θ ← θ − grad, one subtraction: for plain
        SGD (`optimizer.plain`) and a loss op, whose gradient takes its seed as a
        number (`float(g)`), so that every backend folding it computes the same."""
        return optimizer.plain and self.loss.op.is_loss

    def step_function(self, sample, optimizer):
        """One whole training step: `sample()` (if given: it sets the Inputs' values),
        forward and backward, then the update when the loss is finite
        (`optimizer.update()`, or θ ← θ − grad with the rate folded in: `folds_rate`);
        returns the loss."""
        self.ready()
        if self.folds_rate(optimizer):
            return self._folded_step(sample, optimizer)
        loss_and_gradients, update = self.loss_and_gradients, optimizer.update

        def step() -> float:
            if sample is not None:
                sample()
            loss = loss_and_gradients()
            if math.isfinite(loss):
                update()
            return loss

        return step

    def _folded_step(self, sample, optimizer):
        loss_and_gradients, theta, grad = self.loss_and_gradients, self.theta, self.grad

        def step() -> float:
            if sample is not None:
                sample()
            loss = loss_and_gradients(optimizer.rate)
            if math.isfinite(loss):
                np.subtract(theta, grad, out=theta)
            return loss

        return step

    def evaluate(self, arrays: dict, names=()) -> tuple[float, list]:
        """The loss, and the values of the nodes `names` (copies), on `arrays` (slot →
        array, as `checked_slots` gives); the training batch is left as it was."""
        with self.noise.off():
            return self._evaluate(arrays, names)

    def _evaluate(self, arrays: dict, names=()) -> tuple[float, list]:
        batch = {node: node.value for node in arrays}
        for node, array in arrays.items():
            node.value = array
        self.activate(self.loss_plan)
        self.run_forward(self.loss_plan)
        loss, values = self.loss_value(), [self.nodes[n].value.copy() for n in names]
        for node, array in batch.items():
            node.value = array
        self.activate(self.loss_plan)
        return loss, values

    # -- the API's entry points: checked feeds, copied results

    def feed(self, values: dict, plan: list[Node]) -> None:
        """Set the Inputs from `values` (name → array-like), checked against their
        declared shapes, and make `plan` ready to run. Raises ValueError."""
        checked = self.checked_feed(values, plan)
        for node in self.inputs:
            node.value = checked.get(node.name)
        self.noise.training = False  # the API's passes are never training ones
        self.activate(plan)

    def checked_feed(self, values: dict, plan: list[Node]) -> dict[str, np.ndarray]:
        """`values` (name → array-like) as arrays of the network's dtype (class
        indices for CrossEntropy labels), checked: a mapping (else TypeError), whose
        every Input `plan` reads is there, with real numbers, at least one row and its
        declared shape (else ValueError)."""
        values = dict(_mapping(values))
        unknown = [k for k in values if k not in self.nodes or self.nodes[k] not in self.inputs]
        if unknown:
            names = ", ".join(n.name for n in self.inputs) or "(none)"
            raise ValueError(f"a value is given for {unknown[0]!r}, which is not an Input "
                             f"of the spec (its Inputs: {names})")
        needed = {i for n in plan for i in n.inbound_nodes if i in self.inputs}
        missing = [n.name for n in self.inputs if n in needed and n.name not in values]
        if missing:
            where = ", ".join(f"'{m}' ({self.records[m].declared_at()})" for m in missing)
            raise ValueError(f"no value is given for the Input {where}")
        batch: dict = {}
        return {node.name: self._checked(node, values[node.name], batch)
                for node in self.inputs if node.name in values}

    def checked_slots(self, values: dict) -> dict:
        """`values` (Input name → array) checked as `checked_feed` does for training,
        by the Input nodes the sampler writes to (a node's `value` is what it reads)."""
        checked = self.checked_feed(values, self.loss_plan)
        return {self.nodes[name]: array for name, array in checked.items()}

    def _checked(self, node: Node, value, batch: dict) -> np.ndarray:
        array = _real_array(node.name, value)
        if node in self.label_inputs:
            array = self._labels(node, array)
        elif array.dtype != self.dtype:
            array = array.astype(self.dtype)
        record = self.records[node.name]
        if record.shape is None:
            return array
        declared = record.shape
        problem = _shape_problem(declared, array.shape, batch)
        if problem:
            raise ValueError(f"Input '{node.name}' ({record.declared_at()}) "
                             f"has shape {format_shape(declared)}, but the value given has "
                             f"shape {array.shape}: {problem}")
        return array

    def _labels(self, node: Node, array: np.ndarray) -> np.ndarray:
        """CrossEntropy labels as indices, checked to be classes of the logits."""
        what = f"Input '{node.name}' feeds CrossEntropy labels, which must be"
        if array.size and (array.dtype.kind not in "biuf" or np.any(array != np.round(array))):
            raise ValueError(f"{what} whole numbers")
        labels = array.astype(np.intp)
        classes = self.label_inputs[node]
        low, high = (labels.min(), labels.max()) if labels.size else (0, 0)
        if low < 0 or classes is not None and high >= classes:
            wanted = f"in 0..{classes - 1}" if classes is not None else "0 or more"
            raise ValueError(f"{what} {wanted} (the logits' classes), not {low}..{high}")
        return labels

    def forward(self, feed: dict) -> dict[str, np.ndarray]:
        """The value (a copy) of every node the Inputs in `feed` let be computed, by
        name: a node that needs an Input the feed lacks (the targets, for a prediction)
        is left out, and so is that Input."""
        fed = {self.nodes[name] for name in _mapping(feed) if name in self.nodes}
        plan = [n for n in self.all_plan if n not in _needing(self.nodes, set(self.inputs) - fed)]
        self.feed(feed, plan)
        self.run_forward(plan)
        shown = set(plan) | {n for n in self.nodes.values() if isinstance(n, Leaf)
                             and (n not in self.inputs or n in fed)}
        return {n.name: np.array(n.value, copy=True) for n in self.nodes.values() if n in shown}

    def values(self, feed: dict, names) -> dict[str, np.ndarray]:
        """The values (copies) of the nodes `names`, computed from `feed` by running only
        the nodes they need. Raises as `feed` does (a ValueError for a missing Input)."""
        wanted = [self.nodes[name] for name in names]
        needed = _needed(self.nodes, wanted)
        plan = [n for n in self.all_plan if n in needed]
        self.feed(feed, plan)
        unfed = [n.name for n in wanted if n in self.inputs and n.value is None]
        if unfed:
            raise ValueError(f"no value is given for the Input '{unfed[0]}' "
                             f"({self.records[unfed[0]].declared_at()})")
        self.run_forward(plan)
        return {node.name: np.array(node.value, copy=True) for node in wanted}

    def gradients(self, feed: dict) -> dict[str, np.ndarray]:
        """d(loss)/d(param) (copies) for every Param, by name, for the Inputs in `feed`."""
        self.feed(feed, self.loss_plan)
        self.run_forward(self.loss_plan)
        self.run_backward()
        return {name: self.nodes[name].total.copy() for name in self.params}


def _mapping(feed):
    """`feed` itself when it is a mapping; TypeError otherwise."""
    if not isinstance(feed, Mapping):
        raise TypeError(f"a feed is a dict of Input name → array, not {type(feed).__name__}")
    return feed


def _real_array(name: str, value) -> np.ndarray:
    """A feed's value as an array of real numbers with some elements, or ValueError:
    complex values would lose their imaginary part and strings would be parsed, both
    silently, and a reduction over no rows has no value."""
    try:
        array = np.asarray(value)
    except ValueError as err:  # lists of different lengths, say
        raise ValueError(f"Input '{name}': the value given is not an array: {err}") from None
    if array.dtype.kind not in "biuf":
        kind = _KINDS.get(array.dtype.kind, str(array.dtype))
        raise ValueError(f"Input '{name}': the value given holds {kind}, not real numbers")
    if array.size == 0:
        raise ValueError(f"Input '{name}': the value given has shape {array.shape}, "
                         "with no elements")
    return array


_KINDS = {"c": "complex numbers", "U": "strings", "S": "bytes", "O": "Python objects",
          "M": "dates", "m": "time spans", "V": "records"}


def _buffer_like(value) -> np.ndarray:
    """An uninitialised C-contiguous array of the value's shape and dtype (empty_like
    would copy a transposed value's layout, and np.dot writes only C arrays)."""
    return np.empty(np.shape(value), np.result_type(value))


def _needed(nodes: dict[str, Node], wanted: list[Node]) -> set:
    """The nodes `wanted` depend on, themselves included."""
    needed = set(wanted)
    for node in reversed(nodes.values()):
        if node in needed:
            needed.update(node.inbound_nodes)
    return needed


def _needing(nodes: dict[str, Node], missing: set) -> set:
    """The nodes that depend on some node of `missing`, those included."""
    found = set(missing)
    for node in nodes.values():
        if any(i in found for i in node.inbound_nodes):
            found.add(node)
    return found


def _reach(nodes: dict[str, Node], loss: Node) -> tuple[set, set]:
    """The nodes the loss depends on (itself included), and the nodes that depend on
    some Param (params included): one pass each way over the order."""
    from_param: set[Node] = set()
    for node in nodes.values():
        if isinstance(node, ParamNode) or any(i in from_param for i in node.inbound_nodes):
            from_param.add(node)
    reaches_loss = {loss}
    for node in reversed(nodes.values()):
        if node in reaches_loss:
            reaches_loss.update(node.inbound_nodes)
    return reaches_loss, from_param


def _param_shape(program, record) -> tuple[int, ...]:
    if record.elements is None:
        data = program.settings.data
        raise DataError(f"the shape of {record.name} ({record.declared_at()}) depends on "
                        + (f"the data '{data}', which could not be read when the spec was "
                           "compiled" if data else "data the spec does not name"))
    return record.shape


def _shape_problem(declared: tuple, shape: tuple, batch: dict) -> str | None:
    """Why an array of `shape` cannot feed an Input declared `declared`, or None.
    `batch` remembers the first batch size seen, so every Input agrees on it."""
    if len(declared) != len(shape):
        return f"expected {plural(len(declared), 'dim')}, not {len(shape)}"
    for axis, (want, got) in enumerate(zip(declared, shape)):
        if want == "N":
            want = batch.setdefault("N", got)
            if want != got:
                return f"its batch has {got} rows but another Input's has {want}"
        elif isinstance(want, int) and want != got:
            return f"dim {axis} must be {want}, not {got}"
    return None
