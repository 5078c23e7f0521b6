"""Run logs: one row per epoch, as CSV (`run.csv`) or JSON Lines (`run.jsonl`), written
as training goes and flushed after each epoch, so that a run stopped at any moment leaves
every epoch it finished; read back by `mfc plot`.

A row holds `epoch`, `loss`, `validation_loss` and `validation_accuracy` (when the run
has them), `learning_rate` and `seconds` (the epoch's own time). A CSV's header names
its columns; a JSON line has the same keys (those the run has).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from mfc.diagnostics import MfcError
from mfc.text import clip

COLUMNS = ("epoch", "loss", "validation_loss", "validation_accuracy", "learning_rate",
           "seconds")
FORMATS = ("csv", "jsonl")
_REQUIRED = ("epoch", "loss")
_MAX_EPOCH = 2**53  # past it, a float cannot tell one epoch from the next


class LogError(MfcError):
    """A run log that cannot be read: one line, naming the file and the row."""


def format_of(path) -> str | None:
    """'csv' or 'jsonl' from a log's name (`.json` and `.ndjson` are JSON Lines too)."""
    suffix = Path(path).suffix.lower()
    return "csv" if suffix == ".csv" else "jsonl" if suffix in (".jsonl", ".ndjson", ".json") \
        else None


def row(epoch) -> dict:
    """The log's row of a `mfc.train.Epoch` (its fields that are set)."""
    values = {"epoch": epoch.number, "loss": epoch.loss,
              "validation_loss": epoch.validation_loss,
              "validation_accuracy": epoch.accuracy,
              "learning_rate": epoch.learning_rate,
              "seconds": None if epoch.seconds is None else round(epoch.seconds, 6)}
    return {key: value for key, value in values.items() if value is not None}


def from_history(entry: dict) -> dict:
    """The log's row of an entry of `mfc.Model.history` (a model file's history)."""
    names = {"epoch": "epoch", "loss": "loss", "validation_loss": "validation_loss",
             "accuracy": "validation_accuracy", "learning_rate": "learning_rate",
             "seconds": "seconds"}
    return {names[key]: value for key, value in entry.items()
            if key in names and value is not None}


class Writer:
    """Writes rows to an open text file, one per epoch, flushing each."""

    def __init__(self, file, fmt: str, columns: tuple[str, ...]):
        self.file, self.fmt, self.columns = file, fmt, columns
        if fmt == "csv":
            self.csv = csv.DictWriter(file, columns, lineterminator="\n")
            self.csv.writeheader()
            file.flush()

    def write(self, values: dict) -> None:
        if self.fmt == "csv":
            self.csv.writerow({k: _cell(values.get(k)) for k in self.columns})
        else:
            self.file.write(json.dumps({k: values[k] for k in self.columns if k in values})
                            + "\n")
        self.file.flush()


def columns_for(validation: bool, accuracy: bool) -> tuple[str, ...]:
    """The columns of a run's log: the validation's only when it has some."""
    return tuple(c for c in COLUMNS if (validation or c != "validation_loss")
                 and (accuracy or c != "validation_accuracy"))


def _cell(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


# ---------------------------------------------------------------- reading


def read(path) -> list[dict]:
    """The rows of the run log at `path`: column → number (missing values left out), in
    the file's order. Raises LogError when it is not a readable log."""
    fmt = format_of(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise LogError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LogError(f"{path}: is a folder, not a run log") from None
    except UnicodeDecodeError:
        raise LogError(f"{path} is not a run log: not UTF-8 text") from None
    except OSError as err:
        raise LogError(f"cannot read {path}: {err.strerror or err}") from None
    rows = _jsonl_rows(path, text) if fmt == "jsonl" or (
        fmt is None and text.lstrip().startswith("{")) else _csv_rows(path, text)
    if not rows:
        raise LogError(f"{path} has no epochs in it")
    return rows


def _csv_rows(path, text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise LogError(f"{path} is not a run log: its header has no "
                       f"{' or '.join(missing)} column")
    return [_numbers(path, line, {k: v for k, v in record.items() if k in COLUMNS and v})
            for line, record in enumerate(reader, 2)]


def _jsonl_rows(path, text: str) -> list[dict]:
    rows = []
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            raise LogError(f"{path}, line {line}: not JSON ({err.msg})") from None
        if not isinstance(record, dict) or any(c not in record for c in _REQUIRED):
            raise LogError(f"{path}, line {line}: not a row of a run log (it needs "
                           "'epoch' and 'loss')")
        rows.append(_numbers(path, line, {k: v for k, v in record.items()
                                          if k in COLUMNS and v is not None}))
    return rows


def _numbers(path, line: int, record: dict) -> dict:
    """A row's values as numbers (a loss may be inf or NaN: a run that diverged), its
    epoch a whole number that a float holds exactly; LogError for anything else."""
    values = {}
    for key, value in record.items():
        try:
            if isinstance(value, bool):
                raise TypeError
            values[key] = float(value)
        except (TypeError, ValueError, OverflowError):
            raise LogError(f"{path}, line {line}: {key} is {clip(repr(value), 40)}, "
                           "not a number") from None
    for key in _REQUIRED:
        if key not in values:
            raise LogError(f"{path}, line {line}: no {key}")
    epoch = values["epoch"]
    if not (epoch.is_integer() and 0 <= epoch <= _MAX_EPOCH):
        raise LogError(f"{path}, line {line}: epoch is {clip(repr(record['epoch']), 40)}, "
                       "not a count of epochs (a whole number from 0 to 2**53)")
    values["epoch"] = int(epoch)
    return values
