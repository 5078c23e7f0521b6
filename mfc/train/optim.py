"""Optimizers: each updates the flat vector of params (`theta`) in place from the flat
vector of their gradients (`grad`), a few ufunc calls whatever the number of params.

A step, with g the gradient and η the rate the schedule gives the epoch (`set_rate`):

1. clip: with `clip_norm = c`, g ← g · c / (‖g‖ + 10⁻⁶) when that factor is below 1
   (‖g‖ the norm of all the params' gradients together: torch's clip_grad_norm_);
2. weight decay λ on the decayed entries (`decay = weights`: params of 2 or more dims):
   sgd, momentum and rmsprop add it to the gradient (L2: g ← g + λθ); adam and adamw
   shrink the params before their step (decoupled: θ ← θ · (1 − ηλ));
3. the optimizer's own rule, in each class's docstring.

docs/training.md has the formulas side by side with torch.optim's.
"""

from __future__ import annotations

import math

import numpy as np

CLIP_EPSILON = 1e-6  # torch's clip_grad_norm_ adds it to the norm


class SGD:
    """θ ← θ − η·g"""

    decoupled = False  # weight decay as L2 in the gradient (False) or a shrink of θ
    plain_rule = True  # its own rule is θ ← θ − η·g (not a subclass's): see `is_plain`

    def __init__(self, theta, grad, settings, decayed=None):
        """`decayed`: a boolean mask over `theta` of the entries weight decay applies
        to, or None for all of them."""
        self.theta, self.grad = theta, grad
        self.step = np.empty_like(theta)
        self.clip_norm = settings.clip_norm
        self.weight_decay = settings.decay_in_force
        self.decayed = decayed
        # The gradient clipped or with L2 added, apart: `grad` is the backend's, and a
        # param that does not reach the loss never has its entries written again.
        self.work = np.empty_like(theta) if self.clip_norm or self.weight_decay else None
        self.l2 = self._per_entry(self.weight_decay) if not self.decoupled else None
        self.plain = self.is_plain(settings)
        self.set_rate(settings.learning_rate)

    def set_rate(self, rate: float) -> None:
        """The learning rate η of the steps to come (the schedule's, each epoch)."""
        self.rate = rate
        if self.decoupled and self.weight_decay:
            self.shrink = self._per_entry(1.0 - rate * self.weight_decay, untouched=1.0)

    def _per_entry(self, value: float, untouched: float = 0.0):
        """`value` where weight decay applies, `untouched` elsewhere: a scalar when it
        applies everywhere, else a vector as long as theta."""
        if self.decayed is None:
            return value
        return np.where(self.decayed, value, untouched).astype(self.theta.dtype)

    @classmethod
    def is_plain(cls, settings) -> bool:
        """Whether the update is θ ← θ − η·g and nothing else (SGD, no clipping, no L2
        term), which a backend may make in its own step: with η folded into the loss's
        gradient (η·g in `grad`: θ ← θ − grad), or as `_step` makes it (η from `rate`,
        η·g into `step`), sparing the calls that lead there."""
        return cls.plain_rule and settings.clip_norm is None and not settings.decay_in_force

    def update(self) -> None:
        """One step from the gradient in `grad` (left as it is)."""
        g = self.grad
        if self.clip_norm is not None:
            g = self._clipped(g)
        if self.weight_decay:
            g = self._decayed(g)
        self._step(g)

    def _clipped(self, g):
        norm = math.sqrt(float(np.dot(g, g)))
        factor = self.clip_norm / (norm + CLIP_EPSILON)
        if factor >= 1.0:
            return g
        return np.multiply(g, factor, out=self.work)

    def _decayed(self, g):
        if self.decoupled:
            np.multiply(self.theta, self.shrink, out=self.theta)
            return g
        np.multiply(self.theta, self.l2, out=self.step)
        return np.add(g, self.step, out=self.work)

    def _step(self, g) -> None:
        np.multiply(g, self.rate, out=self.step)
        np.subtract(self.theta, self.step, out=self.theta)

    # -- the state a checkpoint keeps

    def state(self) -> dict:
        """The optimizer's state: name → array or number (copies)."""
        return {}

    def load_state(self, state: dict) -> None:
        """Take back what `state()` returned ({}: a fresh start)."""


class Momentum(SGD):
    """v ← μ·v − η·g; θ ← θ + v  (μ the `momentum` setting)"""

    plain_rule = False

    def __init__(self, theta, grad, settings, decayed=None):
        super().__init__(theta, grad, settings, decayed)
        self.momentum, self.velocity = settings.momentum, np.zeros_like(theta)

    def _step(self, g) -> None:
        np.multiply(self.velocity, self.momentum, out=self.velocity)
        np.multiply(g, self.rate, out=self.step)
        np.subtract(self.velocity, self.step, out=self.velocity)
        np.add(self.theta, self.velocity, out=self.theta)

    def state(self) -> dict:
        return {"velocity": self.velocity.copy()}

    def load_state(self, state: dict) -> None:
        if state:
            self.velocity[...] = state["velocity"]


class RMSprop(SGD):
    """s ← ρ·s + (1−ρ)·g²; θ ← θ − η·g / (√s + ε)  (ρ the `rho` setting: torch's alpha)"""

    plain_rule = False

    def __init__(self, theta, grad, settings, decayed=None):
        super().__init__(theta, grad, settings, decayed)
        self.rho, self.epsilon = settings.rho, settings.eps
        self.square = np.zeros_like(theta)

    def _step(self, g) -> None:
        s, step = self.square, self.step
        np.multiply(s, self.rho, out=s)
        np.multiply(g, g, out=step)
        np.multiply(step, 1.0 - self.rho, out=step)
        np.add(s, step, out=s)
        np.sqrt(s, out=step)
        np.add(step, self.epsilon, out=step)
        np.divide(g, step, out=step)
        np.multiply(step, self.rate, out=step)
        np.subtract(self.theta, step, out=self.theta)

    def state(self) -> dict:
        return {"square": self.square.copy()}

    def load_state(self, state: dict) -> None:
        if state:
            self.square[...] = state["square"]


class Adam(SGD):
    """t ← t + 1; m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    θ ← θ − (η / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)

    Weight decay is decoupled (θ ← θ·(1 − ηλ) before the step), as in AdamW: with
    weight decay, adam is adamw; adamw differs only in its default λ of 0.01.
    """

    decoupled, plain_rule = True, False

    def __init__(self, theta, grad, settings, decayed=None):
        super().__init__(theta, grad, settings, decayed)
        self.beta1, self.beta2, self.epsilon = settings.beta1, settings.beta2, settings.eps
        self.t = 0
        self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)

    def _step(self, g) -> None:
        self.t += 1
        m, v, s = self.m, self.v, self.step
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

    def state(self) -> dict:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": self.t}

    def load_state(self, state: dict) -> None:
        if state:
            self.m[...], self.v[...], self.t = state["m"], state["v"], int(state["t"])


class AdamW(Adam):
    """Adam with decoupled weight decay, 0.01 unless `weight_decay` says otherwise
    (torch.optim.AdamW's default)."""


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "rmsprop": RMSprop,
              "adamw": AdamW}


def make(network, settings):
    """The optimizer `settings` ask for, over the network's flat `theta` and `grad`."""
    decayed = None if settings.decay == "all" else weights_mask(network.theta, network.params)
    return OPTIMIZERS[settings.optimizer](network.theta, network.grad, settings, decayed)


def weights_mask(theta, params) -> np.ndarray:
    """True at the entries of `theta` that belong to a weight: a param of 2 or more dims
    (a matrix such as Linear's W). Biases, scales and other vectors and scalars are left
    out, as nanoGPT and timm leave them out of weight decay.

    The params are contiguous views into `theta` (the backends' interface), so each one's
    place in it is its offset in memory.
    """
    mask = np.zeros(theta.shape, bool)
    base = theta.__array_interface__["data"][0]
    for array in params.values():
        if array.ndim >= 2:
            start = (array.__array_interface__["data"][0] - base) // theta.itemsize
            mask[start:start + array.size] = True
    return mask
