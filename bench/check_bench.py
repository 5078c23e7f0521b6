"""Benchmark `mfc check` on generated specs of 1k, 10k and 100k nodes.

    python bench/check_bench.py            # all sizes, chain and layered
    python bench/check_bench.py --sizes 1000 10000
    python bench/check_bench.py --parse    # the parse alone (text -> AST), in-process
    python bench/check_bench.py --startup  # get the parse tables, check a small spec

Each spec is checked by the real CLI in a fresh process (start-up included), best of
`--repeats` runs. Targets (issue 2): 100k nodes in under 5 s on the 2-core machine, and
linear growth: the 100k/10k time ratio at most 12. `--startup`: `mfc check
specs/regressor.mf` in under 0.3 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import gen_specs  # noqa: E402

SHAPES = {"chain": gen_specs.chain, "layered": lambda n: gen_specs.layered(n, width=32)}
REPOSITORY = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter: the time to get the parser (its tables built by lark and
# saved, or loaded from the cache), in seconds, and whether lark was imported, as JSON.
_STARTUP = """
import json, sys, time
from mfc.lang import syntax
start = time.perf_counter()
syntax._parser()
print(json.dumps([time.perf_counter() - start, "lark" in sys.modules]))
"""


def time_check(path: Path, repeats: int, env=None) -> tuple[float, float]:
    """Best wall time and best CPU time (user + system) of `mfc check path` in a fresh
    interpreter, in seconds. On a busy machine the CPU time is the steadier of the two."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        cpu = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mfc.cli", "check", str(path)],
                              capture_output=True, text=True, env=env)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, _children_cpu() - cpu)
        if done.returncode != 0:
            raise SystemExit(f"mfc check failed on {path}:\n{done.stderr[-2000:]}")
    return best, best_cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_parse(text: str, repeats: int) -> tuple[float, float]:
    """Best wall and CPU time of the parse alone, in this process, with the cycle
    collector paused as the compiler pauses it."""
    from mfc.lang import syntax
    syntax.parse("x = 1")  # the parser is built or loaded once, outside the timing
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        start, cpu = time.perf_counter(), time.process_time()
        syntax.parse(text)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        gc.enable()
    return best, best_cpu


def checks(sizes: list[int], repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'spec':<8} {'nodes':>7} {'seconds':>8} {'us/node':>8} {'cpu s':>7}")
        for shape, make in SHAPES.items():
            times = {}
            for n in sizes:
                path = Path(folder) / f"{shape}{n}.mf"
                path.write_text(make(n))
                times[n], cpu = time_check(path, repeats if n <= 10000 else max(1, repeats - 1))
                print(f"{shape:<8} {n:>7} {times[n]:>8.2f} {times[n] / n * 1e6:>8.1f} {cpu:>7.2f}")
            if 10000 in times and 100000 in times:
                print(f"{shape:<8} 100k/10k ratio: {times[100000] / times[10000]:.1f}")


def parses(sizes: list[int], repeats: int) -> None:
    print(f"{'spec':<8} {'nodes':>7} {'parse s':>8} {'us/node':>8} {'cpu s':>7}")
    for shape, make in SHAPES.items():
        for n in sizes:
            seconds, cpu = time_parse(make(n), repeats if n <= 10000 else max(1, repeats - 1))
            print(f"{shape:<8} {n:>7} {seconds:>8.3f} {seconds / n * 1e6:>8.1f} {cpu:>7.3f}")


def startup(repeats: int) -> None:
    """The parser's tables with the grammar cache cold (built by lark and saved), warm
    (loaded, lark not imported) and unusable (built, not saved); then the whole check
    of a small spec."""
    with tempfile.TemporaryDirectory() as folder:
        blocked = Path(folder) / "a-file"
        blocked.write_text("")
        cases = {"cold": Path(folder) / "cache", "warm": Path(folder) / "cache",
                 "no cache": blocked}
        print(f"{'grammar cache':<14} {'parser':>8}  lark imported")
        for case, cache in cases.items():
            env = dict(os.environ, XDG_CACHE_HOME=str(cache))
            runs = [_startup_times(env) for _ in range(1 if case == "cold" else repeats)]
            print(f"{case:<14} {min(s for s, _ in runs):>8.3f}  {runs[-1][1]}")
        spec = REPOSITORY / "specs" / "regressor.mf"
        env = dict(os.environ, XDG_CACHE_HOME=str(cases["warm"]))
        seconds, cpu = time_check(spec, repeats, env)
        print(f"mfc check {spec.relative_to(REPOSITORY)}: {seconds:.3f} s ({cpu:.3f} s of CPU)")


def _startup_times(env: dict) -> list:
    done = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, text=True,
                          env=env, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--parse", action="store_true", help="time the parse alone, in-process")
    mode.add_argument("--startup", action="store_true",
                      help="time getting the parse tables (built or loaded), fresh interpreters")
    args = parser.parse_args()
    if args.parse:
        parses(args.sizes, args.repeats)
    elif args.startup:
        startup(args.repeats)
    else:
        checks(args.sizes, args.repeats)


if __name__ == "__main__":
    main()
