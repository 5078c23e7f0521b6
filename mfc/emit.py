"""`mfc emit`: a spec as a standalone Python script that trains it with numpy alone.

The script is the numpy backend's generated code (mfc.backends.generated: the training
step for the training batch's shapes, the validation pass for the validation rows'),
with what runs around it in `mfc run` copied in as source: the sampler, the optimizer,
the schedule and early stopping (their classes in mfc.train, verbatim), the params'
initialisation (each Param's
`initialize_code`), the epoch lines, and the writing of a model file (the manifest mfc
would write, with the script's history). So it prints the lines `mfc run` prints and
saves a model file `mfc predict` loads.

The data a script reads is an .npz of the rows already prepared as `mfc run` prepares
them (held out, standardised, labels as class indices; `data_arrays`), which
`mfc emit --with-data` writes beside it, with the preprocessing a model file keeps.
"""

from __future__ import annotations

import inspect
import pprint
import re
import textwrap
from dataclasses import dataclass

import numpy as np

from mfc import __version__, backends, codegen, ops
from mfc.backends import generated, miniflow
from mfc.train import loop, optim, sampling, schedules, stopping
from mfc.train.loop import fed_slots


@dataclass(frozen=True)
class Emitted:
    """A script's text, and the arrays its data file holds (None: it trains without
    data)."""

    text: str
    data: dict | None


def emit(model, note=None, **overrides) -> Emitted:
    """The standalone training script of `model` (an mfc.Model), with the train
    settings `overrides` as `Model.train` takes them. Raises as `Model.train` does."""
    model.prepare(note=note, **overrides)
    settings, prepared = model._trained
    program = model.program
    network = backends.lower("numpy", program, settings.dtype, settings.seed)
    fed = fed_slots(network, settings, prepared)
    training = generated.explain(network, fed and fed["train"], settings.batch_size,
                                 optim.OPTIMIZERS[settings.optimizer].is_plain(settings))
    validation = _validation_code(network, fed)
    data = data_arrays(fed, model.preprocessing) if fed else None
    return Emitted(_script(model, settings, network, training, validation, fed, data), data)


def data_arrays(fed: dict, preprocessing) -> dict:
    """The prepared rows a script trains on, by part and Input (`train/X`), and the
    preprocessing its model file keeps (`preprocessing/mean`, `preprocessing/std`)."""
    arrays = {f"{part}/{slot.name}": _without_ones(slot, array)
              for part in ("train", "validation") if fed[part]
              for slot, array in fed[part].items()}
    if preprocessing is not None and preprocessing.standardized:
        arrays["preprocessing/mean"] = preprocessing.mean
        arrays["preprocessing/std"] = preprocessing.std
    return arrays


def _without_ones(slot, array):
    """The rows as prepared: the script adds the column of ones a folding Linear reads."""
    return array[:, :-1] if isinstance(slot, generated.WithOnes) else array


def _validation_code(network, fed) -> str | None:
    if not fed or not fed["validation"]:
        return None
    for slot, array in fed["validation"].items():
        slot.value = array
    pair = network.scores_and_labels or ()
    return generated.write(network, names=pair, only=("evaluate",)).text


# ---------------------------------------------------------------- the script


def _script(model, settings, network, training, validation, fed, data) -> str:
    program = model.program
    inputs = [slot.name for slot in fed["train"]] if fed else []
    parts = [
        _header(program, settings),
        _imports(),
        _constants(model, settings, network, inputs, validation is not None, training),
        _data_constants(program, data),
        "\n# ---------------------------------------------------------------- the params\n\n"
        + _initial_params(program, network),
        "\n# ---------------------------------------------------------------- the network, "
        "as mfc generates it\n# The training step for batches of "
        f"{settings.batch_size} rows (sample, forward, backward, update).\n\n"
        + training.replace("def build(", "def build_training(", 1),
    ]
    parts.append(_helpers(training + (validation or "")))
    if generated.NOISE in training:
        parts.append("\n" + inspect.getsource(miniflow.Noise))
    if getattr(network, "folded", None):  # the column of ones, added as mfc adds it
        parts.append("\n" + inspect.getsource(generated._with_ones))
    if validation is not None:
        parts.append(_predicted_classes(program))
        parts.append("\n# The loss (and the scores) on the validation rows.\n\n"
                     + validation.replace("def build(", "def build_validation(", 1))
    parts += [
        "\n# ---------------------------------------------------------------- batches and "
        "updates, as mfc.train has them\n\n" + _classes(settings),
        _LOOP,
        _MODEL_FILE,
        _MAIN,
    ]
    return "\n".join(parts)


def _header(program, settings) -> str:
    spec = "\n".join(f"    {line}" if line else "" for line in program.source.splitlines())
    name = program.filename
    return (f'#!/usr/bin/env python3\n"""Train the network of {name}, with numpy alone.\n\n'
            f"Written by `mfc emit` (mfc {__version__}) from the spec:\n\n{spec}\n\n"
            "Usage: python SCRIPT [DATA.npz] [--save MODEL.npz [--force]]   (--help: "
            "more)\n\n"
            "DATA.npz holds the rows as `mfc emit --with-data` writes them beside the "
            "script\n(its default): already held out, standardised, labels as class "
            "indices.\nEach epoch prints the line `mfc run` prints; --save writes a model "
            "file\nthat `mfc predict` and `mfc eval` load, and replaces no other file "
            'unless --force.\n"""\n')


def _imports() -> str:
    names = textwrap.fill(", ".join(sorted(codegen.NUMPY_NAMES)), 84,
                          initial_indent="    ", subsequent_indent="    ")
    return ("import argparse\nimport json\nimport math\nimport os\nimport sys\nimport time\n"
            "import zipfile\nimport zlib\n"
            "from contextlib import contextmanager\nfrom math import isfinite\nfrom pathlib import Path\n\n"
            "import numpy as np\n"
            f"from numpy import (\n{names})\n")


def _predicted_classes(program) -> str:
    """`predicted_classes(scores)`: what accuracy counts, as the loss op says it (its own
    method, as a function)."""
    classifier = program.classifier()
    if classifier is None:
        return ""
    method = textwrap.dedent(inspect.getsource(type(classifier).predicted_classes))
    return "\n" + method.replace("(self, scores)", "(scores)", 1)


def _helpers(code: str) -> str:
    """The source of mfc.ops' own functions that `code` calls (GELU's Φ: numpy has no
    erf), with the constants they read."""
    if not any(f"{name}(" in code for name in codegen.MFC_NAMES):
        return ""
    constants = "\n".join(f"{name} = {getattr(ops, name)!r}"
                          for name in ("_ERF_T", "_ERF_U", "_ERFC_P", "_ERFC_Q"))
    functions = "\n\n".join(inspect.getsource(f) for f in (ops._polynomial, ops.erf,
                                                            ops.normal_cdf))
    return ("\n# ---------------------------------------------------------------- mfc's own "
            f"functions the network calls\n\n{constants}\n\n\n{functions}")


def _constants(model, settings, network, inputs, validation: bool, training: str) -> str:
    manifest = model.manifest()
    manifest["history"] = []
    return "\n".join([
        "",
        f"EPOCHS = {settings.epochs!r}",
        f"BATCH_SIZE = {settings.batch_size!r}",
        f"SEED = {settings.seed!r}",
        f"DTYPE = {network.dtype.name!r}",
        f"INPUTS = {tuple(inputs)!r}  # fed from the data file",
        f"FOLDED = {tuple(n.name for n in getattr(network, 'folded', {}))!r}  "
        "# read by Linears that fold their bias: [X, 1]·[W; b]",
        f"VALIDATION = {validation!r}",
        f"PARAMS = {tuple(network.layout)!r}",
        f"NOISE = {generated.NOISE in training!r}  # Dropout draws its noise while training",
        f"DECAY_WEIGHTS_ONLY = {settings.decay != 'all'!r}  # weight decay on 2-d+ params",
        f"RATE_SHOWN = {settings.rate_varies!r}  # the epoch lines give the learning rate",
        "",
        "# What the model file says of itself (mfc's manifest; the history is added).",
        "MANIFEST = " + pprint.pformat(manifest, width=88, sort_dicts=False),
        "",
    ])


def _data_constants(program, data: dict | None) -> str:
    """What the script's --help says it does, and what it checks its data file holds:
    each array's dtype and shape, as its code is written for them (the training rows:
    any number, at least a batch; the validation pass is written for its number)."""
    arrays = {key: (array.dtype.name, (None, *array.shape[1:]) if key.startswith("train/")
                    else array.shape) for key, array in (data or {}).items()}
    return "\n".join([
        f"DESCRIPTION = {f'Train the network of {program.filename} with numpy alone.'!r}",
        "# The data file's arrays: name → (dtype, shape); None: any number of rows.",
        "ARRAYS = " + pprint.pformat(arrays, width=88, sort_dicts=False),
        "",
    ])


def _initial_params(program, network) -> str:
    """`initial_params()`: theta and grad, the params drawn in the order mfc draws them."""
    size = network.theta.size
    lines = ["def initial_params():",
             '    """The flat vectors of params and of their gradients; each param a view '
             'into\n    theta, drawn from the seed as mfc draws it."""',
             f"    theta, grad = np.zeros({size}, DTYPE), np.zeros({size}, DTYPE)",
             "    rng = np.random.default_rng(SEED)"]
    for name, (start, shape) in network.layout.items():
        node = program.nodes[name]
        count = int(np.prod(shape))
        lines.append(f"    theta[{start}:{start + count}] = "
                     f"({node.op.initialize_code(node.attrs, shape)}).reshape(-1)  # {name}")
    lines.append("    return theta, grad")
    return "\n".join(lines) + "\n"


def _classes(settings) -> str:
    """The sampler's, the optimizer's, the schedule's and early stopping's code, as
    mfc.train has it, and `Settings`: the values of the settings that code reads."""
    sampler = sampling.SAMPLERS[settings.sampling]
    optimizer = optim.OPTIMIZERS[settings.optimizer]
    sources = [inspect.getsource(c) for c in [sampling._Epochs, sampler]]
    sources += [inspect.getsource(c) for c in reversed(optimizer.__mro__)
                if c.__module__ == optim.__name__]
    sources += [inspect.getsource(optim.weights_mask), inspect.getsource(schedules.Schedule),
                _schedule_rules(), inspect.getsource(stopping.EarlyStopping),
                inspect.getsource(loop.number)]
    constants = [f"CLIP_EPSILON = {optim.CLIP_EPSILON!r}"]
    text = "\n\n".join(sources)
    read = sorted(set(re.findall(r"settings\.(\w+)", text)))
    values = [f"    {key} = {getattr(settings, key)!r}" for key in read]
    settings_class = ("class Settings:\n    \"\"\"The train settings the code below reads."
                      "\"\"\"\n\n" + "\n".join(values) + "\n")
    return "\n".join(constants) + "\n\n\n" + settings_class + "\n\n" + text + (
        f"\n\nSampler = {sampler.__name__}\nOptimizer = {optimizer.__name__}\n")


def _schedule_rules() -> str:
    rules = ", ".join(f"{kind!r}: Schedule.{rule.__name__}"
                      for kind, rule in schedules._RULES.items())
    return f"_RULES = {{{rules}}}\n"


_LOOP = '''
# ---------------------------------------------------------------- training


class Slot:
    """Where a pass reads an Input's value (the sampler sets it to each batch)."""

    value = None


def train(data):
    """Train from the start; print each epoch's line; return (theta, history): with
    validation rows, the best epoch's params when restore_best (or patience) asks."""
    data = with_ones(data)
    theta, grad = initial_params()
    slots = {name: Slot() for name in INPUTS}
    noise = Noise(SEED) if NOISE else None
    if noise is not None:
        slots["#noise"], noise.training = noise, True
    sample = None
    if INPUTS:
        rows = {slots[name]: data[f"train/{name}"] for name in INPUTS}
        sample = Sampler(rows, BATCH_SIZE, np.random.default_rng((SEED, 2)))
        sample.prime()
    decayed = weights_mask(theta, param_views(theta)) if DECAY_WEIGHTS_ONLY else None
    optimizer, schedule = Optimizer(theta, grad, Settings, decayed), Schedule(Settings)
    step = build_training(theta, grad, slots, sample or (lambda: None), optimizer)["step"]
    steps = sample.steps if sample is not None else 1
    evaluate = build_validation(theta, grad, slots, None, None)["evaluate"] \\
        if VALIDATION else None
    stopping = EarlyStopping(Settings, theta) if VALIDATION else None
    history = []
    for epoch in range(1, EPOCHS + 1):
        rate = schedule.rate(epoch, EPOCHS)
        optimizer.set_rate(rate)
        started, total = time.perf_counter(), 0.0
        for count in range(1, steps + 1):
            loss = step()
            if not isfinite(loss):
                sys.exit(f"the loss became {loss} in epoch {epoch}, step {count} of "
                         f"{steps}; try a smaller learning rate than {rate:g}")
            total += loss
        entry = {"number": epoch, "loss": total / steps}
        line = f"Epoch: {epoch}, Loss: {number(entry['loss'])}"
        if evaluate is not None:
            if noise is not None:
                noise.training = False  # Dropout is the identity outside training
            entry.update(validate(evaluate, slots, data))
            if noise is not None:
                noise.training = True
            line += f", Validation loss: {number(entry['validation_loss'])}"
            if "accuracy" in entry:
                line += f", Validation accuracy: {entry['accuracy']:.3f}"
        if RATE_SHOWN:
            line += f", Learning rate: {rate:.4g}"
        schedule.observe(epoch, entry.get("validation_loss"))
        stop = stopping is not None and stopping.observe(epoch, entry["validation_loss"])
        entry.update(learning_rate=rate, seconds=time.perf_counter() - started)
        history.append({**entry, "epoch": epoch})
        print(line, flush=True)
        if stop:
            print(f"Stopped early at epoch {epoch} of {EPOCHS}: no better validation loss "
                  f"for {Settings.patience} epochs", file=sys.stderr)
            break
    if stopping is not None and stopping.restore():
        print(f"The best epoch's params kept: epoch {stopping.best_epoch}, validation loss "
              f"{number(stopping.best)}", file=sys.stderr)
    return theta, history


def with_ones(data) -> dict:
    """The data with a column of ones after the rows of each Input in FOLDED."""
    def folded(key):
        part, _, name = key.partition("/")
        return part in ("train", "validation") and name in FOLDED

    return {key: _with_ones(rows) if folded(key) else rows for key, rows in data.items()}


def param_views(theta) -> dict:
    """Each param by name, a view into theta."""
    views, start = {}, 0
    for name in PARAMS:
        shape = tuple(MANIFEST["params"][name])
        views[name] = theta[start:start + math.prod(shape)].reshape(shape)
        start += math.prod(shape)
    return views


def validate(evaluate, slots, data) -> dict:
    """The loss (and, for class labels, the accuracy) on the validation rows."""
    for name in INPUTS:
        slots[name].value = data[f"validation/{name}"]
    loss, values = evaluate()
    found = {"validation_loss": loss}
    if values:
        scores, labels = values
        found["accuracy"] = float(np.mean(predicted_classes(scores) == labels))
    return found
'''

_MODEL_FILE = '''
# ---------------------------------------------------------------- the model file


def save(path, theta, history, data) -> None:
    """A model file as `mfc run --save` writes it (an .npz: manifest.json, a NAME.npy
    per param, the preprocessing's mean and std), written to a new temporary file beside
    it first (through a symlink: the link stays), removed if anything goes wrong."""
    arrays = {f"{name}.npy": view for name, view in param_views(theta).items()}
    for key in ("mean", "std"):
        if f"preprocessing/{key}" in data:
            arrays[f"preprocessing/{key}.npy"] = data[f"preprocessing/{key}"]
    manifest = dict(MANIFEST, history=history, numpy_version=np.__version__)
    text = json.dumps(manifest, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    target = os.path.realpath(path)
    temporary = f"{target}.tmp{os.getpid()}"
    try:
        with zipfile.ZipFile(temporary, "x", zipfile.ZIP_STORED, allowZip64=True) as archive:
            archive.writestr(zipfile.ZipInfo("manifest.json", (1980, 1, 1, 0, 0, 0)),
                             text.encode("utf-8"))
            for member, array in arrays.items():
                with archive.open(member, "w", force_zip64=True) as file:
                    np.lib.format.write_array(file, np.asanyarray(array), allow_pickle=False)
        os.replace(temporary, target)
    except BaseException:
        if os.path.lexists(temporary):
            os.remove(temporary)
        raise


def check_save(path, force: bool) -> None:
    """Before training, that --save can write `path`: in a folder that is there, and
    over nothing, or a model file (mfc's rule), or anything with --force; never over a
    folder."""
    target = Path(os.path.realpath(path)) if path else None
    if target is None or not target.parent.is_dir():
        fail(f"--save {path!r}: no folder to write it in; give a file name such as model.npz")
    if target.exists() and not target.is_file():
        fail(f"--save {path}: is there already, and is not a file")
    if target.exists() and not force and not is_model_file(target):
        fail(f"--save {path} is there already, and is not an mfc model file; "
             "--force replaces it")


def is_model_file(path) -> bool:
    """Whether `path` holds an mfc model file: an .npz of .npy arrays and a
    manifest.json that says so (a data file has no manifest)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            manifest = json.loads(archive.read("manifest.json")) \\
                if "manifest.json" in names else None
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == MANIFEST["format"] \\
        and all(name.endswith(".npy") or name == "manifest.json" for name in names)
'''

_MAIN = '''
# ---------------------------------------------------------------- the data file


def read_data(path) -> dict:
    """The arrays of the data file at `path`, checked to be those the code is written
    for (ARRAYS)."""
    if not path.is_file():
        what = "not a file" if path.exists() else "no such data file"
        fail(f"{path}: {what} (mfc emit --with-data writes one)")
    if not zipfile.is_zipfile(path):
        fail(f"{path}: not an .npz data file (mfc emit --with-data writes one)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        fail(f"{path}: cannot read it as an .npz data file ({reason})")
    check_arrays(path, data)
    return data


def check_arrays(path, data: dict) -> None:
    """That `data` holds each array of ARRAYS with its dtype and shape, and as many
    training rows for each Input, at least a batch of them."""
    for key, (dtype, shape) in ARRAYS.items():
        found = data.get(key)
        if not isinstance(found, np.ndarray):  # a member not .npy: np.load gives bytes
            fail(f"{path}: no array {key}; not the data of this script "
                 "(mfc emit --with-data writes it)")
        rows = tuple(found.shape[0] if n is None and found.ndim else n for n in shape)
        if found.dtype.name != dtype or found.shape != rows:
            wanted = str(shape).replace("None", "rows")
            fail(f"{path}: {key} is {found.dtype.name} {found.shape}; "
                 f"this script takes {dtype} {wanted}")
    counts = sorted({len(data[f"train/{name}"]) for name in INPUTS})
    if len(counts) > 1 or counts[0] < BATCH_SIZE:
        fail(f"{path}: the training arrays have {' or '.join(map(str, counts))} rows; "
             f"this script takes as many for each Input, at least {BATCH_SIZE}")


# ---------------------------------------------------------------- the command line


class Arguments(argparse.ArgumentParser):
    """The script's command line: a mistake in it is one line, exit 2, as in mfc."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\\n")


def arguments(argv):
    script = Path(__file__)
    parser = Arguments(prog=script.name, description=DESCRIPTION)
    if INPUTS:
        parser.add_argument("data", nargs="?", type=Path, default=script.with_suffix(".npz"),
                            metavar="DATA.npz", help="the prepared rows, as `mfc emit "
                            f"--with-data` writes them (default: {script.stem}.npz beside "
                            "the script)")
    parser.add_argument("--save", metavar="MODEL.npz", help="write the trained model, "
                        "which `mfc predict` and `mfc eval` load")
    parser.add_argument("--force", action="store_true",
                        help="let --save replace a file that is not an mfc model file")
    return parser.parse_args(argv)


def fail(message):
    """End the script with one line: an argument or a file will not do (exit 2)."""
    print(f"{Path(__file__).name}: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv) -> int:
    args = arguments(argv)
    if args.save is not None:
        check_save(args.save, args.force)
    data = read_data(args.data) if INPUTS else {}
    theta, history = train(data)
    if args.save is not None:
        try:
            save(args.save, theta, history, data)
        except OSError as error:
            sys.exit(f"{Path(__file__).name}: error: --save {args.save}: "
                     f"{error.strerror or error}")
        print(f"saved the model to {args.save}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''
