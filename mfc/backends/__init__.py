"""Backends: each takes a `Program` (mfc.ir) and returns a network that runs it.

What the training loop and the API ask of a lowered network (mfc.backends.miniflow's
`Network` is the reference every backend is tested against):

- `params`: name → the live array of each Param; `theta` and `grad`: the flat vectors
  the params and their gradients are views into (optimizers update `theta` in place);
- `checked_slots(arrays)`: Input name → array, checked against the Inputs' shapes and
  cast to the network's dtype, returned by *slot*: an object whose `value` a pass reads
  (a sampler sets it to each batch);
- `ready()`: prepare the training passes for the slots' current shapes;
- `loss_and_gradients()`: forward and backward at the slots' values; the loss as a
  float, the gradients in `grad`;
- `evaluate(arrays, names)`: the loss and copies of some nodes' values on other data
  (validation), the training batch left as it was;
- `forward(feed)`, `gradients(feed)`: the API's entry points, with checked feeds;
- `scores_and_labels`: the names accuracy is measured on, or None; `dtype`.

A backend never reaches back into the compiler, the graph builder or data files.
"""
