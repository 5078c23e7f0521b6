"""Benchmark `mfc check` on generated specs of 1k, 10k and 100k nodes.

    python bench/check_bench.py            # all sizes, chain and layered
    python bench/check_bench.py --sizes 1000 10000

Each spec is checked by the real CLI in a fresh process (start-up included), best of
`--repeats` runs. Targets (issue 2): 100k nodes in under 10 s on the 2-core machine, and
linear growth: the 100k/10k time ratio at most 12.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import gen_specs  # noqa: E402

SHAPES = {"chain": gen_specs.chain, "layered": lambda n: gen_specs.layered(n, width=32)}


def time_check(path: Path, repeats: int) -> float:
    """Best wall time of `mfc check path` in a fresh interpreter, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mfc.cli", "check", str(path)],
                              capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"mfc check failed on {path}:\n{done.stderr[-2000:]}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'spec':<8} {'nodes':>7} {'seconds':>8} {'us/node':>8}")
        for shape, make in SHAPES.items():
            times = {}
            for n in args.sizes:
                path = Path(folder) / f"{shape}{n}.mf"
                path.write_text(make(n))
                repeats = args.repeats if n <= 10000 else max(1, args.repeats - 1)
                times[n] = time_check(path, repeats)
                print(f"{shape:<8} {n:>7} {times[n]:>8.2f} {times[n] / n * 1e6:>8.1f}")
            if 10000 in times and 100000 in times:
                print(f"{shape:<8} 100k/10k ratio: {times[100000] / times[10000]:.1f}")


if __name__ == "__main__":
    main()
