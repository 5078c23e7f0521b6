"""The whole training step, side by side: mfc's generated numpy step, the MiniFlow node
runtime, the hand-tuned numpy loop of bench/handtuned.py, and PyTorch eager.

    python bench/step_bench.py                 # every net and batch, about 4 minutes
    python bench/step_bench.py --repeats 5     # quicker, noisier

A step is what training repeats: take a batch, forward, backward, update, the loss as
a float. mfc's is `mfc.train.loop.Trainer.step` on a spec compiled from text (numpy
backend, then miniflow backend); the hand-tuned loop's is `HandTuned.step`; PyTorch's is
the usual eager step (`model(x)`, the loss, `zero_grad`, `backward`, `SGD.step`,
`loss.item()`) over batches taken as mfc takes them (an epoch's rows gathered at once,
each batch a view), in float64 like the others, on one thread.

- (a) the lesson's net: 10 -> 10 sigmoid -> 1, MSE, on diabetes (442 x 10), resampled;
- (b) 64 -> 128 ReLU -> 10, softmax cross-entropy, on digits (1797 x 64), shuffled.

Every contender runs with one BLAS thread. Repeats interleave the contenders and keep
the minimum of each (this machine's noise only adds time). Two clocks: the thread's CPU
time (what the step costs, whatever else the machine runs: other processes cannot
inflate it, and everything here runs in this one thread) and wall time.

Contenders that cannot be imported (torch, bench/handtuned.py) are left out.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))

import mfc  # noqa: E402
from mfc import backends, data, settings as train_settings  # noqa: E402
from mfc.backends import generated  # noqa: E402
from mfc.train.loop import Trainer  # noqa: E402

LESSON = """
X, y = Input(), Input()
W1, b1 = Param(_, 10), Param(10)
W2, b2 = Param(10, 1), Param(1)
cost = MSE(y, Linear(Sigmoid(Linear(X, W1, b1)), W2, b2))
train { data = "diabetes" }
"""

DIGITS = """
X, y = Input(), Input()
W1, b1 = Param(_, 128), Param(128)
W2, b2 = Param(128, 10), Param(10)
cost = CrossEntropy(y, Linear(ReLU(Linear(X, W1, b1)), W2, b2))
train { data = "digits" }
"""

# net → (spec, sampling, learning rate, batches, hand-tuned factory's name)
NETS = {"a": (LESSON, "resample", 1e-3, (11, 32, 256), "lesson_handtuned"),
        "b": (DIGITS, "shuffle", 1e-2, (32, 256), "digits_handtuned")}


def mfc_step(text: str, backend: str, **settings):
    model = mfc.compile(text, "<bench>")
    chosen = train_settings.at_train_time(model.program.settings, settings)
    network = backends.lower(backend, model.program, chosen.dtype, chosen.seed)
    trainer = Trainer(network, chosen, data.prepare(model.program, chosen, lambda t: None))
    return trainer.step, trainer


def torch_step(net: str, batch: int, rate: float, arrays: dict):
    """PyTorch eager: the same net, batches, SGD; float64, one thread."""
    import torch

    torch.set_num_threads(1)
    X = torch.from_numpy(np.ascontiguousarray(arrays["X"]))
    y = torch.from_numpy(np.ascontiguousarray(arrays["y"]))
    if net == "a":
        model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Sigmoid(),
                                    torch.nn.Linear(10, 1)).double()
        y = y.reshape(-1, 1)
        loss_of = torch.nn.functional.mse_loss
    else:
        model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 10)).double()
        loss_of = torch.nn.functional.cross_entropy
    optimizer = torch.optim.SGD(model.parameters(), lr=rate)
    rows, steps = len(X), len(X) // batch
    rng = np.random.default_rng(0)
    state = {"position": steps}
    epoch_X, epoch_y = torch.empty((steps * batch, *X.shape[1:]), dtype=X.dtype), \
        torch.empty((steps * batch, *y.shape[1:]), dtype=y.dtype)
    batches = [(epoch_X[i * batch:(i + 1) * batch], epoch_y[i * batch:(i + 1) * batch])
               for i in range(steps)]

    def step() -> float:
        if state["position"] == steps:  # an epoch's rows at once, as mfc takes them
            if net == "a":
                order = torch.from_numpy((rng.random(steps * batch) * rows).astype(np.int64))
            else:
                order = torch.from_numpy(rng.permutation(rows)[:steps * batch])
            torch.index_select(X, 0, order, out=epoch_X)
            torch.index_select(y, 0, order, out=epoch_y)
            state["position"] = 0
        xb, yb = batches[state["position"]]
        state["position"] += 1
        loss = loss_of(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def prepared_rows(trainer) -> dict:
    """The training rows mfc samples from, by Input name, as prepared (without the
    column of ones the numpy backend adds for Linears that fold their bias)."""
    return {slot.name: source[:, :-1] if isinstance(slot, generated.WithOnes) else source
            for slot, source in zip(trainer.sample.nodes, trainer.sample.sources)}


def contenders(net: str, batch: int, handtuned) -> dict:
    text, sampling, rate, _, factory = NETS[net]
    settings = dict(batch_size=batch, sampling=sampling, learning_rate=rate)
    numpy_step, trainer = mfc_step(text, "numpy", **settings)
    steps = {"mfc numpy": numpy_step,
             "mfc miniflow": mfc_step(text, "miniflow", **settings)[0]}
    if handtuned is not None:
        steps["hand-tuned"] = getattr(handtuned, factory)(batch_size=batch, sampling=sampling,
                                                          lr=rate).step
    arrays = prepared_rows(trainer)
    try:
        steps["torch eager"] = torch_step(net, batch, rate, arrays)
    except ImportError:
        pass
    return steps


def time_run(step, calls: int, clock) -> float:
    start = clock()
    for _ in range(calls):
        step()
    return (clock() - start) / calls * 1e6


def measure(steps: dict, calls: int, repeats: int) -> tuple[dict, dict]:
    """(thread CPU µs, wall µs) per step of each: the minimum over interleaved rounds."""
    for step in steps.values():
        time_run(step, calls // 4 + 1, time.perf_counter)
    cpu = dict.fromkeys(steps, math.inf)
    wall = dict.fromkeys(steps, math.inf)
    for _ in range(repeats):
        for name, step in steps.items():
            cpu[name] = min(cpu[name], time_run(step, calls, time.thread_time))
            wall[name] = min(wall[name], time_run(step, calls, time.perf_counter))
    return cpu, wall


def versions() -> str:
    found = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    blas = [f"{i['internal_api']} {i['version']}" for i in threadpool_info()
            if i["user_api"] == "blas"]
    found += blas[:1]
    try:
        import torch

        found.append(f"torch {torch.__version__}")
    except ImportError:
        pass
    return ", ".join(found)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--examples", type=int, default=4000,
                        help="examples per timed run (whole epochs)")
    args = parser.parse_args(argv)
    try:
        import handtuned
    except ImportError:
        handtuned = None
    with threadpool_limits(limits=1, user_api="blas"):
        print(versions())
        rows = []
        for net, (text, sampling, rate, batches, _) in NETS.items():
            for batch in batches:
                steps = contenders(net, batch, handtuned)
                rows_per_epoch = {"a": 442, "b": 1797}[net] // batch
                calls = rows_per_epoch * max(1, round(args.examples / (rows_per_epoch * batch)))
                cpu, wall = measure(steps, calls, args.repeats)
                rows.append((net, batch, sampling, cpu, wall))
                print(f"({net}) batch {batch}: " + ", ".join(
                    f"{k} {cpu[k]:.1f}/{wall[k]:.1f}" for k in steps) + "  (µs cpu/wall)",
                    flush=True)
    for title, which in (("thread CPU time", 3), ("wall time", 4)):
        print(f"\nµs per step, {title}:")
        names = list(rows[0][which])
        print("| net | batch | sampling | " + " | ".join(names) + " | numpy / hand-tuned "
              "| numpy / miniflow | torch / numpy |")
        print("|---|---:|---|" + "---:|" * (len(names) + 3))
        for net, batch, sampling, *clocks in rows:
            us = clocks[which - 3]
            ratio = lambda a, b: f"{us[a] / us[b]:.2f}" if a in us and b in us else "–"
            print(f"| ({net}) | {batch} | {sampling} | "
                  + " | ".join(f"{us[n]:.1f}" for n in names)
                  + f" | {ratio('mfc numpy', 'hand-tuned')} | {ratio('mfc numpy', 'mfc miniflow')}"
                  f" | {ratio('torch eager', 'mfc numpy')} |")


if __name__ == "__main__":
    main()
