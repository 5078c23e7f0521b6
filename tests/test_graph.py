"""Stage 2: AST -> graph."""

from mfc.diagnostics import Report
from mfc.lang.graph import build
from mfc.lang.syntax import parse


class Built:
    """What `build` returns, read as a test reads it: the graph, and nodes by name."""

    def __init__(self, source):
        report = Report()
        self.nodes, self.graph, self.calls = build(parse(source), source, report)
        assert report.errors == 0
        self.edges = self.graph.edges

    def __iter__(self):
        return iter(self.graph)


def graph_of(source):
    return Built(source)


def node(built, name):
    return built.nodes[name]


def test_nodes_carry_op_inputs_attrs_and_span():
    g = graph_of("X = Input(_, 3)\nW = Param(3, 2, init=he)\nh = Tanh(X @ W)")
    w = node(g, "W")
    assert (w.op.name, w.attrs["dims"], w.attrs["init"]) == ("Param", (3, 2), "he")
    assert (w.decl.line, w.decl.column) == (2, 1)
    assert node(g, "h").inputs == ("h.matmul1",)
    assert node(g, "h.matmul1").inputs == ("X", "W")
    assert set(g.edges) == {("X", "h.matmul1"), ("W", "h.matmul1"), ("h.matmul1", "h")}


def test_anonymous_nodes_have_stable_names_and_their_own_spans():
    source = "x = Param(1, init=3)\ncost = x ** 2 + 5"
    g = graph_of(source)
    assert sorted(n for n in g if n.startswith("cost.")) == [
        "cost.const1", "cost.const2", "cost.pow1"]
    pow_node = node(g, "cost.pow1")
    assert pow_node.anonymous and pow_node.label == "x ** 2"
    assert (pow_node.span.line, pow_node.span.column, pow_node.span.end_column) == (2, 8, 14)
    assert node(g, "cost.const2").attrs == {"value": 5}
    assert list(graph_of(source).nodes) == list(g.nodes)  # same names every time


def test_names_may_be_used_before_their_definition():
    g = graph_of("cost = Sum(h)\nh = Tanh(x)\nx = Param(2)")
    assert set(g.edges) == {("x", "h"), ("h", "cost")}


def test_repeated_operand_keeps_argument_order():
    g = graph_of("x = Param(2)\ny = Mul(x, x)\ncost = Sum(y)")
    assert node(g, "y").inputs == ("x", "x")


def test_alias_is_an_identity_node():
    g = graph_of("x = Param(2)\ny = x\ncost = Sum(y)")
    assert node(g, "y").op.name == "Identity" and node(g, "y").inputs == ("x",)


def test_nested_params_become_anonymous_nodes():
    g = graph_of("X = Input(_, 4)\nh = Linear(X, Param(4, 2), Param(2))")
    assert [node(g, n).op.name for n in node(g, "h").inputs] == ["Input", "Param", "Param"]


def test_keywords_may_be_given_by_position_after_the_operands():
    g = graph_of("x = Param(3)\na = LeakyReLU(x, 0.2)\nb = Huber(x, a, 2)\nc = Softmax(a, -1)")
    assert node(g, "a").attrs == {"alpha": 0.2}
    assert node(g, "b").attrs == {"delta": 2.0}
    assert node(g, "c").attrs == {"axis": -1}


def test_linear_takes_its_bias_or_not():
    g = graph_of("X = Input(_, 3)\nW = Param(3, 2)\nb = Param(2)\nu = Linear(X, W)\n"
                 "v = Linear(X, W, b)")
    assert node(g, "u").inputs == ("X", "W") and node(g, "v").inputs == ("X", "W", "b")


def test_reshape_takes_dims_after_its_operand():
    g = graph_of("X = Input(_, 64)\nr = Reshape(X, _, 8, 8)")
    assert node(g, "r").inputs == ("X",) and node(g, "r").attrs["dims"] == (None, 8, 8)
