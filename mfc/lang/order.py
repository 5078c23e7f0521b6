"""Stage 3: topological order, and cycles reported with every node on them.

Kahn's algorithm with a FIFO queue: each node and edge is visited once (linear in
nodes + edges, no recursion), and ties break by definition order, so the order is the
same run after run. Sorting only orders; it never touches values.
"""

from __future__ import annotations

from collections import deque

from mfc.diagnostics import E120, Note, Report
from mfc.ir import Node


def topological_order(graph, nodes: dict[str, Node], report: Report) -> list[str]:
    """Every node of `graph` (a `mfc.lang.graph.Graph`, or a networkx DiGraph) in an
    order where each node follows its inputs.

    Returns the order; the nodes on or after a cycle are left out, and each cycle is
    reported (E120) with every node on it, by their `nodes` records.
    """
    indegree = {name: graph.in_degree(name) for name in graph}
    ready = deque(name for name in graph if indegree[name] == 0)
    order = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for successor in graph.successors(name):
            indegree[successor] -= 1
            if indegree[successor] == 0:
                ready.append(successor)
    if len(order) < len(graph):
        for cycle in _cycles(graph, {n for n, degree in indegree.items() if degree > 0}, nodes):
            _report_cycle(cycle, nodes, report)
    return order


def _cycles(graph, left: set[str], nodes: dict[str, Node]) -> list[list[str]]:
    """One cycle per strongly connected component of the nodes `left` unordered that
    has one, first node first."""
    import networkx as nx  # only for a spec with a cycle

    stuck = nx.DiGraph()
    stuck.add_nodes_from(n for n in graph if n in left)
    stuck.add_edges_from((n, r) for n in stuck for r in graph.successors(n) if r in left)
    cycles = []
    for component in nx.strongly_connected_components(stuck):
        start = min(component, key=lambda n: nodes[n].index)
        if len(component) == 1 and not stuck.has_edge(start, start):
            continue  # downstream of a cycle, not on one
        edges = nx.find_cycle(stuck.subgraph(component), source=start)
        cycles.append([u for u, _ in edges])
    return sorted(cycles, key=lambda c: nodes[c[0]].index)


def _report_cycle(cycle: list[str], nodes: dict[str, Node], report: Report) -> None:
    decl = {name: nodes[name].decl for name in cycle}
    path = " -> ".join(f"{name} ({decl[name]})" for name in cycle)
    notes = [Note(f"'{name}' is on the cycle", decl[name]) for name in cycle[1:]]
    report(E120, f"cycle: {path} -> {cycle[0]}", decl[cycle[0]],
           help="a node cannot depend on its own value; break the loop", notes=notes)
