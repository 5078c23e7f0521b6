"""How mfc words things for people: shapes and counts, the same in every message,
summary and diagram."""

from __future__ import annotations

import re


def format_shape(shape, unknown: str = "?") -> str:
    """`(N, 10)`, `(10,)`, `()`; `unknown` when the shape itself is not known (None)."""
    if shape is None:
        return unknown
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """Control characters spelled out (a newline as \\n), so that a message stays on
    its line whatever a spec or a file name holds."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def plural(count: int, noun: str) -> str:
    """`1 error`, `2 errors`, `0 errors`, with thousands separators: `1,024 params`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def clip(text: str, limit: int) -> str:
    """`text` if it has at most `limit` characters, else its start and its end joined
    by an ellipsis, `limit` characters in all: both ends of a long name tell it apart."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head):]}"
