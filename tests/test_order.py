"""Stage 3: topological order and cycles."""

import sys

import networkx as nx

from mfc.diagnostics import Report
from mfc.ir import Node
from mfc.lang.order import topological_order as order_of


def topological_order(graph):
    """(order, diagnostics) of a graph whose nodes are named in definition order."""
    report = Report()
    nodes = {name: Node(name, None, index=i) for i, name in enumerate(graph)}
    return order_of(graph, nodes, report), report.diagnostics


def chain(n):
    g = nx.DiGraph()
    g.add_nodes_from(f"n{i}" for i in range(n))
    g.add_edges_from((f"n{i}", f"n{i + 1}") for i in range(n - 1))
    return g


def test_order_respects_every_edge_and_is_deterministic():
    g = nx.DiGraph()
    g.add_nodes_from("edcba")
    g.add_edges_from([("e", "a"), ("d", "a"), ("c", "b"), ("b", "a")])
    order, problems = topological_order(g)
    assert problems == []
    assert all(order.index(u) < order.index(v) for u, v in g.edges)
    assert order == ["e", "d", "c", "b", "a"]


def test_a_long_chain_does_not_recurse():
    n = 100_000
    assert n > sys.getrecursionlimit()
    order, problems = topological_order(chain(n))
    assert problems == [] and order[0] == "n0" and order[-1] == f"n{n - 1}"


def test_cycles_are_reported_once_each_with_every_node():
    g = chain(6)
    g.add_edge("n2", "n1")  # n1 <-> n2
    g.add_edge("n5", "n4")  # n4 <-> n5
    order, problems = topological_order(g)
    assert order == ["n0"]
    assert [d.code for d in problems] == ["E120", "E120"]
    assert "n1" in problems[0].message and "n2" in problems[0].message
