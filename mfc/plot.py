"""Loss curves: the rows of a run (mfc.runlog) drawn with matplotlib, imported only here
and only when a curve is drawn, so that no other command pays for it.

The loss and, when the run has one, the validation loss against the epochs; the best
epoch (the lowest validation loss, else the lowest loss) marked; the learning rate on a
second axis when it changes. A loss that spans more than two orders of magnitude is
drawn on a log scale.
"""

from __future__ import annotations

import io

from mfc.diagnostics import MfcError

FORMATS = ("png", "svg", "pdf")
LOSS, VALIDATION, RATE, BEST = "#1f77b4", "#d62728", "#7f7f7f", "#2ca02c"


def curve(rows: list[dict], fmt: str, title: str | None = None) -> bytes:
    """The picture of a run's `rows` (mfc.runlog's) as `fmt` (png, svg or pdf) bytes.
    Raises PlotError when matplotlib is not installed."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("drawing a loss curve needs matplotlib: pip install matplotlib") \
            from None

    figure = Figure(figsize=(7.5, 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    epochs = [r["epoch"] for r in rows]
    _losses(axes, rows, epochs)
    _best(axes, rows)
    handles = axes.get_legend_handles_labels()[0] + _rates(axes, rows, epochs)
    axes.legend(handles=handles, loc="best", fontsize=9, framealpha=0.85, edgecolor="none")
    axes.set_title(title or "Training loss", loc="left", fontsize=11)
    out = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "mfc"}):  # the same ids, run after run
        figure.savefig(out, format=fmt, metadata=_metadata(fmt))
    return out.getvalue()


class PlotError(MfcError):
    """A curve that cannot be drawn: one line."""


def _losses(axes, rows, epochs) -> None:
    losses = [r["loss"] for r in rows]
    axes.plot(epochs, losses, color=LOSS, label="loss (training)", linewidth=1.6)
    validation = [(r["epoch"], r["validation_loss"]) for r in rows if "validation_loss" in r]
    if validation:
        axes.plot(*zip(*validation), color=VALIDATION, label="validation loss",
                  linewidth=1.6)
    values = losses + [v for _, v in validation]
    positive = [v for v in values if v > 0]
    if len(positive) == len(values) and max(values) / min(positive) > 100:
        axes.set_yscale("log")
        axes.set_ylabel("loss (log scale)")
    else:
        axes.set_ylabel("loss")
    axes.set_xlabel("epoch")
    axes.set_xlim(min(epochs), max(max(epochs), min(epochs) + 1))
    axes.grid(True, color="#e0e0e0", linewidth=0.6)
    axes.spines[["top", "right"]].set_visible(False)


def best_row(rows: list[dict]) -> tuple[dict, str]:
    """The best epoch's row (the first of the lowest validation loss, else of the lowest
    loss) and which loss chose it."""
    key = "validation_loss" if any("validation_loss" in r for r in rows) else "loss"
    candidates = [r for r in rows if key in r]
    return min(candidates, key=lambda r: r[key]), key


def _best(axes, rows) -> None:
    best, key = best_row(rows)
    what = "validation loss" if key == "validation_loss" else "loss"
    axes.axvline(best["epoch"], color=BEST, linestyle="--", linewidth=1)
    axes.plot([best["epoch"]], [best[key]], "o", color=BEST,
              label=f"best epoch {best['epoch']} ({what} {best[key]:.4g})")


def _rates(axes, rows, epochs) -> list:
    """The learning rate on a second axis, when it changes; its legend handles."""
    rates = [r.get("learning_rate") for r in rows]
    if None in rates or len(set(rates)) < 2:
        return []
    second = axes.twinx()
    line, = second.plot(epochs, rates, color=RATE, linestyle=":", linewidth=1.6,
                        label="learning rate (right axis)")
    second.set_ylabel("learning rate", color=RATE)
    second.tick_params(axis="y", colors=RATE)
    second.set_ylim(bottom=0)
    second.spines[["top"]].set_visible(False)
    return [line]


def _metadata(fmt: str) -> dict:
    """No creation dates or versions in the file: the same run draws the same bytes."""
    if fmt == "png":
        return {"Software": None}
    if fmt == "svg":
        return {"Date": None, "Creator": None}
    return {"CreationDate": None, "Producer": None, "Creator": None}
