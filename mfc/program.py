"""A compiled spec: the checked graph, its order, shapes, loss and train settings.

The runtime half of the API (`params`, `forward`, `gradients`, `train`) lowers the graph
to MiniFlow nodes on first use (mfc.runtime), so checking a spec never pays for it.
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
    has_train_block: bool
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
