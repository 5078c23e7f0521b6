"""Benchmark checking specs made of fragment calls against the same specs written out.

    python bench/fragment_bench.py                  # 250, 1,000 and 4,000 calls
    python bench/fragment_bench.py --calls 1000 10000

For each size, three specs of the same network (a chain of Dense layers of 8 tanh units,
four nodes a layer): `calls`, one statement per call (`h12 = Dense(h11, 8)`); `repeat`,
one `repeat(N, Dense, X, 8)`; and `by hand`, the expanded network written out
(`W12 = Param(8, 8); ...; h12 = Tanh(Linear(h11, W12, b12))`). Each is compiled in this
process (`mfc.lang.compiler.compile_text`: parse, uses, expansion, order, shapes,
validation), best of `--repeats` runs; and 1,000 calls are checked by the real CLI in a
fresh process (start-up included). Reported: µs per call, each spec's time against the
hand-written one's (the cost of expanding), and each size's time against the previous
size's (linear growth: the ratio of the sizes, here 4).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DENSE = """\
fragment Dense(x, n, act = Tanh) {
    W = Param(_, n)
    b = Param(n)
    return act(Linear(x, W, b))
}
"""
WIDTH = 8


def with_calls(n: int) -> str:
    lines = [DENSE, f"X = Input(_, {WIDTH})"]
    previous = "X"
    for i in range(1, n + 1):
        lines.append(f"h{i} = Dense({previous}, {WIDTH})")
        previous = f"h{i}"
    return "\n".join(lines + [f"cost = Sum({previous})"]) + "\n"


def with_repeat(n: int) -> str:
    return DENSE + f"X = Input(_, {WIDTH})\nh = repeat({n}, Dense, X, {WIDTH})\ncost = Sum(h)\n"


def by_hand(n: int) -> str:
    lines = [f"X = Input(_, {WIDTH})"]
    previous = "X"
    for i in range(1, n + 1):
        lines += [f"W{i} = Param({WIDTH}, {WIDTH})", f"b{i} = Param({WIDTH})",
                  f"h{i} = Tanh(Linear({previous}, W{i}, b{i}))"]
        previous = f"h{i}"
    return "\n".join(lines + [f"cost = Sum({previous})"]) + "\n"


SPECS = {"calls": with_calls, "repeat": with_repeat, "by hand": by_hand}


def time_compile(text: str, repeats: int) -> float:
    """Best wall time of compiling `text`, in seconds."""
    from mfc.lang.compiler import compile_text

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        compile_text(text, "bench.mf")
        best = min(best, time.perf_counter() - start)
    return best


def time_check(text: str) -> float:
    """Wall time of `mfc check` on `text` in a fresh interpreter, in seconds."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mf"
        path.write_text(text)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mfc", "check", str(path)],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mfc check failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[250, 1000, 4000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'spec':<8} {'calls':>6} {'seconds':>8} {'us/call':>8} {'/hand':>6} {'/prev':>6}")
    previous: dict[str, tuple[int, float]] = {}
    for n in args.calls:
        times = {name: time_compile(make(n), args.repeats) for name, make in SPECS.items()}
        for name, seconds in times.items():
            growth = ""
            if name in previous:
                growth = f"{seconds / previous[name][1]:.2f}"
            print(f"{name:<8} {n:>6} {seconds:>8.3f} {seconds / n * 1e6:>8.1f} "
                  f"{seconds / times['by hand']:>6.2f} {growth:>6}")
            previous[name] = (n, seconds)
    for name in ("calls", "by hand"):
        print(f"mfc check, 1,000 {name}, fresh process: "
              f"{time_check(SPECS[name](1000)):.2f} s")


if __name__ == "__main__":
    main()
