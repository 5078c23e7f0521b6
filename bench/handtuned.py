"""The hand-tuned numpy loop that bench/step_bench.py measures mfc's generated step against:
the two nets of the benchmark written by hand, as fast as numpy allows.

(a) `lesson_handtuned`: 10 -> Linear(10) -> Sigmoid -> Linear(1) -> MSE (diabetes);
(b) `digits_handtuned`: 64 -> Linear(128) -> ReLU -> Linear(10) -> softmax
    cross-entropy over class labels (digits).

Each factory returns an object whose `step()` takes the next batch, runs forward and
backward, applies SGD and returns the batch loss as a float. What the hand makes of it:

- batches as mfc takes them (mfc.train.sampling): an epoch's rows gathered at once, one
  `take` per array into a buffer, each batch a view made beforehand; the same generator
  (seeded `(seed, 2)`) drawn the same way, so that given the same data and params the
  steps see mfc's batches;
- activations kept transposed (a unit a row, an example a column): each Linear is
  `dot(Wᵀ, xᵀ)`, and a hidden layer's buffer [h; 1] has its row of ones below
  contiguous rows of h, so that every elementwise call runs over contiguous memory;
- folded biases: the data carries a column of ones (appended once, to the whole data),
  and the hidden layer's buffer its row of ones (written once), so that each Linear is
  one `dot` with [W; b] and each weight-and-bias gradient one `dot`: no bias add, no
  sum over the batch;
- params as views into one flat vector (laid out [W1; b1], [W2; b2], as mfc lays out
  `W1, b1, W2, b2`), gradients into another;
- the learning rate folded into the loss's gradient, so the SGD update is one
  subtraction over the flat vector;
- every buffer preallocated, every call with `out=`; gradients of the data never
  computed; the hidden layer's backward reuses its forward value (the sigmoid's
  y·(1 − y), the ReLU's y > 0 as the mask);
- the softmax's exponentials kept from the forward pass for the backward one, their
  sums per example as a matrix-vector product, the max shift skipped while the logits are small
  (as mfc does: e^x stays finite), the labels' entries picked with one fancy index.

`sampling` is 'resample' (rows drawn with replacement for every batch, the lesson's
way) or 'shuffle' (a permutation each epoch). `data` (X, y) and `theta` (the flat
params, laid out as mfc lays out W1, b1, W2, b2) default to the bundled data,
standardised as mfc standardises it, and a seeded draw.
"""

from __future__ import annotations

import math

import numpy as np
from numpy import (add, divide, dot, exp, greater, log, maximum, minimum, multiply, subtract,
                   tanh, vdot)


class _Batches:
    """An epoch's rows gathered at once into one buffer per array; `next()` gives the
    next batch's views, drawing a new epoch when the last one is used up."""

    def __init__(self, arrays, batch_size: int, sampling: str, seed: int):
        self.sources = arrays
        self.rows = len(arrays[0])
        self.steps = self.rows // batch_size
        used = self.steps * batch_size
        self.epoch = [np.empty((used,) + a.shape[1:], a.dtype) for a in arrays]
        self.batches = [tuple(e[i * batch_size:(i + 1) * batch_size] for e in self.epoch)
                        for i in range(self.steps)]
        self.rng = np.random.default_rng((seed, 2))
        self.uniform, self.indices = np.empty(used), np.empty(used, np.intp)
        self.draw = self._resample if sampling == "resample" else self._shuffle

    def _resample(self) -> None:
        self.rng.random(out=self.uniform)
        multiply(self.uniform, self.rows, out=self.indices, casting="unsafe")
        for source, block in zip(self.sources, self.epoch):
            source.take(self.indices, 0, block, "clip")

    def _shuffle(self) -> None:
        order = self.rng.permutation(self.rows)[:len(self.indices)]
        for source, block in zip(self.sources, self.epoch):
            source.take(order, 0, block)


def _with_ones(X: np.ndarray) -> np.ndarray:
    """X with a column of ones appended: X·W + b is then [X, 1]·[W; b]."""
    return np.hstack([X, np.ones((len(X), 1))])


def _bundled(name: str):
    """The bundled data as mfc trains on it: features standardised over every row."""
    from mfc import bundled
    from mfc.preprocess import standardize

    X, y, _ = bundled.load(name)
    return standardize(X)[0], y


def _initial(sizes, seed: int) -> np.ndarray:
    """A flat vector of params: weights N(0, 1/fan_in), biases 0."""
    rng = np.random.default_rng(seed)
    theta = np.zeros(sum(k * n + n for k, n in sizes))
    start = 0
    for k, n in sizes:
        theta[start:start + k * n] = rng.standard_normal(k * n) / math.sqrt(k)
        start += k * n + n
    return theta


class _Net:
    """Flat params and gradients, and each layer's [W; b] as a view of them."""

    def __init__(self, sizes, theta):
        self.theta = np.array(theta, dtype=np.float64)
        self.grad = np.zeros_like(self.theta)
        self.layers, self.grads, start = [], [], 0
        for k, n in sizes:
            end = start + (k + 1) * n
            self.layers.append(self.theta[start:end].reshape(k + 1, n))
            self.grads.append(self.grad[start:end].reshape(k + 1, n))
            start = end


class LessonHandTuned(_Net):
    """(a): 10 -> 10 sigmoid -> 1, MSE."""

    def __init__(self, batch_size: int, sampling: str, lr: float, data=None, theta=None,
                 seed: int = 0):
        X, y = data if data is not None else _bundled("diabetes")
        k, hidden, m = X.shape[1], 10, batch_size
        sizes = [(k, hidden), (hidden, 1)]
        super().__init__(sizes, _initial(sizes, seed) if theta is None else theta)
        self.data = _Batches([_with_ones(X), np.ravel(y).astype(np.float64)], batch_size,
                             sampling, seed)
        self.batches = [(x.T, y.reshape(1, m)) for x, y in self.data.batches]
        self.position = len(self.batches)
        self.z = np.empty((hidden, m))
        self.h = np.ones((hidden + 1, m))  # [σ(z); 1]: the row of ones stays
        self.s = self.h[:hidden]
        self.out, self.dz = np.empty((1, m)), np.empty((hidden, m))
        self.scale = 2.0 * lr / m  # d(loss)/d(out) = 2·(out − y)/m, times the rate
        self.inverse_m = 1.0 / m

    def step(self) -> float:
        if self.position == len(self.batches):
            self.data.draw()
            self.position = 0
        xt, yt = self.batches[self.position]
        self.position += 1
        (A1, A2), (G1, G2) = self.layers, self.grads
        z, s, h, out, dz = self.z, self.s, self.h, self.out, self.dz
        dot(A1.T, xt, out=z)
        multiply(z, 0.5, out=s)  # σ(z) = (1 + tanh(z/2)) / 2, mfc's form
        tanh(s, out=s)
        multiply(s, 0.5, out=s)
        s += 0.5
        dot(A2.T, h, out=out)
        out -= yt
        loss = vdot(out, out) * self.inverse_m
        out *= self.scale  # η·d(loss)/d(out)
        dot(h, out.T, out=G2)
        dot(A2[:-1], out, out=dz)  # d(loss)/d(s)
        multiply(dz, s, out=dz)
        subtract(dz, multiply(dz, s, out=z), out=dz)  # ·σ(z)·(1 − σ(z)), z free now
        dot(xt, dz.T, out=G1)
        subtract(self.theta, self.grad, out=self.theta)
        return float(loss)


class DigitsHandTuned(_Net):
    """(b): 64 -> 128 ReLU -> 10, softmax cross-entropy on class labels."""

    def __init__(self, batch_size: int, sampling: str, lr: float, data=None, theta=None,
                 seed: int = 0):
        X, y = data if data is not None else _bundled("digits")
        k, hidden, classes, m = X.shape[1], 128, 10, batch_size
        sizes = [(k, hidden), (hidden, classes)]
        super().__init__(sizes, _initial(sizes, seed) if theta is None else theta)
        self.data = _Batches([_with_ones(X), np.asarray(y, np.intp)], batch_size, sampling,
                             seed)
        self.batches = [(x.T, y) for x, y in self.data.batches]
        self.position = len(self.batches)
        self.z = np.empty((hidden, m))
        self.h = np.ones((hidden + 1, m))
        self.r = self.h[:hidden]
        self.logits, self.e, self.sums = np.empty((classes, m)), np.empty((classes, m)), \
            np.empty(m)
        self.logs, self.dz = np.empty(m), np.empty((hidden, m))
        self.ones = np.ones(classes)
        self.columns = np.arange(m)
        self.rate_m, self.m = lr / m, m
        self.limit = 0.9 * math.log(np.finfo(np.float64).max)

    def step(self) -> float:
        if self.position == len(self.batches):
            self.data.draw()
            self.position = 0
        xt, labels = self.batches[self.position]
        self.position += 1
        (A1, A2), (G1, G2) = self.layers, self.grads
        z, r, h, logits, e, sums, dz = self.z, self.r, self.h, self.logits, self.e, \
            self.sums, self.dz
        dot(A1.T, xt, out=z)
        maximum(z, 0.0, out=r)
        dot(A2.T, h, out=logits)
        picked = add.reduce(logits[labels, self.columns], axis=None)
        shifts = 0.0
        small = maximum.reduce(logits, axis=None) < self.limit
        if small:
            exp(logits, out=e)
            dot(self.ones, e, out=sums)
            small = minimum.reduce(sums, axis=None) > 1e-30
        if not small:  # each example shifted by its max, so that e^x stays finite
            shift = logits.max(axis=0)
            subtract(logits, shift, out=e)
            exp(e, out=e)
            dot(self.ones, e, out=sums)
            shifts = shift.sum()
        loss = (add.reduce(log(sums, out=self.logs), axis=None) + shifts - picked) / self.m
        # η·d(loss)/d(logits) = η·(softmax − onehot)/m, in e
        multiply(e, divide(self.rate_m, sums, out=sums), out=e)
        e[labels, self.columns] -= self.rate_m
        dot(h, e.T, out=G2)
        dot(A2[:-1], e, out=dz)
        multiply(dz, greater(r, 0.0, out=z), out=dz)  # the ReLU's mask, from its value
        dot(xt, dz.T, out=G1)
        subtract(self.theta, self.grad, out=self.theta)
        return float(loss)


def lesson_handtuned(batch_size: int = 11, sampling: str = "resample", lr: float = 1e-3,
                     **kwargs) -> LessonHandTuned:
    return LessonHandTuned(batch_size, sampling, lr, **kwargs)


def digits_handtuned(batch_size: int = 32, sampling: str = "shuffle", lr: float = 1e-2,
                     **kwargs) -> DigitsHandTuned:
    return DigitsHandTuned(batch_size, sampling, lr, **kwargs)
