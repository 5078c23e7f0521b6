"""Training: the loop (mfc.train.loop), its batches (sampling) and its optimizers
(optim). It drives a backend's lowered network and never reads the spec."""

from mfc.train.loop import Diverged, Epoch, Interrupted, train

__all__ = ["Diverged", "Epoch", "Interrupted", "train"]
