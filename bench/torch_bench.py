"""Time per epoch: the numpy backend against the torch backend on the CPU, and the torch
backend in 1 process against 2 (`mfc run --workers 2`, DistributedDataParallel over gloo).

    python bench/torch_bench.py            # every row, a few minutes
    python bench/torch_bench.py --quick    # fewer epochs

Backends: each net trains in this process through `Model.train` (the same loop, data,
batches and optimizer), a warm-up epoch first; the seconds of `epochs` more epochs are
timed, numpy and torch interleaved over `repeats`, and the minimum of each is kept
(threads as mfc.threads chooses them: one, at these sizes).

Workers: `mfc run SPEC --backend torch --workers N` in a fresh process; the time per
epoch is read from when its epoch lines appear, between the first and the last, so the
start (Python, torch, the process group) is left out and printed apart.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mfc

ROOT = Path(__file__).resolve().parent.parent
WIDE = """
X, y = Input(), Input()
W1, b1 = Param(_, {width}, init=he), Param({width})
W2, b2 = Param({width}, {width}, init=he), Param({width})
W3, b3 = Param({width}, 10, init=xavier), Param(10)
h = ReLU(Linear(ReLU(Linear(X, W1, b1)), W2, b2))
cost = CrossEntropy(y, Linear(h, W3, b3))
train {{ data = "{data}"; batch_size = {batch}; learning_rate = 0.01; optimizer = momentum }}
"""


def nets(folder: Path) -> list[tuple[str, str, dict]]:
    """(label, spec path, settings) of each net measured."""
    wide = folder / "wide.mf"
    rng = np.random.default_rng(0)
    np.savez(folder / "wide.npz", X=rng.standard_normal((8192, 256)), y=rng.integers(0, 10, 8192))
    wide.write_text(WIDE.format(width=512, data=folder / "wide.npz", batch=256))
    return [("regressor (10→10→1), batch 11", str(ROOT / "specs/regressor.mf"), {}),
            ("digits (64→128→10), batch 32", str(ROOT / "specs/digits.mf"), {}),
            ("digits, batch 256", str(ROOT / "specs/digits.mf"), {"batch_size": 256}),
            ("wide (256→512→512→10), batch 256", str(wide), {})]


def epoch_seconds(spec: str, backend: str, settings: dict, epochs: int) -> float:
    model = mfc.load(spec, backend=backend)
    model.train(epochs=1, **settings)  # warm-up: data, code, buffers
    start = time.perf_counter()
    model.train(epochs=epochs, **settings)
    return (time.perf_counter() - start) / epochs


def backends_table(folder: Path, epochs: int, repeats: int) -> None:
    print("| net | numpy (ms/epoch) | torch CPU (ms/epoch) | torch / numpy |")
    print("|---|--:|--:|--:|")
    for label, spec, settings in nets(folder):
        best = {"numpy": float("inf"), "torch": float("inf")}
        for _ in range(repeats):
            for backend in best:
                best[backend] = min(best[backend], epoch_seconds(spec, backend, settings, epochs))
        print(f"| {label} | {best['numpy'] * 1e3:.1f} | {best['torch'] * 1e3:.1f} | "
              f"{best['torch'] / best['numpy']:.2f} |", flush=True)


def worker_run(spec: str, workers: int, epochs: int, settings: dict) -> tuple[float, float]:
    """(seconds per epoch, seconds to the first epoch line) of `mfc run --workers`."""
    flags = [f"--set={k}={v}" for k, v in settings.items()]
    command = [sys.executable, "-m", "mfc", "run", spec, "--backend", "torch", "--workers",
               str(workers), "--epochs", str(epochs), *flags]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    times = [time.perf_counter() for line in process.stdout if line.startswith("Epoch:")]
    process.wait()
    if process.returncode != 0 or len(times) < 2:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode})")
    return (times[-1] - times[0]) / (len(times) - 1), times[0] - start


def workers_table(folder: Path, epochs: int) -> None:
    print("\n| net | 1 worker (ms/epoch) | 2 workers (ms/epoch) | 2 / 1 | start, 1 / 2 (s) |")
    print("|---|--:|--:|--:|--:|")
    for label, spec, settings in nets(folder)[1:]:
        one, start_one = worker_run(spec, 1, epochs, settings)
        two, start_two = worker_run(spec, 2, epochs, settings)
        print(f"| {label} | {one * 1e3:.1f} | {two * 1e3:.1f} | {two / one:.2f} | "
              f"{start_one:.1f} / {start_two:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    epochs, repeats = (2, 1) if args.quick else (5, 3)
    with tempfile.TemporaryDirectory() as folder:
        backends_table(Path(folder), epochs, repeats)
        workers_table(Path(folder), 4 if args.quick else 12)


if __name__ == "__main__":
    main()
