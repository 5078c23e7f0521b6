"""Batches: how each training step takes its rows from the data.

A sampler is given the data's arrays by *slot*: the backend's object for an Input, whose
`value` a step reads. Each call sets the slots' values to the next batch; `prime` gives
them values of the batch's shape without drawing.

Both samplers gather the rows of a whole epoch at once, one `take` per array into a
buffer of the epoch's batches, and each step's batch is a view into it, made when the
sampler is: per step, a call only moves the slots to the next views. (At batch 11,
drawing and gathering each step's rows cost a quarter of the whole step.)
"""

from __future__ import annotations

import numpy as np


class _Epochs:
    """The epoch's batches as views into one buffer per array, consumed in order."""

    def __init__(self, arrays: dict, batch_size: int):
        self.nodes = list(arrays)
        self.sources = list(arrays.values())
        self.rows, self.batch_size = len(self.sources[0]), batch_size
        self.steps = self.rows // batch_size
        used = self.steps * batch_size
        self.epoch = [np.empty((used,) + s.shape[1:], s.dtype) for s in self.sources]
        self.batches = [tuple(block[i * batch_size:(i + 1) * batch_size] for block in self.epoch)
                        for i in range(self.steps)]
        self.position = self.steps  # the first call draws

    def prime(self) -> None:
        """Give the Inputs values of the batch's shape (the data's first rows), drawing
        nothing."""
        for node, source in zip(self.nodes, self.sources):
            node.value = source[:self.batch_size]

    def __call__(self) -> None:
        for node, view in zip(self.nodes, self.next()):
            node.value = view

    def next(self) -> tuple:
        """The next batch, a view per array in the order of `nodes`, the slots left as
        they were (a generated step reads its batch so)."""
        if self.position == self.steps:
            self.draw()
            self.position = 0
        batch = self.batches[self.position]
        self.position += 1
        return batch

    def draw(self) -> None:
        raise NotImplementedError

    # -- the state a checkpoint keeps (taken between epochs, where nothing else is)

    def state(self) -> dict:
        """The random generator's state: what the batches to come depend on."""
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.position = self.steps  # the next call draws the next epoch's batches


class Shuffle(_Epochs):
    """A fresh permutation each epoch, then consecutive batches of it (the rows past
    the last whole batch sit the epoch out)."""

    def __init__(self, arrays: dict, batch_size: int, rng):
        super().__init__(arrays, batch_size)
        self.rng = rng

    def draw(self) -> None:
        order = self.rng.permutation(self.rows)[:self.steps * self.batch_size]
        for source, block in zip(self.sources, self.epoch):
            source.take(order, 0, block)


class Resample(_Epochs):
    """Rows drawn uniformly with replacement for every batch, as the lesson draws them.

    Generator.integers costs more than a whole small step (4 µs here) and has no
    `out=`, so the rows are floor(u·rows) for u uniform in [0, 1), drawn into a buffer:
    uniform up to a bias of order rows / 2⁵³. A generator draws the same numbers in
    one call of an epoch's worth as in one call per batch.
    """

    def __init__(self, arrays: dict, batch_size: int, rng):
        super().__init__(arrays, batch_size)
        used = self.steps * batch_size
        self.uniform, self.indices = np.empty(used), np.empty(used, np.intp)
        self.rng, self.random = rng, rng.random

    def draw(self) -> None:
        self.random(out=self.uniform)
        np.multiply(self.uniform, self.rows, out=self.indices, casting="unsafe")
        for source, block in zip(self.sources, self.epoch):
            source.take(self.indices, 0, block, "clip")  # the method: np.take costs 1 µs more


SAMPLERS = {"shuffle": Shuffle, "resample": Resample}
