"""mfc.train.optim: each optimizer's step against a plain numpy implementation written
here, step by step, and against torch.optim where the two mean the same thing."""

import numpy as np
import pytest

from mfc.settings import TrainSettings
from mfc.train.optim import OPTIMIZERS, weights_mask

torch = pytest.importorskip("torch")

STEPS = 25
RNG = np.random.default_rng(3)
A = RNG.normal(size=(8, 8)) / 4
C = RNG.normal(size=8)
NOISE = RNG.normal(size=(STEPS, 8))
START = RNG.normal(size=8)
# theta = [W (3×2), b (2,)]: the mask of `decay = weights` covers W only
MASK = np.array([True] * 6 + [False] * 2)


def gradient(theta, t):
    """A gradient that depends on the params (a quadratic's, plus noise per step)."""
    return A @ theta - C + NOISE[t]


def run_mfc(optimizer, steps=STEPS, mask=MASK, **settings):
    """theta after `steps` steps of mfc's `optimizer` on `gradient`."""
    settings = TrainSettings().with_overrides(optimizer=optimizer, **settings)
    theta, grad = START.copy(), np.zeros(8)
    opt = OPTIMIZERS[optimizer](theta, grad, settings, mask)
    for t in range(steps):
        grad[...] = gradient(theta, t)
        opt.update()
    return theta


# ---------------------------------------------------------------- the references


def reference_sgd(lr, wd=0.0, decay=MASK, clip=None, momentum=None):
    """θ ← θ − η(g + λθ) with the L2 term on the decayed entries; with momentum,
    v ← μv − η(g + λθ); θ ← θ + v."""
    theta, velocity = START.copy(), np.zeros(8)
    for t in range(STEPS):
        g = clipped(gradient(theta, t), clip)
        g = g + wd * np.where(decay, theta, 0.0)
        if momentum is None:
            theta = theta - lr * g
        else:
            velocity = momentum * velocity - lr * g
            theta = theta + velocity
    return theta


def reference_rmsprop(lr, rho, eps, wd=0.0, decay=MASK):
    """s ← ρs + (1−ρ)g²; θ ← θ − ηg/(√s + ε), g with the L2 term."""
    theta, square = START.copy(), np.zeros(8)
    for t in range(STEPS):
        g = gradient(theta, t) + wd * np.where(decay, theta, 0.0)
        square = rho * square + (1 - rho) * g * g
        theta = theta - lr * g / (np.sqrt(square) + eps)
    return theta


def reference_adam(lr, beta1, beta2, eps, wd=0.0, decay=MASK, clip=None):
    """θ ← θ(1 − ηλ) on the decayed entries, then Adam's bias-corrected step."""
    theta, m, v = START.copy(), np.zeros(8), np.zeros(8)
    for t in range(1, STEPS + 1):
        g = clipped(gradient(theta, t - 1), clip)
        theta = np.where(decay, theta * (1 - lr * wd), theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def clipped(g, clip):
    """g scaled to a norm of about `clip` when it is longer (torch's 1e-6 included)."""
    if clip is None:
        return g
    return g * min(1.0, clip / (np.linalg.norm(g) + 1e-6))


# ---------------------------------------------------------------- against numpy


@pytest.mark.parametrize("optimizer, settings, expected", [
    ("sgd", {"learning_rate": 0.1}, lambda: reference_sgd(0.1)),
    ("sgd", {"learning_rate": 0.1, "weight_decay": 0.3},
     lambda: reference_sgd(0.1, wd=0.3)),
    ("sgd", {"learning_rate": 0.1, "weight_decay": 0.3, "decay": "all"},
     lambda: reference_sgd(0.1, wd=0.3, decay=True)),
    ("sgd", {"learning_rate": 0.1, "clip_norm": 0.5}, lambda: reference_sgd(0.1, clip=0.5)),
    ("momentum", {"learning_rate": 0.05, "momentum": 0.8},
     lambda: reference_sgd(0.05, momentum=0.8)),
    ("momentum", {"learning_rate": 0.05, "momentum": 0.8, "weight_decay": 0.2,
                  "clip_norm": 1.0},
     lambda: reference_sgd(0.05, momentum=0.8, wd=0.2, clip=1.0)),
    ("rmsprop", {"learning_rate": 0.01}, lambda: reference_rmsprop(0.01, 0.99, 1e-8)),
    ("rmsprop", {"learning_rate": 0.01, "rho": 0.9, "eps": 1e-3, "weight_decay": 0.1},
     lambda: reference_rmsprop(0.01, 0.9, 1e-3, wd=0.1)),
    ("adam", {"learning_rate": 0.05}, lambda: reference_adam(0.05, 0.9, 0.999, 1e-8)),
    ("adam", {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-4},
     lambda: reference_adam(0.05, 0.8, 0.99, 1e-4)),
    ("adam", {"learning_rate": 0.05, "weight_decay": 0.5},
     lambda: reference_adam(0.05, 0.9, 0.999, 1e-8, wd=0.5)),
    ("adamw", {"learning_rate": 0.05}, lambda: reference_adam(0.05, 0.9, 0.999, 1e-8, wd=0.01)),
    ("adamw", {"learning_rate": 0.05, "weight_decay": 0.2, "decay": "all", "clip_norm": 0.3},
     lambda: reference_adam(0.05, 0.9, 0.999, 1e-8, wd=0.2, decay=True, clip=0.3)),
])
def test_each_step_is_the_formula(optimizer, settings, expected):
    mask = None if settings.get("decay") == "all" else MASK
    np.testing.assert_allclose(run_mfc(optimizer, mask=mask, **settings), expected(),
                               rtol=1e-12, atol=1e-14)


def test_clipping_only_shortens():
    assert np.array_equal(run_mfc("sgd", learning_rate=0.1, clip_norm=1e6),
                          run_mfc("sgd", learning_rate=0.1))
    assert not np.allclose(run_mfc("sgd", learning_rate=0.1, clip_norm=0.1),
                           run_mfc("sgd", learning_rate=0.1))


def test_the_gradient_array_is_left_as_the_backend_wrote_it():
    settings = TrainSettings().with_overrides(weight_decay=0.5, clip_norm=0.01, decay="all")
    theta, grad = START.copy(), gradient(START, 0)
    before = grad.copy()
    OPTIMIZERS["sgd"](theta, grad, settings).update()
    assert np.array_equal(grad, before)


def test_a_new_rate_applies_to_the_steps_after_it():
    settings = TrainSettings().with_overrides(optimizer="adamw", learning_rate=0.1)
    theta, grad = START.copy(), np.zeros(8)
    opt = OPTIMIZERS["adamw"](theta, grad, settings)
    opt.set_rate(0.0)  # no step, no decay
    grad[...] = 1.0
    opt.update()
    assert np.array_equal(theta, START)


def test_the_weights_mask_covers_params_of_two_or_more_dims():
    theta = np.zeros(2 * 3 + 3 + 4 + 1)
    params = {"W": theta[:6].reshape(2, 3), "b": theta[6:9], "K": theta[9:13].reshape(1, 2, 2),
              "s": theta[13:].reshape(())}
    assert weights_mask(theta, params).tolist() == [True] * 6 + [False] * 3 + [True] * 4 + [False]


# ---------------------------------------------------------------- against torch


def run_torch(make, steps=STEPS, clip=None):
    """theta after `steps` steps of the torch optimizer `make(W, b)` on the same
    gradient, W and b as two tensors (param groups decide their weight decay)."""
    w = torch.tensor(START[:6].reshape(3, 2), dtype=torch.float64, requires_grad=True)
    b = torch.tensor(START[6:], dtype=torch.float64, requires_grad=True)
    opt = make(w, b)
    for t in range(steps):
        theta = np.concatenate([w.detach().numpy().ravel(), b.detach().numpy()])
        g = torch.tensor(gradient(theta, t))
        w.grad, b.grad = g[:6].reshape(3, 2).clone(), g[6:].clone()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([w, b], clip)
        opt.step()
    return np.concatenate([w.detach().numpy().ravel(), b.detach().numpy()])


def groups(w, b, wd):
    """weight decay on W only: mfc's `decay = weights`."""
    return [{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}]


@pytest.mark.parametrize("optimizer, settings, make, clip", [
    ("sgd", {"learning_rate": 0.1, "weight_decay": 0.3},
     lambda w, b: torch.optim.SGD(groups(w, b, 0.3), lr=0.1), None),
    ("momentum", {"learning_rate": 0.05, "momentum": 0.8, "weight_decay": 0.1},
     lambda w, b: torch.optim.SGD(groups(w, b, 0.1), lr=0.05, momentum=0.8), None),
    ("rmsprop", {"learning_rate": 0.01, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.1},
     lambda w, b: torch.optim.RMSprop(groups(w, b, 0.1), lr=0.01, alpha=0.9, eps=1e-6),
     None),
    ("adam", {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
     lambda w, b: torch.optim.Adam([w, b], lr=0.05, betas=(0.8, 0.99), eps=1e-6), None),
    # mfc's adam decouples weight decay: torch's AdamW, not Adam(weight_decay=...)
    ("adam", {"learning_rate": 0.05, "weight_decay": 0.3},
     lambda w, b: torch.optim.AdamW(groups(w, b, 0.3), lr=0.05), None),
    ("adamw", {"learning_rate": 0.05},
     lambda w, b: torch.optim.AdamW(groups(w, b, 0.01), lr=0.05), None),
    ("adamw", {"learning_rate": 0.05, "clip_norm": 0.4},
     lambda w, b: torch.optim.AdamW(groups(w, b, 0.01), lr=0.05), 0.4),
    ("sgd", {"learning_rate": 0.1, "clip_norm": 0.5},
     lambda w, b: torch.optim.SGD([w, b], lr=0.1), 0.5),
])
def test_torch_optimizers_take_the_same_steps(optimizer, settings, make, clip):
    np.testing.assert_allclose(run_mfc(optimizer, **settings), run_torch(make, clip=clip),
                               rtol=1e-10, atol=1e-12)


def test_torchs_defaults_are_mfcs():
    """rmsprop's rho is torch's alpha (0.99); adam's betas and eps, adamw's decay."""
    np.testing.assert_allclose(
        run_mfc("rmsprop", learning_rate=0.01),
        run_torch(lambda w, b: torch.optim.RMSprop([w, b], lr=0.01)), rtol=1e-10)
    np.testing.assert_allclose(
        run_mfc("adamw", learning_rate=0.01, decay="all", mask=None),
        run_torch(lambda w, b: torch.optim.AdamW([w, b], lr=0.01)), rtol=1e-10)
