"""How well a model does on some data: its loss and the metrics of its predictions,
computed with scikit-learn's `sklearn.metrics` (imported on first use: it costs about a
second), and how they read in a table and in JSON.

Classification metrics are computed on the original labels (`setosa`, ...), for every
class of the model, in the order of its class indices (sorted), whether the rows hold it
or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mfc.text import number


@dataclass(frozen=True)
class Evaluation:
    """A model's loss and metrics on some rows.

    Attributes
    ----------
    rows : how many rows were evaluated.
    loss : the loss node's value on them; `loss_node` its name.
    output : the node the metrics are of (the loss's prediction operand), or None when
        the loss scores no output against the targets (then only the loss is known).
    task : 'classification', 'regression' or None.
    metrics : regression: mse, rmse, mae, r2; classification: accuracy, `classes`
        (label, precision, recall, f1, support each), `macro` (the averages) and
        `confusion_matrix` (`labels`, and `rows`: true label by predicted label).
    against : what the output is compared with when it is not the targets (an
        autoencoder's reconstruction, with "Input 'X', standardised"); else None.
    """

    rows: int
    loss: float
    loss_node: str
    output: str | None = None
    task: str | None = None
    metrics: dict = field(default_factory=dict)
    against: str | None = None

    def to_dict(self) -> dict:
        """JSON-able: numbers that are not finite (R² of one row) become None."""
        found = {"rows": self.rows, "loss": self.loss, "loss_node": self.loss_node,
                 "output": self.output, "task": self.task, **self.metrics}
        return finite(found | ({"against": self.against} if self.against else {}))

    def table(self) -> str:
        """The loss and metrics as a readable table."""
        lines = [f"loss ({self.loss_node}): {_number(self.loss)} on {self.rows:,} rows"]
        if self.against:
            lines.append(f"{self.output} against {self.against}:")
        if self.task == "regression":
            lines += _aligned([(name, _number(self.metrics[key])) for key, name in
                               (("mse", "MSE"), ("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²"))])
        elif self.task == "classification":
            lines += [f"accuracy: {_number(self.metrics['accuracy'])}", ""]
            lines += _per_class(self.metrics) + [""] + _confusion(self.metrics)
        return "\n".join(lines)


def regression(y_true, y_pred) -> dict:
    """MSE, RMSE, MAE and R² of predictions against targets, from sklearn.metrics;
    several columns' MSE and MAE averaged over every value."""
    from sklearn import metrics

    y_true, y_pred = _columns(y_true), _columns(y_pred)
    with np.errstate(all="ignore"):  # errors past float64 (targets of 1e308): inf, shown
        mse = float(metrics.mean_squared_error(y_true, y_pred))
        return {"mse": mse, "rmse": math.sqrt(mse),
                "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
                "r2": _r2(metrics, y_true, y_pred)}


def _columns(values) -> np.ndarray:
    """(N,) for one column, (N, k) for several."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(len(values), -1)[:, 0] if values.size == len(values) else \
        values.reshape(len(values), -1)


def _r2(metrics, y_true, y_pred) -> float:
    """R², of several columns the share of their total variance explained (each
    weighted by its variance): a column all but constant (a pixel that is always 0,
    standardised) would otherwise sink the average with a ratio of rounding errors."""
    if len(y_true) < 2:  # undefined, and scikit-learn warns
        return float("nan")
    return float(metrics.r2_score(y_true, y_pred, multioutput="variance_weighted"))


def classification(y_true, y_pred, labels=None) -> dict:
    """Accuracy, per-class precision, recall, F1 and support, their macro averages, and
    the confusion matrix, of predicted labels against true ones (any labels numpy can
    sort: text or numbers), from sklearn.metrics.

    `labels`: the classes to report, in order (a model's: a class no row has is shown
    with support 0); by default those in the true or the predicted labels, sorted. A
    ratio of 0/0 (the recall of a class no row has, the precision of one never
    predicted) is undefined, NaN, and left out of the macro average.
    """
    from sklearn import metrics

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else \
        np.asarray(labels)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan)
    macro = metrics.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                    average="macro", zero_division=np.nan)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "classes": [{"label": _plain(label), "precision": float(p), "recall": float(r),
                     "f1": float(f), "support": int(s)}
                    for label, p, r, f, s in zip(labels, precision, recall, f1, support)],
        "macro": {"precision": float(macro[0]), "recall": float(macro[1]),
                  "f1": float(macro[2]), "support": int(support.sum())},
        "confusion_matrix": {"labels": [_plain(label) for label in labels],
                             "rows": metrics.confusion_matrix(y_true, y_pred, labels=labels
                                                              ).tolist()},
    }


def _plain(label):
    """A label as JSON holds it: text, or a whole number as an int."""
    if isinstance(label, (str, np.str_)):
        return str(label)
    number = float(label)
    return int(number) if number.is_integer() else number


# ---------------------------------------------------------------- reading


def _number(value: float | None) -> str:
    """A figure, short; `undefined` for none (NaN: R² of one row, 0/0)."""
    return "undefined" if value is None or math.isnan(value) else number(value)


def _aligned(rows: list[tuple], right: tuple[int, ...] = ()) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell; the columns in
    `right` aligned right (numbers)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(*rows)]
    return ["  ".join(str(cell).rjust(w) if i in right else str(cell).ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]


def _per_class(metrics: dict) -> list[str]:
    rows = [("class", "precision", "recall", "f1", "support")]
    for c in metrics["classes"]:
        rows.append((c["label"], _number(c["precision"]), _number(c["recall"]),
                     _number(c["f1"]), c["support"]))
    m = metrics["macro"]
    rows.append(("macro avg", _number(m["precision"]), _number(m["recall"]),
                 _number(m["f1"]), m["support"]))
    return _aligned(rows, right=(1, 2, 3, 4))


def _confusion(metrics: dict) -> list[str]:
    matrix = metrics["confusion_matrix"]
    labels = [str(label) for label in matrix["labels"]]
    rows = [("true \\ predicted", *labels)]
    rows += [(label, *counts) for label, counts in zip(labels, matrix["rows"])]
    return ["confusion matrix:"] + _aligned(rows, right=tuple(range(1, len(labels) + 1)))


def finite(value):
    """`value` (dicts, lists and numbers) with every float that is not finite replaced by
    None: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
