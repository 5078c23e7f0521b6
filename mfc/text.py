"""How mfc words things for people: shapes and counts, the same in every message,
summary and diagram."""

from __future__ import annotations

import re


def format_shape(shape, unknown: str = "?") -> str:
    """`(N, 10)`, `(10,)`, `()`; `unknown` when the shape itself is not known (None)."""
    if shape is None:
        return unknown
    inner = ", ".join(map(str, shape))
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """Control characters spelled out (a newline as \\n), so that a message stays on
    its line whatever a spec or a file name holds."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def number(value: float) -> str:
    """A loss or a metric, short: `0.936`; `1.235e+09` from a billion on, where fixed
    point would run to hundreds of digits (a diverged loss of 1e308); `inf`, `nan`."""
    return f"{value:.3e}" if abs(value) >= 1e9 else f"{value:.3f}"


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


_BINARY_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def byte_size(count: int) -> str:
    """`512 bytes`, `2.0 GiB`, `7.5 EiB`; past the exbibytes, `8.0e+30 bytes`: a size
    that large is a typo, and its digits would only hide that."""
    if count < 1024:
        return plural(count, "byte")
    for power, unit in enumerate(_BINARY_UNITS[1:], start=1):
        if count < 1024 ** (power + 1) or unit == _BINARY_UNITS[-1]:
            value = count / 1024 ** power
            return f"{value:.1f} {unit}" if value < 1024 else f"{count:.1e} bytes"
    raise AssertionError("unreachable")


def large_count(count: int) -> str:
    """`1,048,576`, or `1.0e+30` for a count of more than 15 digits."""
    return f"{count:,}" if count < 10**15 else f"{count:.1e}"
