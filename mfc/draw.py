"""Drawing a compiled spec: Program → view → graphviz.Digraph → image bytes.

A *view* is a networkx DiGraph of the boxes to draw. The plain view has one box per
graph node; the collapsed view merges runs of similar nodes (a long chain of repeated
layers, a wide layer of parallel copies) into single "k×" boxes, so that a 2,000-node
spec gives a picture one can read. `build` turns a view into a `graphviz.Digraph` (DOT
source only), drawing a leaf again beside readers far below it (`detach_far_readers`):
edges across hundreds of ranks are what makes Graphviz take minutes. `mfc.render` turns
DOT into svg, png or pdf. Nothing here runs a network.

Escaping: node labels are HTML-like (bold names) and hold only text passed through
`escape_html`; everything else (edge labels, tooltips, the caption) is a quoted DOT
string passed through `escape_string`.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from mfc.ops import LEAF_KINDS, OPS
from mfc.text import format_shape, one_line, plural

MIN_PARALLEL = 4  # copies side by side that merge into one box
MIN_REPEATS = 3  # repeats of a block along a chain that merge into one box
MAX_PERIOD = 8  # longest block (in boxes) looked for along a chain
REACH = 2  # ranks a leaf's edge may span before its reader gets a copy of the leaf
PNG_DPI = "144"  # graphviz's 72 dpi makes png text blurry on today's screens

# ---------------------------------------------------------------- styles

FONT = "Helvetica"
INK, MUTED = "#1e293b", "#64748b"

# ordering=in keeps operands in argument order, left to right: y − ŷ is not ŷ − y.
GRAPH_STYLE = {"fontname": FONT, "fontsize": "11", "fontcolor": MUTED, "labelloc": "b",
               "ordering": "in", "nodesep": "0.3", "ranksep": "0.3", "pad": "0.25",
               "bgcolor": "white"}
NODE_STYLE = {"fontname": FONT, "fontsize": "11", "fontcolor": INK, "shape": "box",
              "style": "filled,rounded", "penwidth": "1.2", "margin": "0.14,0.06"}
EDGE_STYLE = {"fontname": FONT, "fontsize": "9", "fontcolor": MUTED, "color": "#94a3b8",
              "arrowsize": "0.6", "penwidth": "1.1"}

# One row per registry `kind`; the chosen loss draws as "loss" whatever its op.
KIND_STYLES = {
    "data": {"fillcolor": "#dbeafe", "color": "#2563eb"},
    "param": {"fillcolor": "#fef3c7", "color": "#d97706"},
    "const": {"shape": "plain", "style": "", "fontcolor": MUTED},
    "op": {"fillcolor": "#f1f5f9", "color": "#64748b"},
    "loss": {"fillcolor": "#fee2e2", "color": "#dc2626", "penwidth": "2"},
}
INFIX_STYLE = {"shape": "circle", "fixedsize": "true", "width": "0.34", "style": "filled",
               "fillcolor": "white", "color": "#64748b", "fontsize": "13"}
COPY_STYLE = {"style": "filled,rounded,dashed", "fontsize": "10"}  # a leaf drawn again
GROUP_STYLE = {"fillcolor": "#ede9fe", "color": "#7c3aed", "peripheries": "2"}
SUBTLE = {"data": "#2563eb", "param": "#b45309", "op": MUTED, "loss": "#b91c1c",
          "group": "#6d28d9", "const": MUTED}  # the colour of a box's second line

ABSORBED_KINDS = frozenset({"param", "const"})  # leaves a collapsed box may swallow

# ---------------------------------------------------------------- escaping


def _visible(text: str) -> str:
    """Control characters as Python escapes (a newline as backslash-n), and text that
    cannot be UTF-8 (lone surrogates) as '?': a label is one line of printable text."""
    return one_line(text.encode("utf-8", "replace").decode("utf-8"))


def escape_html(text) -> str:
    """Escape text for the inside of an HTML-like DOT label (`<...>`).

    Parameters
    ----------
    text : object
        Any value; it is shown as `str(text)`.

    Returns
    -------
    str
        The text with `& < > "` as entities, backslashes as `&#92;` (so that no
        renderer reads an escape sequence) and control characters spelled out.
    """
    text = _visible(str(text))
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"),
                         ("\\", "&#92;")):
        text = text.replace(char, entity)
    return text


def escape_string(text) -> str:
    """Escape text for a quoted DOT string (an edge label, a tooltip, the caption).

    Parameters
    ----------
    text : object
        Any value; it is shown as `str(text)`.

    Returns
    -------
    str
        A `graphviz.escape`d string: backslashes doubled so that `\\n`, `\\N`, `\\G`,
        `\\l` mean nothing, never taken for an HTML label; `&` as `&amp;`, since
        Graphviz reads entities in every label; control characters spelled out. The
        graphviz package adds the quotes and escapes `"`.
    """
    import graphviz

    return graphviz.escape(_visible(str(text)).replace("&", "&amp;"))


# ---------------------------------------------------------------- views


def plain_view(program) -> nx.DiGraph:
    """One box per node of the program's graph, in topological order.

    Box attributes: `members` (the graph nodes it stands for), `kind` (a registry kind,
    "loss" for the chosen loss, or "group"), `sig` (what makes boxes similar) and
    `shape`. Edge attributes: `count` (arguments it feeds: 2 for `Mul(x, x)`) and
    `shapes` (the shapes flowing along it).
    """
    view = nx.DiGraph()
    for name in program.order:
        view.add_node(name, members=(name,), kind=_kind(program, name),
                      sig=_node_signature(program, name), shape=program.shapes.get(name))
    for name in program.order:
        for source in program.graph.nodes[name]["inputs"]:
            _add_edge(view, source, name, 1, {format_shape(program.shapes.get(source))})
    return view


def collapsed_view(program) -> nx.DiGraph:
    """The plain view with runs of similar nodes merged into group boxes.

    First, wide layers: at least MIN_PARALLEL ops of one topological generation with
    the same op, shape and private params become one "k×" box. Then long chains: along
    a path where each box feeds only the next, a block of up to MAX_PERIOD boxes
    repeated at least MIN_REPEATS times becomes one box. Last, params and constants
    read only by one group move into it (their elements count on the group).
    """
    view = _merge_parallel(plain_view(program))
    view = _merge_chains(view)
    return _absorb_private_leaves(view)


def _kind(program, name: str) -> str:
    return "loss" if name == program.loss else OPS[program.graph.nodes[name]["op"]].kind


def _node_signature(program, name: str) -> tuple:
    data = program.graph.nodes[name]
    value = data["attrs"].get("value") if data["op"] == "Const" else None
    return (data["op"], program.shapes.get(name), value)


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


# -- leaves


def _absorb_private_leaves(view: nx.DiGraph) -> nx.DiGraph:
    partition, groups = {}, {}
    for box in view:
        if view.nodes[box]["kind"] != "group":
            continue
        leaves = [p for p in view.pred[box] if _is_private_leaf(view, p)
                  and view.nodes[p]["kind"] in ABSORBED_KINDS]
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


# ---------------------------------------------------------------- the Digraph


def build(program, view: nx.DiGraph | None = None, rankdir: str = "TB"):
    """The diagram of a program as a `graphviz.Digraph` (use `.source` for DOT).

    Parameters
    ----------
    program : mfc.program.Program
        A compiled, valid spec.
    view : networkx.DiGraph, optional
        The boxes to draw: `plain_view(program)` (the default) or
        `collapsed_view(program)`.
    rankdir : {"TB", "LR"}
        Top to bottom or left to right.

    Returns
    -------
    graphviz.Digraph
    """
    import graphviz

    view = detach_far_readers(plain_view(program) if view is None else view)
    graph_style = {**GRAPH_STYLE, "rankdir": rankdir}
    diagram = graphviz.Digraph("mfc", graph_attr=graph_style, node_attr=NODE_STYLE,
                               edge_attr=EDGE_STYLE)
    diagram.attr(label=_caption(program, view))
    lines = program.source.splitlines()
    for box, data in view.nodes(data=True):
        diagram.node(box, **_box_attrs(program, data, lines))
    for target in view:
        for source, edge in view.pred[target].items():
            _draw_edges(diagram, view, source, target, edge)
    return diagram


def _box_attrs(program, data: dict, lines: list[str]) -> dict:
    if data["kind"] == "group":
        return {"label": _group_label(program, data), **GROUP_STYLE}
    name = data["members"][0]
    node = program.graph.nodes[name]
    if "copy_of" in data:
        return {"label": f"<<b>{escape_html(node['label'])}</b>>", **KIND_STYLES[data["kind"]],
                **COPY_STYLE, "tooltip": escape_string(f"{node['label']}, drawn again here")}
    op = OPS[node["op"]]
    tooltip = {"tooltip": escape_string(_source_line(name, node, lines))}
    if node["anonymous"] and op.symbol:
        return {"label": escape_html(op.symbol), **INFIX_STYLE, **tooltip}
    if node["anonymous"] and op.kind == "const":
        return {"label": escape_html(f"{node['attrs']['value']:g}"), **KIND_STYLES["const"],
                **tooltip}
    return {"label": _node_label(program, name, data), **KIND_STYLES[data["kind"]], **tooltip}


def _source_line(name: str, node: dict, lines: list[str]) -> str:
    """What the spec says about a node, for the tooltip: `line 4: l1 = Linear(X, W1, b1)`."""
    span = node["span"]
    if span is None or span.line != span.end_line or span.line > len(lines):
        return node["label"]
    text = lines[span.line - 1][span.column - 1:span.end_column - 1]
    return f"line {span.line}: {text if node['anonymous'] else f'{name} = {text}'}"


def _node_label(program, name: str, data: dict) -> str:
    node = program.graph.nodes[name]
    title = "" if node["anonymous"] else f"<b>{escape_html(name)}</b>  "
    op = f"{node['attrs']['value']:g}" if node["op"] == "Const" else node["op"]
    lines = [f"{title}{escape_html(op)}", escape_html(format_shape(data["shape"]))]
    count = program.param_count(name) if node["op"] == "Param" else None
    if count is not None:
        lines.append(escape_html(plural(count, "param")))
    return _html_lines(lines, data["kind"])


def _group_label(program, data: dict) -> str:
    members = data["members"]
    params = [program.param_count(m) for m in members if program.graph.nodes[m]["op"] == "Param"]
    lines = [f"<b>{escape_html(describe(data['sig']))}</b>",
             escape_html(f"{plural(len(members), 'node')}  {format_shape(data['shape'])}")]
    if params:
        total = "? params" if None in params else plural(sum(params), "param")
        lines.append(escape_html(total))
    return _html_lines(lines, "group")


def _html_lines(lines: list[str], kind: str) -> str:
    """Escaped lines as an HTML-like label: the first in full size, the rest smaller."""
    rest = "".join(f'<br/><font point-size="9" color="{SUBTLE[kind]}">{line}</font>'
                   for line in lines[1:])
    return f"<{lines[0]}{rest}>"


def describe(sig: tuple) -> str:
    """What a box stands for: `Add`; `32×Add` side by side; `500×(Linear → ReLU)` one
    after another; `59×(32×Add)`, 59 layers of 32 Adds."""
    if sig[0] == "parallel":
        return f"{sig[1]}×{_describe_part(sig[2])}"
    if sig[0] == "repeat":
        block = " → ".join(describe(s) for s in sig[2])
        if len(sig[2]) == 1:
            return f"{sig[1]}×{_describe_part(sig[2][0])}"
        return f"{sig[1]}×({block})"
    return sig[0] if sig[0] != "Const" else f"{sig[2]:g}"


def _describe_part(sig: tuple) -> str:
    return f"({describe(sig)})" if sig[0] in ("parallel", "repeat") else describe(sig)


def _draw_edges(diagram, view: nx.DiGraph, source, target, edge: dict) -> None:
    # A number's shape is always (); saying so on its edge is clutter.
    label = "" if view.nodes[source]["kind"] == "const" else " | ".join(sorted(edge["shapes"]))
    plain = view.nodes[source]["kind"] != "group" and view.nodes[target]["kind"] != "group"
    for _ in range(edge["count"] if plain else 1):  # Mul(x, x) reads x twice
        diagram.edge(source, target, label=escape_string(label))


def _caption(program, view: nx.DiGraph) -> str:
    import graphviz

    total = program.trainable_count
    lines = [] if program.filename == "<string>" else [Path(program.filename).name]
    lines.append(plural(total, "trainable parameter") if total is not None
                 else "trainable parameters: known once the data is read")
    if program.settings.data is not None:
        lines.append(f"data: {program.settings.data}")
    boxes = sum(1 for _, data in view.nodes(data=True) if "copy_of" not in data)
    if boxes < len(program.graph):
        lines.append(f"{len(program.graph):,} nodes drawn as {boxes:,} boxes")
    # Joined with real DOT line breaks; nohtml: the text might start with < and end with >.
    return graphviz.nohtml("\\n".join(escape_string(line) for line in lines))


# ---------------------------------------------------------------- drawing


def draw(program, fmt: str = "svg", *, rankdir: str = "TB", collapse: bool = False) -> bytes:
    """Draw a program as an image.

    Parameters
    ----------
    program : mfc.program.Program
    fmt : {"svg", "png", "pdf", "dot"}
    rankdir : {"TB", "LR"}
    collapse : bool
        Merge runs of similar nodes (see `collapsed_view`).

    Returns
    -------
    bytes

    Raises
    ------
    mfc.render.RenderError
        Nothing installed can render `fmt` ("dot" always works), or rendering failed.
    """
    from mfc.render import render

    view = collapsed_view(program) if collapse else plain_view(program)
    diagram = build(program, view, rankdir)
    if fmt == "png":
        diagram.attr(dpi=PNG_DPI)
    return render(diagram.source, fmt)
