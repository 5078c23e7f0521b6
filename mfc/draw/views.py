"""Views of a program for drawing: networkx DiGraphs of the boxes to draw.

The plain view has one box per node. The collapsed view merges runs of similar nodes (a
long chain of repeated layers, a wide layer of parallel copies) into single "k×" boxes,
so that a 2,000-node spec gives a picture one can read. The folded view draws each
fragment call of the spec's top level as one box, and a run of like calls (a repeat's)
as one "N×" box. `detach_far_readers` draws a leaf
again beside readers far below it: edges across hundreds of ranks are what makes Graphviz
take minutes. mfc.draw.dot turns a view into DOT; nothing here knows about DOT.
"""

from __future__ import annotations

import networkx as nx

from mfc.ops import LEAF_KINDS
from mfc.text import format_shape

MIN_PARALLEL = 4  # copies side by side that merge into one box
MIN_REPEATS = 3  # repeats of a block along a chain that merge into one box
MAX_PERIOD = 8  # longest block (in boxes) looked for along a chain
REACH = 2  # ranks a leaf's edge may span before its reader gets a copy of the leaf
ABSORBED_KINDS = frozenset({"param", "const"})  # leaves a collapsed box may swallow


def plain_view(program) -> nx.DiGraph:
    """One box per node of the program's graph, in topological order.

    Box attributes: `members` (the graph nodes it stands for), `kind` (a registry kind,
    "loss" for the chosen loss alone, or "group"), `sig` (what makes boxes similar) and
    `shape`. Edge attributes: `count` (arguments it feeds: 2 for `Mul(x, x)`) and
    `shapes` (the shapes flowing along it).
    """
    view = nx.DiGraph()
    for node in program.nodes.values():
        view.add_node(node.name, members=(node.name,), kind=_kind(program, node),
                      sig=_node_signature(node), shape=node.shape)
    for node in program.nodes.values():
        for source in node.inputs:
            _add_edge(view, source, node.name, 1, {format_shape(program.nodes[source].shape)})
    return view


def collapsed_view(program) -> nx.DiGraph:
    """The plain view with runs of similar nodes merged into group boxes.

    First, wide layers: at least MIN_PARALLEL ops of one topological generation with
    the same op, shape and private params become one "k×" box. Then long chains: along
    a path where each box feeds only the next, a block of up to MAX_PERIOD boxes
    repeated at least MIN_REPEATS times becomes one box. Then blocks that are not
    chains, such as residual ones (`h2 = h1 + Tanh(Linear(h1, W, b))`): the boxes
    between two bottlenecks that everything passes through, repeated alike. Last,
    params and constants read once, by one group, move into it (their elements count
    on the group).
    """
    view = _merge_parallel(plain_view(program))
    view = _merge_chains(view)
    view = _merge_blocks(view)
    return _absorb_private_leaves(view)


def folded_view(program) -> nx.DiGraph:
    """Each outermost fragment call as one box (kind "call": the nodes of its body,
    nested calls included; `calls`, the calls it stands for); then consecutive calls of
    one repeat, or of one fragment with the same arguments each feeding only the next,
    as one box. A param shared from outside a call stays outside it."""
    view = plain_view(program)
    partition, groups = {}, {}
    for node in program.nodes.values():
        call = outermost_call(program, node.call)
        if call is not None:
            box = f"@{call}"
            partition[node.name] = box
            groups.setdefault(box, {"kind": "call", "calls": (call,), "members": ()})
            groups[box]["members"] += (node.name,)
    for box, data in groups.items():
        outputs = program.calls[data["calls"][0]].outputs
        data["shape"] = program.nodes[outputs[0]].shape if outputs else None
        data["sig"] = ("call", data["calls"])
    return _with_input_shapes(_merge_like_calls(_quotient(view, partition, groups), program))


def _with_input_shapes(view: nx.DiGraph) -> nx.DiGraph:
    """Each call box's `in_shapes`: the shapes of the values flowing into it (not of
    params or constants shared with it)."""
    for box, data in view.nodes(data=True):
        if data["kind"] == "call":
            data["in_shapes"] = tuple(sorted({shape for source, edge in view.pred[box].items()
                                              if view.nodes[source]["kind"] not in LEAF_KINDS
                                              or view.nodes[source]["kind"] == "data"
                                              for shape in edge["shapes"]}))
    return view


def outermost_call(program, call: str | None) -> str | None:
    """The call of the spec's top level that `call` is inside (itself, at the top)."""
    while call is not None and program.calls[call].parent is not None:
        call = program.calls[call].parent
    return call


def call_path(program, call: str | None) -> tuple:
    """The calls from the top level down to `call`, outermost first."""
    path = []
    while call is not None:
        path.append(call)
        call = program.calls[call].parent
    return tuple(reversed(path))


def _merge_like_calls(view: nx.DiGraph, program) -> nx.DiGraph:
    partition, groups = {}, {}
    for run in _like_call_runs(view, program):
        if len(run) < 2:
            continue
        box = run[0]
        groups[box] = {"kind": "call", "members": tuple(m for b in run
                                                         for m in view.nodes[b]["members"]),
                       "calls": tuple(c for b in run for c in view.nodes[b]["calls"]),
                       "shape": view.nodes[run[-1]]["shape"], "sig": ("call", box)}
        partition.update(dict.fromkeys(run, box))
    return _quotient(view, partition, groups) if groups else view


def _like_call_runs(view: nx.DiGraph, program) -> list[list]:
    """Runs of call boxes, each feeding only the next, alike: steps of one repeat, or
    calls of one fragment with the same arguments."""
    def key(box):
        call = program.calls[view.nodes[box]["calls"][0]]
        return ("repeat", call.repeat[0]) if call.repeat else (call.fragment, call.args)

    calls = [b for b in view if view.nodes[b]["kind"] == "call"]
    following = {}
    for box in calls:
        nexts = [s for s in view.succ[box] if view.nodes[s]["kind"] == "call"]
        if view.out_degree(box) == 1 and len(nexts) == 1 and key(nexts[0]) == key(box):
            feeders = [p for p in view.pred[nexts[0]] if view.nodes[p]["kind"] == "call"]
            if feeders == [box]:
                following[box] = nexts[0]
    followers = set(following.values())
    runs = []
    for box in calls:
        if box in followers:
            continue
        run = [box]
        while run[-1] in following:
            run.append(following[run[-1]])
        runs.append(run)
    return runs


def _kind(program, node) -> str:
    """The node's registry kind, except that only the chosen loss draws as "loss": a
    CrossEntropy inside a regularised loss is one op among others."""
    if node.name == program.loss:
        return "loss"
    return "op" if node.kind == "loss" else node.kind


def _node_signature(node) -> tuple:
    """(op name, shape, a constant's value): what makes boxes alike."""
    value = node.attrs.get("value") if node.kind == "const" else None
    return (node.op.name, node.shape, value)


def _add_edge(view: nx.DiGraph, source, target, count: int, shapes: set) -> None:
    if view.has_edge(source, target):
        edge = view.edges[source, target]
        edge["count"] += count
        edge["shapes"] = edge["shapes"] | shapes
    else:
        view.add_edge(source, target, count=count, shapes=frozenset(shapes))


def _quotient(view: nx.DiGraph, partition: dict, groups: dict) -> nx.DiGraph:
    """`view` with the boxes in `partition` replaced by the group boxes they map to;
    a group sits where its first member was, so the drawing keeps its order."""
    merged = nx.DiGraph()
    for box, data in view.nodes(data=True):
        target = partition.get(box, box)
        if target not in merged:
            merged.add_node(target, **(groups[target] if target in groups else data))
    for target in view:
        for source, edge in view.pred[target].items():
            new_source, new_target = partition.get(source, source), partition.get(target, target)
            if new_source != new_target:
                _add_edge(merged, new_source, new_target, edge["count"], edge["shapes"])
    return merged


def _group(view: nx.DiGraph, boxes: list, sig: tuple) -> tuple[str, dict]:
    """A group box standing for `boxes`, named after its first node: '#' keeps the id
    apart from node names, and a node belongs to one group at a time."""
    members = tuple(m for box in boxes for m in view.nodes[box]["members"])
    return f"#{members[0]}", {"members": members, "kind": "group", "sig": sig,
                          "shape": view.nodes[boxes[-1]]["shape"]}


def _is_spine(view: nx.DiGraph, box) -> bool:
    """Ops and groups may merge; data, params, constants and the loss stay themselves."""
    return view.nodes[box]["kind"] in ("op", "group")


# -- wide layers


def _merge_parallel(view: nx.DiGraph) -> nx.DiGraph:
    # Boxes of one generation have no path between them, so merging them keeps a DAG.
    partition, groups = {}, {}
    position = {box: i for i, box in enumerate(view)}
    for generation in nx.topological_generations(view):
        alike: dict[tuple, list] = {}
        for box in sorted(generation, key=position.get):
            if _is_spine(view, box):
                key = (view.nodes[box]["sig"], _private_inputs(view, box))
                alike.setdefault(key, []).append(box)
        for boxes in alike.values():
            if len(boxes) >= MIN_PARALLEL:
                sig = ("parallel", len(boxes), view.nodes[boxes[0]]["sig"])
                group, data = _group(view, boxes, sig)
                groups[group] = data
                partition.update(dict.fromkeys(boxes, group))
    return _quotient(view, partition, groups)


def _private_inputs(view: nx.DiGraph, box) -> tuple:
    return tuple(view.nodes[p]["sig"] for p in view.pred[box] if _is_private_leaf(view, p))


def _is_private_leaf(view: nx.DiGraph, box) -> bool:
    return view.nodes[box]["kind"] in LEAF_KINDS and view.out_degree(box) == 1


# -- long chains


def _merge_chains(view: nx.DiGraph) -> nx.DiGraph:
    partition, groups = {}, {}
    for chain in _chains(view):
        sigs = [_link_signature(view, box, chain[i - 1] if i else None)
                for i, box in enumerate(chain)]
        sigs[0] = _as_entry(sigs)
        for start, period, repeats in periodic_runs(sigs):
            boxes = chain[start:start + period * repeats]
            block = tuple(view.nodes[box]["sig"] for box in boxes[:period])
            group, data = _group(view, boxes, ("repeat", repeats, block))
            groups[group] = data
            partition.update(dict.fromkeys(boxes, group))
    return _quotient(view, partition, groups)


def _chains(view: nx.DiGraph) -> list[list]:
    """Maximal paths of spine boxes in which each box feeds only the next one.

    Contracting such a path cannot make a cycle: the only way out of a box is the next.
    """
    following = {}
    for box in view:
        if not _is_spine(view, box):
            continue
        feeders = [p for p in view.pred[box] if _is_spine(view, p) and view.out_degree(p) == 1]
        if len(feeders) == 1:
            following[feeders[0]] = box
    followers = set(following.values())
    starts = [box for box in following if box not in followers]
    chains = []
    for box in starts:
        chain = [box]
        while chain[-1] in following:
            chain.append(following[chain[-1]])
        chains.append(chain)
    return chains


def _link_signature(view: nx.DiGraph, box, previous) -> tuple:
    """A box along a chain, with what it reads: the previous box, private leaves (by
    kind and shape) or shared boxes (by identity), in argument order."""
    reads = tuple("previous" if p == previous else
                  ("private", view.nodes[p]["sig"]) if _is_private_leaf(view, p) else
                  ("shared", p) for p in view.pred[box])
    return view.nodes[box]["sig"], reads


def _as_entry(sigs: list) -> tuple:
    """The first box's signature, with what it reads where the next box of its kind
    reads the box before it taken as "previous" too: that read is the chain's entry.
    Else the first of a run of layers, reading the data rather than a layer, would be
    left out of the run."""
    first = sigs[0]
    later = next((sig for sig in sigs[1:MAX_PERIOD + 1] if sig[0] == first[0]), None)
    if later is None or len(later[1]) != len(first[1]):
        return first
    reads = tuple("previous" if then == "previous" else read
                  for read, then in zip(first[1], later[1]))
    return first[0], reads


def periodic_runs(sigs: list, max_period: int = MAX_PERIOD,
                  min_repeats: int = MIN_REPEATS) -> list[tuple[int, int, int]]:
    """Where a block of consecutive signatures repeats back to back.

    Parameters
    ----------
    sigs : list
        Comparable signatures, one per box along a chain.
    max_period, min_repeats : int
        The longest block looked for, and the fewest repeats worth a group.

    Returns
    -------
    list of (start, period, repeats)
        Non-overlapping runs, left to right. Scanning from the left, the period that
        covers the most boxes wins (the shortest among equals), and its run is pushed
        as far right as the repetition goes: `Linear, ReLU, Linear, ReLU, ..., ReLU`
        after a first Linear that differs groups as k×(Linear → ReLU), whole layers.
    """
    runs, start = [], 0
    while start < len(sigs):
        best = (0, 0, 0)  # (boxes covered, period, end of the repetition)
        for period in range(1, max_period + 1):
            end = start + period
            while end < len(sigs) and sigs[end] == sigs[end - period]:
                end += 1
            repeats = (end - start) // period
            if repeats >= min_repeats and repeats * period > best[0]:
                best = (repeats * period, period, end)
        covered, period, end = best
        if covered:
            runs.append((end - covered, period, covered // period))
            start = end
        else:
            start += 1
    return runs


# -- blocks between bottlenecks (residual blocks)


def _merge_blocks(view: nx.DiGraph) -> nx.DiGraph:
    """Runs of alike blocks merged: a block is the boxes after one bottleneck up to and
    including the next, a bottleneck being a box that no edge between other boxes
    passes over in the drawing's order. Nothing enters a block but through the
    bottleneck before it (or from a leaf), nothing leaves but through its last box, so
    merging consecutive blocks keeps the view a DAG."""
    blocks = _blocks(view)
    sigs = [_block_signature(view, block, entry) for entry, block in blocks]
    partition, groups = {}, {}
    for start, period, repeats in periodic_runs(sigs):
        run = blocks[start:start + period * repeats]
        if any(len(block) > 1 for _, block in run):  # one box a block: a chain's business
            boxes = [box for _, block in run for box in block]
            sig = ("repeat", repeats, tuple(view.nodes[box]["sig"]
                                            for _, block in run[:period] for box in block))
            group, data = _group(view, boxes, sig)
            groups[group] = data
            partition.update(dict.fromkeys(boxes, group))
    return _quotient(view, partition, groups)


def _blocks(view: nx.DiGraph) -> list[tuple]:
    """(entry, boxes) of each block of spine boxes, in order; entry is the bottleneck
    before it (None for the first)."""
    position = {box: i for i, box in enumerate(view)}
    order = [box for box in nx.lexicographical_topological_sort(view, key=position.get)
             if view.nodes[box]["kind"] not in LEAF_KINDS]
    index = {box: i for i, box in enumerate(order)}
    blocks, current, reach, entry = [], [], -1, None
    for i, box in enumerate(order):
        current.append(box)
        if reach <= i:  # no edge from an earlier box passes over this one
            if all(_is_spine(view, b) for b in current):
                blocks.append((entry, current))
            current, entry = [], box
        reach = max([reach] + [index[s] for s in view.succ[box] if s in index])
    return blocks


def _block_signature(view: nx.DiGraph, block: list, entry) -> tuple:
    """A block's boxes in order, each with what it reads: the block's entry, a box of
    the block (by place), private leaves (by kind and shape), shared boxes (by name)."""
    place = {box: i for i, box in enumerate(block)}
    return tuple((view.nodes[box]["sig"], tuple(
        "entry" if p == entry else ("in", place[p]) if p in place else
        ("private", view.nodes[p]["sig"]) if _is_private_leaf(view, p) else ("shared", p)
        for p in view.pred[box])) for box in block)


# -- leaves


def _absorb_private_leaves(view: nx.DiGraph) -> nx.DiGraph:
    partition, groups = {}, {}
    for box in view:
        if view.nodes[box]["kind"] != "group":
            continue
        # Read once: a param that the group's members share (a tied weight) stays
        # outside, drawn as the one param it is.
        leaves = [p for p in view.pred[box] if _is_private_leaf(view, p)
                  and view.nodes[p]["kind"] in ABSORBED_KINDS
                  and view.edges[p, box]["count"] == 1]
        if leaves:
            data = dict(view.nodes[box])
            data["members"] += tuple(m for leaf in leaves for m in view.nodes[leaf]["members"])
            groups[box] = data
            partition.update(dict.fromkeys(leaves, box))
    return _quotient(view, partition, groups)


# -- far readers of a leaf


def detach_far_readers(view: nx.DiGraph, reach: int = REACH) -> nx.DiGraph:
    """`view` with copies of a leaf (input, param, constant) beside those of its readers
    that lie more than `reach` ranks below the nearest one.

    A param shared by a whole chain would otherwise send edges across hundreds of ranks,
    which tangles the picture and makes Graphviz take minutes (a 200-node chain sharing
    one W took graphviz-pure two minutes, and 0.1 s with copies). A copy's id is
    `leaf#reader`; its attributes are the leaf's plus `copy_of`.
    """
    far = _far_reads(view, reach)
    if not far:
        return view
    copied = nx.DiGraph()
    for box, data in view.nodes(data=True):
        for leaf in view.pred[box]:
            if (leaf, box) in far:
                copied.add_node(f"{leaf}#{box}", **view.nodes[leaf], copy_of=leaf)
        copied.add_node(box, **data)
    for target in view:
        for source, edge in view.pred[target].items():
            start = f"{source}#{target}" if (source, target) in far else source
            copied.add_edge(start, target, **edge)
    return copied


def _far_reads(view: nx.DiGraph, reach: int) -> set[tuple]:
    ranks = _ranks(view)
    far = set()
    for leaf in view:
        if view.nodes[leaf]["kind"] in LEAF_KINDS and view.out_degree(leaf) > 1:
            nearest = min(ranks[reader] for reader in view.succ[leaf])
            far.update((leaf, reader) for reader in view.succ[leaf]
                       if ranks[reader] > nearest + reach)
    return far


def _ranks(view: nx.DiGraph) -> dict:
    """Longest path from the top, counting op boxes only: Graphviz sets a leaf just
    above its first reader, so leaves do not push anything down."""
    ranks = {}
    for box in nx.topological_sort(view):
        above = [ranks[p] + 1 for p in view.pred[box] if view.nodes[p]["kind"] not in LEAF_KINDS]
        ranks[box] = max(above, default=1)
    return ranks
