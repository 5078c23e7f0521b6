"""A compiled spec: the checked graph, its order, shapes, loss and train settings.

The runtime half of the API (`params`, `forward`, `gradients`, `train`) lowers the graph
to MiniFlow nodes on first use (mfc.backends.miniflow), so checking a spec never pays for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from mfc.diagnostics import Diagnostic
from mfc.settings import TrainSettings


@dataclass(eq=False)
class Program:
    graph: nx.DiGraph
    order: list[str]
    loss: str
    shapes: dict[str, tuple | None]  # ints, 'N' for the batch, '?' for unknown sizes
    settings: TrainSettings
    diagnostics: list[Diagnostic]  # the warnings; a Program has no errors
    source: str
    filename: str
    base_dir: Path
    _runtime: object = field(default=None, repr=False)

    @property
    def param_names(self) -> list[str]:
        """The trainable params, in topological order."""
        return [n for n in self.order if self.graph.nodes[n]["op"] == "Param"]

    @property
    def input_names(self) -> list[str]:
        return [n for n in self.order if self.graph.nodes[n]["op"] == "Input"]

    def param_count(self, name: str) -> int | None:
        shape = self.shapes.get(name)
        if shape is None or not all(isinstance(d, int) for d in shape):
            return None
        return math.prod(shape)

    @property
    def trainable_count(self) -> int | None:
        """Total trainable elements, or None while a size waits for the data."""
        counts = [self.param_count(n) for n in self.param_names]
        return None if None in counts else sum(counts)

    # -- the runtime: lowered on first use

    @property
    def params(self):
        """name → ndarray for every Param, writable: `prog.params["W1"][...] = 0`, or
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

    def train(self, **settings) -> list[float]:
        """Train the params in place with the train block's settings, some replaced by
        `settings` (epochs=5, learning_rate=0.1, optimizer="adam", ...); return the mean
        loss of each epoch. The settings that shape the graph (loss, features, targets)
        are fixed at compile time: pass them to `mfc.compile` instead. Raises SpecError
        for an Input nothing feeds, DataError for unusable data (or data of another
        width), ValueError for a bad setting, `mfc.train.Diverged` when the loss stops
        being finite."""
        from mfc import train

        return train.train(self, **settings)

    def network(self, dtype: str | None = None, seed: int | None = None):
        """The lowered `mfc.backends.miniflow.Network`, built on first use (with `seed`, if
        given, for the params); with another `dtype`, rebuilt with the params kept."""
        from mfc.backends import miniflow as runtime

        old = self._runtime
        if old is not None and (dtype is None or old.dtype == dtype):
            return old
        self._runtime = runtime.lower(self, dtype=dtype, seed=seed)
        if old is not None:
            self._runtime.theta[...] = old.theta
        return self._runtime
