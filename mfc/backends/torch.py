"""The PyTorch backend: a `Program` lowered to a `torch.nn.Module`, trained by mfc's loop.

`LOWERINGS` is the one table from op class to the torch calls that compute it, forward
only: PyTorch's autograd gives the backward pass (so the gradients here are checked
against mfc's own, hand-written ones, by a tool no one here wrote). `Module` runs a
program's nodes in order through that table, its params `nn.Parameter`s named as in the
spec.

`Network` offers the training loop what every backend offers (mfc.backends): it is
lowered as the MiniFlow backend lowers a program, so the params start from the same
initialisers and seed, live in the same flat `theta` (numpy) and take their gradients
in the same flat `grad`, and the feeds are checked the same way; the optimizers of
mfc.train update `theta` with the very code they run for numpy. On the CPU the
module's params *are* views of `theta` (torch.from_numpy shares the memory), so
nothing is copied; on another device (cuda, mps) the params are copied there before
each step and the gradients back after it, and the optimizer's update runs on the host.

When a process group of torch.distributed is up (`join_group`: `mfc run --workers N`,
or torchrun), training is data-parallel: the module is wrapped in
DistributedDataParallel, each worker takes its share of every batch (the same batches,
drawn by each worker from the same seed), each share's loss is weighted by its rows so
that DDP's mean of the gradients is the gradient of the whole batch's mean loss, and
the workers add up their weighted losses, so that every worker sees the batch's loss
and takes the same decisions (a loss that is not finite stops all of them).
"""

from __future__ import annotations

import math
import os
from functools import partial

import numpy as np

from mfc import ops
from mfc.backends import miniflow
from mfc.diagnostics import MfcError, SettingError


class Unavailable(MfcError):
    """PyTorch, or the device asked for, is missing: one line, exit 2."""


try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - the message is tested where torch is absent
    raise Unavailable("the torch backend needs PyTorch, which is not installed here: "
                      "pip install 'mfc[torch]'") from None


class WorkerLost(MfcError):
    """Another worker of a data-parallel run stopped (it crashed, or was killed): this
    one cannot go on. Nothing is saved."""

    exit_code = 1


DEVICES = ("cpu", "cuda", "mps")


# ---------------------------------------------------------------- the lowering table
# op class -> function(keywords, *operands) -> tensor, with `keywords` every keyword of
# the op, defaults filled in (and `noise=`, for an op that is `random`). Each computes
# what the op's numpy `forward` does.


def _pow(k, a, b):
    """a ** b, with mfc's gradient for b: y·ln a where a > 0, else 0 (torch's is NaN
    where a < 0). The exponent is usually a constant, and then this is torch.pow."""
    y = torch.pow(a, b)
    if not b.requires_grad:
        return y
    log_a = torch.where(a > 0, torch.log(torch.where(a > 0, a, 1.0)), 0.0).detach()
    fixed = b.detach()
    return torch.pow(a, fixed) + (b - fixed) * (y.detach() * log_a)


def _reduce(function):
    """A reduction over every element (axis None) or along one axis."""
    return lambda k, x: function(x) if k["axis"] is None else function(x, dim=k["axis"])


def _column(x):
    """Flat, as mfc's losses take both operands as columns: (m,) and (m, 1) alike."""
    return x.reshape(-1)


def _mse(k, y, a):
    diff = _column(y) - _column(a)
    return torch.mean(diff * diff)


def _binary_cross_entropy(k, y, z):
    z = _column(z)
    return torch.mean(torch.logaddexp(z, torch.zeros_like(z)) - z * _column(y).to(z.dtype))


def _dropout(k, x, noise=None):
    """x·m/(1 − rate), m = 1 where the pass's noise is ≥ rate; the identity without
    noise (any pass but a training one): Dropout's numpy forward, on the same noise."""
    if noise is None:
        return x
    kept = (noise >= k["rate"]).to(x.dtype) * (1.0 / (1.0 - k["rate"]))
    return kept * x


def _linear(k, x, w, b=None):
    y = torch.matmul(x, w)
    return y if b is None else y + b


LOWERINGS = {
    ops.Identity: lambda k, x: x,
    ops.Dropout: _dropout,  # the one op that is `random`: it takes the pass's noise
    ops.Neg: lambda k, x: torch.neg(x),
    ops.Sigmoid: lambda k, x: torch.sigmoid(x),
    ops.ReLU: lambda k, x: torch.relu(x),
    ops.LeakyReLU: lambda k, x: F.leaky_relu(x, k["alpha"]),
    ops.Tanh: lambda k, x: torch.tanh(x),
    ops.Softmax: lambda k, x: torch.softmax(x, dim=k["axis"]),
    ops.Exp: lambda k, x: torch.exp(x),
    ops.Log: lambda k, x: torch.log(x),
    ops.Sqrt: lambda k, x: torch.sqrt(x),
    ops.Abs: lambda k, x: torch.abs(x),
    ops.ELU: lambda k, x: F.elu(x, k["alpha"]),
    ops.Softplus: lambda k, x: torch.logaddexp(x, torch.zeros_like(x)),  # cannot overflow
    ops.GELU: lambda k, x: F.gelu(x),  # the exact form, erf's
    ops.Sum: _reduce(torch.sum),
    ops.Mean: _reduce(torch.mean),
    ops.Max: _reduce(torch.amax),  # amax, not max: ties share the gradient, as in mfc
    ops.Min: _reduce(torch.amin),
    ops.Add: lambda k, a, b: torch.add(a, b),
    ops.Sub: lambda k, a, b: torch.sub(a, b),
    ops.Mul: lambda k, a, b: torch.mul(a, b),
    ops.Div: lambda k, a, b: torch.div(a, b),
    ops.Pow: _pow,
    ops.Transpose: lambda k, x: torch.permute(x, tuple(reversed(range(x.dim())))),
    ops.Reshape: lambda k, x: torch.reshape(x, tuple(-1 if d is None else d for d in k["dims"])),
    ops.Concat: lambda k, a, b: torch.cat((a, b), dim=k["axis"]),
    ops.MatMul: lambda k, a, b: torch.matmul(a, b),
    ops.Linear: _linear,
    ops.MSE: _mse,
    ops.MAE: lambda k, y, a: torch.mean(torch.abs(_column(y) - _column(a))),
    ops.Huber: lambda k, y, a: F.huber_loss(_column(a), _column(y), delta=k["delta"]),
    ops.BinaryCrossEntropy: _binary_cross_entropy,
    ops.CrossEntropy: lambda k, labels, logits: F.cross_entropy(logits, labels.long()),
}


# ---------------------------------------------------------------- the module


class Module(torch.nn.Module):
    """A program as a torch.nn.Module.

    Its params are `nn.Parameter`s registered under their spec names (an anonymous
    param's `h.param1` as `h/param1`: torch refuses dots); `forward(feed)` returns the
    loss, `values(feed, names)` the values of some nodes. A feed is Input name → tensor.
    `draw(name, shape, batched)`, if given, gives the noise of an op that is `random`
    (Dropout) in a training pass (a tensor, or None outside one); `batched`: whether
    the operand's first dim is the batch.
    """

    def __init__(self, program, params: dict, dtype, draw=None):
        super().__init__()
        self.loss = program.loss
        self.params_by_name = {}
        for name, tensor in params.items():
            parameter = torch.nn.Parameter(tensor)
            self.register_parameter(name.replace(".", "/"), parameter)
            self.params_by_name[name] = parameter
        self.consts = {n.name: torch.tensor(float(n.attrs["value"]), dtype=dtype,
                                            device=tensor_device(params))
                       for n in program.nodes.values() if n.kind == "const"}
        self.steps = {n.name: (LOWERINGS[type(n.op)], n.keywords, n.inputs)
                      for n in program.nodes.values() if n.op.kind not in ops.LEAF_KINDS}
        self.random = {n.name: _batched(program.nodes[n.inputs[0]].shape)
                       for n in program.nodes.values() if n.op.random}
        self.draw = draw
        self.order = program.order
        self._plans: dict[tuple, list[str]] = {}

    def forward(self, feed: dict):
        return self.values(feed, (self.loss,))[self.loss]

    def values(self, feed: dict, names) -> dict:
        """The values of the nodes `names`, computing only the nodes they need."""
        values = {**self.params_by_name, **self.consts, **feed}
        for name in self._plan(tuple(names)):
            function, keyword_values, inputs = self.steps[name]
            operands = [values[i] for i in inputs]
            if name in self.random:
                values[name] = function(keyword_values, *operands, noise=self._noise(
                    name, operands[0]))
            else:
                values[name] = function(keyword_values, *operands)
        return {name: values[name] for name in names}

    def _noise(self, name: str, operand):
        if self.draw is None:
            return None
        return self.draw(name, tuple(operand.shape), self.random[name])

    def _plan(self, names: tuple) -> list[str]:
        if names not in self._plans:
            needed = set(names)
            for name in reversed(self.order):
                if name in needed and name in self.steps:
                    needed.update(self.steps[name][2])
            self._plans[names] = [n for n in self.order if n in needed and n in self.steps]
        return self._plans[names]


def _batched(shape) -> bool:
    return bool(shape) and shape[0] == "N"


def tensor_device(params: dict):
    return next(iter(params.values())).device if params else torch.device("cpu")


# ---------------------------------------------------------------- the network


def lower(program, dtype: str | None = None, seed: int | None = None,
          device: str | None = None) -> "Network":
    """Lower `program` to a `Network` whose passes run a torch `Module` on `device`
    ('cpu', the default, 'cuda', 'cuda:1', 'mps'). Raises Unavailable for a device
    that is not there, DataError as mfc.backends.miniflow.lower does."""
    device = checked_device(device or "cpu", np.dtype(dtype or program.settings.dtype))
    return miniflow.lower(program, dtype, seed, network=partial(Network, device=device))


def checked_device(name: str, dtype) -> "torch.device":
    """The torch device `name` names, or Unavailable saying why it cannot be used."""
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise Unavailable(f"unknown device '{name}'; the devices are {', '.join(DEVICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise Unavailable(f"--device {name}: no CUDA GPU is available to PyTorch "
                          f"{torch.__version__}" + (" (a CPU-only build)"
                                                    if torch.version.cuda is None else ""))
    if kind == "mps" and not torch.backends.mps.is_available():
        raise Unavailable(f"--device {name}: Apple's MPS is not available to PyTorch "
                          f"{torch.__version__} on this machine")
    if kind == "mps" and dtype == np.float64:
        raise Unavailable("--device mps computes in float32 only; set dtype = float32")
    if name == "cuda":  # the worker's own GPU (join_group picks it), as DDP wants it named
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


class Network(miniflow.Network):
    """A lowered program whose passes run a torch `Module` (see the module's docstring);
    params, feeds and checks are the MiniFlow network's."""

    def __init__(self, program, nodes, dtype, seed, device=None):
        super().__init__(program, nodes, dtype, seed)
        self.device = device or torch.device("cpu")
        self.shared = shares_memory(self.device)  # params are views of theta: no copies
        self.param_views = {name: _view(self.theta, start, shape)
                            for name, (start, shape) in self.layout.items()}
        self.grad_views = {name: _view(self.grad, start, shape)
                           for name, (start, shape) in self.layout.items()}
        on_device = self.param_views if self.shared else \
            {name: view.to(self.device, copy=True) for name, view in self.param_views.items()}
        self.module = Module(program, on_device, _TORCH_DTYPES[self.dtype.name], self._draw)
        self.rows = self.share = None  # of the batch, while a worker runs its share
        self.fed = [n for n in self.inputs if any(n in m.inbound_nodes for m in self.loss_plan)]
        self.group = Group.current(self.module, program)
        if self.group is not None:
            self._params_from_device()  # DDP gave every worker rank 0's params

    # -- moving values between numpy and the module

    def _tensor(self, array):
        array = np.asarray(array)
        if not array.flags.writeable:  # torch.from_numpy warns of a read-only array
            array = array.copy()
        tensor = torch.from_numpy(array)
        return tensor if self.shared else tensor.to(self.device)

    def _feed(self, inputs, rows=slice(None)) -> dict:
        """Input name → tensor of the value of each slot in `inputs` (their `rows`, for
        those with a batch dim)."""
        return {node.name: self._tensor(node.value[rows] if self._batched(node) else node.value)
                for node in inputs if node.value is not None}

    def _batched(self, node) -> bool:
        return _batched(self.records[node.name].shape)

    def _draw(self, name: str, shape: tuple, batched: bool):
        """The noise of a random op in a training pass (None in any other), from the
        network's `Noise`, as the numpy backends draw it: a worker draws the whole
        batch's and takes its share, so that the workers together draw what one would."""
        if self.share is not None and batched:
            noise = self.noise.draw(name, (self.rows,) + shape[1:])
            noise = None if noise is None else noise[self.share]
        else:
            noise = self.noise.draw(name, shape)
        return None if noise is None else self._tensor(noise)

    def _params_to_device(self) -> None:
        if not self.shared:
            with torch.no_grad():
                for name, parameter in self.module.params_by_name.items():
                    parameter.copy_(self.param_views[name])

    def _params_from_device(self) -> None:
        if not self.shared:
            with torch.no_grad():
                for name, parameter in self.module.params_by_name.items():
                    self.param_views[name].copy_(parameter)

    def _gradients_to_grad(self) -> None:
        """Each param's gradient into its place in `grad` (zeros for a param that does
        not reach the loss); the params' own `.grad` cleared for the next step."""
        for name, parameter in self.module.params_by_name.items():
            if parameter.grad is None:
                self.grad_views[name].zero_()
            else:
                self.grad_views[name].copy_(parameter.grad)
                parameter.grad = None

    # -- what the training loop asks of a backend

    def folds_rate(self, optimizer) -> bool:
        return False  # autograd seeds the backward pass with 1

    def ready(self) -> None:
        pass  # nothing to prepare: the module takes any batch shape (`step_function`,
        # the MiniFlow network's, calls it, then this network's `loss_and_gradients`)

    def loss_and_gradients(self) -> float:
        """Forward and backward at the slots' current values: the loss, and every
        param's gradient in `grad` (left as it was when the loss is not finite)."""
        self._params_to_device()
        if self.group is not None:
            return self.group.loss_and_gradients(self, self.fed)
        loss = self.module(self._feed(self.fed))
        value = loss.item()
        if math.isfinite(value):
            loss.sum().backward()  # a one-element loss of shape (1,) as well as ()
            self._gradients_to_grad()
        return value

    def evaluate(self, arrays: dict, names=()) -> tuple[float, list]:
        """The loss and copies of the values of `names` on `arrays` (slot → array);
        the slots are left as they were."""
        self._params_to_device()
        feed = {slot.name: self._tensor(array) for slot, array in arrays.items()}
        with torch.no_grad(), self.noise.off():
            values = self.module.values(feed, (self.loss.name, *names))
        return values[self.loss.name].item(), [_numpy(values[n]) for n in names]

    # -- the API's entry points

    def forward(self, feed: dict) -> dict[str, np.ndarray]:
        """Every node's value (a copy) that the Inputs in `feed` let be computed, as
        mfc.backends.miniflow's `forward` gives them."""
        fed = {self.nodes[name] for name in miniflow._mapping(feed) if name in self.nodes}
        unfed = miniflow._needing(self.nodes, set(self.inputs) - fed)
        plan = [n for n in self.all_plan if n not in unfed]
        checked = self.checked_feed(feed, plan)
        found = {n.name: np.array(n.value, copy=True) for n in self.nodes.values()
                 if isinstance(n, miniflow.Leaf) and n not in self.inputs}
        found.update({name: np.array(array, copy=True) for name, array in checked.items()})
        found.update(self._values(checked, [n.name for n in plan]))
        return {name: found[name] for name in self.nodes if name in found}

    def values(self, feed: dict, names) -> dict[str, np.ndarray]:
        """The values (copies) of the nodes `names`, running only the nodes they need;
        the training batch is left as it was."""
        wanted = [self.nodes[name] for name in names]
        needed = miniflow._needed(self.nodes, wanted)
        plan = [n for n in self.all_plan if n in needed]
        checked = self.checked_feed(feed, plan)
        unfed = [n.name for n in wanted if n in self.inputs and n.name not in checked]
        if unfed:
            raise ValueError(f"no value is given for the Input '{unfed[0]}' "
                             f"({self.records[unfed[0]].declared_at()})")
        computed = self._values(checked, [n.name for n in wanted if n in plan])
        leaves = {n.name: np.array(checked[n.name] if n in self.inputs else n.value, copy=True)
                  for n in wanted if n not in plan}
        return {name: {**leaves, **computed}[name] for name in names}

    def gradients(self, feed: dict) -> dict[str, np.ndarray]:
        """d(loss)/d(param) (copies) for every Param, by name, for the Inputs in `feed`."""
        checked = self.checked_feed(feed, self.loss_plan)
        self.noise.training = False  # the API's passes are never training ones
        self._params_to_device()
        loss = self.module({name: self._tensor(a) for name, a in checked.items()})
        params = list(self.module.params_by_name.values())
        grads = torch.autograd.grad(loss.sum(), params, allow_unused=True)
        return {name: np.zeros(p.shape, self.dtype) if g is None else _numpy(g)
                for (name, p), g in zip(self.module.params_by_name.items(), grads)}

    def _values(self, checked: dict, names) -> dict[str, np.ndarray]:
        self.noise.training = False  # the API's passes are never training ones
        self._params_to_device()
        feed = {name: self._tensor(array) for name, array in checked.items()}
        with torch.no_grad():
            return {name: _numpy(value) for name, value in self.module.values(feed, names).items()}


_TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def shares_memory(device) -> bool:
    """Whether tensors on `device` can be views of numpy's arrays (the CPU's can)."""
    return device.type == "cpu"


def _view(flat: np.ndarray, start: int, shape) -> "torch.Tensor":
    """A torch view of one param's place in a flat numpy vector (the same memory)."""
    size = math.prod(shape)
    return torch.from_numpy(flat[start:start + size].reshape(shape))


def _numpy(tensor) -> np.ndarray:
    """A numpy copy of a tensor's value, on the host."""
    return tensor.detach().cpu().numpy().copy()


# ---------------------------------------------------------------- several workers


def join_group(device: str = "cpu") -> tuple[int, int]:
    """Join the process group that torchrun (or `mfc run --workers N`) describes in the
    environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK): gloo on the
    CPU, nccl on CUDA GPUs. Returns (rank, world size)."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    else:  # workers on one machine share its cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(per_machine, 1)))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size()


def leave_group() -> None:
    """Leave the process group, once what uses it is gone: the run's
    DistributedDataParallel sits in reference cycles (network, trainer, model), and one
    still alive when the interpreter ends takes the group down from a destructor after
    the group was destroyed, which aborted a finished worker now and then ("terminate
    called without an active exception": SIGABRT)."""
    import gc

    import torch.distributed as dist

    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


class Group:
    """Data-parallel training over the current process group: DistributedDataParallel
    averages the gradients, each worker computing them on its share of each batch."""

    def __init__(self, module: Module, program):
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        self.dist, self.rank, self.size = dist, dist.get_rank(), dist.get_world_size()
        reaching = set(program.needed_by(program.loss))
        unused = any(name not in reaching for name in module.params_by_name)
        device = tensor_device(module.params_by_name)
        ids = [device] if device.type == "cuda" else None
        self.ddp = DistributedDataParallel(module, device_ids=ids,
                                           find_unused_parameters=unused)

    @classmethod
    def current(cls, module: Module, program) -> "Group | None":
        """The group when a process group with more than one worker is up, else None."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return cls(module, program)

    def share(self, rows: int) -> slice:
        """This worker's rows of a batch of `rows`: consecutive, as even as can be."""
        base, extra = divmod(rows, self.size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def loss_and_gradients(self, network: Network, inputs) -> float:
        rows = _batch_rows(network, inputs)
        if rows is not None and rows < self.size:
            raise SettingError(f"batch_size {rows} cannot be shared by {self.size} workers: "
                               f"each needs a row of every batch; use a batch_size of at "
                               f"least {self.size}, or fewer workers")
        share = self.share(rows) if rows is not None else slice(None)
        weight = (share.stop - share.start) / rows if rows is not None else 1.0 / self.size
        if rows is not None:  # the noise of a Dropout: this share of the whole batch's
            network.rows, network.share = rows, share
        try:
            loss = self.ddp(network._feed(inputs, share))
            total = (loss.detach().sum() * weight).reshape(1)
            self.dist.all_reduce(total)  # the whole batch's loss, on every worker
            # DDP's mean over the workers of the gradients of (loss · weight · workers)
            (loss.sum() * (weight * self.size)).backward()
        except RuntimeError as err:  # gloo and nccl report a lost peer so
            raise WorkerLost(f"lost contact with another worker: {_first_line(err)}") from None
        finally:
            network.rows = network.share = None
        value = total.item()
        if math.isfinite(value):
            network._gradients_to_grad()
        else:
            for parameter in network.module.params_by_name.values():
                parameter.grad = None
        return value


def _batch_rows(network: Network, inputs) -> int | None:
    batched = [n for n in inputs if network._batched(n) and n.value is not None]
    return len(batched[0].value) if batched else None


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
