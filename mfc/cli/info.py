"""`mfc info MODEL.npz`: what a model file holds, from its manifest and its arrays'
headers (no array is read): readable text, or the manifest as JSON."""

from __future__ import annotations

import json

from mfc.cli.common import EXIT_OK
from mfc.text import format_shape, number, plural


def add_parser(commands) -> None:
    info = commands.add_parser("info", help="show what a model file holds")
    info.add_argument("model", metavar="MODEL.npz")
    info.add_argument("--format", choices=("text", "json"), default="text",
                      help="text (default), or json: the manifest")
    info.set_defaults(handler=run)


def run(args) -> int:
    from mfc import modelfile

    manifest, params = modelfile.describe(args.model)
    if args.format == "json":
        found = manifest or {"format": None, "params": {n: list(shape) for n, (shape, _)
                                                         in params.items()}}
        print(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        print(describe(args.model, manifest, params))
    return EXIT_OK


def describe(path: str, manifest: dict, params: dict) -> str:
    """The manifest, a line a topic."""
    if not manifest:
        return "\n".join([f"{path}: params only, from an older mfc: no manifest, no "
                          "preprocessing", _row("params", _params(params))])
    spec, data = manifest.get("spec") or {}, manifest.get("data")
    rows = [
        ("spec", f"{spec.get('filename')} ({spec.get('fingerprint', '?')[:19]}...)"),
        ("loss", f"{manifest.get('loss')}; output "
                 f"{', '.join(manifest.get('outputs') or []) or '(none)'}"),
        ("params", _params(params)),
        ("data", _data(data) if data else "none"),
        *_preprocessing(manifest.get("preprocessing")),
        ("settings", _settings(manifest.get("settings") or {})),
        ("seed", str(manifest.get("seed"))),
        ("history", _history(manifest.get("history") or [])),
    ]
    if manifest.get("test"):
        rows.append(("test", _test(manifest["test"])))
    head = (f"{path}: an mfc model (format {manifest.get('format_version')}), saved by mfc "
            f"{manifest.get('mfc_version')} with numpy {manifest.get('numpy_version')}")
    return "\n".join([head] + [_row(key, value) for key, value in rows])


def _row(key: str, value: str) -> str:
    return f"  {key:<13} {value}"


def _params(params: dict) -> str:
    sizes = [int(_product(shape)) for shape, _ in params.values()]
    listed = ", ".join(f"{name} {format_shape(shape)}" for name, (shape, _) in params.items())
    return f"{listed}: {plural(sum(sizes), 'trainable parameter')}"


def _product(shape) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def _data(data: dict) -> str:
    parts = [f"{data.get(f'{k}_rows', 0):,} {k}" for k in ("train", "validation", "test")
             if data.get(f"{k}_rows")]
    rows = f"{data['rows']:,} rows ({', '.join(parts)})" if data.get("rows") else "rows unknown"
    column = f", targets in column '{data['target_column']}'" if data.get("target_column") else ""
    return f"{data.get('source')}: {rows}, {plural(data.get('features') or 0, 'feature')}{column}"


def _preprocessing(found: dict | None) -> list[tuple[str, str]]:
    if found is None:
        return [("preprocessing", "none")]
    names = found.get("feature_names")
    features = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "") if names else \
        f"{found.get('features')}, by position"
    scaled = "standardised with the training rows' mean and std" if found.get("standardized") \
        else "used as given"
    rows = [("features", f"{features}; {scaled}")]
    classes = found.get("classes")
    if classes is not None:
        shown = ", ".join(str(c) for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
        rows.append(("classes", f"{shown} ({len(classes)})"))
    return rows


def _settings(settings: dict) -> str:
    keys = ("epochs", "batch_size", "learning_rate", "optimizer", "validation", "test",
            "standardize", "sampling", "dtype")
    return " ".join(f"{k}={settings[k]}" for k in keys if settings.get(k) is not None)


def _history(history: list) -> str:
    if not history:
        return "no epochs trained"
    first, last = history[0], history[-1]
    text = (f"{plural(len(history), 'epoch')}, loss {_figure(first.get('loss'))} → "
            f"{_figure(last.get('loss'))}")
    if last.get("validation_loss") is not None:
        text += f"; last validation loss {number(last['validation_loss'])}"
    if last.get("accuracy") is not None:
        text += f", accuracy {number(last['accuracy'])}"
    return text


def _figure(value) -> str:
    """A figure of the manifest, where null is one that was not finite (a diverged
    loss): JSON has no inf or NaN."""
    return "not finite" if value is None else number(value)


def _test(test: dict) -> str:
    figures = [f"loss {number(test['loss'])}"] if test.get("loss") is not None else []
    for key, name in (("accuracy", "accuracy"), ("mse", "MSE"), ("r2", "R²")):
        if test.get(key) is not None:
            figures.append(f"{name} {number(test[key])}")
    rows = f"{test['rows']:,}" if test.get("rows") is not None else "?"
    return f"{', '.join(figures)} on {rows} held-out rows"
