"""`mfc run SPEC --backend torch --workers N`: one data-parallel run in N processes on
this machine (torch.distributed, gloo on 127.0.0.1; mfc.backends.torch).

The command starts N workers, each the same `mfc run` again, with the environment that
torchrun gives its workers (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
MASTER_ADDR, MASTER_PORT): a worker is an `mfc run` that finds a process group
described in its environment, whoever started it (this module, or torchrun on several
machines: docs/scaling.md). Only worker 0 prints and saves; the others' output goes
nowhere (their last error line is kept, to say why one failed).

The command waits for them. A worker that dies (a signal, a crash) makes the others
lose contact at their next step; each of them then stops without a word, and the
command says, in one line, which worker died: nothing was saved, since worker 0 saves
only at the end of a run, atomically. Ctrl-C, SIGTERM and SIGHUP go to worker 0 alone,
which stops after its step as any run does (and saves, with --save); the others stop
when it leaves.
"""

from __future__ import annotations

import os
import signal
import sys
import time

# socket, subprocess and tempfile are imported where workers are started: a run in one
# process, nearly every run, does without them (a megabyte of memory).

from mfc.cli.common import EXIT_BUG, EXIT_FAILED, CliError

# The exit code of a worker that lost contact with another one, under this module: it
# prints nothing and lets the command say which worker died.
EXIT_LOST = 3
SUPERVISED = "MFC_SUPERVISED"  # in a worker's environment: started by `launch`
GRACE = 10.0  # seconds the others get to stop by themselves once one has died
GROUP_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def in_group() -> bool:
    """Whether this process is a worker of a process group its environment describes."""
    return all(name in os.environ for name in GROUP_VARIABLES)


def supervised() -> bool:
    return os.environ.get(SUPERVISED) == "1"


def launch(argv: list[str], workers: int) -> int:
    """Run `mfc *argv` as `workers` processes of one group; the run's exit code."""
    import tempfile

    port = _free_port()
    logs = [None] + [tempfile.TemporaryFile() for _ in range(1, workers)]
    processes = [_start(argv, rank, workers, port, logs[rank]) for rank in range(workers)]
    try:
        with _signals_to(processes[0]):
            ended = _wait(processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return _verdict(processes, ended, logs)


def _start(argv, rank: int, workers: int, port: int, log) -> subprocess.Popen:
    import subprocess

    env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(workers),
               LOCAL_WORLD_SIZE=str(workers), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port), **{SUPERVISED: "1"})
    quiet = rank != 0
    return subprocess.Popen(
        [sys.executable, "-m", "mfc", *argv], env=env,
        stdout=subprocess.DEVNULL if quiet else None, stderr=log if quiet else None,
        stdin=subprocess.DEVNULL if quiet else None,
        start_new_session=True,  # the terminal's Ctrl-C reaches this process alone
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)


def _die_with_parent() -> None:
    """In the worker, before it runs: SIGKILL when the command itself dies."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _signals_to:
    """While waiting: Ctrl-C, SIGTERM and SIGHUP go on to `worker` (worker 0), which
    stops after its step; a second one stops it at once."""

    def __init__(self, worker: subprocess.Popen):
        self.worker, self.previous = worker, {}

    def __enter__(self):
        from mfc.train.loop import STOP_SIGNALS

        for signum in STOP_SIGNALS:
            self.previous[signum] = signal.signal(signum, self._forward)
        return self

    def _forward(self, signum, frame) -> None:
        if self.worker.poll() is None:
            self.worker.send_signal(signum)

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _wait(processes) -> list[int]:
    """Wait for every worker; the ranks in the order they ended. Once one has died
    (not an orderly exit of mfc's), the others get GRACE seconds, then are killed."""
    ended: list[int] = []
    deadline = None
    while len(ended) < len(processes):
        for rank, process in enumerate(processes):
            if rank not in ended and process.poll() is not None:
                ended.append(rank)
                if deadline is None and _died(process.returncode):
                    deadline = time.monotonic() + GRACE
        if deadline is not None and time.monotonic() > deadline:
            for process in processes:
                if process.poll() is None:
                    process.kill()
        time.sleep(0.05)
    return ended


def _died(code: int) -> bool:
    """A worker that ended other than by mfc's own exits: a signal, or a bug."""
    return code < 0 or code == EXIT_BUG


def _verdict(processes, ended: list[int], logs) -> int:
    """Worker 0's exit code when it ended on its own (it has said what happened); else
    one line naming the worker that died first."""
    first = processes[0].returncode
    if first not in (EXIT_LOST,) and not first < 0:
        return first
    culprits = [rank for rank in ended if processes[rank].returncode not in (0, EXIT_LOST)]
    rank = culprits[0] if culprits else 0
    raise CliError(f"worker {rank} of {len(processes)} {_how(processes[rank].returncode)}"
                   f"{_last_line(logs[rank])}; the run stopped, and nothing was saved",
                   EXIT_FAILED)


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"stopped with exit code {code}"


def _last_line(log) -> str:
    if log is None:
        return ""
    log.seek(0)
    lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return f" ({lines[-1]})" if lines else ""


def check_flags(args) -> None:
    """The flags of a run on several workers, before any starts."""
    if args.workers < 1:
        raise CliError(f"--workers must be 1 or more, not {args.workers}")
    if args.workers > 1 and args.backend != "torch":
        raise CliError(f"--workers {args.workers} trains on several processes with "
                       f"PyTorch; add --backend torch")
    if args.workers > 1 and args.explain:
        raise CliError("--explain trains nothing, so it takes no --workers")
    cores = os.cpu_count() or 1
    on_cpu = args.device is None or args.device == "cpu"
    if args.workers > cores and on_cpu:
        raise CliError(f"--workers {args.workers}: this machine has {cores} CPU "
                       f"core{'s' if cores > 1 else ''}, and each worker is a whole process "
                       f"(a Python, torch and the data); use at most {cores}, or torchrun "
                       f"to spread the workers over several machines (docs/scaling.md)")
