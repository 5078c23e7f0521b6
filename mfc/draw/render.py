"""Rendering DOT source text to image bytes with an external Graphviz executable.

A system Graphviz `dot` is used when one is on PATH; otherwise `graphviz-pure`, the
pure-Rust port that `pip install graphviz-pure` puts next to the interpreter. Both take
DOT on stdin and write the image to stdout (`<exe> -Tsvg`). graphviz-pure draws svg and
png but not pdf. Every failure becomes a one-line `RenderError` that says what to install.

The `graphviz` Python package is not used: it always runs an executable named `dot`, so
it cannot drive graphviz-pure without patching its module state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from mfc.diagnostics import MfcError

FORMATS = ("svg", "png", "pdf", "dot")
RENDERED_FORMATS = ("svg", "png", "pdf")
PURE_FORMATS = frozenset({"svg", "png"})
TIMEOUT_SECONDS = 120.0

_INSTALL_GRAPHVIZ = "install Graphviz (e.g. 'apt install graphviz')"


class RenderError(MfcError):
    """DOT source could not be rendered; the message is one line, fit to show the user."""


def render(dot_source: str, fmt: str, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """Render DOT source text to an image.

    Parameters
    ----------
    dot_source : str
        A complete DOT graph, already escaped.
    fmt : str
        One of "svg", "png", "pdf", "dot". "dot" returns the source itself and needs no
        renderer.
    timeout : float
        Seconds to wait for the renderer before giving up.

    Returns
    -------
    bytes
        The rendered image (UTF-8 source text for "dot").

    Raises
    ------
    RenderError
        The format is unknown, no renderer for it is installed, or the renderer failed,
        timed out or produced nothing.
    """
    if fmt not in FORMATS:
        raise RenderError(f"cannot render {fmt!r}: unknown format; use one of {', '.join(FORMATS)}")
    data = _encode(dot_source, fmt)
    if fmt == "dot":
        return data
    return _run(_require_renderer(fmt), data, fmt, timeout)


def find_renderer(fmt: str) -> Path | None:
    """The executable that would render `fmt`, or None when none is installed.

    A system `dot` wins for every format; graphviz-pure is the fallback for svg and png.
    Returns None for "dot" (passthrough needs no renderer) and for unknown formats.
    """
    if fmt not in RENDERED_FORMATS:
        return None
    system_dot = _system_dot()
    if system_dot is not None:
        return system_dot
    return _graphviz_pure() if fmt in PURE_FORMATS else None


def available_formats() -> set[str]:
    """The formats `render` can produce on this machine right now ("dot" always)."""
    return {"dot"} | {fmt for fmt in RENDERED_FORMATS if find_renderer(fmt) is not None}


# ---- finding executables ---------------------------------------------------------------

def _system_dot() -> Path | None:
    found = shutil.which("dot")
    return Path(found) if found else None


def _graphviz_pure() -> Path | None:
    # A venv need not be activated, so its scripts folder may be missing from PATH.
    folders = [os.environ.get("PATH", ""), sysconfig.get_path("scripts") or "",
               str(Path(sys.executable).parent)]
    found = shutil.which("graphviz-pure", path=os.pathsep.join(f for f in folders if f))
    return Path(found) if found else None


def _require_renderer(fmt: str) -> Path:
    renderer = find_renderer(fmt)
    if renderer is not None:
        return renderer
    if fmt not in PURE_FORMATS:
        raise RenderError(
            f"cannot render {fmt}: no Graphviz 'dot' found on PATH (graphviz-pure renders "
            f"only svg and png); {_INSTALL_GRAPHVIZ} or use --format svg|png|dot")
    raise RenderError(
        f"cannot render {fmt}: no Graphviz 'dot' or graphviz-pure executable found; "
        f"run 'pip install graphviz-pure' or {_INSTALL_GRAPHVIZ}, or use --format dot")


# ---- running one ------------------------------------------------------------------------

def _encode(dot_source: str, fmt: str) -> bytes:
    try:
        return dot_source.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates, e.g. from a mis-decoded file
        raise RenderError(f"cannot render {fmt}: DOT source is not valid text ({err.reason})") from err


def _run(renderer: Path, data: bytes, fmt: str, timeout: float) -> bytes:
    try:
        done = subprocess.run([str(renderer), f"-T{fmt}"], input=data, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise RenderError(f"cannot render {fmt}: {renderer.name} took longer than "
                          f"{timeout:g} s; the graph may be too large to draw") from err
    except OSError as err:
        raise RenderError(f"cannot render {fmt}: could not run {renderer}: {err.strerror or err}") from err
    # Check the status first: on some errors graphviz-pure still writes half an image.
    if done.returncode != 0:
        raise RenderError(f"cannot render {fmt}: {renderer.name} failed: "
                          f"{_first_error_line(done.stderr, done.returncode)}")
    if not done.stdout:
        raise RenderError(f"cannot render {fmt}: {renderer.name} produced no output "
                          "(is the DOT source empty?)")
    return done.stdout


def _first_error_line(stderr: bytes, returncode: int) -> str:
    """The line that explains a failure; warnings that precede it are skipped."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", errors="replace").splitlines()]
    lines = [ln for ln in lines if ln]
    errors = [ln for ln in lines if not ln.lower().startswith("warning")]
    line = (errors or lines or [f"exit status {returncode}"])[0]
    return line.removeprefix("Error: ")
