"""Learning-rate schedules: the rate of each epoch, from the settings.

With η the `learning_rate`, e the epoch counted from 0, W the `warmup_epochs` and
k = e − W the epoch counted from the warm-up's end:

- warm-up (e < W): η · (e + 1) / (W + 1), a straight line up to η;
- constant: η;
- step: η · γ^⌊k / step_size⌋, never below min_lr;
- exponential: η · γᵏ, never below min_lr;
- cosine: min_lr + (η − min_lr) · (1 + cos(π · k / T)) / 2, with T = E − W for a run of
  E epochs, min_lr from its end on;
- plateau: η until the validation loss has not improved by more than `min_delta` for
  more than `lr_patience` epochs; then the rate is multiplied by γ (never below min_lr)
  and the count starts again.

Each is torch.optim.lr_scheduler's (StepLR, ExponentialLR, CosineAnnealingLR,
ReduceLROnPlateau; LinearLR then the schedule, in a SequentialLR, for the warm-up),
stepped once an epoch; docs/training.md says where they differ.
"""

from __future__ import annotations

import math


class Schedule:
    """The rate of each epoch. `rate(epoch, epochs)` for epoch 1, 2, ... of a run of
    `epochs`; `observe(validation_loss)` after each epoch (only plateau listens)."""

    def __init__(self, settings):
        self.settings = settings
        self.base, self.kind = settings.learning_rate, settings.lr_schedule
        self.warmup, self.floor = settings.warmup_epochs, settings.min_lr
        self.current = self.base  # plateau's rate
        self.best, self.bad_epochs = math.inf, 0

    def rate(self, epoch: int, epochs: int) -> float:
        """The learning rate of `epoch` (from 1) in a run of `epochs`."""
        e = epoch - 1
        if e < self.warmup:
            return self.base * (e + 1) / (self.warmup + 1)
        return _RULES[self.kind](self, e - self.warmup, epochs - self.warmup)

    def _constant(self, k: int, span: int) -> float:
        return self.base

    def _step(self, k: int, span: int) -> float:
        return max(self.base * self.settings.factor ** (k // self.settings.step_size),
                   self.floor)

    def _exponential(self, k: int, span: int) -> float:
        return max(self.base * self.settings.factor ** k, self.floor)

    def _cosine(self, k: int, span: int) -> float:
        if k >= span:
            return self.floor
        return self.floor + (self.base - self.floor) * (1 + math.cos(math.pi * k / span)) / 2

    def _plateau(self, k: int, span: int) -> float:
        return self.current

    def observe(self, epoch: int, validation_loss: float | None) -> None:
        """After `epoch`: a plateau counts the epochs without improvement (from the
        warm-up's end on) and lowers the rate when they are more than lr_patience."""
        if self.kind != "plateau" or validation_loss is None or epoch <= self.warmup:
            return
        if validation_loss < self.best - self.settings.min_delta:
            self.best, self.bad_epochs = validation_loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.settings.lr_patience:
            self.current = max(self.current * self.settings.factor, self.floor)
            self.bad_epochs = 0

    # -- the state a checkpoint keeps

    def state(self) -> dict:
        return {"current": self.current, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state(self, state: dict) -> None:
        self.current, self.best = float(state["current"]), _number(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


def _number(value) -> float:
    """A float a checkpoint kept: JSON has no infinity, and holds None for one."""
    return math.inf if value is None else float(value)


_RULES = {"constant": Schedule._constant, "step": Schedule._step,
          "exponential": Schedule._exponential, "cosine": Schedule._cosine,
          "plateau": Schedule._plateau}
