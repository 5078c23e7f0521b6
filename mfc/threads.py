"""How many threads the BLAS library gets while training: chosen by problem size.

numpy's BLAS starts one thread per core. For the small products of a small network the
threads cost more than they save, and on a machine where another process is busy they
are far worse: on this project's 2-core machine, the digits net at batch 256 took
7.6 ms a step with two threads against 0.40 ms with one. bench/threads_bench.py measures
whole training steps with one and two threads, on a quiet machine and beside a busy
core; bench/README.md has its figures. They give the rule: one thread, unless the
step's largest matrix product has at least `PAYS_FROM` multiply-adds (none of the sizes
measured here did); `--threads N` (`Model.train(threads=N)`) overrides it.

threadpoolctl (which scikit-learn also uses) sets the limit; without it, the BLAS is
left as it is.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager, nullcontext

# bench/threads_bench.py found no size at which two threads ran a whole step faster than
# one on this 2-core machine, as it was and beside a busy core, up to a largest product
# of 1.07e9 multiply-adds (a 1024-wide layer at batch 1024: 1.37x and 1.01x slower).
# Threads are left to products past that, where a quiet machine with more cores may
# gain; below it, one thread.
PAYS_FROM = 2_000_000_000


def largest_product(program, batch_size: int) -> int:
    """The multiply-adds of the largest matrix product in a training step of `program`
    (a mfc.ir.Program) for batches of `batch_size` rows; 0 when a shape is unknown."""
    largest = 0
    for node in program.nodes.values():
        shapes = [program.nodes[i].shape for i in node.inputs]
        if node.op is None or any(s is None for s in shapes):
            continue
        sized = [tuple(batch_size if d == "N" else d for d in s) for s in shapes]
        if all(isinstance(d, int) for s in sized for d in s):
            largest = max(largest, node.op.multiply_adds(*sized))
    return largest


def chosen(program, batch_size: int, requested: int | None = None) -> int:
    """The BLAS threads for training: `requested` if given, else one below
    `PAYS_FROM`, else one per core."""
    if requested is not None:
        return requested
    if largest_product(program, batch_size) < PAYS_FROM:
        return 1
    return os.cpu_count() or 1


@contextmanager
def limited(threads: int):
    """BLAS limited to `threads` threads inside the block (threadpoolctl), if it can be;
    and PyTorch's own threads, when it is loaded (the torch backend)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the BLAS keeps its own
        context = nullcontext()
    else:
        context = threadpool_limits(limits=threads, user_api="blas")
    with context, _torch_limited(threads):
        yield


@contextmanager
def _torch_limited(threads: int):
    """torch's intra-op threads: the same rule pays (on this machine, while other processes
    ran, the digits net took 0.2 s an epoch on the torch backend with one thread, 4.1 s
    with two)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
