"""The training loop: minibatch gradient descent as the lesson does it.

Per epoch, examples // batch_size steps at the rate the schedule gives the epoch
(mfc.train.schedules); each step takes a batch (mfc.train.sampling), runs forward and
backward on the backend, and updates the params (mfc.train.optim). After each epoch:
`Epoch: N, Loss: L`, L the mean batch loss of the epoch, and early stopping's verdict
(mfc.train.stopping). Without data, an epoch is one step and L the loss before its
update. docs/training.md has the formulas.

Nothing is lost: a loss that stops being finite ends the run and sets the params back
to the end of the last epoch whose loss was finite (the start, if none was): those are
worth saving, the diverged ones are not. Ctrl-C, SIGTERM and SIGHUP (a closed terminal,
a job scheduler's stop) finish the current step, so the params are those a whole step
produced.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from mfc.diagnostics import DataError, MfcError
from mfc.settings import RETUNABLE
from mfc.text import plural
from mfc.train import optim
from mfc.train.sampling import SAMPLERS
from mfc.train.schedules import Schedule
from mfc.train.stopping import EarlyStopping


class Diverged(MfcError):
    """The loss became NaN or infinite in step `step` of `epoch`. The params are set
    back to those at the end of epoch `kept`, the last whose loss was finite (0: the
    start, when the first epoch already diverged)."""

    def __init__(self, loss: float, epoch: int, step: int, steps: int, learning_rate: float,
                 kept: int = 0, huge: str | None = None):
        """`huge`: what in the data is too large to compute with (`huge_values`)."""
        if epoch == 1 and step == 1 and huge:
            super().__init__(f"the loss is {loss} at the starting params, before any step: "
                             f"{huge}; scale the data down")
        elif epoch == 1 and step == 1:  # no update has happened: the start is at fault
            super().__init__(f"the loss is {loss} at the starting params, before any step; "
                             "check the spec's ops and inits (a log or root of a "
                             "negative number, a division by zero)")
        else:
            super().__init__(f"the loss became {loss} in epoch {epoch}, step {step} of "
                             f"{steps}; try a smaller learning rate than {learning_rate:g}")
        self.loss, self.epoch, self.step, self.kept = loss, epoch, step, kept

    exit_code = 1


def huge_values(arrays: dict | None, dtype: str) -> str | None:
    """Which of the data's `arrays` (by Input name) holds a value too large to compute
    with in `dtype` (past its largest, or its square past it, as an MSE squares it),
    said for a message; None if none."""
    largest = float(np.finfo(dtype).max)
    for name, array in (arrays or {}).items():
        if array.dtype.kind == "f" and array.size:
            peak = float(np.max(np.abs(array)))
            if peak > math.sqrt(largest):
                return (f"the data's {name} holds values as large as {peak:.3g}, " +
                        (f"more than {dtype} holds" if peak > largest else
                         f"whose squares overflow {dtype}"))
    return None


class NotFinite(ArithmeticError):
    """A step's loss was NaN or infinite (the step stopped before its update)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, SIGHUP: `signum`), once the current step had finished: the
    params are those of a whole step (`step` of `steps` in `epoch`). `summary`: the
    epochs the run had finished (a `Summary`)."""

    summary = None

    def __init__(self, epoch: int, step: int, steps: int, losses: list[float],
                 signum: int = signal.SIGINT):
        super().__init__()
        self.epoch, self.step, self.steps, self.losses = epoch, step, steps, losses
        self.signum = signum

    def where(self) -> str:
        if self.step == self.steps:
            return f"after epoch {self.epoch}"
        return f"in epoch {self.epoch} after step {self.step} of {self.steps}"


class StoppedAtOnce(KeyboardInterrupt):
    """A second Ctrl-C (SIGTERM, SIGHUP) while the loop was finishing its step."""

    def __init__(self, signum: int):
        super().__init__()
        self.signum = signum


@dataclass(frozen=True)
class Epoch:
    """What one epoch did: its mean batch loss, and on validation data (when the
    `validation` setting holds some out) the loss and, for CrossEntropy, accuracy; the
    learning rate it ran at, and how long it took."""

    number: int
    loss: float
    validation_loss: float | None = None
    accuracy: float | None = None
    learning_rate: float | None = None
    seconds: float | None = None
    rate_shown: bool = field(default=False, compare=False)  # in the line: it changes

    def line(self) -> str:
        """`Epoch: N, Loss: L`, the lesson's format, then any validation fields and,
        when a schedule changes it, the learning rate.

        Numbers have the lesson's 3 decimals (`31.214`), except that a magnitude of
        1e9 or more is written `1.235e+12`: a run about to diverge would otherwise
        print hundreds of digits.
        """
        text = f"Epoch: {self.number}, Loss: {number(self.loss)}"
        if self.validation_loss is not None:
            text += f", Validation loss: {number(self.validation_loss)}"
        if self.accuracy is not None:
            text += f", Validation accuracy: {self.accuracy:.3f}"
        if self.rate_shown and self.learning_rate is not None:
            text += f", Learning rate: {self.learning_rate:.4g}"
        return text

    @property
    def watched(self) -> float:
        """The loss that picks the best epoch: on validation data if any."""
        return self.loss if self.validation_loss is None else self.validation_loss


def number(value: float) -> str:
    """A loss as the epoch lines write it."""
    return f"{value:.3e}" if abs(value) >= 1e9 else f"{value:.3f}"


@dataclass(frozen=True)
class Summary:
    """How a call of `Trainer.run` ended: its epochs, the best one, why it stopped."""

    first: int  # the first epoch it ran (a resumed run does not start at 1)
    last: int
    planned: int
    seconds: float
    best: Epoch | None
    final: Epoch | None
    stopped_early: int | None = None  # the patience that stopped it
    restored: bool = False
    interrupted: bool = False

    def line(self) -> str:
        """One line: why it ended, epochs run, time, best epoch, final and best
        (validation) loss."""
        parts = [f"{self._head()}, {_duration(self.seconds)}"]
        if self.best is not None:
            what = "validation loss" if self.best.validation_loss is not None else "loss"
            kept = ", its params kept" if self.restored else ""
            parts.append(f"best epoch {self.best.number} ({what} "
                         f"{number(self.best.watched)}){kept}")
            parts.append(f"final {what} {number(self.final.watched)}")
        return "; ".join(parts)

    def _head(self) -> str:
        if self.stopped_early:
            return (f"Stopped early at epoch {self.last} of {self.planned} (no better "
                    f"validation loss for {plural(self.stopped_early, 'epoch')})")
        ran = self.last - self.first + 1
        epochs = plural(ran, "epoch") if self.first == 1 or ran < 1 else \
            f"epochs {self.first}-{self.last}"
        if self.interrupted:
            return f"Interrupted after {epochs} of {self.planned}"
        return f"Done: {epochs}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


# ---------------------------------------------------------------- the loop


def train(network, settings, prepared, on_epoch=None) -> list[float]:
    """Train `network` (a lowered program) in place with `settings` on `prepared` data
    (mfc.data.prepare; None to train without data); return the mean batch loss of each
    epoch. `on_epoch` is called with an `Epoch` after each.

    Raises DataError when the data does not fit the network's Inputs, Diverged when the
    loss stops being finite, Interrupted on Ctrl-C.
    """
    trainer = Trainer(network, settings, prepared)
    trainer.fit(settings.epochs, on_epoch)
    return [epoch.loss for epoch in trainer.history]


def _fields(epoch: Epoch) -> dict:
    """An Epoch as the checkpoint keeps it."""
    return {"number": epoch.number, "loss": epoch.loss,
            "validation_loss": epoch.validation_loss, "accuracy": epoch.accuracy,
            "learning_rate": epoch.learning_rate, "seconds": epoch.seconds}


def fed_slots(network, settings, prepared):
    """The prepared arrays by the network's Input slots, checked against the Inputs'
    shapes and cast to the network's dtype (a DataError naming the data, if they
    do not fit)."""
    if prepared is None:
        return None
    try:
        return {part: network.checked_slots(arrays) if arrays is not None else None
                for part, arrays in (("train", prepared.train),
                                     ("validation", prepared.validation))}
    except ValueError as err:
        raise DataError(f"{settings.data}: {err}") from None


class Trainer:
    """One network, its batches, its optimizer, its schedule, its early stopping and its
    history. `step()` is one whole training step (batch, forward, backward, update) and
    returns the batch loss; `run` runs epochs, and a second `run` goes on where the
    first stopped."""

    def __init__(self, network, settings, prepared):
        self.network, self.settings, self.prepared = network, settings, prepared
        fed = fed_slots(network, settings, prepared)
        self.validation = fed["validation"] if fed else None
        self.sample = None
        if fed is not None:
            rng = np.random.default_rng((settings.seed, 2))
            self.sample = SAMPLERS[settings.sampling](fed["train"], settings.batch_size, rng)
            self.sample.prime()  # the batch's shapes pick the buffers
        self.steps = self.sample.steps if self.sample is not None else 1
        self.history: list[Epoch] = []
        self.last_theta = None  # the last epoch's params, while the best epoch's are out
        self.keeps_snapshots = False  # a checkpoint at each epoch's end, as `snapshot`
        self.snapshot = None
        network.train_mode(settings.seed)  # Dropout's noise, from the seed
        self._tune(settings)

    def _tune(self, settings) -> None:
        """The parts that settings may change between runs (see `retune`)."""
        self.settings = settings
        self.optimizer = optim.make(self.network, settings)
        self.schedule = Schedule(settings)
        self.stopping = EarlyStopping(settings, self.network.theta) if self.validation \
            else None
        with np.errstate(all="ignore"):  # a start that is not finite is found by `step`
            self._step = self.network.step_function(self.sample, self.optimizer)

    def continues_with(self, settings) -> bool:
        """Whether a run with `settings` goes on with these batches: the settings differ
        at most in those `mfc.settings.RETUNABLE` lists."""
        kept = {key: getattr(self.settings, key) for key in RETUNABLE}
        return replace(settings, **kept) == self.settings

    def retune(self, settings) -> None:
        """Go on with `settings` (see `continues_with`): a new learning rate, schedule,
        optimizer settings or patience; the optimizer's state (for the same optimizer),
        the schedule's and early stopping's carry over."""
        optimizer, state = self.settings.optimizer, self.tuned_state()
        self._tune(settings)
        if settings.optimizer != optimizer:
            del state["optimizer"]
        self.load_tuned_state(state)

    def tuned_state(self) -> dict:
        """The optimizer's, the schedule's and early stopping's state (copies)."""
        state = {"optimizer": self.optimizer.state(), "schedule": self.schedule.state()}
        if self.stopping is not None:
            state["stopping"] = self.stopping.state()
        return state

    def load_tuned_state(self, state: dict) -> None:
        self.optimizer.load_state(state.get("optimizer", {}))
        self.schedule.load_state(state["schedule"])
        if self.stopping is not None and "stopping" in state:
            self.stopping.load_state(state["stopping"])

    @property
    def epoch(self) -> int:
        """The epochs done so far."""
        return len(self.history)

    def step(self) -> float:
        """One training step; raises NotFinite (the params left as they were) when the
        loss is NaN or infinite."""
        loss = self._step()
        if not math.isfinite(loss):
            raise NotFinite(loss)
        return loss

    def fit(self, epochs: int, on_epoch=None, on_step=None, planned=None) -> Summary:
        """`run` with Ctrl-C finishing the step (see `run`), numpy's warnings silenced:
        the loss is checked at every step and a run that is not finite stops with a
        clear message; numpy's warnings on the way there would only be noise."""
        with np.errstate(all="ignore"), _ctrl_c_finishes_the_step() as stop:
            return self.run(epochs, on_epoch or (lambda epoch: None), stop, on_step, planned)

    def run(self, epochs: int, on_epoch, stop, on_step=None, planned=None) -> Summary:
        """Train `epochs` more epochs, or fewer if early stopping says so; `planned` is
        the epoch the run is meant to end at (the cosine schedule's end; by default
        this run's last). `on_epoch(Epoch)` after each epoch; `on_step(epoch, step,
        steps, mean loss so far)` after each step, if given."""
        first, last = self.epoch + 1, self.epoch + epochs
        planned = planned or last
        start = time.perf_counter()
        self.network.train_mode()  # its noise goes on; predicting since turned it off
        self._go_on_from_the_last_epoch()
        self._kept, self.kept_epoch = self.network.theta.copy(), self.epoch
        try:
            stopped_early = self._epochs(first, last, planned, on_epoch, stop, on_step)
        except Interrupted as interrupted:
            interrupted.summary = self.summary(first, planned, time.perf_counter() - start,
                                               interrupted=True)
            raise
        restored = self._restore_best()
        return self.summary(first, planned, time.perf_counter() - start, stopped_early,
                            restored)

    def _epochs(self, first: int, last: int, planned: int, on_epoch, stop, on_step):
        """Epochs `first` to `last`; the patience that stopped them early, or None."""
        for epoch in range(first, last + 1):
            self._run_epoch(epoch, planned, stop, on_step)
            self._keep(epoch)
            stopping = self._should_stop(epoch)  # the epoch's state complete before
            if self.keeps_snapshots:             # anyone sees it
                self.snapshot = self.checkpoint(history=False)
            on_epoch(self.history[-1])
            if stop.requested:
                raise Interrupted(epoch, self.steps, self.steps, self.losses(),
                                  stop.requested)
            if stopping:
                return self.settings.patience
        return None

    def _restore_best(self) -> bool:
        """Put the best epoch's params in place (with restore_best), keeping the last
        epoch's for a run that goes on."""
        if self.stopping is None or not self.stopping.can_restore:
            return False
        self.last_theta = self.network.theta.copy()
        self.stopping.restore()
        return True

    def _go_on_from_the_last_epoch(self) -> None:
        """A run after one that put the best epoch's params in place goes on from the
        last epoch's, as one long run would; unless the params were changed since."""
        if self.last_theta is not None and self.stopping is not None and \
                np.array_equal(self.network.theta, self.stopping.best_theta):
            self.network.theta[...] = self.last_theta
        self.last_theta = None

    def _run_epoch(self, epoch: int, planned: int, stop, on_step) -> None:
        rate = self.schedule.rate(epoch, planned)
        self.optimizer.set_rate(rate)
        start = time.perf_counter()
        loss = self._epoch(epoch, stop, on_step)
        validation = self.validate()
        self.history.append(Epoch(epoch, loss, *validation, learning_rate=rate,
                                  seconds=time.perf_counter() - start,
                                  rate_shown=self.settings.rate_varies))

    def _should_stop(self, epoch: int) -> bool:
        """After `epoch`: tell the schedule and early stopping its validation loss."""
        validation_loss = self.history[-1].validation_loss
        self.schedule.observe(epoch, validation_loss)
        return self.stopping is not None and self.stopping.observe(epoch, validation_loss)

    def _epoch(self, epoch: int, stop, on_step) -> float:
        """The steps of one epoch; their mean loss."""
        total = 0.0
        for step in range(1, self.steps + 1):
            total += self._checked_step(epoch, step)
            if on_step is not None:
                on_step(epoch, step, self.steps, total / step)
            if stop.requested:
                raise Interrupted(epoch, step, self.steps, self.losses(), stop.requested)
        return total / self.steps

    def _checked_step(self, epoch: int, step: int) -> float:
        try:
            return self.step()
        except NotFinite as err:
            np.copyto(self.network.theta, self._kept)
            train = self.prepared.train if self.prepared is not None else None
            raise Diverged(err.args[0], epoch, step, self.steps, self.optimizer.rate,
                           self.kept_epoch, huge_values(train, self.settings.dtype)) from None

    def _keep(self, epoch: int) -> None:
        """A copy of the params at the end of an epoch, while they are finite (a finite
        loss may still have taken them to inf): what a divergence sets them back to."""
        theta = self.network.theta
        if np.isfinite(theta).all():
            np.copyto(self._kept, theta)
            self.kept_epoch = epoch

    def validate(self) -> tuple[float | None, float | None]:
        """Loss and (for a loss on class labels) accuracy on the validation rows, if any."""
        if not self.validation:
            return None, None
        pair = self.network.scores_and_labels or ()
        loss, values = self.network.evaluate(self.validation, pair)
        if not pair:
            return loss, None
        scores, labels = values
        return loss, float(np.mean(self.network.predicted_classes(scores) == labels))

    # -- checkpoints: the state between two epochs, which a model file keeps

    def checkpoint(self, history: bool = True) -> tuple[dict, dict]:
        """The state to go on from, as it is now, between two epochs: (what JSON holds:
        the epoch, the history, the random generators', the schedule's and early
        stopping's state; name → array: the params to go on from, the optimizer's and
        early stopping's arrays). Copies. Without `history` (a snapshot taken every
        epoch: copying the history each time would grow with the square of the
        epochs), `last_checkpoint` adds it."""
        scalars = {"epoch": self.epoch, "noise": self.network.noise.state()}
        if history:
            scalars["history"] = [_fields(e) for e in self.history]
        theta = self.network.theta if self.last_theta is None else self.last_theta
        arrays = {"theta": theta.copy()}
        for part, holder in self._stateful().items():
            state = holder.state()
            scalars[part] = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
            arrays.update({f"{part}_{k}": v for k, v in state.items()
                           if isinstance(v, np.ndarray)})
        return scalars, arrays

    def last_checkpoint(self) -> tuple[dict, dict] | None:
        """The checkpoint of the last whole epoch (`keeps_snapshots`), or None."""
        if self.snapshot is None:
            return None
        scalars, arrays = self.snapshot
        history = [_fields(e) for e in self.history[:scalars["epoch"]]]
        return {**scalars, "history": history}, arrays

    def resume(self, scalars: dict, arrays: dict, optimizer: str | None = None,
               note=None) -> None:
        """Go on from a `checkpoint` (of a trainer with these settings and data): the
        next run starts at the epoch after it, exactly as the run that wrote it would
        have gone on. A checkpoint of another `optimizer` (its name) leaves this one's
        state fresh, as `retune` does, and `note` is told."""
        self.history = [Epoch(**fields, rate_shown=self.settings.rate_varies)
                        for fields in scalars["history"]]
        self.network.theta[...] = arrays["theta"]
        self.last_theta = None
        self.network.noise.load_state(scalars["noise"])
        fresh = optimizer is not None and optimizer != self.settings.optimizer
        if fresh and note is not None:
            note(f"the checkpoint was trained with {optimizer}: {self.settings.optimizer} "
                 "starts with a fresh state (the rest of the training state goes on)")
        for part, holder in self._stateful().items():
            if fresh and part == "optimizer":
                continue
            prefix = f"{part}_"
            holder.load_state({**(scalars.get(part) or {}),
                               **{k[len(prefix):]: v for k, v in arrays.items()
                                  if k.startswith(prefix)}})

    def _stateful(self) -> dict:
        """The parts with a state of their own, by name."""
        parts = {"optimizer": self.optimizer, "schedule": self.schedule,
                 "stopping": self.stopping, "sampler": self.sample}
        return {name: part for name, part in parts.items() if part is not None}

    def losses(self) -> list[float]:
        """The mean batch loss of every epoch so far."""
        return [epoch.loss for epoch in self.history]

    def summary(self, first: int, planned: int, seconds: float, stopped_early=None,
                restored: bool = False, interrupted: bool = False) -> Summary:
        """The summary of the epochs from `first` on (the best over the whole history)."""
        best = None
        if self.stopping is not None and self.stopping.best_epoch is not None:
            best = self.history[self.stopping.best_epoch - 1]
        elif self.history:
            best = min(self.history, key=lambda epoch: epoch.watched)
        final = self.history[-1] if self.history else None
        return Summary(first, self.epoch, planned, seconds, best, final, stopped_early,
                       restored, interrupted)


class _Stop:
    requested = 0  # the number of the signal that asked the loop to stop


# Ctrl-C, a closed terminal, a job scheduler's or `kill`'s polite stop (SIGHUP is not
# on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


@contextmanager
def _ctrl_c_finishes_the_step():
    """While training, the first Ctrl-C (SIGTERM, SIGHUP) asks the loop to stop after
    the current step (so the params are never half-updated); a second one stops at once."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach only the main thread
        return

    def request(signum, frame):
        if stop.requested:
            raise StoppedAtOnce(signum)
        stop.requested = signum

    previous = {signum: signal.signal(signum, request) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


