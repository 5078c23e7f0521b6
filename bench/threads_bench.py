"""When do two BLAS threads pay for a whole training step? The measurement behind
mfc.threads' rule.

    python bench/threads_bench.py            # the grid below, about 5 minutes
    python bench/threads_bench.py --quick    # a smaller grid

Nets of two Linear layers, W inputs -> W ReLU units -> 10 class scores, on random data
of W features (4096 rows), trained by mfc's numpy backend (`Trainer.step`: batch,
forward, backward, SGD). For each width W and batch B the step is timed with one BLAS
thread and with two (threadpoolctl), in two conditions: the machine as it is, and with
one more process keeping a core busy (`mfc run` beside another job). Wall time, since
threads are what is measured; repeats interleave the two thread counts and the minimum
is kept. The largest product of a step is B·W·W multiply-adds (the first layer's).

It prints one row per (W, B) and the smallest largest-product from which two threads
won in every row above it, in both conditions: mfc.threads.PAYS_FROM.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import mfc
from mfc import backends, data, settings as train_settings
from mfc.train.loop import Trainer

SPEC = """
X, y = Input(), Input()
W1, b1 = Param(_, {width}, init=he), Param({width})
W2, b2 = Param({width}, 10, init=xavier), Param(10)
cost = CrossEntropy(y, Linear(ReLU(Linear(X, W1, b1)), W2, b2))
train {{ data = "{data}"; learning_rate = 0.01 }}
"""


def trainer(width: int, batch: int, folder) -> Trainer:
    path = folder / f"w{width}.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        np.savez(path, X=rng.standard_normal((4096, width)), y=rng.integers(0, 10, 4096))
    model = mfc.compile(SPEC.format(width=width, data=path), "<threads>")
    settings = train_settings.at_train_time(model.program.settings, {"batch_size": batch})
    network = backends.lower("numpy", model.program, settings.dtype, settings.seed)
    return Trainer(network, settings, data.prepare(model.program, settings, lambda t: None))


def step_time(step, seconds: float) -> float:
    """Seconds per step over about `seconds`."""
    step()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
    return (time.perf_counter() - start) / max(calls, 1)


def measure(trainer_, rounds: int, seconds: float) -> dict[int, float]:
    best = {1: float("inf"), 2: float("inf")}
    for _ in range(rounds):
        for threads in (1, 2):
            with threadpool_limits(limits=threads, user_api="blas"):
                best[threads] = min(best[threads], step_time(trainer_.step, seconds))
    return best


class BusyCore:
    """One more process spinning on a core while the block runs."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def main(argv=None) -> None:
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    widths = (64, 256, 1024) if args.quick else (64, 256, 512, 1024)
    batches = (32, 256) if args.quick else (32, 256, 1024)
    seconds = 0.15 if args.quick else 0.3
    rows = []
    print(f"numpy {np.__version__}; wall time per step, min of {args.rounds} rounds")
    print(f"{'W':>5} {'B':>5} {'largest product':>16} | {'as is: 1 thr':>12} {'2 thr':>8} "
          f"{'2/1':>5} | {'busy core: 1 thr':>16} {'2 thr':>8} {'2/1':>5}")
    with tempfile.TemporaryDirectory() as folder:
        for width in widths:
            for batch in batches:
                t = trainer(width, batch, Path(folder))
                quiet = measure(t, args.rounds, seconds)
                with BusyCore():
                    busy = measure(t, args.rounds, seconds)
                size = batch * width * width
                rows.append((size, quiet[2] / quiet[1], busy[2] / busy[1]))
                print(f"{width:5} {batch:5} {size:16,} | {quiet[1] * 1e3:9.2f} ms "
                      f"{quiet[2] * 1e3:5.2f} ms {rows[-1][1]:5.2f} | "
                      f"{busy[1] * 1e3:13.2f} ms {busy[2] * 1e3:5.2f} ms {rows[-1][2]:5.2f}",
                      flush=True)
    rows.sort()
    pays = next((size for i, (size, _, _) in enumerate(rows)
                 if all(q < 1 and b < 1 for _, q, b in rows[i:])), None)
    print("two threads pay from a largest product of "
          + (f"{pays:,} multiply-adds" if pays else "no size measured (never, here)"))


if __name__ == "__main__":
    main()
