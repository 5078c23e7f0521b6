"""Hand-fused numpy training steps: the floor that mfc's training step is measured against.

Two networks, each written the way a careful person would write one step by hand:

(a) the lesson's net: 10 inputs -> Linear(10) -> Sigmoid -> Linear(1) -> MSE, on
    sklearn's diabetes data (442 x 10), SGD.
(b) 64 inputs -> Linear(128) -> ReLU -> Linear(10) -> softmax cross-entropy over
    integer labels, on sklearn's digits data (1797 x 64), SGD.

Every step samples its batch, runs forward and backward and applies SGD, and returns the
batch loss as a Python float (mfc's step records its loss too; `float()` of a numpy
scalar costs about 0.02 us). No array is allocated per step, only scalars (and a slice
view when shuffling): every array is a preallocated buffer written with `out=`, and
parameters and gradients are views into one flat vector each, so the SGD update is two
ufunc calls whatever the number of parameters. Gradients with respect to the data (dX,
dy) are not computed: nothing reads them.

Usage::

    ref = lesson_reference(batch_size=11, seed=0)
    loss = ref.step()
    us = time_steps(ref.step, n_steps=2000, repeats=7)

`python bench/reference.py` checks the gradients, shows the losses falling and prints
microseconds per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Reference:
    """One network's training step and the state behind it.

    step: sample a batch, forward, backward, SGD; returns the batch loss.
    sample: draw the next batch into the batch buffers.
    forward_backward: loss and gradients on the current batch buffers (no update).
    params, grads: name -> array, views into `theta` and `grad`.
    """

    step: Callable[[], float]
    sample: Callable[[], None]
    forward_backward: Callable[[], float]
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    theta: np.ndarray
    grad: np.ndarray


# ---------------------------------------------------------------- data

def standardise(X: np.ndarray) -> np.ndarray:
    """(X - mean) / std per column; a constant column gets std 1, not NaN."""
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return (X - X.mean(axis=0)) / std


def load_lesson_data() -> tuple[np.ndarray, np.ndarray]:
    """Diabetes features standardised, target as a column (m, 1) as MSE expects."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, scaled=False)
    return standardise(X), y.reshape(-1, 1).astype(np.float64)


def load_digits_data() -> tuple[np.ndarray, np.ndarray]:
    """Digits features standardised (several pixels are always 0), integer labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return standardise(X.astype(np.float64)), y.astype(np.intp)


# ---------------------------------------------------------------- shared pieces

def _flat_params(rng: np.random.Generator, shapes: dict[str, tuple[int, ...]]):
    """Params and grads as views into one flat vector each; weights randn, biases 0."""
    sizes = [int(np.prod(s)) for s in shapes.values()]
    theta, grad = np.zeros(sum(sizes)), np.zeros(sum(sizes))
    params, grads, start = {}, {}, 0
    for (name, shape), size in zip(shapes.items(), sizes):
        params[name] = theta[start:start + size].reshape(shape)
        grads[name] = grad[start:start + size].reshape(shape)
        if len(shape) == 2:  # weights; 1-d biases stay zero, as in the lesson
            params[name][...] = rng.standard_normal(shape)
        start += size
    return theta, grad, params, grads


def _sampler(rng, batch_size, sampling, sources, buffers) -> Callable[[], None]:
    """A function that takes the same batch_size rows of every source into its buffer.

    resample: rows drawn uniformly WITH replacement every step (the lesson's way).
    Generator.integers has no `out=`, so the indices come from `rng.random(out=)`
    scaled by n and truncated into an index buffer: twice as fast as allocating
    through `integers`, with a bias of order n / 2**53. `mode="wrap"` skips the
    bounds-check buffering of np.take's default `raise` mode (indices are in range).
    shuffle: a fresh permutation each epoch, consumed in consecutive slices.
    """
    n = len(sources[0])
    (xs, xb), (ys, yb) = zip(sources, buffers)
    take, copyto, multiply, random = np.take, np.copyto, np.multiply, rng.random
    if sampling == "resample":
        u, idx = np.empty(batch_size), np.empty(batch_size, dtype=np.intp)

        def sample() -> None:
            random(out=u)
            multiply(u, n, out=u)
            copyto(idx, u, casting="unsafe")
            take(xs, idx, 0, xb, "wrap")
            take(ys, idx, 0, yb, "wrap")

        return sample
    if sampling == "shuffle":
        perm, steps_per_epoch = np.arange(n), n // batch_size
        if steps_per_epoch == 0:
            raise ValueError(f"batch_size {batch_size} exceeds the {n} examples")
        position = steps_per_epoch  # the first step shuffles

        def sample() -> None:
            nonlocal position
            if position == steps_per_epoch:
                rng.shuffle(perm)
                position = 0
            idx = perm[position * batch_size:(position + 1) * batch_size]
            position += 1
            take(xs, idx, 0, xb, "wrap")
            take(ys, idx, 0, yb, "wrap")

        return sample
    raise ValueError(f"sampling must be 'resample' or 'shuffle', not {sampling!r}")


def _assemble(sample, forward_backward, lr, theta, grad, params, grads) -> Reference:
    scaled = np.empty_like(grad)
    multiply, subtract = np.multiply, np.subtract

    def step() -> float:
        sample()
        loss = forward_backward()
        multiply(grad, lr, out=scaled)  # one SGD update for all parameters
        subtract(theta, scaled, out=theta)
        return loss

    return Reference(step, sample, forward_backward, params, grads, theta, grad)


# ---------------------------------------------------------------- net (a)

def lesson_reference(batch_size: int = 11, seed: int = 0, lr: float = 1e-3,
                     sampling: str = "resample", data=None) -> Reference:
    """Net (a): 10 -> Linear(10) -> Sigmoid -> Linear(1) -> MSE, on diabetes.

    value = mean((y - a)**2) over the m batch rows, y and a both columns (m, 1).
    Backward: ga = -(2/m)(y - a); dW2 = hT ga; db2 = sum ga; dh = ga W2T;
    dz = dh h (1 - h); dW1 = xT dz; db1 = sum dz.
    """
    X, y = load_lesson_data() if data is None else data
    m, n_in, n_hidden = batch_size, X.shape[1], 10
    rng = np.random.default_rng(seed)
    theta, grad, p, g = _flat_params(rng, {"W1": (n_in, n_hidden), "b1": (n_hidden,),
                                           "W2": (n_hidden, 1), "b2": (1,)})
    W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"], p["b2"]
    dW1, db1, dW2, db2 = g["W1"], g["b1"], g["W2"], g["b2"]
    xb, yb = np.empty((m, n_in)), np.empty((m, 1))
    h, dh, tmp = np.empty((m, n_hidden)), np.empty((m, n_hidden)), np.empty((m, n_hidden))
    a, diff = np.empty((m, 1)), np.empty((m, 1))
    matmul, add, subtract, multiply = np.matmul, np.add, np.subtract, np.multiply
    negative, exp, reciprocal, vdot = np.negative, np.exp, np.reciprocal, np.vdot
    W2T, xbT, hT = W2.T, xb.T, h.T  # views made once: no per-step attribute lookups
    k = -2.0 / m

    def forward_backward() -> float:
        matmul(xb, W1, out=h)
        add(h, b1, out=h)
        negative(h, out=h)  # sigmoid in place: 1 / (1 + exp(-z))
        exp(h, out=h)
        add(h, 1.0, out=h)
        reciprocal(h, out=h)
        matmul(h, W2, out=a)
        add(a, b2, out=a)
        subtract(yb, a, out=diff)
        loss = float(vdot(diff, diff)) / m
        multiply(diff, k, out=diff)  # diff is now d(loss)/da
        matmul(hT, diff, out=dW2)
        diff.sum(axis=0, out=db2)
        matmul(diff, W2T, out=dh)
        subtract(1.0, h, out=tmp)
        multiply(tmp, h, out=tmp)
        multiply(dh, tmp, out=dh)
        matmul(xbT, dh, out=dW1)
        dh.sum(axis=0, out=db1)
        return loss

    sample = _sampler(rng, m, sampling, (X, y), (xb, yb))
    return _assemble(sample, forward_backward, lr, theta, grad, p, g)


# ---------------------------------------------------------------- net (b)

def digits_reference(batch_size: int = 32, seed: int = 0, lr: float = 1e-3,
                     sampling: str = "resample", data=None) -> Reference:
    """Net (b): 64 -> Linear(128) -> ReLU -> Linear(10) -> softmax cross-entropy.

    value = mean over rows of logsumexp(z) - z[label]. The labels are one-hot encoded
    once for the whole data set, so that the batch's one-hot rows are sampled like the
    features: then the loss is sum(log s) - <z, onehot> and dz = (p - onehot) / m,
    with no per-step fancy indexing.
    """
    X, labels = load_digits_data() if data is None else data
    m, n_in, n_hidden, n_out = batch_size, X.shape[1], 128, 10
    onehot = np.zeros((len(labels), n_out))
    onehot[np.arange(len(labels)), labels] = 1.0
    rng = np.random.default_rng(seed)
    theta, grad, p, g = _flat_params(rng, {"W1": (n_in, n_hidden), "b1": (n_hidden,),
                                           "W2": (n_hidden, n_out), "b2": (n_out,)})
    W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"], p["b2"]
    dW1, db1, dW2, db2 = g["W1"], g["b1"], g["W2"], g["b2"]
    xb, yb = np.empty((m, n_in)), np.empty((m, n_out))
    h, dh, mask = np.empty((m, n_hidden)), np.empty((m, n_hidden)), np.empty((m, n_hidden), bool)
    z, e, zmax, s = np.empty((m, n_out)), np.empty((m, n_out)), np.empty((m, 1)), np.empty((m, 1))
    matmul, add, subtract, multiply, divide = np.matmul, np.add, np.subtract, np.multiply, np.divide
    maximum, greater, exp, log, vdot = np.maximum, np.greater, np.exp, np.log, np.vdot
    W2T, xbT, hT = W2.T, xb.T, h.T
    inv_m = 1.0 / m

    def forward_backward() -> float:
        matmul(xb, W1, out=h)
        add(h, b1, out=h)
        maximum(h, 0.0, out=h)
        matmul(h, W2, out=z)
        add(z, b2, out=z)
        z.max(axis=1, keepdims=True, out=zmax)  # shift so exp cannot overflow
        subtract(z, zmax, out=z)
        exp(z, out=e)
        e.sum(axis=1, keepdims=True, out=s)
        divide(e, s, out=e)  # softmax
        log(s, out=s)  # the zmax shift cancels: log s - (z - zmax)[label]
        loss = (float(s.sum()) - float(vdot(z, yb))) * inv_m
        subtract(e, yb, out=e)
        multiply(e, inv_m, out=e)  # e is now d(loss)/dz
        matmul(hT, e, out=dW2)
        e.sum(axis=0, out=db2)
        matmul(e, W2T, out=dh)
        greater(h, 0.0, out=mask)
        multiply(dh, mask, out=dh)
        matmul(xbT, dh, out=dW1)
        dh.sum(axis=0, out=db1)
        return loss

    sample = _sampler(rng, m, sampling, (X, onehot), (xb, yb))
    return _assemble(sample, forward_backward, lr, theta, grad, p, g)


# ---------------------------------------------------------------- checks and timing

def check_gradients(ref: Reference, eps: float = 1e-5, max_entries: int = 400,
                    seed: int = 1) -> float:
    """Relative error ||numeric - analytic|| / (||numeric|| + ||analytic||).

    numeric is the central difference (L(t + eps) - L(t - eps)) / (2 eps), for every
    parameter entry or a random `max_entries` of them. A norm, not a per-entry maximum:
    net (a)'s loss is about 3e4, so its rounding error swamps the tiniest entries.
    Draws one batch and leaves the parameters as they were.
    """
    ref.sample()
    ref.forward_backward()
    analytic = ref.grad.copy()
    chosen = np.arange(ref.theta.size)
    if chosen.size > max_entries:
        chosen = np.random.default_rng(seed).choice(chosen, max_entries, replace=False)
    numeric = np.empty(chosen.size)
    for j, i in enumerate(chosen):
        kept = ref.theta[i]
        ref.theta[i] = kept + eps
        up = ref.forward_backward()
        ref.theta[i] = kept - eps
        down = ref.forward_backward()
        ref.theta[i] = kept
        numeric[j] = (up - down) / (2 * eps)
    ref.forward_backward()  # leave grads consistent with the parameters
    analytic = analytic[chosen]
    return float(np.linalg.norm(numeric - analytic)
                 / (np.linalg.norm(numeric) + np.linalg.norm(analytic)))


def epoch_losses(ref: Reference, n_examples: int, batch_size: int, epochs: int) -> list[float]:
    """Mean batch loss of each epoch, steps_per_epoch = n_examples // batch_size."""
    steps = n_examples // batch_size
    return [sum(ref.step() for _ in range(steps)) / steps for _ in range(epochs)]


def time_steps(step: Callable[[], object], n_steps: int = 2000, repeats: int = 7) -> float:
    """Microseconds per call of `step`: the minimum over `repeats` of the mean of n_steps.

    The minimum because this machine's noise only ever adds time. One untimed run of
    n_steps // 10 first warms caches and BLAS threads.
    """
    for _ in range(max(n_steps // 10, 1)):
        step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n_steps):
            step()
        best = min(best, time.perf_counter() - start)
    return best / n_steps * 1e6


def _blas_info() -> str:
    """The BLAS libraries loaded (numpy's and scipy's each bring one) and their threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    import os

    return "; ".join(f"{p['internal_api']} {p['version']} ({os.path.basename(p['filepath'])}) "
                     f"threads={p['num_threads']}"
                     for p in threadpool_info() if p["user_api"] == "blas")


def _limit_blas(threads: int):
    """A context limiting BLAS to `threads` (0: leave as is), or a no-op without threadpoolctl.

    Two BLAS threads on this 2-core machine are 10x slower than one (350 us -> 3 ms for
    net (b) at batch 256) as soon as anything else runs, so one thread is the default.
    """
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(threads, user_api="blas") if threads else contextlib.nullcontext()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Check and time the reference steps.")
    parser.add_argument("--blas-threads", type=int, default=1, help="0: numpy's default")
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    lesson, digits = load_lesson_data(), load_digits_data()  # loads scipy's BLAS too
    with _limit_blas(args.blas_threads):
        _check_and_time(lesson, digits, args.steps, args.repeats)


def _check_and_time(lesson, digits, n_steps: int, repeats: int) -> None:
    print(f"numpy {np.__version__}; BLAS: {_blas_info()}")
    for name, factory, data, lr in (("a", lesson_reference, lesson, 1e-3),
                                    ("b", digits_reference, digits, 1e-2)):
        err = check_gradients(factory(batch_size=16, seed=0, data=data))
        print(f"({name}) gradient check: relative error {err:.1e}")
        assert err < 1e-6, err
        for sampling in ("resample", "shuffle"):
            batch = 11 if name == "a" else 32
            ref = factory(batch_size=batch, seed=0, lr=lr, sampling=sampling, data=data)
            losses = epoch_losses(ref, len(data[0]), batch, epochs=5)
            print(f"({name}) {sampling:8} epoch losses: " + ", ".join(f"{x:.3f}" for x in losses))
            assert losses[-1] < losses[0], losses
    for name, factory, data, batches in (("a", lesson_reference, lesson, (11, 256)),
                                         ("b", digits_reference, digits, (32, 256))):
        for batch in batches:
            for sampling in ("resample", "shuffle"):
                ref = factory(batch_size=batch, seed=0, sampling=sampling, data=data)
                us = time_steps(ref.step, n_steps, repeats)
                print(f"({name}) batch {batch:3} {sampling:8}: {us:7.2f} us/step")


if __name__ == "__main__":
    main()
