"""Stage 7: training a lowered spec, and its saved params.

Minibatch gradient descent as the lesson does it: per epoch, examples // batch_size
steps; each step takes a batch (`shuffle`: a fresh permutation each epoch; `resample`:
rows drawn with replacement), runs forward and backward, and updates the params. After
each epoch: `Epoch: N, Loss: L`, L the mean batch loss of the epoch. Without data, an
epoch is one step and L the loss before its update.

Nothing is lost: a loss that stops being finite ends the run (nothing should be saved
from that state); Ctrl-C finishes the current step, so the params are those a whole
step produced; params are written atomically and read without pickles.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from mfc import data as datasets
from mfc.diagnostics import DataError, Diagnostic, SpecError
from mfc.files import atomic_write

# Chosen when the spec is compiled: they pick the loss node, and the Inputs whose
# shapes the data's width fixes. `train(data=...)` may change the data, not its width.
COMPILE_TIME_SETTINGS = ("loss", "features", "targets")


class Diverged(Exception):
    """The loss became NaN or infinite; the params are left as they were before the
    step that found it, and nothing should be saved from them."""

    def __init__(self, loss: float, epoch: int, step: int, steps: int, learning_rate: float):
        if epoch == 1 and step == 1:  # no update has happened: the start is at fault
            super().__init__(f"the loss is {loss} at the starting params, before any step; "
                             "check the spec's ops and inits (a log or root of a "
                             "negative number, a division by zero)")
        else:
            super().__init__(f"the loss became {loss} in epoch {epoch}, step {step} of "
                             f"{steps}; try a smaller learning rate than {learning_rate:g}")
        self.loss, self.epoch, self.step = loss, epoch, step


class NotFinite(ArithmeticError):
    """A step's loss was NaN or infinite (the step stopped before its update)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, once the current step had finished: the params are those of a whole
    step (`step` of `steps` in `epoch`)."""

    def __init__(self, epoch: int, step: int, steps: int, losses: list[float]):
        super().__init__()
        self.epoch, self.step, self.steps, self.losses = epoch, step, steps, losses

    def where(self) -> str:
        if self.step == self.steps:
            return f"after epoch {self.epoch}"
        return f"in epoch {self.epoch} after step {self.step} of {self.steps}"


class ParamsError(Exception):
    """A params file that cannot be read or does not fit the spec: one line."""


@dataclass(frozen=True)
class Epoch:
    """What one epoch did: its mean batch loss, and on validation data (when the
    `validation` setting holds some out) the loss and, for CrossEntropy, accuracy."""

    number: int
    loss: float
    validation_loss: float | None = None
    accuracy: float | None = None

    def line(self) -> str:
        """`Epoch: N, Loss: L`, the lesson's format, then any validation fields.

        Numbers have the lesson's 3 decimals (`31.214`), except that a magnitude of
        1e9 or more is written `1.235e+12`: a run about to diverge would otherwise
        print hundreds of digits.
        """
        text = f"Epoch: {self.number}, Loss: {_number(self.loss)}"
        if self.validation_loss is not None:
            text += f", Validation loss: {_number(self.validation_loss)}"
        if self.accuracy is not None:
            text += f", Validation accuracy: {self.accuracy:.3f}"
        return text


def _number(value: float) -> str:
    return f"{value:.3e}" if abs(value) >= 1e9 else f"{value:.3f}"


# ---------------------------------------------------------------- the Python API


def train(program, *, on_epoch=None, note=None, **overrides) -> list[float]:
    """Train `program`'s params in place; return the mean batch loss of each epoch.

    Parameters
    ----------
    program : a compiled `Program`.
    on_epoch : called with an `Epoch` after each epoch.
    note : called with a one-line remark for the user (class labels remapped, say).
    overrides : train settings replacing the block's (epochs=5, seed=3, ...). `loss`,
        `features` and `targets` are fixed when the spec is compiled and cannot be
        overridden here. `data` and `target_column` can, as long as the new data has the
        width the spec was compiled for (else DataError); for other data, compile again
        with it in the train block.

    Each call starts a fresh optimizer state (momentum, adam's moments) and a fresh
    batch order from the seed; the params carry over. So two calls of 2 epochs are not
    one call of 4: pass `seed=` to vary the batches of a second call.

    Raises
    ------
    SpecError (E407) when the loss needs an Input that nothing feeds; DataError for
    unusable data; ValueError for a bad setting or a compile-time one; Diverged;
    Interrupted on Ctrl-C.
    """
    # The loss is checked for NaN and infinity at every step and stops the run with a
    # clear message; numpy's warnings on the way there would only be noise.
    with np.errstate(all="ignore"):
        return _train(program, on_epoch, note, overrides)


def _train(program, on_epoch, note, overrides) -> list[float]:
    settings = _train_settings(program, overrides)
    unfed = unfed_inputs(program, settings)
    if unfed:
        raise SpecError(unfed, program.source, program.filename)
    network = program.network(settings.dtype, settings.seed)
    prepared = prepare_data(program, network, settings, note or (lambda text: None))
    trainer = Trainer(network, settings, prepared)
    with _ctrl_c_finishes_the_step() as stop:
        return trainer.run(settings.epochs, on_epoch or (lambda epoch: None), stop)


def _train_settings(program, overrides: dict):
    fixed = [key for key in COMPILE_TIME_SETTINGS if overrides.get(key) is not None]
    if fixed:
        raise ValueError("; ".join(f"{key}: fixed when the spec is compiled (set it in "
                                   "the train block and compile again)" for key in fixed))
    return program.settings.with_overrides(**overrides)


def unfed_inputs(program, settings) -> list[Diagnostic]:
    """E407 for each Input the loss needs that neither the features nor the targets
    of the data fill."""
    import networkx as nx

    fed = {settings.features, settings.targets} if settings.data else set()
    needed = nx.ancestors(program.graph, program.loss) | {program.loss}
    return [_unfed(program, settings, name) for name in program.input_names
            if name in needed and name not in fed]


def _unfed(program, settings, name: str) -> Diagnostic:
    decl = program.graph.nodes[name]["decl"]
    if not settings.data:
        return Diagnostic("E407", f"the loss needs Input '{name}', but no data feeds it",
                          decl, help="name the data in the train block (data = \"iris\"), "
                          "or pass --data")
    return Diagnostic("E407", f"the loss needs Input '{name}', but the data feeds only "
                      f"'{settings.features}' (features) and '{settings.targets}' (targets)",
                      decl, help=f"feed it the features with `features = {name}` or the "
                      f"targets with `targets = {name}` in the train block")


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Prepared:
    """Training arrays, ready to feed: node → array, for training and validation."""

    train: dict
    validation: dict | None
    rows: int


def prepare_data(program, network, settings, note) -> Prepared | None:
    """Load the data, hold out the validation rows, standardise the features (with
    the training rows' statistics), turn CrossEntropy targets into class indices, and
    cast to the network's dtype. None when the spec trains without data."""
    if not settings.data:
        return None
    if not _fed_nodes(network, settings):
        note(f"the loss reads neither '{settings.features}' nor '{settings.targets}', so "
             f"the data '{settings.data}' goes unused: each epoch is one step")
        return None
    loaded = datasets.load(settings.data, program.base_dir, settings.target_column)
    y = loaded.y
    targets = network.nodes.get(settings.targets)
    if targets is not None and targets in network.label_inputs:
        y = _class_indices(program, network, targets, y, note)
    X, y, X_val, y_val = _held_out(loaded.X, y, settings)
    if len(X) < settings.batch_size:
        raise DataError(f"batch_size {settings.batch_size} is larger than the {len(X)} "
                        "training rows; use a smaller batch")
    validation = None if X_val is None else _feeds(program, network, settings, X_val, y_val)
    return Prepared(_feeds(program, network, settings, X, y), validation, len(X))


def _held_out(X, y, settings) -> tuple:
    """(X, y, X_val, y_val): the validation rows held out (None without `validation`),
    and the features standardised with the training rows' statistics."""
    X_val = y_val = None
    if settings.validation:
        rng = np.random.default_rng((settings.seed, 1))
        X, y, X_val, y_val = datasets.split(X, y, settings.validation, rng)
    if settings.standardize:
        X, mean, std = datasets.standardize(X)
        if X_val is not None:
            X_val = datasets.standardize(X_val, mean, std)[0]
    return X, y, X_val, y_val


def _fed_nodes(network, settings) -> dict:
    """role → Input node, for the data's features and targets that the loss reads."""
    read = {i for n in network.loss_plan for i in n.inbound_nodes}
    roles = {"features": settings.features, "targets": settings.targets}
    return {role: network.nodes[name] for role, name in roles.items()
            if name in network.nodes and network.nodes[name] in read}


def _feeds(program, network, settings, X, y) -> dict:
    """node → array for the Inputs the loss reads, checked against their shapes."""
    arrays = {}
    for role, node in _fed_nodes(network, settings).items():
        array = X if role == "features" else y
        declared = program.shapes.get(node.name)
        if role == "targets" and declared is not None and len(declared) == 2:
            array = array.reshape(-1, 1)
        arrays[node] = array
    try:
        checked = network.checked_feed({n.name: a for n, a in arrays.items()},
                                       network.loss_plan)
    except ValueError as err:
        raise DataError(f"{settings.data}: {err}") from None
    return {network.nodes[name]: array for name, array in checked.items()}


def _class_indices(program, network, targets, y, note) -> np.ndarray:
    """Targets as class indices 0..C−1 (C the logits' width): kept when they are
    already in range, else their sorted distinct values mapped to 0, 1, ..."""
    width = _logits_width(program, network, targets)
    labels, values = datasets.class_labels(y)
    in_range = values[0] >= 0 and (width is None or values[-1] < width)
    if in_range:
        return y.astype(np.intp)
    if len(values) > datasets.MAX_CLASSES:
        raise DataError(f"the targets look continuous ({len(values)} distinct values), "
                        "but CrossEntropy needs class labels; use MSE for a continuous "
                        "target")
    if width is not None and len(values) > width:
        raise DataError(f"the targets hold {len(values)} classes, but the logits give "
                        f"{width} scores per row; widen the last layer to {len(values)}")
    shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if len(values) > 6 else "")
    note(f"the targets' values {shown} are taken as the classes 0..{len(values) - 1}, "
         "in that order")
    return labels.astype(np.intp)


def _logits_width(program, network, targets) -> int | None:
    for node in targets.outbound_nodes:
        if node.op.name == "CrossEntropy" and node.inbound_nodes[0] is targets:
            shape = program.shapes.get(node.inbound_nodes[1].name)
            if shape and isinstance(shape[-1], int):
                return shape[-1]
    return None


# ---------------------------------------------------------------- batches


class _Shuffle:
    """A fresh permutation each epoch, then consecutive batches of it. The data is
    permuted once per epoch into its own buffer, so a step's batch is a view: no
    per-step copy."""

    def __init__(self, arrays: dict, batch_size: int, rng):
        self.nodes = list(arrays)
        self.sources = list(arrays.values())
        self.permuted = [np.empty_like(a) for a in self.sources]
        self.rows, self.batch_size, self.rng = len(self.sources[0]), batch_size, rng
        self.steps = self.rows // batch_size
        self.position = self.steps  # the first call shuffles

    def prime(self) -> None:
        """Give the Inputs values of the batch's shape, drawing nothing."""
        for node, source in zip(self.nodes, self.sources):
            node.value = source[:self.batch_size]

    def __call__(self) -> None:
        if self.position == self.steps:
            order = self.rng.permutation(self.rows)
            for source, permuted in zip(self.sources, self.permuted):
                source.take(order, 0, permuted)
            self.position = 0
        start = self.position * self.batch_size
        stop = start + self.batch_size
        for node, permuted in zip(self.nodes, self.permuted):
            node.value = permuted[start:stop]
        self.position += 1


class _Resample:
    """Rows drawn uniformly with replacement every step, as the lesson draws them,
    gathered into fixed batch buffers (which stay the Inputs' values).

    Generator.integers costs more than a whole small step (4 µs here) and has no
    `out=`, so the rows are floor(u·rows) for u uniform in [0, 1), drawn into a buffer:
    uniform up to a bias of order rows / 2⁵³.
    """

    def __init__(self, arrays: dict, batch_size: int, rng):
        self.pairs = [(a, a[:batch_size].copy()) for a in arrays.values()]
        for node, (_, batch) in zip(arrays, self.pairs):
            node.value = batch
        self.rows = len(next(iter(arrays.values())))
        self.steps = self.rows // batch_size
        self.uniform, self.indices = np.empty(batch_size), np.empty(batch_size, np.intp)
        self.random = rng.random

    def prime(self) -> None:
        pass  # the Inputs' values are the batch buffers already

    def __call__(self) -> None:
        self.random(out=self.uniform)
        np.multiply(self.uniform, self.rows, out=self.indices, casting="unsafe")
        for source, batch in self.pairs:
            source.take(self.indices, 0, batch, "clip")  # the method: np.take costs 1 µs more


SAMPLERS = {"shuffle": _Shuffle, "resample": _Resample}


# ---------------------------------------------------------------- optimizers
# Each works on the flat vectors of params (theta) and gradients (grad), in place.


class SGD:
    """value −= learning_rate · grad"""

    def __init__(self, theta, grad, settings):
        self.theta, self.grad, self.rate = theta, grad, settings.learning_rate
        self.step = np.empty_like(theta)

    def update(self) -> None:
        np.multiply(self.grad, self.rate, out=self.step)
        np.subtract(self.theta, self.step, out=self.theta)


class Momentum(SGD):
    """velocity = momentum · velocity − learning_rate · grad; value += velocity"""

    def __init__(self, theta, grad, settings):
        super().__init__(theta, grad, settings)
        self.momentum, self.velocity = settings.momentum, np.zeros_like(theta)

    def update(self) -> None:
        np.multiply(self.velocity, self.momentum, out=self.velocity)
        np.multiply(self.grad, self.rate, out=self.step)
        np.subtract(self.velocity, self.step, out=self.velocity)
        np.add(self.theta, self.velocity, out=self.theta)


class Adam(SGD):
    """m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²; value −= rate · m̂ / (√v̂ + ε), with
    m̂ = m / (1−β₁ᵗ), v̂ = v / (1−β₂ᵗ); β₁ is the `momentum` setting (0.9), β₂ = 0.999."""

    beta2, epsilon = 0.999, 1e-8

    def __init__(self, theta, grad, settings):
        super().__init__(theta, grad, settings)
        self.beta1, self.t = settings.momentum, 0
        self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)

    def update(self) -> None:
        self.t += 1
        m, v, s, g = self.m, self.v, self.step, self.grad
        np.multiply(m, self.beta1, out=m)
        np.multiply(g, 1.0 - self.beta1, out=s)
        np.add(m, s, out=m)
        np.multiply(v, self.beta2, out=v)
        np.multiply(g, g, out=s)
        np.multiply(s, 1.0 - self.beta2, out=s)
        np.add(v, s, out=v)
        np.sqrt(v, out=s)  # s = √v̂ + ε, then the step
        np.multiply(s, 1.0 / math.sqrt(1.0 - self.beta2 ** self.t), out=s)
        np.add(s, self.epsilon, out=s)
        np.divide(m, s, out=s)
        np.multiply(s, self.rate / (1.0 - self.beta1 ** self.t), out=s)
        np.subtract(self.theta, s, out=self.theta)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


# ---------------------------------------------------------------- the loop


class Trainer:
    """One network, its batches and its optimizer. `step()` is one whole training
    step (batch, forward, backward, update) and returns the batch loss."""

    def __init__(self, network, settings, prepared: Prepared | None):
        self.network, self.settings, self.prepared = network, settings, prepared
        self.optimizer = OPTIMIZERS[settings.optimizer](network.theta, network.grad, settings)
        self.sample = None
        if prepared is not None:
            rng = np.random.default_rng((settings.seed, 2))
            self.sample = SAMPLERS[settings.sampling](prepared.train, settings.batch_size, rng)
            self.sample.prime()  # the batch's shapes pick the buffers
        self.steps = self.sample.steps if self.sample is not None else 1
        network.activate(network.loss_plan)
        self._passes = ([n.forward for n in network.loss_plan],
                        [n.backward for n in network.backward_plan])
        self._scores = _scores_node(network)

    def step(self) -> float:
        """One training step; raises NotFinite (before the update) when the loss is
        NaN or infinite."""
        if self.sample is not None:
            self.sample()
        forward, backward = self._passes
        for run in forward:
            run()
        loss = self.network.loss.value.item()
        if not math.isfinite(loss):
            raise NotFinite(loss)
        for run in backward:
            run()
        self.optimizer.update()
        return loss

    def run(self, epochs: int, on_epoch, stop) -> list[float]:
        """Train for `epochs`; return the mean batch loss of each."""
        losses: list[float] = []
        for epoch in range(1, epochs + 1):
            losses.append(self._epoch(epoch, stop, losses))
            validation = self.validate()
            on_epoch(Epoch(epoch, losses[-1], *validation))
            if stop.requested:
                raise Interrupted(epoch, self.steps, self.steps, losses)
        return losses

    def _epoch(self, epoch: int, stop, losses: list[float]) -> float:
        """The steps of one epoch; their mean loss."""
        total = 0.0
        for step in range(1, self.steps + 1):
            total += self._checked_step(epoch, step)
            if stop.requested:
                raise Interrupted(epoch, step, self.steps, losses)
        return total / self.steps

    def _checked_step(self, epoch: int, step: int) -> float:
        try:
            return self.step()
        except NotFinite as err:
            raise Diverged(err.args[0], epoch, step, self.steps,
                           self.settings.learning_rate) from None

    def validate(self) -> tuple[float | None, float | None]:
        """Loss and (for CrossEntropy) accuracy on the validation rows, if any."""
        held_out = self.prepared.validation if self.prepared else None
        if not held_out:
            return None, None
        network = self.network
        batch = {node: node.value for node in held_out}
        for node, array in held_out.items():
            node.value = array
        network.activate(network.loss_plan)
        network.run_forward(network.loss_plan)
        loss, accuracy = network.loss_value(), None
        if self._scores is not None:
            scores, labels = self._scores
            accuracy = float(np.mean(scores.value.argmax(axis=1) == labels.value))
        for node, array in batch.items():
            node.value = array
        network.activate(network.loss_plan)
        return loss, accuracy


def _scores_node(network):
    """(logits, labels) of the CrossEntropy that reads fed labels, for accuracy."""
    for node in network.loss_plan:
        if node.op.name == "CrossEntropy" and node.inbound_nodes[0] in network.label_inputs:
            return node.inbound_nodes[1], node.inbound_nodes[0]
    return None


class _Stop:
    requested = False


@contextmanager
def _ctrl_c_finishes_the_step():
    """While training, the first Ctrl-C asks the loop to stop after the current step
    (so the params are never half-updated); a second one stops at once."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach only the main thread
        return

    def request(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    previous = signal.signal(signal.SIGINT, request)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


# ---------------------------------------------------------------- saved params


def save_params(path, params) -> None:
    """Write `params` (name → array) to an .npz file at `path`, atomically (see
    `mfc.files.atomic_write`): an interrupted save never leaves a corrupt file.
    Raises OSError."""
    atomic_write(path, lambda file: _write_npz(file, params))


def _write_npz(file, params) -> None:
    # Written as np.savez would, without its keyword arguments: a param may be named
    # `file` or `allow_pickle`.
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in params.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def load_params(path, params) -> None:
    """Copy the params saved at `path` into `params` (the network's). Raises
    ParamsError when the file cannot be read or its names or shapes do not match.

    The names, shapes and dtypes are read from the archive's .npy headers and checked
    before any array is: a header can claim any shape, and numpy allocates it whole.
    """
    with _params_archive(path) as archive:
        members = _params_headers(path, archive)
        _check_names(path, params, members)
        for name, (_, shape, dtype) in members.items():
            _check_header(path, params, name, shape, dtype)
        arrays = {name: _read_param(path, archive, name, member)
                  for name, (member, _, _) in members.items()}
    for name, array in arrays.items():
        params[name] = array


@contextmanager
def _params_archive(path):
    """The .npz archive at `path`, open; a ParamsError for any other file."""
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # reading a FIFO would hang
            raise ParamsError(f"{path} is not a regular file")
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file") from None
    except zipfile.BadZipFile:
        if _quietly(datasets.is_npy, path):
            raise ParamsError(f"{path} holds one array, not an .npz file of params") from None
        raise ParamsError(f"{path} is not an .npz archive of params") from None
    except OSError as err:
        raise ParamsError(f"cannot read {path}: {err.strerror or err}") from None
    with archive:
        yield archive


def _quietly(check, path) -> bool:
    try:
        return check(path)
    except OSError:
        return False


def _params_headers(path, archive) -> dict[str, tuple]:
    """param name → (archive member, shape, dtype), from the headers alone."""
    members = {}
    for member in archive.namelist():
        name = member.removesuffix(".npy")
        try:
            members[name] = (member, *datasets.npy_header(archive, member))
        except (*datasets.NPZ_ERRORS, OSError) as err:
            raise ParamsError(f"{path} is not a readable .npz archive of params: "
                              f"{name}: {err}") from None
    return members


def _check_names(path, params, members: dict) -> None:
    missing = [n for n in params if n not in members]
    extra = [n for n in members if n not in params]
    if missing or extra:
        raise ParamsError(f"{path} does not match the spec: " + "; ".join(
            ([f"it lacks {', '.join(missing)}"] if missing else []) +
            ([f"the spec has no {', '.join(extra)}"] if extra else [])))


def _check_header(path, params, name: str, shape: tuple, dtype) -> None:
    target = params[name]
    if shape != target.shape:
        raise ParamsError(f"{path}: {name} has shape {shape} there, but "
                          f"{target.shape} in the spec ({params.where(name)})")
    if dtype.kind not in "biuf":
        raise ParamsError(f"{path}: {name} holds {dtype} values, not real numbers")


def _read_param(path, archive, name: str, member: str) -> np.ndarray:
    try:
        array = datasets.read_npy(archive, member)
    except (*datasets.NPZ_ERRORS, OSError) as err:
        raise ParamsError(f"{path} is not a readable .npz archive of params: "
                          f"{name}: {err}") from None
    if not np.all(np.isfinite(array)):
        raise ParamsError(f"{path}: {name} does not hold finite real numbers")
    return array
