"""Drawing a program: Program (mfc.ir) → view (views) → graphviz.Digraph (dot) → image
bytes (render)."""

from __future__ import annotations

from mfc.draw import dot, views


def draw(program, fmt: str = "svg", *, rankdir: str = "TB", collapse: bool = False,
         fold: bool = False) -> bytes:
    """Draw a program as an image.

    Parameters
    ----------
    program : mfc.ir.Program
    fmt : {"svg", "png", "pdf", "dot"}
    rankdir : {"TB", "LR"}
    collapse : bool
        Merge runs of similar nodes (see `mfc.draw.views.collapsed_view`).
    fold : bool
        Draw each fragment call as one box (see `mfc.draw.views.folded_view`); without
        it, each call is a labelled cluster of its nodes.

    Returns
    -------
    bytes

    Raises
    ------
    mfc.draw.render.RenderError
        Nothing installed can render `fmt` ("dot" always works), or rendering failed.
    """
    from mfc.draw.render import render

    view = (views.folded_view(program) if fold else views.collapsed_view(program) if collapse
            else views.plain_view(program))
    diagram = dot.build(program, view, rankdir)
    if fmt == "png":
        diagram.attr(dpi=dot.PNG_DPI)
    return render(diagram.source, fmt)
