"""`mfc run FILE`: compile with the flags as overrides, train, evaluate on the test rows
(`test = 0.2`), save a model file. `--epochs 0` trains nothing and evaluates the params
as they are (those `--load` gives)."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from itertools import combinations
from pathlib import Path

from mfc.backends import BACKENDS, DEFAULT
from mfc.cli import workers
from mfc.cli.common import (EXIT_FAILED, EXIT_OK, EXIT_SIGNAL, CliError,
                            add_setting_flags, check_output, compile_spec, note,
                            setting_overrides)
from mfc.files import same_file
from mfc.text import one_line, plural


def add_parser(commands) -> None:
    run = commands.add_parser("run", help="train a spec with its train block")
    run.add_argument("file", metavar="FILE", help="the spec to train (.mf)")
    add_setting_flags(run)
    run.add_argument("--save", metavar="PATH.npz",
                     help="write the model file here: params, preprocessing, manifest")
    run.add_argument("--force", action="store_true",
                     help="let --save replace a file that is not an mfc model file")
    start = run.add_mutually_exclusive_group()
    start.add_argument("--load", metavar="PATH.npz",
                       help="start from this model file's params and preprocessing")
    start.add_argument("--resume", metavar="CKPT.npz",
                       help="go on with the run this model file or checkpoint was saved "
                       "from, up to its epochs (the whole run's count), exactly as it would "
                       "have gone on")
    run.add_argument("--checkpoint", metavar="PATH.npz",
                     help="where checkpoint_every = N writes the checkpoint (the model "
                     "file and the training state; default: the --save file); Ctrl-C and "
                     "a diverged run write it too")
    run.add_argument("--log", metavar="PATH.csv",
                     help="write one row per epoch here as training goes (.csv, or .jsonl "
                     "for JSON Lines): epoch, loss, validation loss and accuracy, learning "
                     "rate, seconds")
    run.add_argument("--plot", metavar="PATH.png",
                     help="draw the loss curve here at the end (.png, .svg or .pdf)")
    shown = run.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", action="store_true",
                       help="print no epoch lines, only the final summary")
    shown.add_argument("--every", metavar="N", type=_at_least_one,
                       help="print every Nth epoch's line (and the last)")
    run.add_argument("--backend", choices=BACKENDS, default=DEFAULT,
                     help="what runs the network: numpy (generated code, the default), "
                     "miniflow (the lesson's node runtime) or torch (PyTorch)")
    run.add_argument("--device", metavar="DEVICE",
                     help="with --backend torch: cpu (the default), cuda, cuda:N or mps")
    run.add_argument("--workers", type=int, metavar="N", default=1,
                     help="with --backend torch: train data-parallel in N processes on "
                     "this machine, each taking a share of every batch (default 1; "
                     "several machines: torchrun, see docs/scaling.md)")
    run.add_argument("--threads", type=_at_least_one, metavar="N",
                     help="BLAS threads while training (default: chosen by the size of the "
                     "step's matrix products; one for small networks)")
    run.add_argument("--explain", action="store_true",
                     help="print the generated training step (numpy backend) instead of "
                     "training")
    run.set_defaults(handler=run_command, writes=True)  # False: a worker other than 0


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
    _check_outputs(args, model.program)
    try:
        _train(model, args, evaluate_only)
    except Diverged as err:
        return _diverged(err, model, args)
    except Interrupted as stop:
        return _interrupted(stop, model, args)
    test = _evaluate(model, evaluate_only)
    if args.save:
        _save(args.save, model, test=test)
    return EXIT_OK


def _at_least_one(text: str) -> int:
    """--threads N, --every N: a whole number, at least 1."""
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
    if rank != 0:  # worker 0 writes the files
        args.save = args.checkpoint = args.log = args.plot = None
        args.writes = False
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


def _check_outputs(args, program) -> None:
    """Fail before training, not after, when --save, --log or --plot could not be
    written, would replace the spec or its data, or a file that mfc did not write."""
    from mfc import plot, runlog

    if not args.writes:  # worker 0 checks and writes them
        return
    if args.save is not None:
        check_output("--save", args.save, "model", args.force, program, "model.npz")
    if args.checkpoint is not None:
        check_output("--checkpoint", args.checkpoint, "model", args.force, program,
                     "run.ckpt.npz")
    if program.settings.checkpoint_every and not (args.checkpoint or args.save):
        raise CliError("checkpoint_every needs a file to write: --checkpoint PATH (or "
                       "--save PATH)")
    if args.log is not None and runlog.format_of(args.log) is None:
        raise CliError(f"--log {args.log}: name it .csv, or .jsonl for JSON Lines")
    if args.plot is not None and _suffix(args.plot) not in plot.FORMATS:
        raise CliError(f"--plot {args.plot}: name it .png, .svg or .pdf")
    outputs = [(f, p) for f, p in (("--save", args.save), ("--checkpoint", args.checkpoint),
                                   ("--log", args.log), ("--plot", args.plot))
               if p is not None]
    for (flag, path), (other, earlier) in combinations(outputs, 2):
        if same_file(path, earlier):
            raise CliError(f"{other} and {flag} name the same file, {path}")
    if args.log is not None:
        check_output("--log", args.log, "log", args.force, program, "run.csv")
    if args.plot is not None:
        check_output("--plot", args.plot, _suffix(args.plot), args.force, program,
                     "curve.png")


def _suffix(path: str) -> str:
    return Path(path).suffix.lower().removeprefix(".")


def _train(model, args, evaluate_only: bool) -> None:
    """Load the model file (if asked), then train, an epoch a line (or, to evaluate
    only, prepare the data); the final summary; the log and the curve, if asked."""
    from mfc.diagnostics import SpecError

    try:
        if args.load or args.resume:
            model.restore(args.load or args.resume, note=note, resume=bool(args.resume))
        if evaluate_only:
            model.prepare(note=note)
            return
        _train_and_report(model, args)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        raise CliError(f"{plural(len(err.errors), 'error')}; nothing was trained",
                       EXIT_FAILED) from None


def _train_and_report(model, args) -> None:
    """Train with the epoch lines, the progress bar and the log the flags ask for;
    print the summary and draw the curve (after Ctrl-C, `_interrupted` does)."""
    from mfc.train import Interrupted

    planned = model.settings.epochs
    until = _resumed_until(model, args)
    progress = _Progress(planned, sys.stderr.isatty() and not args.quiet,
                         0 if args.quiet else args.every or 1)
    with progress, _RunLog(args.log, model) as log:
        def on_epoch(epoch) -> None:
            log.write(epoch)
            progress.report(epoch)
            _checkpoint(model, args, epoch.number, progress)
        try:
            model.train(on_epoch=on_epoch, on_step=progress.step, note=note,
                        threads=args.threads, until=until)
        except Interrupted:
            progress.close()  # the summary follows once the params are saved
            raise
        progress.close()
    _closing(model.summary, model, args)


def _resumed_until(model, args) -> int | None:
    """With --resume, the epoch to train up to: the run's `epochs`, which counts the
    checkpoint's; a CliError when it has run as many already."""
    if not args.resume:
        return None
    done, planned = model.epochs_trained, model.settings.epochs
    if done >= planned:
        raise CliError(f"{args.resume} has trained {plural(done, 'epoch')} already, and "
                       f"epochs = {planned} counts the whole run: ask for more (--epochs "
                       f"{done + planned}, say)")
    if not args.quiet:
        print(f"mfc: resuming after epoch {done} of {planned}", file=sys.stderr)
    return planned


def _checkpoint(model, args, epoch: int, progress) -> None:
    """At every checkpoint_every-th epoch, the model file with the training state."""
    every = model.settings.checkpoint_every
    if every and epoch % every == 0 and args.writes:
        path = args.checkpoint or args.save
        progress.clear()
        _save(path, model, f"a checkpoint at epoch {epoch}", quiet=args.quiet)


def _closing(summary, model, args) -> None:
    """The final summary line (on stderr with the other news of the run: it gives the
    time taken, and stdout stays the same run after run), then the curve (--plot)."""
    if summary is not None:
        sys.stdout.flush()
        print(summary.line(), file=sys.stderr, flush=True)
    if args.plot is not None and model.history:
        _draw_curve(args.plot, model)


def _draw_curve(path: str, model) -> None:
    from mfc import plot, runlog
    from mfc.files import atomic_write

    rows = [runlog.from_history(entry) for entry in model.history]
    image = plot.curve(rows, _suffix(path), title=model.program.filename)
    try:
        atomic_write(path, lambda file: file.write(image))
    except OSError as err:
        raise CliError(f"cannot write the curve to {path}: {err.strerror or err}") from None
    print(f"mfc: drew the loss curve in {path}", file=sys.stderr)


def _diverged(err, model, args) -> int:
    """The loss stopped being finite: say where and, with --save (--checkpoint), save
    the params of the last epoch whose loss was finite (the model holds them again),
    if one was, with the training state to resume from."""
    paths = [p for p in (args.save, args.checkpoint) if p is not None]
    if not paths or not err.kept:
        saved = "; nothing was saved: no epoch ended with a finite loss" if paths else ""
        raise CliError(f"{err}{saved}", EXIT_FAILED)
    print(one_line(f"mfc: error: {err}"), file=sys.stderr)
    for path in paths:
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


def _interrupted(stop, model, args) -> int:
    """Ctrl-C (SIGTERM, SIGHUP) came once a step had finished: say where, save that
    step's params, then the summary of the epochs done and their curve; exit 128 + the
    signal's number."""
    name = "" if stop.signum == signal.SIGINT else f" ({signal.Signals(stop.signum).name})"
    print(f"mfc: interrupted{name} {stop.where()}", file=sys.stderr)
    if args.save is not None:
        _save(args.save, model, "as of that last completed step; resumable from the "
              "last whole epoch")
    if args.checkpoint is not None:
        _save(args.checkpoint, model, "a checkpoint of the last whole epoch")
    _closing(stop.summary, model, args)
    return EXIT_SIGNAL + stop.signum


def _save(path: str, model, when: str = "", test=None, quiet: bool = False) -> None:
    try:
        model.save(path, test=test)
    except OSError as err:
        raise CliError(f"cannot save the model to {path}: {err.strerror or err}") from None
    if not quiet:
        print(f"mfc: saved {plural(len(model.params), 'param')} to {path}" +
              (f", {when}" if when else ""), file=sys.stderr)


class _Progress:
    """Each epoch's line on stdout (every `every`th, and the last; none for 0) and, on a
    terminal, a one-line bar on stderr below them: the step within the epoch and the
    running loss, redrawn at most 10 times a second and cleared when training ends."""

    width, interval = 24, 0.1

    def __init__(self, epochs: int, shown: bool, every: int = 1):
        self.epochs, self.shown, self.every = epochs, shown, every
        self.drawn = 0.0  # when the bar was last drawn
        self.unprinted = None  # the last epoch, if --every skipped it
        self.step = self._step if shown else None  # no call per step when not drawn

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Clear the bar; print the last epoch's line if --every skipped it (a run that
        stopped early or was interrupted)."""
        self.clear()
        if self.unprinted is not None:
            _print_unless_closed(self.unprinted.line())
            self.unprinted = None

    def report(self, epoch) -> None:
        self.unprinted = None
        if self.every and (epoch.number % self.every == 0 or epoch.number >= self.epochs):
            self.clear()
            _print_unless_closed(epoch.line())
        elif self.every:
            self.unprinted = epoch
        self._draw(epoch.number, 0, 1, None)

    def _step(self, epoch: int, step: int, steps: int, loss: float) -> None:
        now = time.monotonic()
        if now - self.drawn >= self.interval:
            self._draw(epoch - 1, step, steps, loss)

    def _draw(self, done: int, step: int, steps: int, loss: float | None) -> None:
        if not self.shown:
            return
        self.drawn = time.monotonic()
        fraction = min(1.0, (done + step / steps) / max(self.epochs, 1))
        filled = int(self.width * fraction)
        bar = "#" * filled + "." * (self.width - filled)
        text = f"[{bar}] epoch {min(done + 1, self.epochs)}/{self.epochs}"
        if loss is not None:
            text += f"  step {step}/{steps}  loss {loss:.4g}"
        sys.stderr.write(f"\r\x1b[K{text}")
        sys.stderr.flush()

    def clear(self) -> None:
        """Clear the bar (before other news on stderr)."""
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


class _RunLog:
    """The --log file, open while training: a row per epoch, flushed (nothing without
    --log)."""

    def __init__(self, path: str | None, model):
        self.path, self.model, self.file, self.writer = path, model, None, None

    def __enter__(self) -> "_RunLog":
        if self.path is None:
            return self
        from mfc import runlog

        settings = self.model.settings
        columns = runlog.columns_for(
            bool(settings.validation),
            bool(settings.validation) and self.model.program.scores_and_labels() is not None)
        try:
            self.file = open(self.path, "w", encoding="utf-8", newline="")
            self.writer = runlog.Writer(self.file, runlog.format_of(self.path), columns)
        except OSError as err:
            raise CliError(f"cannot write the log {self.path}: {err.strerror or err}") \
                from None
        return self

    def write(self, epoch) -> None:
        if self.writer is not None:
            from mfc import runlog

            try:
                self.writer.write(runlog.row(epoch))
            except OSError as err:
                raise CliError(f"cannot write the log {self.path}: "
                               f"{err.strerror or err}") from None

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()


def _print_unless_closed(line: str) -> None:
    """Print a line; when stdout's reader has gone (`mfc run ... | head -3`), say so once
    and go on training, writing to nowhere: the run and its --save are not lost for it."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # later writes, and the flush at exit, succeed
        os.close(devnull)
        note("stdout was closed, so the epochs go on without their lines")
