"""How mfc words things for people: shapes and counts, the same in every message,
summary and diagram."""

from __future__ import annotations


def format_shape(shape, unknown: str = "?") -> str:
    """`(N, 10)`, `(10,)`, `()`; `unknown` when the shape itself is not known (None)."""
    if shape is None:
        return unknown
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def plural(count: int, noun: str) -> str:
    """`1 error`, `2 errors`, `0 errors`, with thousands separators: `1,024 params`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
