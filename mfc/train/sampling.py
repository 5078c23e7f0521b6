"""Batches: how each training step takes its rows from the data.

A sampler is given the data's arrays by *slot*: the backend's object for an Input, whose
`value` a step reads. Each call sets the slots' values to the next batch; `prime` gives
them values of the batch's shape without drawing.
"""

from __future__ import annotations

import numpy as np


class Shuffle:
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


class Resample:
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


SAMPLERS = {"shuffle": Shuffle, "resample": Resample}
