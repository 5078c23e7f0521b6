"""The training loop: minibatch gradient descent as the lesson does it.

Per epoch, examples // batch_size steps; each step takes a batch (mfc.train.sampling),
runs forward and backward on the backend, and updates the params (mfc.train.optim).
After each epoch: `Epoch: N, Loss: L`, L the mean batch loss of the epoch. Without data,
an epoch is one step and L the loss before its update.

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
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from mfc.diagnostics import DataError, MfcError
from mfc.train.optim import OPTIMIZERS
from mfc.train.sampling import SAMPLERS


class Diverged(MfcError):
    """The loss became NaN or infinite in step `step` of `epoch`. The params are set
    back to those at the end of epoch `kept`, the last whose loss was finite (0: the
    start, when the first epoch already diverged)."""

    def __init__(self, loss: float, epoch: int, step: int, steps: int, learning_rate: float,
                 kept: int = 0):
        if epoch == 1 and step == 1:  # no update has happened: the start is at fault
            super().__init__(f"the loss is {loss} at the starting params, before any step; "
                             "check the spec's ops and inits (a log or root of a "
                             "negative number, a division by zero)")
        else:
            super().__init__(f"the loss became {loss} in epoch {epoch}, step {step} of "
                             f"{steps}; try a smaller learning rate than {learning_rate:g}")
        self.loss, self.epoch, self.step, self.kept = loss, epoch, step, kept

    exit_code = 1


class NotFinite(ArithmeticError):
    """A step's loss was NaN or infinite (the step stopped before its update)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, SIGHUP: `signum`), once the current step had finished: the
    params are those of a whole step (`step` of `steps` in `epoch`)."""

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


# ---------------------------------------------------------------- the loop


def train(network, settings, prepared, on_epoch=None) -> list[float]:
    """Train `network` (a lowered program) in place with `settings` on `prepared` data
    (mfc.data.prepare; None to train without data); return the mean batch loss of each
    epoch. `on_epoch` is called with an `Epoch` after each.

    Raises DataError when the data does not fit the network's Inputs, Diverged when the
    loss stops being finite, Interrupted on Ctrl-C.
    """
    # The loss is checked for NaN and infinity at every step and stops the run with a
    # clear message; numpy's warnings on the way there would only be noise.
    with np.errstate(all="ignore"):
        trainer = Trainer(network, settings, prepared)
        with _ctrl_c_finishes_the_step() as stop:
            return trainer.run(settings.epochs, on_epoch or (lambda epoch: None), stop)


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
    """One network, its batches and its optimizer. `step()` is one whole training
    step (batch, forward, backward, update) and returns the batch loss."""

    def __init__(self, network, settings, prepared):
        self.network, self.settings = network, settings
        fed = fed_slots(network, settings, prepared)
        self.validation = fed["validation"] if fed else None
        self.optimizer = OPTIMIZERS[settings.optimizer](network.theta, network.grad, settings)
        self.sample = None
        if fed is not None:
            rng = np.random.default_rng((settings.seed, 2))
            self.sample = SAMPLERS[settings.sampling](fed["train"], settings.batch_size, rng)
            self.sample.prime()  # the batch's shapes pick the buffers
        self.steps = self.sample.steps if self.sample is not None else 1
        self._step = network.step_function(self.sample, self.optimizer.update)

    def step(self) -> float:
        """One training step; raises NotFinite (the params left as they were) when the
        loss is NaN or infinite."""
        loss = self._step()
        if not math.isfinite(loss):
            raise NotFinite(loss)
        return loss

    def run(self, epochs: int, on_epoch, stop) -> list[float]:
        """Train for `epochs`; return the mean batch loss of each. Diverged sets the
        params back to the end of the last epoch with a finite loss."""
        losses: list[float] = []
        self._kept, self.kept_epoch = self.network.theta.copy(), 0
        for epoch in range(1, epochs + 1):
            losses.append(self._epoch(epoch, stop, losses))
            self._keep(epoch)
            validation = self.validate()
            on_epoch(Epoch(epoch, losses[-1], *validation))
            if stop.requested:
                raise Interrupted(epoch, self.steps, self.steps, losses, stop.requested)
        return losses

    def _epoch(self, epoch: int, stop, losses: list[float]) -> float:
        """The steps of one epoch; their mean loss."""
        total = 0.0
        for step in range(1, self.steps + 1):
            total += self._checked_step(epoch, step)
            if stop.requested:
                raise Interrupted(epoch, step, self.steps, losses, stop.requested)
        return total / self.steps

    def _checked_step(self, epoch: int, step: int) -> float:
        try:
            return self.step()
        except NotFinite as err:
            np.copyto(self.network.theta, self._kept)
            raise Diverged(err.args[0], epoch, step, self.steps,
                           self.settings.learning_rate, self.kept_epoch) from None

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


