"""Loss curves: the rows of a run (mfc.runlog) drawn with matplotlib, imported only here
and only when a curve is drawn, so that no other command pays for it.

The loss and, when the run has one, the validation loss against the epochs; the best
epoch (the lowest validation loss, else the lowest loss) marked; the learning rate on a
second axis when it changes. A loss that spans more than two orders of magnitude is
drawn on a log scale; losses that are not numbers are left out. Near the ends of float64
(a diverged run's 1e308) matplotlib's own margins and ticks overflow: a linear axis
then draws the losses divided by a power of ten (its label says which), a log axis
gets limits and ticks that stay within float64.
"""

from __future__ import annotations

import io
import math

from mfc.diagnostics import MfcError

FORMATS = ("png", "svg", "pdf")
LOSS, VALIDATION, RATE, BEST = "#1f77b4", "#d62728", "#7f7f7f", "#2ca02c"


def curve(rows: list[dict], fmt: str, title: str | None = None) -> bytes:
    """The picture of a run's `rows` (mfc.runlog's) as `fmt` (png, svg or pdf) bytes.
    Raises PlotError when matplotlib is not installed."""
    try:
        import matplotlib
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("drawing a loss curve needs matplotlib: pip install matplotlib") \
            from None

    figure = Figure(figsize=(7.5, 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    epochs = [r["epoch"] for r in rows]
    scale = _losses(axes, rows, epochs)
    _best(axes, rows, scale)
    handles = axes.get_legend_handles_labels()[0] + _rates(axes, rows, epochs)
    axes.legend(handles=handles, loc="best", fontsize=9, framealpha=0.85, edgecolor="none")
    axes.set_title(title or "Training loss", loc="left", fontsize=11)
    out = io.BytesIO()
    # A log axis near 1e308 puts candidate ticks a decade past it, which overflow to inf
    # and which matplotlib then drops: nothing to warn of.
    with matplotlib.rc_context({"svg.hashsalt": "mfc"}), np.errstate(over="ignore"):
        figure.savefig(out, format=fmt, metadata=_metadata(fmt))  # the same ids each run
    return out.getvalue()


class PlotError(MfcError):
    """A curve that cannot be drawn: one line."""


def _losses(axes, rows, epochs) -> float:
    """The curves; the number the losses were divided by to draw them."""
    losses = [r["loss"] for r in rows]
    validation = [(r["epoch"], r["validation_loss"]) for r in rows if "validation_loss" in r]
    values = [v for v in losses + [v for _, v in validation] if math.isfinite(v)]
    positive = [v for v in values if v > 0]
    logarithmic = bool(values) and len(positive) == len(values) and \
        max(values) / min(positive) > 100
    power = 0 if logarithmic else _power(values)
    axes.plot(epochs, [v / 10.0 ** power for v in losses], color=LOSS,
              label="loss (training)", linewidth=1.6)
    if validation:
        axes.plot([e for e, _ in validation], [v / 10.0 ** power for _, v in validation],
                  color=VALIDATION, label="validation loss", linewidth=1.6)
    if logarithmic:
        axes.set_ylim(*_log_limits(min(positive), max(values)))  # first: no autoscaling
        axes.set_yscale("log")
        if max(values) > 1e200 or min(positive) < 1e-200:
            _decades(axes, min(positive), max(values))
        axes.set_ylabel("loss (log scale)")
    else:
        axes.set_ylabel("loss" + (f" (× 1e{power})" if power else ""))
    axes.set_xlabel("epoch")
    axes.set_xlim(min(epochs), max(max(epochs), min(epochs) + 1))
    axes.grid(True, color="#e0e0e0", linewidth=0.6)
    axes.spines[["top", "right"]].set_visible(False)
    return 10.0 ** power


def _power(values) -> int:
    """The power of ten a linear axis divides losses by: 0, unless they are so large
    (a diverging run's 1e308) that matplotlib's span and margins would overflow."""
    largest = max((abs(v) for v in values), default=0.0)
    return int(math.floor(math.log10(largest))) if largest > 1e100 else 0


def _decades(axes, low: float, high: float) -> None:
    """Ticks at most 8 decades apart, all within float64: matplotlib's own locator
    looks a stride of decades past the data, which near 1e308 overflows to inf and
    breaks its labels."""
    from matplotlib.ticker import FixedLocator, NullLocator

    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    stride = max(1, math.ceil((last - first) / 8))
    axes.yaxis.set_major_locator(FixedLocator(
        [10.0 ** e for e in range(first, last + 1, stride) if -308 <= e <= 308]))
    axes.yaxis.set_minor_locator(NullLocator())


def _log_limits(low: float, high: float) -> tuple[float, float]:
    """A log axis's limits: a margin of 5% of the decades each side, as matplotlib's,
    but within float64 (its own margin past 1e308 overflows)."""
    a, b = math.log10(low), math.log10(high)
    margin = 0.05 * (b - a)
    return 10.0 ** max(a - margin, -307.0) if a - margin > -307 else low, \
        10.0 ** (b + margin) if b + margin < 308.0 else high


def best_row(rows: list[dict]) -> tuple[dict | None, str]:
    """The best epoch's row (the first of the lowest validation loss, else of the lowest
    loss; None when none is a number) and which loss chose it."""
    key = "validation_loss" if any("validation_loss" in r for r in rows) else "loss"
    candidates = [r for r in rows if key in r and not math.isnan(r[key])]
    return min(candidates, key=lambda r: r[key], default=None), key


def _best(axes, rows, scale: float) -> None:
    best, key = best_row(rows)
    if best is None:
        return
    what = "validation loss" if key == "validation_loss" else "loss"
    axes.axvline(best["epoch"], color=BEST, linestyle="--", linewidth=1)
    axes.plot([best["epoch"]], [best[key] / scale], "o", color=BEST,
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
