"""A compiled spec with its params: the object `mfc.compile` and `mfc.load` return.

It joins the stages for Python callers: the `Program` (mfc.ir, plain data) the front end
made, the network a backend lowered it to (built on first use, so checking a spec never
pays for it), the data prepared for it, and the training loop.
"""

from __future__ import annotations

from mfc import settings as train_settings
from mfc.backends import BACKENDS, DEFAULT
from mfc.diagnostics import DataError, SpecError
from mfc.ir import Program


class Model:
    """A compiled spec, its params, and what can be done with them.

    Attributes
    ----------
    program : mfc.ir.Program
        The checked spec: typed nodes in order, loss, outputs, settings, data.
    backend : str
        What runs it: "numpy" (generated code, the default) or "miniflow" (the
        lesson's node runtime); see mfc.backends.BACKENDS.
    """

    def __init__(self, program: Program, backend: str = DEFAULT):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; the backends are "
                             f"{', '.join(BACKENDS)}")
        self.program, self.backend = program, backend
        self._network = None

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
        array. Raises TypeError when `feed` is not a dict; ValueError for a missing or
        unknown Input, or a value that is ill-shaped, empty or not real numbers."""
        return self.network().forward({} if feed is None else feed)

    def gradients(self, feed: dict | None = None) -> dict:
        """d(loss)/d(param) for every Param by name (copies), at the current params,
        for the Inputs in `feed`; raises as `forward` does."""
        return self.network().gradients({} if feed is None else feed)

    def train(self, *, on_epoch=None, note=None, **settings) -> list[float]:
        """Train the params in place with the train block's settings, some replaced by
        `settings` (epochs=5, learning_rate=0.1, optimizer="adam", ...); return the mean
        loss of each epoch. `on_epoch` is called with each `mfc.train.Epoch`, `note`
        with one-line remarks (class labels remapped, say).

        The settings that shape the graph (loss, features, targets) are fixed at compile
        time: pass them to `mfc.compile` instead. `data` and `target_column` may change,
        as long as the new data has the width the spec was compiled for. Each call
        starts a fresh optimizer state (momentum, adam's moments) and a fresh batch
        order from the seed; the params carry over. So two calls of 2 epochs are not one
        call of 4: pass `seed=` to vary the batches of a second call.

        Raises SpecError (E407) for an Input the loss needs that nothing feeds;
        DataError for unusable data (or data of another width); SettingError (a
        ValueError) for a bad setting; `mfc.train.Diverged` when the loss stops being
        finite; `mfc.train.Interrupted` on Ctrl-C.
        """
        from mfc import train

        settings, prepared = self._prepared(settings, note)
        network = self.network(settings.dtype, settings.seed)
        return train.train(network, settings, prepared, on_epoch)

    def explain(self, *, note=None, **settings) -> str:
        """What training runs, as the numpy backend generates it: the Python source of
        one whole training step (sample, forward, backward, update) for this spec's
        batches, with `settings` as `train` takes them. Raises as `train` does."""
        from mfc import backends
        from mfc.backends import generated
        from mfc.train.loop import fed_slots

        settings, prepared = self._prepared(settings, note)
        network = backends.lower("numpy", self.program, settings.dtype, settings.seed)
        fed = fed_slots(network, settings, prepared)
        return generated.explain(network, fed and fed["train"], settings.batch_size)

    def _prepared(self, settings: dict, note):
        """(the train settings with `settings` replacing some, the data prepared for
        them); SpecError for an Input the loss needs that nothing feeds."""
        from mfc import data

        settings = train_settings.at_train_time(self.program.settings, settings)
        unfed = self.program.unfed_inputs(settings)
        if unfed:
            raise SpecError(unfed, self.program.source, self.program.filename)
        return settings, data.prepare(self.program, settings, note or (lambda text: None))

    def network(self, dtype: str | None = None, seed: int | None = None):
        """The network `backend` lowered the program to, built on first use (with `seed`,
        if given, for the params); with another `dtype`, rebuilt with the params kept."""
        from mfc import backends

        old = self._network
        if old is not None and (dtype is None or old.dtype == dtype):
            return old
        if self.program.trainable_count is None:
            self._data_must_exist()
        self._network = backends.lower(self.backend, self.program, dtype=dtype, seed=seed)
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
