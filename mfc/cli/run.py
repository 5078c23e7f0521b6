"""`mfc run FILE`: compile with the flags as overrides, train, evaluate on the test rows
(`test = 0.2`), save a model file. `--epochs 0` trains nothing and evaluates the params
as they are (those `--load` gives)."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path

from mfc.backends import BACKENDS, DEFAULT
from mfc.cli import workers
from mfc.cli.common import (EXIT_FAILED, EXIT_OK, EXIT_SIGNAL, CliError,
                            add_setting_flags, check_folder, compile_spec, not_read_by, note,
                            setting_overrides)
from mfc.files import NotReplaceable, check_replaceable, check_writable
from mfc.text import one_line, plural


def add_parser(commands) -> None:
    run = commands.add_parser("run", help="train a spec with its train block")
    run.add_argument("file", metavar="FILE", help="the spec to train (.mf)")
    add_setting_flags(run)
    run.add_argument("--save", metavar="PATH.npz",
                     help="write the model file here: params, preprocessing, manifest")
    run.add_argument("--force", action="store_true",
                     help="let --save replace a file that is not an mfc model file")
    run.add_argument("--load", metavar="PATH.npz",
                     help="start from this model file's params and preprocessing")
    run.add_argument("--backend", choices=BACKENDS, default=DEFAULT,
                     help="what runs the network: numpy (generated code, the default), "
                     "miniflow (the lesson's node runtime) or torch (PyTorch)")
    run.add_argument("--device", metavar="DEVICE",
                     help="with --backend torch: cpu (the default), cuda, cuda:N or mps")
    run.add_argument("--workers", type=int, metavar="N", default=1,
                     help="with --backend torch: train data-parallel in N processes on "
                     "this machine, each taking a share of every batch (default 1; "
                     "several machines: torchrun, see docs/scaling.md)")
    run.add_argument("--threads", type=_threads, metavar="N",
                     help="BLAS threads while training (default: chosen by the size of the "
                     "step's matrix products; one for small networks)")
    run.add_argument("--explain", action="store_true",
                     help="print the generated training step (numpy backend) instead of "
                     "training")
    run.set_defaults(handler=run_command)


def run_command(args) -> int:
    options = _backend_options(args)
    if workers.in_group():
        return _as_worker(args, options)
    if args.workers > 1:
        return workers.launch(args.argv, args.workers)
    return _run(args, options)


def _run(args, options: dict) -> int:
    """Compile, train, evaluate, save."""
    from mfc.model import Model
    from mfc.train import Diverged, Interrupted

    overrides = setting_overrides(args)
    evaluate_only = overrides.get("epochs") == 0  # checked here: a block's must be 1 or more
    if evaluate_only:
        del overrides["epochs"]
    # A data path from the command line is relative to the current folder (the train
    # block's, to the spec's), and is named in messages as it was typed.
    base_dir = Path.cwd() if overrides.get("data") else None
    model = Model(compile_spec(args.file, base_dir=base_dir, **overrides),
                  backend=args.backend, **options)
    if args.explain:
        return _explain(model, args)
    _check_save_path(args.save, model.program, args.force)
    try:
        _train(model, args.load, evaluate_only, args.threads)
    except Diverged as err:
        return _diverged(err, model, args.save)
    except Interrupted as stop:
        return _interrupted(stop, model, args.save)
    test = _evaluate(model, evaluate_only)
    if args.save:
        _save(args.save, model, test=test)
    return EXIT_OK


def _threads(text: str) -> int:
    """--threads N: a whole number, at least 1."""
    import argparse

    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, at least 1, not '{text}'")
    return int(text)


def _backend_options(args) -> dict:
    """The backend's own options from the flags (the torch backend's device); a
    CliError for a flag the backend does not take."""
    workers.check_flags(args)
    if args.backend != "torch":
        if args.device is not None:
            raise CliError(f"--device picks a PyTorch device; add --backend torch "
                           f"(the {args.backend} backend runs on the CPU)")
        return {}
    if not _installed("torch"):
        raise CliError("--backend torch needs PyTorch, which is not installed here: "
                       "pip install 'mfc[torch]'")
    return {"device": args.device} if args.device is not None else {}


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # sys.modules holds None for it: blocked
        return False


def _as_worker(args, options: dict) -> int:
    """This process is a worker of a data-parallel run (started by --workers, or by
    torchrun): join the group; only worker 0 prints and saves."""
    from mfc.backends import torch as torch_backend

    if args.backend != "torch":
        raise CliError("this process is a worker of a torch.distributed group (RANK and "
                       "WORLD_SIZE are set): add --backend torch")
    rank, size = torch_backend.join_group(options.get("device", "cpu"))
    if args.workers > 1 and args.workers != size:
        raise CliError(f"--workers {args.workers}, but the group has {size} workers")
    if rank != 0 and not workers.supervised() and not args.debug:
        sys.stdout = sys.stderr = open(os.devnull, "w")  # only worker 0 speaks
    if rank != 0:
        args.save = None
    try:
        return _run(args, options)
    except torch_backend.WorkerLost:
        if workers.supervised():  # the command that started the workers says which died
            return workers.EXIT_LOST
        raise
    finally:
        torch_backend.leave_group()


def _explain(model, args) -> int:
    if args.backend != "numpy":
        raise CliError("--explain shows the numpy backend's generated code; "
                       f"it has nothing to show for --backend {args.backend}")
    if args.save or args.load:
        raise CliError("--explain trains nothing, so it takes neither --save nor --load")
    print(model.explain(note=note), end="")
    return EXIT_OK


def _check_save_path(path: str | None, program, force: bool) -> None:
    """Fail before training, not after, when the params could not be saved, or would
    replace the spec or the data it trains on, or a file mfc did not write."""
    if path is None:
        return
    try:
        check_folder("--save", path, "model.npz")
        not_read_by(program, "--save", path, "the params")
        check_writable(path)  # a temporary file in the folder, removed at once
        check_replaceable(path, "model", force)
    except OSError as err:
        raise CliError(f"--save {path}: {err.strerror or err}") from None
    except NotReplaceable as err:
        raise CliError(f"--save {err}; --force replaces it") from None


def _train(model, load: str | None, evaluate_only: bool, threads: int | None) -> None:
    """Load the model file (if asked), then train, an epoch a line (or, to evaluate
    only, prepare the data)."""
    from mfc.diagnostics import SpecError

    try:
        if load:
            model.restore(load, note=note)
        if evaluate_only:
            model.prepare(note=note)
            return
        with _Progress(model.settings.epochs, sys.stderr.isatty()) as progress:
            model.train(on_epoch=progress.report, note=note, threads=threads)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        raise CliError(f"{plural(len(err.errors), 'error')}; nothing was trained",
                       EXIT_FAILED) from None


def _diverged(err, model, path: str | None) -> int:
    """The loss stopped being finite: say where and, with --save, save the params of the
    last epoch whose loss was finite (the model holds them again), if one was."""
    if path is None or not err.kept:
        saved = "; nothing was saved: no epoch ended with a finite loss" if path else ""
        raise CliError(f"{err}{saved}", EXIT_FAILED)
    print(one_line(f"mfc: error: {err}"), file=sys.stderr)
    _save(path, model, f"as of epoch {err.kept}, the last with a finite loss")
    return EXIT_FAILED


def _evaluate(model, evaluate_only: bool):
    """After training, the loss and metrics on the test rows, printed (None without
    them). With `--epochs 0`, on the test rows, else the validation rows, else the
    training rows: the params were not trained on any of them in this run."""
    parts = ("test", "validation", "train") if evaluate_only else ("test",)
    part = next((p for p in parts if model.rows(p)), None)
    if part is None:
        if evaluate_only and not model.settings.data:  # the loss of the graph alone
            loss = model.forward({}).get(model.loss)
            if loss is not None:
                print(f"Loss: {loss.item():.3f}")
        return None
    evaluation = model.evaluate(part=part)
    print(f"\n{_TITLES[part]}\n{evaluation.table()}")
    return evaluation if part == "test" else None


_TITLES = {"test": "Test rows (held out from training and validation):",
           "validation": "Validation rows:", "train": "Training rows (none held out):"}


def _interrupted(stop, model, path: str | None) -> int:
    """Ctrl-C (SIGTERM, SIGHUP) came once a step had finished: say where, and save that
    step's params; exit 128 + the signal's number."""
    name = "" if stop.signum == signal.SIGINT else f" ({signal.Signals(stop.signum).name})"
    print(f"mfc: interrupted{name} {stop.where()}", file=sys.stderr)
    if path is not None:
        _save(path, model, "as of that last completed step")
    return EXIT_SIGNAL + stop.signum


def _save(path: str, model, when: str = "", test=None) -> None:
    try:
        model.save(path, test=test)
    except OSError as err:
        raise CliError(f"cannot save the model to {path}: {err.strerror or err}") from None
    print(f"mfc: saved {plural(len(model.params), 'param')} to {path}" +
          (f", {when}" if when else ""), file=sys.stderr)


class _Progress:
    """Each epoch's line on stdout and, on a terminal, a one-line bar on stderr below
    them, redrawn after each epoch and cleared when training ends."""

    width = 30

    def __init__(self, epochs: int, shown: bool):
        self.epochs, self.shown = epochs, shown

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        self._clear()

    def report(self, epoch) -> None:
        self._clear()
        print(epoch.line(), flush=True)
        self._show(epoch.number)

    def _show(self, done: int) -> None:
        if self.shown:
            filled = self.width * done // self.epochs
            bar = "#" * filled + "." * (self.width - filled)
            sys.stderr.write(f"\r[{bar}] epoch {done}/{self.epochs}")
            sys.stderr.flush()

    def _clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
