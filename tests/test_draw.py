"""mfc.draw: the DOT a spec becomes, collapsing, escaping (`mfc draw` is in test_cli.py).

Most tests read the DOT source and need no Graphviz; those that render skip when no
renderer is installed.
"""

import dataclasses
import re
import textwrap
import xml.etree.ElementTree as ET

import graphviz
import pytest

import mfc
from conftest import LESSON, chain_spec
from mfc import draw
from mfc.draw import dot, views
from mfc.draw.render import find_renderer, render

SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"

INFIX = """\
X, y   = Input(_, 10), Input(_, 1)
W1, b1 = Param(10, 10), Param(10)
W2     = Param(10, 1)
l1 = X @ W1 + b1; cost = Mean((y - Sigmoid(l1) @ W2) ** 2)
"""

HOSTILE = ['say "hi"', "back\\slash", "\\n \\N \\G \\l \\r", "<b>bold</b>", "a > b < c",
           "{brace} [bracket] |pipe|", "line1\nline2\r\tend", "amp & &amp; &#92;", '\\"',
           "ends with \\", "<", ">", "<>", '"', "", "σ(x) → ∑ é", "\x00\x07\x7f"]


def compile_spec(text: str, filename: str = "net.mf"):
    return mfc.compile(textwrap.dedent(text), filename).program


def dot_of(text: str, **kwargs) -> str:
    program = compile_spec(text)
    view = views.collapsed_view(program) if kwargs.pop("collapse", False) else None
    return dot.build(program, view, **kwargs).source


def node_line(source: str, name: str) -> str:
    """The DOT statement that declares node `name`."""
    pattern = re.compile(rf'^\t"?{re.escape(name)}"? \[', re.MULTILINE)
    match = pattern.search(source)
    assert match, f"no node {name!r} in:\n{source}"
    return source[match.start():source.index("\n", match.start())]


def svg_or_skip(source: str) -> ET.Element:
    if find_renderer("svg") is None:
        pytest.skip("no svg renderer on this machine")
    return ET.fromstring(render(source, "svg"))


def svg_texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def shared_chain_spec(length: int) -> str:
    """One W and b shared by every Linear of a long Linear, Sigmoid, Tanh chain."""
    lines = ["X, y = Input(_, 4), Input(_)", "W, b = Param(4, 4), Param(4)"]
    ops = ["Linear({}, W, b)", "Sigmoid({})", "Tanh({})"]
    previous = "X"
    for i in range(1, length + 1):
        lines.append(f"h{i} = " + ops[(i - 1) % 3].format(previous))
        previous = f"h{i}"
    lines.append(f"cost = MSE(y, Linear({previous}, Param(4, 1), Param(1)))")
    return "\n".join(lines) + "\n"


def layered_spec(depth: int, width: int) -> str:
    """Layers of `width` Adds, lane i reading lanes i and i+1 of the layer above."""
    lines = ["X, y = Input(_, 4), Input(_)"]
    lines += [f"a0_{i} = Tanh(X)" for i in range(width)]
    for k in range(1, depth + 1):
        lines += [f"a{k}_{i} = a{k - 1}_{i} + a{k - 1}_{(i + 1) % width}" for i in range(width)]
    total = " + ".join(f"a{depth}_{i}" for i in range(width))
    lines.append(f"cost = MSE(y, Linear({total}, Param(4, 1), Param(1)))")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- what a diagram shows


def test_nodes_show_name_op_and_shape_with_batch_as_n():
    source = dot_of(LESSON)
    # X is declared Input(); its width comes from the data (diabetes has 10 features).
    assert "<b>X</b>  Input" in node_line(source, "X")
    assert "(N, 10)" in node_line(source, "X")
    assert "<b>s1</b>  Sigmoid" in node_line(source, "s1")
    assert "(N, 10)" in node_line(source, "s1")


def test_params_show_their_element_counts():
    source = dot_of(LESSON)
    assert "100 params" in node_line(source, "W1")
    assert "1 param<" in node_line(source, "b2")


def test_caption_gives_the_trainable_total_and_the_data():
    source = dot_of(LESSON)
    caption = re.search(r"^\tlabel=(.*)$", source, re.MULTILINE).group(1)
    assert "121 trainable parameters" in caption and "data: diabetes" in caption


def test_caption_when_sizes_wait_for_the_data():
    source = dot_of('X = Input(_, _)\nW = Param(_, 1)\ncost = Mean(X @ W)\n'
                    'train { data = "missing.csv" }\n')
    assert "known once the data is read" in source


def test_edges_carry_the_shape_that_flows_along_them():
    source = dot_of(LESSON)
    assert 'X -> l1 [label="(N, 10)"]' in source
    assert 'W2 -> l2 [label="(10, 1)"]' in source
    assert 'l2 -> cost [label="(N, 1)"]' in source


@pytest.mark.parametrize("name, kind", [("X", "data"), ("W1", "param"), ("l1", "op"),
                                        ("cost", "loss")])
def test_each_kind_has_its_own_style(name, kind):
    line = node_line(dot_of(LESSON), name)
    assert f'fillcolor="{dot.KIND_STYLES[kind]["fillcolor"]}"' in line


def test_styles_are_distinct_per_kind():
    fills = [style.get("fillcolor") for kind, style in dot.KIND_STYLES.items() if kind != "const"]
    assert len(set(fills)) == len(fills)


def test_the_chosen_loss_draws_as_loss_whatever_its_op():
    line = node_line(dot_of(INFIX), "cost")  # a Mean, not an MSE
    assert dot.KIND_STYLES["loss"]["fillcolor"] in line


def test_only_the_chosen_loss_draws_as_the_loss():
    source = dot_of("X, y = Input(_, 4), Input(_)\nW = Param(4, 3)\n"
                    "ce = CrossEntropy(y, X @ W)\ncost = ce + 0.01 * Sum(W * W)\n")
    loss_fill = dot.KIND_STYLES["loss"]["fillcolor"]
    assert loss_fill in node_line(source, "cost")
    assert loss_fill not in node_line(source, "ce")
    assert dot.KIND_STYLES["op"]["fillcolor"] in node_line(source, "ce")


def test_anonymous_infix_nodes_are_small_circles_with_the_symbol():
    source = dot_of(INFIX)
    matmul = node_line(source, "l1.matmul1")
    assert "shape=circle" in matmul and 'label="@"' in matmul
    assert 'label="**"' in node_line(source, "cost.pow1")
    assert "label=2 " in node_line(source, "cost.const1")  # the number itself, plainly


def test_named_infix_node_keeps_its_name():
    assert "<b>l1</b>  Add" in node_line(dot_of(INFIX), "l1")


def test_operands_are_drawn_in_argument_order():
    source = dot_of(INFIX)
    assert "ordering=in" in source
    into_sub = re.findall(r"^\t(\S+) -> \"cost.sub1\"", source, re.MULTILINE)
    assert into_sub == ["y", '"cost.matmul1"']


def test_an_argument_read_twice_draws_two_edges():
    source = dot_of("x = Input(_, 3)\ncost = Sum(x * x)\n")
    assert source.count('x -> "cost.mul1"') == 2


def test_tooltips_quote_the_spec():
    assert 'tooltip="line 4: l1 = Linear(X, W1, b1)"' in node_line(dot_of(LESSON), "l1")


def test_rankdir_is_passed_to_graphviz():
    assert "rankdir=LR" in dot_of(LESSON, rankdir="LR")


def test_dot_keywords_as_node_names_are_quoted():
    source = dot_of("node = Input(_, 2)\ngraph = Param(2, 1)\nedge = node @ graph\n"
                    "strict = Mean(edge)\n")
    assert '"node" -> "edge"' in source and '"graph" -> "edge"' in source


# ---------------------------------------------------------------- escaping


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_html_leaves_no_markup_or_escape_sequence(text):
    escaped = dot.escape_html(text)
    assert not set(escaped) & set('<>"\\\n\r\t\x00\x07\x7f')
    assert re.fullmatch(r"([^&]|&(amp|lt|gt|quot|#92);)*", escaped)


def _unquote(dot_string: str) -> str:
    """A quoted DOT string as the text it shows: escaped backslashes and quotes undone,
    \\n as a line break; escape_string leaves no other escape sequence."""
    assert dot_string.startswith('"') and dot_string.endswith('"'), dot_string
    escapes = {"\\": "\\", '"': '"', "n": "\n"}
    text = re.sub(r"\\(.)", lambda m: escapes[m.group(1)], dot_string[1:-1], flags=re.DOTALL)
    return text.replace("&amp;", "&")


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_string_quotes_to_the_visible_text(text):
    quoted = graphviz.quoting.quote(dot.escape_string(text))
    if not quoted.startswith('"'):  # a plain DOT identifier needs no quotes
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", quoted)
        return
    assert "\n" not in quoted and "\r" not in quoted
    assert _unquote(quoted) == dot._visible(text)


def test_hostile_labels_render_to_valid_svg_with_the_text():
    diagram = graphviz.Digraph()
    for i, text in enumerate(HOSTILE):
        # graphviz-pure rejects an empty <b></b>; the brackets keep each one non-empty.
        diagram.node(f"n{i}", label=f"<<b>[{dot.escape_html(text)}]</b>>",
                     tooltip=dot.escape_string(text))
        diagram.edge(f"n{i}", f"n{i + 1}", label=dot.escape_string(text))
    root = svg_or_skip(diagram.source)
    texts = {t.strip() for t in svg_texts(root)}
    titles = {a.get(XLINK_TITLE) for a in root.iter(f"{SVG}a")}
    for text in HOSTILE:
        shown = dot._visible(text)
        # graphviz-pure expands \N and \G in tooltips even when escaped: skip those.
        assert not shown or shown in titles or "\\N" in shown, text
        assert not shown.strip() or shown.strip() in texts, text
        # graphviz-pure reads backslash escapes inside HTML labels (\\ as \, \N as the
        # node's name), which Graphviz does not; mfc's HTML labels hold only names, ops,
        # shapes and numbers, so no backslash reaches one in practice.
        if "\\" not in text:
            assert f"[{shown}]" in texts, text


def test_hostile_file_name_and_data_path_draw_valid_svg():
    data = 'we\\"ird <b>{x}</b> \\\\n \\\\\\\\ & \\n|.csv'  # a missing file: only a warning
    text = f'X, y = Input(_, 2), Input(_)\ncost = MSE(y, Linear(X, Param(2, 1), Param(1)))\n' \
           f'train {{ data = "{data}" }}\n'
    program = mfc.compile(text, 'a"b<c>\\d{e}|f\ng.mf').program
    source = dot.build(program).source
    caption = re.search(r"^\tlabel=(\".*\")$", source, re.MULTILINE).group(1)
    shown = _unquote(caption).split("\n")
    assert shown[0] == dot._visible('a"b<c>\\d{e}|f\ng.mf')
    assert shown[-1] == "data: " + dot._visible(program.settings.data)
    texts = svg_texts(svg_or_skip(source))
    assert "data: " + dot._visible(program.settings.data) in texts


def test_caption_that_looks_like_html_stays_a_string():
    program = compile_spec("x = Input(_, 1)\ncost = Sum(x)\n")
    program = dataclasses.replace(program, filename="<b",
                                  settings=program.settings.with_overrides(data="b>"))
    assert re.search(r'^\tlabel="<b\\n', dot.build(program).source, re.MULTILINE)


def test_the_lesson_renders_to_svg_with_every_node():
    root = svg_or_skip(dot_of(LESSON))
    titles = {t.text for t in root.iter(f"{SVG}title")}
    assert {"X", "y", "W1", "b1", "W2", "b2", "l1", "s1", "l2", "cost"} <= titles
    assert "121 trainable parameters" in svg_texts(root)


# ---------------------------------------------------------------- collapsing


@pytest.mark.parametrize("sigs, runs", [
    ("aaa", [(0, 1, 3)]),
    ("aa", []),
    ("ababab", [(0, 2, 3)]),
    ("xabcabcabcy", [(1, 3, 3)]),
    ("aaaabababab", [(0, 1, 4), (5, 2, 3)]),  # pushed right: the b at 4 stays alone
    ("xabababa", [(2, 2, 3)]),
    ("abcd", []),
])
def test_periodic_runs(sigs, runs):
    assert views.periodic_runs(list(sigs)) == runs


def boxes_of(view) -> dict:
    return {box: data for box, data in view.nodes(data=True)}


def assert_partition(program, view):
    members = [m for data in boxes_of(view).values() for m in data["members"]]
    assert sorted(members) == sorted(program.nodes)
    assert nx_is_dag(view)


def nx_is_dag(view) -> bool:
    import networkx as nx

    return nx.is_directed_acyclic_graph(view)


def test_repeated_layers_collapse_into_one_box_holding_their_params():
    program = compile_spec(chain_spec(20))
    view = views.collapsed_view(program)
    assert_partition(program, view)
    groups = [d for d in boxes_of(view).values() if d["kind"] == "group"]
    assert len(groups) == 1 and len(view) < 15
    # The first layer reads X, not a previous layer: the chain's entry, in the run too.
    assert dot.describe(groups[0]["sig"]) == "20×(Linear → ReLU)"
    assert groups[0]["members"][:2] == ("h1.linear1", "h1") and "X" in view
    label = dot._group_label(program, groups[0])
    assert f"{20 * 72:,} params" in label


def test_shared_params_stay_outside_a_collapsed_chain():
    program = compile_spec(shared_chain_spec(60))
    view = views.collapsed_view(program)
    assert_partition(program, view)
    assert "W" in view and "b" in view
    assert any(d["kind"] == "group" for d in boxes_of(view).values())
    assert len(view) < 15


def test_wide_layers_collapse_and_then_their_chain():
    program = compile_spec(layered_spec(depth=12, width=8))
    view = views.collapsed_view(program)
    assert_partition(program, view)
    described = {dot.describe(d["sig"]) for d in boxes_of(view).values() if d["kind"] == "group"}
    assert described == {"8×Tanh", "12×(8×Add)", "6×Add"}  # 6 of the 7 Adds of the sum


def test_a_small_net_has_nothing_to_collapse():
    program = compile_spec(LESSON)
    assert len(views.collapsed_view(program)) == len(program.nodes)


def test_collapsed_caption_says_how_much_was_merged():
    source = dot_of(chain_spec(20), collapse=True)
    assert re.search(r"\d+ nodes drawn as \d+ boxes", source)


def test_far_readers_of_a_shared_param_get_a_copy_of_it():
    program = compile_spec(shared_chain_spec(30))
    source = dot.build(program).source
    copies = re.findall(r'^\t"W#h\d+" \[', source, re.MULTILINE)
    assert len(copies) == 9  # ten Linears read W; the first reads the original
    assert "dashed" in node_line(source, "W#h4")
    assert source.count("\tW -> ") == 1


def test_two_thousand_nodes_draw_quickly_when_collapsed():
    program = compile_spec(shared_chain_spec(1990))
    assert len(program.nodes) > 1990
    view = views.collapsed_view(program)
    assert len(view) < 20
    svg_or_skip(dot.build(program, view).source)


def test_caption_counts_one_parameter_in_the_singular():
    source = dot.build(mfc.compile("x = Param(1, init=10)\ncost = x ** 2 + 5\n").program).source
    # Compiled from a string, the spec has no file name to show.
    assert '\tlabel="1 trainable parameter"' in source


def test_long_names_and_statements_are_cut_to_a_sane_length():
    """Graphviz's `dot` refuses a token longer than 16 KB; ids, labels and tooltips stay
    far below that, and long names that differ only at the end stay distinct boxes."""
    long_a, long_b = "a" * 20000, "a" * 19999 + "b"
    text = (f"x = Input(_, 3)\n{long_a} = Tanh(x)\n{long_b} = Sigmoid(x)\n"
            f"cost = Sum({long_a} * {long_b} + {long_a} * x)\n")  # a 60 KB statement
    program = mfc.compile(text, "long.mf").program
    for view in (views.plain_view(program), views.collapsed_view(program)):
        source = dot.build(program, view).source
        assert max(len(line) for line in source.splitlines()) < 2000
        long_ids = set(re.findall(r'^\t"?(a{20}[^" ]*)"? \[', source, re.MULTILINE))
        assert len(long_ids) == 2
    assert dot.escape_html("b" * 1000) == "b" * 39 + "…" + "b" * 40


def residual_spec(blocks: int) -> str:
    lines = ["X, y = Input(_, 4), Input(_)", "h0 = Tanh(X @ Param(4, 4))"]
    lines += [f"h{i} = h{i - 1} + Tanh(Linear(h{i - 1}, Param(4, 4), Param(4)))"
              for i in range(1, blocks + 1)]
    lines.append(f"cost = MSE(y, Linear(h{blocks}, Param(4, 1), Param(1)))")
    return "\n".join(lines) + "\n"


def test_residual_blocks_collapse_into_one_box():
    program = compile_spec(residual_spec(6))
    view = views.collapsed_view(program)
    assert_partition(program, view)
    (group,) = [d for d in boxes_of(view).values() if d["kind"] == "group"]
    assert dot.describe(group["sig"]) == "6×(Linear → Tanh → Add)"
    assert f"{6 * 20:,} params" in dot._group_label(program, group)
    assert "h0" in view and len(view) < 12


def test_a_long_chain_of_one_op_is_one_box_from_its_first():
    text = "x = Param(3)\ns1 = Sigmoid(x)\n" + "".join(
        f"s{i} = Sigmoid(s{i - 1})\n" for i in range(2, 51)) + "cost = Sum(s50)\n"
    view = views.collapsed_view(compile_spec(text))
    assert {dot.describe(d["sig"]) for d in boxes_of(view).values()} == \
        {"50×Sigmoid", "Sum"}


# ---------------------------------------------------------------- fragment calls

CALLS = """\
fragment Dense(x, n, act = Sigmoid) {
    W = Param(_, n)
    b = Param(n)
    return act(Linear(x, W, b))
}
fragment Block(x, n) {
    return Dense(Dense(x, n, act = ReLU), n)
}
X, y = Input(_, 4), Input()
h = repeat(3, Block, X, 8)
W = Param(8, 8)
s = Tanh(h @ W)
scores = Dense(s, 3, act = Identity)
cost = CrossEntropy(y, scores)
"""


def test_each_call_is_a_labelled_cluster_holding_its_params_and_nested_calls():
    program = compile_spec(CALLS)
    diagram = dot.build(program)
    source = diagram.source
    assert 'label="h.1: Block(8)"' in source and 'label="scores: Dense(3, Identity)"' in source
    clusters = re.findall(r"subgraph (\S+) \{", source)
    assert len(clusters) == len(program.calls) == 3 * 3 + 1
    # h.1.dense1.W sits in h.1.dense1's cluster, which sits in h.1's
    block = source[source.index('subgraph "cluster_h.1" {'):]
    inner = block[block.index('subgraph "cluster_h.1.dense1" {'):]
    assert '"h.1.dense1.W" [' in inner[:inner.index("}")]
    top = source[:source.index("subgraph")]
    assert '\tW [' in top or '\t"W" [' in top  # a param outside every call stays outside


def test_fold_draws_each_top_level_call_as_one_box_and_a_repeat_as_one():
    program = compile_spec(CALLS)
    view = views.folded_view(program)
    calls = [data for _, data in view.nodes(data=True) if data["kind"] == "call"]
    assert [c["calls"] for c in calls] == [("h.1", "h.2", "h.3"), ("scores",)]
    assert "W" in view and "h.1.dense1.W" not in view
    source = dot.build(program, view).source
    assert "h: 3× Block(8)" in source and "(N, 4) → (N, 8)" in source
    assert "400 params" in source  # (4·8 + 8 + 8·8 + 8) + 2 × 2 × (8·8 + 8)


def test_like_calls_one_after_another_fold_into_one_box():
    program = compile_spec(CALLS.replace("h = repeat(3, Block, X, 8)",
                                         "h1 = Block(X, 8)\nh2 = Block(h1, 8)\nh = Block(h2, 8)"))
    source = dot.build(program, views.folded_view(program)).source
    assert "h1…h: 3× Block(8)" in source


def test_mfc_draw_fold_renders(tmp_path):
    if find_renderer("svg") is None:
        pytest.skip("no renderer for svg")
    program = compile_spec(CALLS)
    svg = draw.draw(program, "svg", fold=True).decode()
    assert "3× Block(8)" in svg
    assert "h.1: Block(8)" in draw.draw(program, "svg").decode()


def test_an_unfinished_spec_draws_what_is_known():
    from mfc.lang.compiler import compile_text

    program = compile_text("X = Input()\nW = Param(_, 4)\nh = Tanh(X @ W)\n", finished=False)
    source = dot.build(program).source
    assert "(N, ?)" in source and "(?, 4)" in source and "loss" not in source.split("label=")[-1]


def test_an_op_active_only_while_training_draws_dotted():
    source = dot_of("X = Input(_, 3)\nh = Dropout(X @ Param(3, 3), 0.2)\ncost = Sum(h)\n")
    assert "dotted" in node_line(source, "h")
