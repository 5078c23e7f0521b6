"""mfc.train.schedules and mfc.train.stopping: the rate of each epoch against reference
sequences written here and torch.optim.lr_scheduler's; early stopping as Keras's."""

import math

import numpy as np
import pytest

from mfc.settings import TrainSettings
from mfc.train.schedules import Schedule
from mfc.train.stopping import EarlyStopping

torch = pytest.importorskip("torch")

EPOCHS = 20


def rates(epochs=EPOCHS, losses=None, **settings):
    """mfc's rate for epochs 1..epochs; `losses` fed to the plateau after each."""
    schedule = Schedule(TrainSettings().with_overrides(**settings))
    out = []
    for epoch in range(1, epochs + 1):
        out.append(schedule.rate(epoch, epochs))
        schedule.observe(epoch, None if losses is None else losses[epoch - 1])
    return out


def torch_rates(make, epochs=EPOCHS, lr=0.1, losses=None):
    """torch's rate for each epoch, its scheduler stepped once an epoch."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = make(optimizer)
    out = []
    for epoch in range(epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(*([] if losses is None else [losses[epoch]]))
    return out


# ---------------------------------------------------------------- reference sequences


def test_constant():
    assert rates(learning_rate=0.1) == [0.1] * EPOCHS


def test_step():
    expected = [0.1 * 0.5 ** (e // 3) for e in range(EPOCHS)]
    assert rates(learning_rate=0.1, lr_schedule="step", step_size=3, gamma=0.5) == \
        pytest.approx(expected, rel=1e-15)


def test_exponential_with_a_floor():
    expected = [max(0.1 * 0.7 ** e, 0.002) for e in range(EPOCHS)]
    assert rates(learning_rate=0.1, lr_schedule="exponential", gamma=0.7, min_lr=0.002) == \
        pytest.approx(expected, rel=1e-15)


def test_cosine():
    expected = [0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / EPOCHS)) / 2
                for e in range(EPOCHS)]
    assert rates(learning_rate=0.1, lr_schedule="cosine", min_lr=0.001) == \
        pytest.approx(expected, rel=1e-15)


def test_warmup_then_cosine():
    w = 4
    warm = [0.1 * (e + 1) / (w + 1) for e in range(w)]
    cosine = [0.1 * (1 + math.cos(math.pi * k / (EPOCHS - w))) / 2 for k in range(EPOCHS - w)]
    assert rates(learning_rate=0.1, lr_schedule="cosine", warmup_epochs=w) == \
        pytest.approx(warm + cosine, rel=1e-15)


def test_warmup_alone_climbs_then_holds():
    assert rates(epochs=5, learning_rate=0.3, warmup_epochs=2) == \
        pytest.approx([0.1, 0.2, 0.3, 0.3, 0.3])


def test_plateau_waits_more_than_lr_patience_epochs():
    losses = [5, 4, 3, 3, 3, 3, 2.95, 3, 3, 3, 3, 3, 1, 1, 1]
    # improvement means better than the best by more than min_delta (0.1): epoch 7's
    # 2.95 is not; after more than 3 epochs without one (4..7, 8..11), the rate is
    # halved and the count starts again; epoch 13 improves
    expected = [0.1] * 7 + [0.05] * 4 + [0.025] * 4
    assert rates(epochs=15, losses=losses, learning_rate=0.1, lr_schedule="plateau",
                 gamma=0.5, lr_patience=3, min_delta=0.1, validation=0.2) == \
        pytest.approx(expected)


# ---------------------------------------------------------------- torch's schedulers

LOSSES = [1.0, 0.8, 0.7, 0.71, 0.69, 0.7, 0.7, 0.7, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6,
          0.4, 0.4, 0.4, 0.4]


@pytest.mark.parametrize("settings, make, losses", [
    ({"lr_schedule": "step", "step_size": 4, "gamma": 0.3},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.3), None),
    ({"lr_schedule": "exponential", "gamma": 0.8},
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8), None),
    ({"lr_schedule": "cosine", "min_lr": 0.01},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=EPOCHS, eta_min=0.01),
     None),
    ({"lr_schedule": "cosine", "warmup_epochs": 5},
     lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
         torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 6, total_iters=5),
         torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=EPOCHS - 5)], milestones=[5]),
     None),
    ({"lr_schedule": "step", "step_size": 2, "gamma": 0.5, "warmup_epochs": 3},
     lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
         torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 4, total_iters=3),
         torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)], milestones=[3]),
     None),
    ({"lr_schedule": "plateau", "gamma": 0.5, "lr_patience": 2, "min_delta": 0.05,
      "min_lr": 0.02, "validation": 0.2},
     lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
         o, factor=0.5, patience=2, threshold=0.05, threshold_mode="abs", min_lr=0.02),
     LOSSES),
])
def test_torch_schedulers_give_the_same_rates(settings, make, losses):
    assert rates(losses=losses, learning_rate=0.1, **settings) == \
        pytest.approx(torch_rates(make, losses=losses), rel=1e-12)


# ---------------------------------------------------------------- early stopping


def stopper(**settings):
    settings = TrainSettings().with_overrides(validation=0.2, **settings)
    return EarlyStopping(settings, np.zeros(2))


def stop_epoch(watch, losses):
    """The epoch after which `watch` stops, or None."""
    for epoch, loss in enumerate(losses, 1):
        if watch.observe(epoch, loss):
            return epoch
    return None


def test_stops_after_patience_epochs_without_improvement():
    watch = stopper(patience=3)
    assert stop_epoch(watch, [3, 2, 1, 1.5, 1.2, 1.1, 0.5]) == 6
    assert (watch.best_epoch, watch.best) == (3, 1)


def test_an_improvement_smaller_than_min_delta_does_not_count():
    watch = stopper(patience=2, min_delta=0.1)
    assert stop_epoch(watch, [1.0, 0.95, 0.92, 0.5]) == 3
    assert watch.best_epoch == 1


def test_restore_best_puts_back_the_best_epochs_params():
    watch = stopper(patience=2)
    for epoch, (loss, value) in enumerate([(2, 1.0), (1, 2.0), (3, 3.0)], 1):
        watch.theta[...] = value
        watch.observe(epoch, loss)
    assert watch.restore() and watch.theta.tolist() == [2.0, 2.0]


def test_restore_best_false_keeps_the_last_params():
    watch = stopper(patience=2, restore_best=False)
    watch.theta[...] = 1.0
    watch.observe(1, 0.5)
    watch.theta[...] = 2.0
    assert not watch.restore() and watch.theta.tolist() == [2.0, 2.0]


def test_keras_early_stopping_stops_at_the_same_epoch():
    """Keras's rule, written out: wait += 1; on improvement (loss < best − min_delta)
    best = loss and wait = 0; stop when wait ≥ patience."""
    rng = np.random.default_rng(0)
    losses = list(1 / np.arange(1, 60) + rng.normal(scale=0.02, size=59))
    best, wait, expected = math.inf, 0, None
    for epoch, loss in enumerate(losses, 1):
        wait += 1
        if loss < best - 0.001:
            best, wait = loss, 0
        elif wait >= 4:
            expected = epoch
            break
    assert expected is not None
    assert stop_epoch(stopper(patience=4, min_delta=0.001), losses) == expected
