"""Early stopping and the best epoch, as Keras's EarlyStopping callback does them.

An epoch improves when its validation loss is below the best so far by more than
`min_delta`; it becomes the best epoch (its params copied when `restore_best`). After
`patience` epochs in a row without improvement, training stops; with `restore_best`
(the default when patience is set), the best epoch's params are put back, at a stop and
at the end of the run alike.
"""

from __future__ import annotations

import math

import numpy as np


class EarlyStopping:
    """Watches the validation loss of each epoch; `observe` says when to stop."""

    def __init__(self, settings, theta):
        self.patience, self.min_delta = settings.patience, settings.min_delta
        self.theta = theta
        self.best_theta = theta.copy() if settings.keeps_best else None
        self.best, self.best_epoch, self.wait = math.inf, None, 0

    def observe(self, epoch: int, validation_loss: float) -> bool:
        """After `epoch`: whether training should stop now."""
        if validation_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = validation_loss, epoch, 0
            if self.best_theta is not None:
                np.copyto(self.best_theta, self.theta)
            return False
        self.wait += 1
        return self.patience is not None and self.wait >= self.patience

    @property
    def can_restore(self) -> bool:
        """Whether the best epoch's params are kept (restore_best, and an epoch seen)."""
        return self.best_theta is not None and self.best_epoch is not None

    def restore(self) -> bool:
        """Put the best epoch's params back, if kept; whether it did."""
        if not self.can_restore:
            return False
        np.copyto(self.theta, self.best_theta)
        return True

    # -- the state a checkpoint keeps

    def state(self) -> dict:
        state = {"best": self.best, "best_epoch": self.best_epoch or 0, "wait": self.wait}
        if self.best_theta is not None:
            state["best_theta"] = self.best_theta.copy()
        return state

    def load_state(self, state: dict) -> None:
        if self.best_theta is not None and "best_theta" not in state:
            return  # the best epoch's params were not kept: watch afresh
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.best_epoch = int(state["best_epoch"]) or None
        if self.best_theta is not None:
            self.best_theta[...] = state["best_theta"]
