"""Generate large, valid .mf specs to benchmark `mfc check`.

    python bench/gen_specs.py chain 100000 > chain.mf
    python bench/gen_specs.py layered 100000 --width 32 > layered.mf

chain(n): one long path of about n nodes, cycling a Linear that reuses one shared W
    and b, Sigmoid, Tanh and ReLU (so W and b feed thousands of consumers).
layered(n, width): about n nodes in layers of `width`; node i of layer k adds nodes i
    and i+1 (mod width) of layer k-1, so the number of paths grows exponentially with
    depth (the case that breaks the lesson's per-path sort); the last layer is summed
    into one node. With squash=True each node is Sigmoid(a + b) instead, two graph
    nodes per lane, which keeps the values bounded if the spec is ever trained.

Both end in `cost = MSE(y, out)` with out = Linear(last, Wo, bo) of shape (_, 1). Every
named statement holds one op (squash adds one unnamed sum per lane); the first line
is a comment giving the node count. Features are 4 wide throughout.
"""

from __future__ import annotations

import argparse
import sys

FEATURES = 4
_HEADER = [
    f"X = Input(_, {FEATURES})",
    f"W = Param({FEATURES}, {FEATURES})",
    f"b = Param({FEATURES})",
]
_FOOTER = [
    f"Wo = Param({FEATURES}, 1)",
    "bo = Param(1)",
    "y = Input(_)",
]
_CHAIN_CYCLE = ("Linear({}, W, b)", "Sigmoid({})", "Tanh({})", "ReLU({})")


def _spec(title: str, body: list[str], last: str, unnamed: int = 0) -> str:
    """The statements with header and loss; `unnamed` counts nodes from infix sums."""
    tail = _FOOTER + [f"out = Linear({last}, Wo, bo)", "cost = MSE(y, out)"]
    statements = _HEADER + body + tail
    count = f"{len(statements) + unnamed} nodes, {len(statements)} statements"
    return "\n".join([f"# {title}: {count}", *statements, ""])


def chain(n: int) -> str:
    """A spec of max(n, 9) nodes forming one long chain from X to the cost."""
    length = max(n - len(_HEADER) - len(_FOOTER) - 2, 1)
    body, previous = [], "X"
    for i in range(1, length + 1):
        body.append(f"h{i} = " + _CHAIN_CYCLE[(i - 1) % 4].format(previous))
        previous = f"h{i}"
    return _spec(f"chain({n})", body, previous)


def _layer(k: int, width: int, squash: bool) -> list[str]:
    op = "Sigmoid({} + {})" if squash else "Add({}, {})"
    return [f"a{k}_{i} = " + op.format(f"a{k - 1}_{i}", f"a{k - 1}_{(i + 1) % width}")
            for i in range(width)]


def layered(n: int, width: int = 32, squash: bool = False, depth: int | None = None) -> str:
    """A spec of about n graph nodes: layers of `width` lanes, each adding two lanes above.

    Layer 0 is Linear(X, W, b) in lane 0 and Sigmoid, Tanh or ReLU of X elsewhere; the
    last layer is summed with a chain of width - 1 Adds. With squash, each lane node
    counts as two graph nodes (the anonymous sum and its Sigmoid). A given `depth`
    (layers after layer 0) overrides n: width 32, depth 16 is the lesson's 544-node
    layer block that its sort could not order in 60 s.
    """
    if width < 2:
        raise ValueError("width must be at least 2")
    per_lane = 2 if squash else 1
    fixed = len(_HEADER) + len(_FOOTER) + 2 + 2 * width - 1  # + layer 0 and the sum
    if depth is None:
        depth = max((n - fixed) // (width * per_lane), 1)
    unary = ("Sigmoid(X)", "Tanh(X)", "ReLU(X)")
    body = ["a0_0 = Linear(X, W, b)"] + [f"a0_{i} = {unary[i % 3]}" for i in range(1, width)]
    for k in range(1, depth + 1):
        body += _layer(k, width, squash)
    body.append(f"s1 = Add(a{depth}_0, a{depth}_1)")
    body += [f"s{i} = Add(s{i - 1}, a{depth}_{i})" for i in range(2, width)]
    kind = "squashed " if squash else ""
    title = f"layered({n}, width={width}) {kind}depth {depth}"
    return _spec(title, body, f"s{width - 1}", depth * width if squash else 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape", choices=("chain", "layered"))
    parser.add_argument("nodes", type=int, help="about how many nodes")
    parser.add_argument("--width", type=int, default=32, help="lanes per layer (layered)")
    parser.add_argument("--squash", action="store_true", help="Sigmoid(a + b) lanes (layered)")
    parser.add_argument("--depth", type=int, help="layers, overriding nodes (layered)")
    args = parser.parse_args(argv)
    if args.shape == "chain":
        text = chain(args.nodes)
    else:
        text = layered(args.nodes, args.width, args.squash, args.depth)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
