"""bench/handtuned.py, the loop the generated step is timed against, trains the nets of
bench/step_bench.py as mfc does: given mfc's data and starting params, its steps see
mfc's batches and give mfc's losses (to rounding: it folds biases and the rate)."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import handtuned  # noqa: E402
import step_bench  # noqa: E402


@pytest.mark.parametrize("net, batch", [("a", 11), ("a", 256), ("b", 32)])
@pytest.mark.parametrize("backend", ["numpy", "miniflow"])
def test_the_handtuned_loop_gives_mfcs_losses(net, batch, backend):
    text, sampling, rate, _, factory = step_bench.NETS[net]
    step, trainer = step_bench.mfc_step(text, backend, batch_size=batch, sampling=sampling,
                                        learning_rate=rate)
    X, y = step_bench.prepared_rows(trainer).values()
    loop = getattr(handtuned, factory)(batch_size=batch, sampling=sampling, lr=rate,
                                       data=(X, y), theta=trainer.network.theta.copy())
    steps = 2 * trainer.sample.steps + 3  # into a third epoch: each epoch draws alike
    ours = [loop.step() for _ in range(steps)]
    theirs = [step() for _ in range(steps)]
    assert ours[0] != ours[-1]  # it trains
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)
    np.testing.assert_allclose(loop.theta, trainer.network.theta, rtol=1e-9, atol=1e-12)


def test_the_handtuned_loop_trains_from_its_own_start():
    for factory, batch in (("lesson_handtuned", 32), ("digits_handtuned", 32)):
        loop = getattr(handtuned, factory)(batch_size=batch)
        first = np.mean([loop.step() for _ in range(20)])
        for _ in range(400):
            loop.step()
        assert np.mean([loop.step() for _ in range(20)]) < 0.9 * first
