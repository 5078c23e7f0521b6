"""A view of a program (mfc.draw.views) as a `graphviz.Digraph`: DOT source, styled.

`build` gives each box its label, style and tooltip and each edge the shapes flowing
along it; mfc.draw.render turns the DOT into svg, png or pdf. Nothing here runs a network.

Escaping: node labels are HTML-like (bold names) and hold only text passed through
`escape_html`; everything else (edge labels, tooltips, the caption) is a quoted DOT
string passed through `escape_string`. Both cut the text to a length fit for a picture
(`LABEL_CHARS`, `TOOLTIP_CHARS`), and a long name gets a short DOT id (`dot_id`): a
spec may hold a 20 KB statement, but Graphviz's `dot` refuses a token past 16 KB.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import networkx as nx

from mfc.draw.views import call_path, detach_far_readers, plain_view
from mfc.text import clip, format_shape, one_line, plural

PNG_DPI = "144"  # graphviz's 72 dpi makes png text blurry on today's screens
LABEL_CHARS = 80  # a name, an op, a shape: a box wider than this is no longer a box
TOOLTIP_CHARS = 400  # the spec's text behind a box
ID_CHARS = 64  # DOT ids (and svg titles) longer than this are cut and told apart by a hash

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
TRAINING_ONLY_STYLE = {"style": "filled,rounded,dotted", "penwidth": "1.6"}  # Dropout
GROUP_STYLE = {"fillcolor": "#ede9fe", "color": "#7c3aed", "peripheries": "2"}
CALL_STYLE = {"fillcolor": "#ccfbf1", "color": "#0f766e", "peripheries": "2"}  # --fold
CLUSTER_STYLE = {"style": "rounded,dashed", "color": "#0f766e", "fontcolor": "#0f766e",
                 "fontsize": "10", "labeljust": "l", "labelloc": "t", "margin": "10"}
SUBTLE = {"data": "#2563eb", "param": "#b45309", "op": MUTED, "loss": "#b91c1c",
          "group": "#6d28d9", "const": MUTED, "call": "#0f766e"}  # a box's second line

# ---------------------------------------------------------------- escaping


def _visible(text: str) -> str:
    """Control characters as Python escapes (a newline as backslash-n), and text that
    cannot be UTF-8 (lone surrogates) as '?': a label is one line of printable text."""
    return one_line(text.encode("utf-8", "replace").decode("utf-8"))


def _shown(text, limit: int) -> str:
    """`str(text)` cut to `limit` characters and made visible (cut first: a long text
    costs nothing past its ends, and cut again, since spelling out control characters
    lengthens it)."""
    return clip(_visible(clip(str(text), limit)), limit)


def escape_html(text, limit: int = LABEL_CHARS) -> str:
    """Escape text for the inside of an HTML-like DOT label (`<...>`).

    Parameters
    ----------
    text : object
        Any value; it is shown as `str(text)`.
    limit : int
        At most this many characters are shown (`mfc.text.clip`).

    Returns
    -------
    str
        The text with `& < > "` as entities, backslashes as `&#92;` (so that no
        renderer reads an escape sequence) and control characters spelled out.
    """
    text = _shown(text, limit)
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"),
                         ("\\", "&#92;")):
        text = text.replace(char, entity)
    return text


def escape_string(text, limit: int = LABEL_CHARS) -> str:
    """Escape text for a quoted DOT string (an edge label, a tooltip, the caption).

    Parameters
    ----------
    text : object
        Any value; it is shown as `str(text)`.
    limit : int
        At most this many characters are shown (`mfc.text.clip`).

    Returns
    -------
    str
        A `graphviz.escape`d string: backslashes doubled so that `\\n`, `\\N`, `\\G`,
        `\\l` mean nothing, never taken for an HTML label; `&` as `&amp;`, since
        Graphviz reads entities in every label; control characters spelled out. The
        graphviz package adds the quotes and escapes `"`.
    """
    import graphviz

    return graphviz.escape(_shown(text, limit).replace("&", "&amp;"))


def dot_id(box: str) -> str:
    """The DOT id of a box: its name, or for a name past `ID_CHARS` its start and a hash
    of the whole (two long names that differ only at the end stay two boxes)."""
    if len(box) <= ID_CHARS:
        return box
    digest = hashlib.sha1(box.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{box[:ID_CHARS - 13]}~{digest}"


# ---------------------------------------------------------------- the Digraph


def build(program, view: nx.DiGraph | None = None, rankdir: str = "TB"):
    """The diagram of a program as a `graphviz.Digraph` (use `.source` for DOT).

    Parameters
    ----------
    program : mfc.ir.Program
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
    _add_boxes(diagram, program, view)
    for target in view:
        for source, edge in view.pred[target].items():
            _draw_edges(diagram, view, source, target, edge)
    return diagram


def _add_boxes(diagram, program, view: nx.DiGraph) -> None:
    """Every box, each inside a cluster for each fragment call it is in (labelled
    `h1: Dense(64, ReLU)`), nested as the calls are."""
    lines = {None: program.source.splitlines()}
    boxes: dict[tuple, list] = {}  # call path → the boxes directly inside
    inner: dict[tuple, dict] = {}  # call path → the paths of the calls directly inside
    for box, data in view.nodes(data=True):
        path = _call_path(program, data)
        boxes.setdefault(path, []).append(box)
        for depth in range(len(path)):
            inner.setdefault(path[:depth], {})[path[:depth + 1]] = None

    def add(graph, path):
        for box in boxes.get(path, ()):
            graph.node(dot_id(box), **_box_attrs(program, view.nodes[box], lines))
        for child in inner.get(path, ()):
            with graph.subgraph(name=f"cluster_{dot_id(child[-1])}") as cluster:
                cluster.attr(label=escape_string(program.calls[child[-1]].label()),
                             tooltip=escape_string(_call_place(program, child[-1])),
                             **CLUSTER_STYLE)
                add(cluster, child)

    add(diagram, ())


def _call_path(program, data: dict) -> tuple:
    """The calls a box is inside: those all its nodes are in (none for a folded call)."""
    if data["kind"] == "call" or not program.calls:
        return ()
    paths = [call_path(program, program.nodes[m].call) for m in data["members"]]
    common = paths[0]
    for path in paths[1:]:
        common = common[:next((i for i, (a, b) in enumerate(zip(common, path)) if a != b),
                              min(len(common), len(path)))]
    return common


def _call_place(program, name: str) -> str:
    call = program.calls[name]
    where = call.span.source.name if call.span.source is not None else program.filename
    return f"{call.label()}, called at {Path(where).name}:{call.span.line}:{call.span.column}"


def _box_attrs(program, data: dict, lines: dict) -> dict:
    if data["kind"] == "group":
        return {"label": _group_label(program, data), **GROUP_STYLE}
    if data["kind"] == "call":
        return {"label": _call_label(program, data), **CALL_STYLE,
                "tooltip": escape_string(_call_place(program, data["calls"][0]),
                                         TOOLTIP_CHARS)}
    node = program.nodes[data["members"][0]]
    if "copy_of" in data:
        return {"label": f"<<b>{escape_html(node.label)}</b>>", **KIND_STYLES[data["kind"]],
                **COPY_STYLE, "tooltip": escape_string(
                    f"{clip(node.label, TOOLTIP_CHARS)}, drawn again here", TOOLTIP_CHARS)}
    tooltip = {"tooltip": escape_string(_source_line(node, lines), TOOLTIP_CHARS)}
    if node.anonymous and node.op.symbol:
        return {"label": escape_html(node.op.symbol), **INFIX_STYLE, **tooltip}
    if node.anonymous and node.kind == "const":
        return {"label": escape_html(f"{node.attrs['value']:g}"), **KIND_STYLES["const"],
                **tooltip}
    if node.op.random:  # active only while training: a dotted border, and said so
        tooltip["tooltip"] = escape_string(f"{_source_line(node, lines)} (only while "
                                           "training)", TOOLTIP_CHARS)
        return {"label": _node_label(node, data), **KIND_STYLES[data["kind"]],
                **TRAINING_ONLY_STYLE, **tooltip}
    return {"label": _node_label(node, data), **KIND_STYLES[data["kind"]], **tooltip}


def _source_line(node, files: dict) -> str:
    """What the spec says about a node, for the tooltip: `line 4: l1 = Linear(X, W1, b1)`
    (`files`: the lines of each file, by Source; None for the spec's)."""
    span = node.span
    if span is not None and span.source not in files:
        files[span.source] = span.source.text.splitlines()
    lines = files[span.source] if span is not None else []
    if span is None or span.line != span.end_line or span.line > len(lines):
        return node.label
    start, end = span.column - 1, span.end_column - 1  # sliced short: 5,000 nodes of one
    text = lines[span.line - 1][start:min(end, start + TOOLTIP_CHARS)]  # long line
    text += "…" if end > start + TOOLTIP_CHARS else ""
    name = clip(node.name, LABEL_CHARS)
    return f"line {span.line}: {text if node.anonymous else f'{name} = {text}'}"


def _node_label(node, data: dict) -> str:
    title = "" if node.anonymous else f"<b>{escape_html(node.name)}</b>  "
    op = f"{node.attrs['value']:g}" if node.kind == "const" else node.op.name
    lines = [f"{title}{escape_html(op)}", escape_html(format_shape(data["shape"]))]
    count = node.elements if node.kind == "param" else None
    if count is not None:
        lines.append(escape_html(plural(count, "param")))
    return _html_lines(lines, data["kind"])


def _call_label(program, data: dict) -> str:
    """A folded call: `h1: Dense(64, ReLU)`, or `h: 3× Dense(8)` for a run; what flows
    in and out; the params inside."""
    calls = [program.calls[c] for c in data["calls"]]
    first = calls[0]
    if len(calls) == 1:
        title = first.label()
    else:
        name = first.repeat[0] if first.repeat else f"{first.name}…{calls[-1].name}"
        title = f"{name}: {len(calls)}× {first.fragment}({first.args})"
    flow = f"{' | '.join(data.get('in_shapes', ())) or '()'} → {format_shape(data['shape'])}"
    lines = [f"<b>{escape_html(title)}</b>", escape_html(flow)]
    params = [program.nodes[m].elements for m in data["members"]
              if program.nodes[m].kind == "param"]
    if params:
        lines.append(escape_html("? params" if None in params else plural(sum(params), "param")))
    return _html_lines(lines, "call")


def _group_label(program, data: dict) -> str:
    members = [program.nodes[m] for m in data["members"]]
    params = [m.elements for m in members if m.kind == "param"]
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
    return sig[0] if sig[2] is None else f"{sig[2]:g}"


def _describe_part(sig: tuple) -> str:
    return f"({describe(sig)})" if sig[0] in ("parallel", "repeat") else describe(sig)


def _draw_edges(diagram, view: nx.DiGraph, source, target, edge: dict) -> None:
    # A number's shape is always (); saying so on its edge is clutter.
    label = "" if view.nodes[source]["kind"] == "const" else " | ".join(sorted(edge["shapes"]))
    plain = view.nodes[source]["kind"] != "group" and view.nodes[target]["kind"] != "group"
    for _ in range(edge["count"] if plain else 1):  # Mul(x, x) reads x twice
        diagram.edge(dot_id(source), dot_id(target), label=escape_string(label))


def _caption(program, view: nx.DiGraph) -> str:
    import graphviz

    total = program.trainable_count
    lines = [] if program.filename == "<string>" else [Path(program.filename).name]
    lines.append(plural(total, "trainable parameter") if total is not None
                 else "trainable parameters: known once the data is read")
    if program.settings.data is not None:
        lines.append(f"data: {program.settings.data}")
    boxes = sum(1 for _, data in view.nodes(data=True) if "copy_of" not in data)
    if boxes < len(program.nodes):
        lines.append(f"{len(program.nodes):,} nodes drawn as {boxes:,} boxes")
    # Joined with real DOT line breaks; nohtml: the text might start with < and end with >.
    return graphviz.nohtml("\\n".join(escape_string(line) for line in lines))


