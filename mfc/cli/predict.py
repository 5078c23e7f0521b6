"""`mfc predict SPEC --load MODEL.npz --data FILE`: what a trained model predicts for new
data, one row per input row, in input order: CSV (or JSON) to stdout or `-o FILE`.

A classifier's rows hold the predicted label, the original one (`setosa`), and with
`--proba` one probability column per class; a regressor's, one column per output value.
The model file's preprocessing is applied, never one computed from the new data.
"""

from __future__ import annotations

import json

from mfc.cli.common import (EXIT_OK, CliError, check_folder, model_data, not_read_by, note,
                            trained_model, write_output)


def add_parser(commands) -> None:
    predict = commands.add_parser("predict", help="predict with a trained model")
    predict.add_argument("file", metavar="SPEC")
    predict.add_argument("--load", metavar="MODEL.npz", required=True,
                         help="the model file (mfc run --save) to predict with")
    predict.add_argument("--data", metavar="FILE", required=True,
                         help="a .csv file (- reads CSV from stdin), an .npz file with X, "
                         "or a bundled dataset name")
    predict.add_argument("-o", "--output", metavar="OUT",
                         help="write the predictions here, atomically (default: stdout)")
    predict.add_argument("--proba", action="store_true",
                         help="a classifier's probability of each class, a column each")
    predict.add_argument("--format", choices=("csv", "json"), default="csv",
                         help="csv (default), or json: a list of one object per row")
    predict.add_argument("--force", action="store_true",
                         help="let -o replace a file that is not predictions mfc wrote")
    predict.set_defaults(handler=run)


def run(args) -> int:
    model = trained_model(args.file, args.load)
    columns = _columns(model, args.proba)
    _check_output(model, args, columns)
    data = model_data(model, args.data, args.load, targets=False)
    rows = _rows(model, data.X, columns)
    text = _csv(columns, rows) if args.format == "csv" else _json(columns, rows)
    write_output(args.output, text, "predictions")
    if args.output not in (None, "-"):
        note(f"wrote {len(rows):,} predictions to {args.output}")
    return EXIT_OK


# ---------------------------------------------------------------- columns


def _columns(model, proba: bool) -> list[tuple]:
    """(header, output, (what, index)) for each column: what is 'label' (a classifier's
    prediction), 'proba' (the probability of the class `index`) or 'value' (element
    `index` of a regressor's output row)."""
    if not model.outputs:
        raise CliError(f"{model.program.filename} has no output to predict: its loss scores "
                       "no prediction against targets; name one with `output = NAME` in the "
                       "train block")
    if proba and not model.classifier_outputs:
        raise CliError(f"--proba needs a classifier, but {model.program.filename}'s outputs "
                       f"({', '.join(model.outputs)}) are not scored as class labels")
    single = len(model.outputs) == 1
    columns = []
    for name in model.outputs:
        if name not in model.classifier_outputs:
            width = model.output_width(name)
            columns += [(name if width == 1 else f"{name}_{j}", name, ("value", j))
                        for j in range(width)]
            continue
        columns.append((_label_header(model, name, single), name, ("label", None)))
        if proba:
            prefix = "proba_" if single else f"{name}_proba_"
            columns += [(f"{prefix}{label}", name, ("proba", i))
                        for i, label in enumerate(model.class_labels(name))]
    return columns


def _label_header(model, name: str, single: bool) -> str:
    """A classifier's label column: named as the training data's target column."""
    if not single:
        return name
    target = model.preprocessing.target_column if model.preprocessing is not None else None
    return target or "label"


def _rows(model, X, columns) -> list[list]:
    """Each row's cells, in input order."""
    try:
        predicted = _by_name(model.predict(X, note=note), model.outputs)
        wanted = any(what == "proba" for _, _, (what, _) in columns)
        probabilities = _by_name(model.predict_proba(X), model.classifier_outputs) \
            if wanted else {}
    except ValueError as err:
        raise CliError(str(err)) from None
    cells = []
    for _, name, (what, index) in columns:
        if what == "label":
            cells.append([label.item() for label in predicted[name]])
        elif what == "proba":
            cells.append([float(p) for p in probabilities[name][:, index]])
        else:
            cells.append([float(v) for v in predicted[name].reshape(len(X), -1)[:, index]])
    return [list(row) for row in zip(*cells)]


def _by_name(found, names) -> dict:
    """What the API gives for several names (a dict) or for one (its value), by name."""
    return found if isinstance(found, dict) else {names[0]: found}


# ---------------------------------------------------------------- writing


def _csv(columns, rows) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header for header, _, _ in columns])
    writer.writerows([[repr(v) if isinstance(v, float) else v for v in row] for row in rows])
    return out.getvalue()


def _json(columns, rows) -> str:
    headers = [header for header, _, _ in columns]
    lines = [json.dumps(dict(zip(headers, row)), ensure_ascii=False) for row in rows]
    return "[" + ",\n ".join(lines) + "]\n"


def _check_output(model, args, columns) -> None:
    """Fail before reading any data when the predictions could not be written to `-o`,
    would replace the spec, its data, the model file or the data to predict on, or a
    file that is not predictions mfc wrote (unless --force)."""
    from mfc.files import check_writable, same_file

    path = args.output
    if path is None or path == "-":
        return
    check_folder("-o", path, "predictions.csv")
    not_read_by(model.program, "-o", path, "the predictions")
    for flag, other in (("--load", args.load), ("--data", args.data)):
        if other != "-" and same_file(path, other):
            raise CliError(f"-o {path} is the {flag} file; the predictions would replace it")
    try:
        check_writable(path)
    except OSError as err:
        raise CliError(f"-o {path}: {err.strerror or err}") from None
    if not args.force and not _replaceable(path, columns, args.format):
        raise CliError(f"-o {path} is there already, and is not predictions mfc wrote; "
                       "--force replaces it")


def _replaceable(path, columns, fmt: str) -> bool:
    """True when nothing is at `path`, or predictions with these columns are: what this
    command would write again."""
    import os

    if not os.path.isfile(path):
        return True
    try:
        with open(path, encoding="utf-8") as file:
            first = file.readline(1 << 16).rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return False
    header = [name for name, _, _ in columns]
    if fmt == "json":
        return first.startswith("[{" + json.dumps(header[0], ensure_ascii=False) + ":")
    return first == _csv(columns, []).rstrip("\n")
