"""Backends: each takes a `Program` (mfc.ir) and returns a network that runs it.

`BACKENDS` names each backend's module, which offers `lower(program, dtype=None,
seed=None, **options)`; `lower(name, program, ...)` imports it only when asked for (the
command line's `--backend`, `mfc.Model(backend=...)`). `numpy` (generated code) is the
default; `miniflow` (the lesson's node runtime) is the reference every backend is tested
against; `torch` runs a torch.nn.Module (option `device`), data-parallel across the
workers of a torch.distributed process group when one is up. (ONNX export,
mfc.backends.onnx, writes a file instead of running: it is no entry here.)

What the training loop and the API ask of a lowered network (mfc.backends.miniflow's
`Network` is the reference every backend is tested against):

- `params`: name → the live array of each Param; `theta` and `grad`: the flat vectors
  the params and their gradients are contiguous views into (optimizers update `theta`
  in place; weight decay finds each param's entries by its offset in `theta`);
- `checked_slots(arrays)`: Input name → array, checked against the Inputs' shapes and
  cast to the network's dtype, returned by *slot*: an object whose `value` a pass reads
  (a sampler sets it to each batch);
- `train_mode(seed=None)`: the passes that follow are training passes: ops active only
  while training (Dropout) draw their noise, from a generator seeded by `seed`
  (restarted; None goes on with the draws so far); `evaluate` and the API's passes are
  not training passes, and in them those ops are the identity; `noise.state()` and
  `noise.load_state(state)`: that generator's state, which a checkpoint keeps;
- `step_function(sample, optimizer)`: one whole training step as a function of no
  arguments: `sample()` (None: no data) sets the slots to the next batch, forward and
  backward run, and the optimizer's update (`optimizer.update()`, over `theta` and
  `grad`) follows when the loss is finite; it returns the loss. With plain SGD a
  backend may fold the rate into the loss's gradient and make the update itself
  (`folds_rate(optimizer)`: the node runtime and the generated code do, alike);
- `ready()`: prepare the training passes for the slots' current shapes;
- `loss_and_gradients()`: forward and backward at the slots' values; the loss as a
  float, the gradients in `grad` (the node runtime's takes the backward pass's seed,
  1 by default);
- `evaluate(arrays, names)`: the loss and copies of some nodes' values on other data
  (validation), the training batch left as it was;
- `forward(feed)`, `gradients(feed)`: the API's entry points, with checked feeds;
  `forward` gives every node the feed's Inputs allow (none that needs a missing Input,
  such as the loss without the targets);
- `values(feed, names)`: some nodes' values, running only the nodes they need (what a
  prediction runs);
- `scores_and_labels`: the names accuracy is measured on, or None, and
  `predicted_classes(scores)`: the class each row of those scores predicts; `dtype`.

A backend never reaches back into the compiler, the graph builder or data files.
"""

from __future__ import annotations

from importlib import import_module

# name → the module that lowers to it (imported on first use: torch is heavy)
BACKENDS = {"numpy": "mfc.backends.generated", "miniflow": "mfc.backends.miniflow",
            "torch": "mfc.backends.torch"}
DEFAULT = "numpy"
OPTIONS = {"torch": ("device",)}  # the options each backend's `lower` takes beyond these


def lower(name: str, program, dtype: str | None = None, seed: int | None = None, **options):
    """`program` lowered by the backend `name` (a key of BACKENDS), its params
    initialised from `seed`; `options` as OPTIONS lists them (the torch backend's
    `device`). Raises KeyError for an unknown name, DataError as the backends' `lower`
    do, MfcError when the backend's package or device is missing."""
    return import_module(BACKENDS[name]).lower(program, dtype=dtype, seed=seed, **options)
