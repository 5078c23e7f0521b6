"""A compiled spec with its params: the object `mfc.compile` and `mfc.load` return.

It joins the stages for Python callers: the `Program` (mfc.ir, plain data) the front end
made, the network a backend lowered it to (built on first use, so checking a spec never
pays for it), the data prepared for it, the training loop, the preprocessing fitted
when training (mfc.preprocess), model files (mfc.modelfile), predictions and metrics.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from mfc import settings as train_settings
from mfc.backends import BACKENDS, DEFAULT, OPTIONS
from mfc.diagnostics import DataError, SettingError, SpecError
from mfc.ir import Program


class Model:
    """A compiled spec, its params, and what can be done with them.

    Attributes
    ----------
    program : mfc.ir.Program
        The checked spec: typed nodes in order, loss, outputs, settings, data.
    backend : str
        What runs it: "numpy" (generated code, the default), "miniflow" (the
        lesson's node runtime) or "torch" (PyTorch); see mfc.backends.BACKENDS.
    options : dict
        The backend's own options (the torch backend's `device`: "cpu", "cuda", "mps").
    preprocessing : mfc.preprocess.Preprocessing or None
        How raw data becomes what the network reads (the training rows' mean and std,
        the class labels): fitted by the first `train` on data, or read by `restore`;
        None until then (predictions then take the features as given).
    history : list of dict
        One entry per epoch trained (`epoch`, `loss`, and the validation's), across
        `train` calls and the model file restored.
    """

    def __init__(self, program: Program, backend: str = DEFAULT, **options):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; the backends are "
                             f"{', '.join(BACKENDS)}")
        unknown = [key for key in options if key not in OPTIONS.get(backend, ())]
        if unknown:
            raise ValueError(f"the {backend} backend takes no option {unknown[0]!r}")
        self.program, self.backend, self.options = program, backend, options
        self._network = None
        self.preprocessing = None
        self.history: list[dict] = []
        self._trained = None  # (settings, prepared data) of the last `train`
        self._trainer = None  # the last `train`'s, which the next one may go on with
        self._resumed = None  # (path, training state, settings) `restore(resume=True)` read
        self._last_good = None  # a stopped trainer's state at its last whole epoch
        self.summary = None  # how the last `train` ended (mfc.train.loop.Summary)

    def __repr__(self) -> str:
        return f"<mfc.Model of {self.program.filename}: {len(self.program.nodes)} nodes>"

    # -- the program, for reading

    @property
    def loss(self) -> str:
        return self.program.loss

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.program.outputs

    @property
    def order(self) -> list[str]:
        return self.program.order

    @property
    def shapes(self) -> dict[str, tuple | None]:
        return self.program.shapes

    @property
    def settings(self):
        return self.program.settings

    # -- the params and the passes

    @property
    def params(self):
        """name → ndarray for every Param, writable: `model.params["W1"][...] = 0`, or
        assign a new array of the same shape. Initialised on first use, per each
        Param's `init`, from the spec's `seed`."""
        return self.network().params

    def forward(self, feed: dict | None = None) -> dict:
        """Every node's value by name (copies), computed from `feed`: Input name →
        array, as the network reads it (no preprocessing). A node that needs an Input
        the feed lacks is left out: without the targets, every node but the loss (and
        what else reads them). Raises TypeError when `feed` is not a dict; ValueError
        for an unknown Input, or a value that is ill-shaped, empty or not real numbers."""
        return self.network().forward({} if feed is None else feed)

    def gradients(self, feed: dict | None = None) -> dict:
        """d(loss)/d(param) for every Param by name (copies), at the current params,
        for the Inputs in `feed`; raises as `forward` does."""
        return self.network().gradients({} if feed is None else feed)

    def train(self, *, on_epoch=None, on_step=None, note=None, threads=None, until=None,
              **settings) -> list[float]:
        """Train the params in place with the train block's settings, some replaced by
        `settings` (epochs=5, learning_rate=0.1, optimizer="adam", ...); return the mean
        loss of each epoch of this call. `on_epoch` is called with each
        `mfc.train.Epoch`, `on_step` with (epoch, step, steps, mean loss so far) after
        each step, `note` with one-line remarks (class labels remapped, say).

        A second call goes on where the first stopped: the optimizer's state (momentum,
        Adam's moments and step count), the batch stream, the epoch count, the
        schedule's and early stopping's state carry over, so two calls of 5 epochs
        train as one of 10 (with a cosine schedule, each call anneals to its own end).
        A call may change the learning rate, the optimizer and its settings, the
        schedule and early stopping (`mfc.settings.RETUNABLE`); one that changes
        anything else (the data, its split, batch_size, sampling, seed, dtype) starts
        afresh: a new optimizer state, batches from the seed, epochs counted from 1.
        The params always carry over. After Ctrl-C or a diverged run, the next call
        starts afresh too. `history` keeps every epoch trained, `summary` how the last
        call ended.

        The settings that shape the graph (loss, features, targets) are fixed at compile
        time: pass them to `mfc.compile` instead. `data` and `target_column` may change,
        as long as the new data has the width the spec was compiled for.

        `until`: train up to that epoch of the whole training (a checkpoint's included)
        rather than `epochs` more, and anneal a cosine schedule to it: how `mfc run
        --resume` finishes the run a checkpoint was part of.

        `threads`: how many threads the BLAS library may use (a whole number, at least
        1); by default chosen from the size of the step's matrix products (see
        mfc.threads: one, for any network of the sizes measured here).

        Raises SpecError (E407) for an Input the loss needs that nothing feeds;
        DataError for unusable data (or data of another width); SettingError (a
        ValueError) for a bad setting; `mfc.train.Diverged` when the loss stops being
        finite; `mfc.train.Interrupted` on Ctrl-C.
        """
        from mfc import threads as blas, train

        settings = self._checked(settings)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise SettingError(f"threads: must be a whole number, at least 1, not {threads!r}")
        trainer = self.trainer(settings, note)
        before = trainer.epoch
        epochs, planned = settings.epochs, None
        if until is not None:
            epochs, planned = max(until - trainer.epoch, 0), until
        try:
            with blas.limited(blas.chosen(self.program, settings.batch_size, threads)):
                self.summary = trainer.fit(epochs, self._recorder(on_epoch), on_step, planned)
        except (train.Interrupted, train.Diverged):
            self._trainer, self._last_good = None, trainer.last_checkpoint()
            raise
        return trainer.losses()[before:]

    @property
    def epochs_trained(self) -> int:
        """The epochs the training that goes on has run: the last `train`'s count, or a
        checkpoint's that `restore(resume=True)` read; 0 before any."""
        if self._trainer is not None:
            return self._trainer.epoch
        return self._resumed[1][0]["epoch"] if self._resumed is not None else 0

    def trainer(self, settings, note=None):
        """The `mfc.train.loop.Trainer` a training call with `settings` (checked) goes on
        with: the last call's, retuned, when it can continue (see `train`), else a new
        one on freshly prepared data."""
        from mfc.train.loop import Trainer

        network = self.network(settings.dtype, settings.seed)
        old = self._trainer
        if old is not None and old.network is network and old.continues_with(settings):
            old.retune(settings)
            self._trained = (settings, old.prepared)
            return old
        trainer = Trainer(network, settings, self._prepare(settings, note))
        trainer.keeps_snapshots = True  # what `save` writes after Ctrl-C or a divergence
        if self._resumed is not None:
            self._check_resumable(settings)
            trainer.resume(*self._resumed[1], self._resumed[2].get("optimizer"), note)
            self._resumed = None
        self._trainer, self._last_good = trainer, None
        return trainer

    def _check_resumable(self, settings) -> None:
        """A ParamsError when the checkpoint was trained on other data, another split
        or other batches than `settings` give: going on from it would not be the run
        that wrote it."""
        from mfc import modelfile
        from mfc.settings import RETUNABLE

        path, _, saved = self._resumed
        now = modelfile.settings_of(settings)
        differ = [key for key in now if key not in RETUNABLE and key in saved
                  and saved[key] != now[key]]
        if differ:
            raise modelfile.ParamsError(
                f"{path} was trained with " + ", ".join(
                    f"{k} = {saved[k]!r}" for k in differ) + "; this run has " + ", ".join(
                    f"{now[k]!r}" for k in differ) + ": resuming needs the same data, "
                "split and batches")

    def explain(self, *, note=None, **settings) -> str:
        """What training runs, as the numpy backend generates it: the Python source of
        one whole training step (sample, forward, backward, update) for this spec's
        batches, with `settings` as `train` takes them. Raises as `train` does."""
        from mfc import backends
        from mfc.backends import generated
        from mfc.train.loop import fed_slots
        from mfc.train.optim import OPTIMIZERS

        settings, prepared = self._prepared(settings, note)
        network = backends.lower("numpy", self.program, settings.dtype, settings.seed)
        fed = fed_slots(network, settings, prepared)
        return generated.explain(network, fed and fed["train"], settings.batch_size,
                                 OPTIMIZERS[settings.optimizer].is_plain(settings))

    def prepare(self, *, note=None, **settings) -> None:
        """Load and prepare the data as `train` would (the same rows held out, the
        preprocessing fitted on the training rows, or the model's own), and train
        nothing: what `evaluate(part=...)` then measures the params on. Raises as
        `train` does."""
        self._prepared(settings, note)

    def _prepared(self, settings: dict, note):
        """(the train settings with `settings` replacing some, the data prepared for
        them: see `_prepare`)."""
        settings = self._checked(settings)
        return settings, self._prepare(settings, note)

    def _checked(self, settings: dict):
        """The train settings with `settings` replacing some; SpecError for an Input
        the loss needs that nothing feeds."""
        settings = train_settings.at_train_time(self.program.settings, settings)
        unfed = self.program.unfed_inputs(settings)
        if unfed:
            raise SpecError(unfed, self.program.source, self.program.filename)
        return settings

    def _prepare(self, settings, note):
        """The data prepared for `settings`, with the model's preprocessing, or one
        fitted on the training rows, which the model keeps."""
        from mfc import data

        prepared = data.prepare(self.program, settings, note or (lambda text: None),
                                self.preprocessing)
        if prepared is not None:
            self.preprocessing = prepared.preprocessing
        self._trained = (settings, prepared)
        return prepared

    def _recorder(self, on_epoch):
        """`on_epoch`, which also keeps each epoch in `history`."""
        def record(epoch) -> None:
            entry = {k: v for k, v in asdict(epoch).items()
                     if v is not None and k != "rate_shown"}
            self.history.append({**entry, "epoch": len(self.history) + 1})
            if on_epoch is not None:
                on_epoch(epoch)
        return record

    def _checkpoint_of(self, path, saved) -> tuple[dict, dict]:
        """The training state of the model file at `path` (read as `saved`)."""
        from mfc import modelfile

        found = modelfile.read_training(path, self.network().theta.size)
        if found is not None:
            return found
        why = ("it holds params only (saved by an older mfc)" if saved.params_only else
               "it was saved before any epoch was trained (as with --epochs 0), so there "
               "is no run to go on with" if not saved.manifest.get("history") else
               "it was not saved by mfc run or Model.save after training")
        raise modelfile.ParamsError(f"{path} holds no training state to resume from: {why}; "
                                    "--load starts from its params")

    def network(self, dtype: str | None = None, seed: int | None = None):
        """The network `backend` lowered the program to, built on first use (with `seed`,
        if given, for the params); with another `dtype`, rebuilt with the params kept."""
        from mfc import backends

        old = self._network
        if old is not None and (dtype is None or old.dtype == dtype):
            return old
        if self.program.trainable_count is None:
            self._data_must_exist()
        self._network = backends.lower(self.backend, self.program, dtype=dtype, seed=seed,
                                       **self.options)
        if old is not None:
            self._network.theta[...] = old.theta
        return self._network

    def _data_must_exist(self) -> None:
        """A DataError when a param's size waits for a data file that is not there: the
        commonest reason why it could not be read at compile time, and the user's to fix."""
        from mfc import data

        settings = self.program.settings
        if settings.data and data.describe(settings.data, self.program.base_dir) is None:
            raise DataError(f"data file '{settings.data}' not found (looked in "
                            f"{data.file_of(settings.data, self.program.base_dir)})")

    # -- using what was trained

    def predict(self, X, note=None):
        """What the model predicts for `X`: raw features (rows, features), to which the
        saved preprocessing is applied, or a feed (Input name → array, the features'
        preprocessed the same way). Runs only the nodes the outputs need; needs no
        targets. Rows whose outputs are not finite (features far outside the training
        data's overflow) are predicted all the same, and `note` is told which.

        Returns, for the one output (a dict by name for several): a classifier's
        predicted labels, the original ones (`setosa`, ...), as an array; a regressor's
        values, as the output node computes them ((rows, 1) for `MSE(y, l2)`).

        Raises ValueError for features of the wrong width, a feed without the Inputs the
        outputs need, or a spec without an output; DataError for a feature that cannot
        be standardised (mfc.preprocess.Preprocessing.transform).
        """
        outputs = self._outputs(X)
        if note is not None and (overflowed := _not_finite(outputs)):
            note(f"{overflowed} not finite: their features lie far outside the training "
                 "data's, and overflow")
        found = {name: self._predicted(name, value) for name, value in outputs.items()}
        return _one_or_all(found)

    def predict_proba(self, X):
        """The probability of each class, (rows, classes), columns in the order of
        `preprocessing.classes`, for each output a loss scores as class labels (a dict
        by name when there are several). Raises ValueError when no output does, or as
        `predict` does."""
        classifiers = self.classifier_outputs
        if not classifiers:
            raise ValueError(f"predict_proba needs an output scored as class labels (by "
                             f"CrossEntropy or BinaryCrossEntropy); {_named(self.outputs)} not")
        values = self._values(self._feed(X), classifiers)
        return _one_or_all({name: self.program.scored[name].op.probabilities(value)
                            for name, value in values.items()})

    def evaluate(self, X=None, y=None, *, part: str = "test"):
        """The loss and metrics (mfc.metrics.Evaluation) on raw features `X` and targets
        `y` (the original labels, for a classifier), the saved preprocessing applied;
        or, without them, on a `part` of the last `train`'s data: 'test', 'validation'
        or 'train' (its rows, preprocessed as they were trained on).

        A loss that reads no targets (an autoencoder's, which scores its output against
        the features) is evaluated on `X` alone.

        Raises ValueError for ill-shaped data, a label that is not one of the classes,
        targets missing (or given to a loss that reads none), or a part that the last
        `train` did not hold out.
        """
        if X is None:
            feed = self._part(part)
        else:
            self._check_targets(y)
            feed = self._feed(X, y)
        return self._evaluation(feed)

    @property
    def reads_targets(self) -> bool:
        """Whether the loss reads the targets Input: an autoencoder's reads only the
        features, so evaluating it needs no targets."""
        targets = self.program.settings.targets
        return targets in self.program.input_names and targets in self.program.needed_by(self.loss)

    def _check_targets(self, y) -> None:
        targets, where = self.program.settings.targets, self.program.filename
        if y is None and self.reads_targets:
            raise ValueError(f"the loss '{self.loss}' of {where} compares with the targets "
                             f"(Input '{targets}'): pass them as y")
        if y is not None and not self.reads_targets:
            raise ValueError(f"the loss '{self.loss}' of {where} reads no targets (it reads "
                             f"{_named_inputs(self.program, self.loss)}): evaluate on X alone")

    @property
    def classifier_outputs(self) -> list[str]:
        """The outputs a loss scores as class labels: `predict` gives their labels."""
        return [name for name in self.outputs if self._classifier(name)]

    def class_labels(self, name: str) -> tuple:
        """The labels of the classes the classifier output `name` scores, in the order of
        `predict_proba`'s columns: the original ones (`setosa`, ...), or 0..C−1 without
        preprocessing (C as its loss op counts them)."""
        if self.preprocessing is not None and self.preprocessing.classes is not None:
            return self.preprocessing.classes
        loss = self.program.scored[name]
        count = loss.op.classes([self.program.nodes[i].shape for i in loss.inputs])
        return tuple(range(count if count is not None else self.output_width(name)))

    def output_width(self, name: str) -> int:
        """How many numbers an output gives per row (1 for (N,) and (N, 1))."""
        shape = self.program.nodes[name].shape or ()
        dims = [d for d in shape[1:] if d != "N"] if shape[:1] == ("N",) else list(shape)
        if not all(isinstance(d, int) for d in dims):
            raise ValueError(f"the width of output '{name}' is not known: {shape}")
        return int(np.prod(dims)) if dims else 1

    def _outputs(self, X) -> dict:
        if not self.outputs:
            raise ValueError(f"{self.program.filename} has no output to predict: its loss "
                             "scores no prediction against targets; name one with "
                             "`output = NAME` in the train block")
        return self._values(self._feed(X), self.outputs)

    def _values(self, feed: dict, names) -> dict:
        """The values of the nodes `names`: overflow on features far outside the
        training data's gives inf or NaN, which the callers report (no warning)."""
        with np.errstate(all="ignore"):
            return self.network().values(feed, names)

    def _feed(self, X, y=None) -> dict:
        """A feed from raw features (or a feed whose features are raw) and targets, with
        the saved preprocessing applied."""
        settings = self.program.settings
        feed = dict(X) if isinstance(X, dict) else {settings.features: X}
        if settings.features in feed and self.preprocessing is not None:
            feed[settings.features] = self.preprocessing.transform(feed[settings.features])
        if y is not None:
            feed[settings.targets] = self._targets(y)
        return feed

    def _targets(self, y) -> np.ndarray:
        """Targets as the targets Input reads them: class indices for labels, a column
        where the Input is declared 2-D."""
        name = self.program.settings.targets
        classes = self.preprocessing.classes if self.preprocessing is not None else None
        if name in self.program.label_inputs and classes is not None:
            y = self.preprocessing.encode(y)
        shape = self.program.nodes[name].shape if name in self.program.nodes else None
        y = np.asarray(y)
        return y.reshape(-1, 1) if shape is not None and len(shape) == 2 else y.reshape(-1)

    def rows(self, part: str) -> int:
        """How many rows of the last `train`'s data are in `part` ('train',
        'validation' or 'test'); 0 before training, or without data."""
        arrays = self._part_arrays(part)
        return len(next(iter(arrays.values()))) if arrays else 0

    def _part(self, part: str) -> dict:
        arrays = self._part_arrays(part)
        if not arrays:
            hint = f", or train with `{part} = 0.2`" if part in ("test", "validation") else ""
            raise ValueError(f"no {part} rows to evaluate on: pass X and y{hint}")
        return arrays

    def _part_arrays(self, part: str) -> dict | None:
        """The last `train`'s arrays (preprocessed, by Input) of `part`, or None."""
        if part not in ("train", "validation", "test"):
            raise ValueError(f"part is 'train', 'validation' or 'test', not {part!r}")
        prepared = self._trained[1] if self._trained is not None else None
        return getattr(prepared, part) if prepared is not None else None

    def _evaluation(self, feed: dict):
        from mfc import metrics

        output, against = self._scored_output()
        names = [self.loss] + ([output] if output else [])
        values = self._values(feed, names)
        rows = len(next(iter(feed.values())))
        loss = float(values[self.loss])
        if output is None:
            return metrics.Evaluation(rows, loss, self.loss)
        if overflowed := _not_finite({output: values[output]}):
            raise ValueError(f"{overflowed} not finite (their features lie far outside the "
                             "training data's, and overflow): the metrics cannot be computed")
        truth = feed[against]
        if not self._classifier(output):
            return metrics.Evaluation(rows, loss, self.loss, output, "regression",
                                      metrics.regression(truth, values[output]),
                                      self._compared_with(against))
        predicted = self._labels(self._classes_of(output, values[output]))
        return metrics.Evaluation(rows, loss, self.loss, output, "classification",
                                  metrics.classification(self._labels(truth), predicted,
                                                         self.class_labels(output)))

    def _scored_output(self) -> tuple[str | None, str | None]:
        """(the output the metrics are of, the Input it is scored against): the first
        the loss scores against the targets, else against another Input (an
        autoencoder's reconstruction, against the features); (None, None) if none."""
        targets = self.program.settings.targets
        pairs = [(name, loss.inputs[loss.op.target]) for name, loss in self.program.scored.items()]
        return next((pair for pair in pairs if pair[1] == targets),
                    pairs[0] if pairs else (None, None))

    def _compared_with(self, name: str) -> str | None:
        """How the metrics read an Input other than the targets: the features as the
        network reads them (standardised, when the preprocessing does)."""
        if name == self.program.settings.targets:
            return None
        standardized = name == self.program.settings.features and \
            self.preprocessing is not None and self.preprocessing.standardized
        return f"Input '{name}'" + (", standardised" if standardized else "")

    def _classifier(self, name: str) -> bool:
        loss = self.program.scored.get(name)
        return loss is not None and loss.op.labels

    def _predicted(self, name: str, value: np.ndarray) -> np.ndarray:
        return self._labels(self._classes_of(name, value)) if self._classifier(name) else value

    def _classes_of(self, name: str, scores: np.ndarray) -> np.ndarray:
        """The class index each row of a classifier's output predicts, as its loss says."""
        return self.program.scored[name].op.predicted_classes(scores)

    def _labels(self, indices) -> np.ndarray:
        """Class indices → the original labels (the indices, without preprocessing)."""
        if self.preprocessing is None or self.preprocessing.classes is None:
            return np.asarray(indices, dtype=np.intp).reshape(-1)
        return self.preprocessing.decode(np.asarray(indices).reshape(-1))

    # -- model files

    def save(self, path, test=None) -> None:
        """Write the params, the preprocessing and a manifest (the spec, its graph's
        fingerprint, the settings, the data, the history, versions; `test`, an
        Evaluation on held-out rows, if given) to a model file at `path`, atomically
        (see mfc.modelfile and docs/model-file.md). Raises OSError."""
        from mfc import modelfile

        modelfile.save(path, self.params, self.manifest(test), self.preprocessing,
                       self.training_state())

    def training_state(self) -> tuple[dict, dict] | None:
        """What a resumed run goes on from (mfc.train.loop.Trainer.checkpoint): the
        last `train`'s state as it ended, or, after Ctrl-C or a divergence, at the end
        of its last whole epoch; None before any training."""
        if self._trainer is not None:
            return self._trainer.checkpoint()
        if self._last_good is not None:
            return self._last_good
        return self._resumed[1] if self._resumed is not None else None

    def manifest(self, test=None) -> dict:
        """The manifest `save` writes (mfc.modelfile.manifest), for the settings and
        data of the last `train` or `prepare`."""
        from mfc import __version__, modelfile

        settings, prepared = self._trained or (self.program.settings, None)
        return modelfile.manifest(
            self.program, settings=settings, preprocessing=self.preprocessing,
            history=self.history, data=_data_summary(settings, prepared, self.preprocessing),
            versions={"mfc": __version__, "numpy": np.__version__},
            evaluation=test.to_dict() if test is not None else None)

    def restore(self, path, note=None, resume: bool = False) -> None:
        """Take the params, the preprocessing and the history from the model file at
        `path`, after checking that it was saved from this spec's graph. An old
        params-only file gives the params alone; `note` is told that it carries no
        preprocessing. With `resume`, the next `train` goes on from the training state
        the file keeps (a checkpoint), bit for bit as the run that wrote it would have
        gone on: its optimizer state, batches, epoch count, schedule, early stopping
        and history; it must train on the same data, split and batches. Raises
        mfc.modelfile.ParamsError (one line, naming what differs) when the file cannot
        be read, does not fit, or (with `resume`) holds no training state."""
        from mfc import modelfile

        saved = modelfile.read(path, self.program)
        self._trainer = self._last_good = self._resumed = None
        if resume:
            self._resumed = (path, self._checkpoint_of(path, saved),
                             saved.manifest.get("settings") or {})
        for name, array in saved.params.items():
            self.params[name] = array
        self.preprocessing = saved.preprocessing
        self.history = list(saved.manifest.get("history") or [])
        if saved.params_only and note is not None:
            note(f"{path} holds params only (saved by an older mfc): it carries no "
                 "preprocessing, so features are used as given, without the training "
                 "mean and std, and classes are numbered 0..C-1")


def _not_finite(outputs: dict) -> str | None:
    """`the outputs of 2 rows (1, 5) are`: the rows (from 1) whose outputs (name →
    value, a row each) hold a value that is not finite; None when all are finite."""
    bad: set[int] = set()
    for value in outputs.values():
        value = np.asarray(value)
        rows = value.reshape(len(value), -1) if value.ndim else value.reshape(1, 1)
        bad.update(int(i) + 1 for i in np.flatnonzero(~np.isfinite(rows).all(axis=1)))
    if not bad:
        return None
    shown = ", ".join(map(str, sorted(bad)[:5])) + (", ..." if len(bad) > 5 else "")
    if len(bad) == 1:
        return f"the outputs of row {shown} are"
    return f"the outputs of {len(bad):,} rows ({shown}) are"


def _named_inputs(program, name: str) -> str:
    """`Input 'X'`, `Inputs 'X', 'Z'` or `no Input`: the Inputs node `name` reads."""
    inputs = [n for n in program.needed_by(name) if n in program.input_names]
    if not inputs:
        return "no Input"
    return ("Input " if len(inputs) == 1 else "Inputs ") + ", ".join(f"'{n}'" for n in inputs)


def _one_or_all(found: dict):
    return next(iter(found.values())) if len(found) == 1 else found


def _named(names) -> str:
    if not names:
        return "the spec has no output"
    return "its output " + ", ".join(f"'{n}'" for n in names) + " is" if len(names) == 1 \
        else "its outputs " + ", ".join(f"'{n}'" for n in names) + " are"


def _data_summary(settings, prepared, preprocessing) -> dict | None:
    """What the params were trained on: the data's name, its rows by part, its width."""
    if not settings.data:
        return None
    parts = {part: getattr(prepared, part) if prepared is not None else None
             for part in ("train", "validation", "test")}
    rows = {f"{part}_rows": len(next(iter(arrays.values()))) if arrays else 0
            for part, arrays in parts.items()}
    target = preprocessing.target_column if preprocessing is not None else None
    return {"source": settings.data, "target_column": target or settings.target_column,
            "rows": sum(rows.values()) if prepared is not None else None,
            "features": preprocessing.features if preprocessing is not None else None,
            "classes": len(preprocessing.classes) if preprocessing is not None
            and preprocessing.classes is not None else None, **rows}
