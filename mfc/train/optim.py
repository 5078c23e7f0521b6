"""Optimizers: each updates the flat vector of params (`theta`) in place from the flat
vector of their gradients (`grad`), a few ufunc calls whatever the number of params.
"""

from __future__ import annotations

import math

import numpy as np


class SGD:
    """value −= learning_rate · grad"""

    def __init__(self, theta, grad, settings):
        self.theta, self.grad, self.rate = theta, grad, settings.learning_rate
        self.step = np.empty_like(theta)

    def update(self) -> None:
        np.multiply(self.grad, self.rate, out=self.step)
        np.subtract(self.theta, self.step, out=self.theta)


class Momentum(SGD):
    """velocity = momentum · velocity − learning_rate · grad; value += velocity"""

    def __init__(self, theta, grad, settings):
        super().__init__(theta, grad, settings)
        self.momentum, self.velocity = settings.momentum, np.zeros_like(theta)

    def update(self) -> None:
        np.multiply(self.velocity, self.momentum, out=self.velocity)
        np.multiply(self.grad, self.rate, out=self.step)
        np.subtract(self.velocity, self.step, out=self.velocity)
        np.add(self.theta, self.velocity, out=self.theta)


class Adam(SGD):
    """m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²; value −= rate · m̂ / (√v̂ + ε), with
    m̂ = m / (1−β₁ᵗ), v̂ = v / (1−β₂ᵗ); β₁ is the `momentum` setting (0.9), β₂ = 0.999."""

    beta2, epsilon = 0.999, 1e-8

    def __init__(self, theta, grad, settings):
        super().__init__(theta, grad, settings)
        self.beta1, self.t = settings.momentum, 0
        self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)

    def update(self) -> None:
        self.t += 1
        m, v, s, g = self.m, self.v, self.step, self.grad
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


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
