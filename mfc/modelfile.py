"""Model files: the .npz archives `mfc run --save` writes and `--load`, `predict`, `eval`
and `info` read. The format is written down in docs/model-file.md.

One zip archive (numpy's .npz layout, members stored uncompressed) holding:

- `manifest.json`: what the file is (format and version), the spec's text and the
  fingerprint of its checked graph, the settings, the data, the preprocessing's
  description, the params' names and shapes, the per-epoch history, versions;
- `NAME.npy`: each param, at the top (as `np.savez` writes them: `np.load(path)["W1"]`;
  a param's name is an identifier, so it never clashes with the members below);
- `preprocessing/mean.npy`, `preprocessing/std.npy`: the training rows' statistics,
  when the features were standardised;
- `training/*.npy` and the manifest's `training`: the state training goes on from
  (`mfc run --resume`): the params at the end of the last whole epoch, the optimizer's
  arrays, early stopping's best params, and, in the manifest, the epoch, the history,
  the random generators' states, the schedule's and early stopping's (mfc.train.loop's
  `Trainer.checkpoint`).

Readers ignore members and manifest keys they do not know, so later versions may add
some (training state for resuming, say, in a folder of its own such as `training/`)
without a new format version; `FORMAT_VERSION`
changes only when a reader of the old version would misread a file.

Files are written atomically (mfc.files) and read without pickles: names, shapes and
dtypes come from the .npy headers and are checked before any array is read. Old
params-only files (the `NAME.npy` members alone, no manifest) are still read.
"""

from __future__ import annotations

import json
import os
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import numpy as np

from mfc import data as datasets
from mfc.diagnostics import MfcError
from mfc.files import atomic_write
from mfc.metrics import finite
from mfc.preprocess import Preprocessing
from mfc.text import format_shape

FORMAT = "mfc-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PREPROCESSING = "preprocessing/"
TRAINING = "training/"
_MAX_MANIFEST = 64 << 20  # bytes; a manifest is mostly the spec's text


class ParamsError(MfcError):
    """A model file that cannot be read or does not fit the spec: one line."""


@dataclass(frozen=True, eq=False)
class ModelFile:
    """What a model file holds, read and checked.

    Attributes
    ----------
    params : name → array, in the order saved.
    manifest : the manifest (an empty dict for an old params-only file).
    preprocessing : how the features and targets are prepared; None for an old
        params-only file, which carries none.
    """

    params: dict[str, np.ndarray]
    manifest: dict = field(default_factory=dict)
    preprocessing: Preprocessing | None = None

    @property
    def params_only(self) -> bool:
        """An old file of params alone (before model files had a manifest)."""
        return not self.manifest


# ---------------------------------------------------------------- writing


def save(path, params, manifest: dict, preprocessing: Preprocessing | None = None,
         training: tuple[dict, dict] | None = None) -> None:
    """Write a model file at `path`, atomically: an interrupted save never leaves a
    corrupt file, and an old file stays as it was. `params` is name → array;
    `manifest` the JSON-able description (see `manifest`); the preprocessing's arrays
    go in their own members; `training`, (what JSON holds, name → array), the state a
    resumed run goes on from. Raises OSError."""
    members = {f"{name}.npy": array for name, array in params.items()}
    if preprocessing is not None and preprocessing.standardized:
        members[f"{PREPROCESSING}mean.npy"] = preprocessing.mean
        members[f"{PREPROCESSING}std.npy"] = preprocessing.std
    if training is not None:
        manifest = {**manifest, "training": training[0]}
        members.update({f"{TRAINING}{name}.npy": array for name, array in training[1].items()})
    text = json.dumps(finite(manifest), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))
    atomic_write(path, lambda file: _write_npz(file, members, text.encode("utf-8")))


def save_params(path, params) -> None:
    """Write `params` (name → array) alone, as an old params-only file (one `NAME.npy`
    member each), atomically. Raises OSError."""
    atomic_write(path, lambda file: _write_npz(file, {f"{name}.npy": array
                                                      for name, array in params.items()}))


def _write_npz(file, arrays: dict, manifest: bytes | None = None) -> None:
    # Written as np.savez would, without its keyword arguments: a param may be named
    # `file` or `allow_pickle`.
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        if manifest is not None:  # dated as numpy dates the arrays: the same file each time
            archive.writestr(zipfile.ZipInfo(MANIFEST, (1980, 1, 1, 0, 0, 0)), manifest)
        for member_name, array in arrays.items():
            with archive.open(member_name, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def manifest(program, *, settings, preprocessing, history, data, versions,
             evaluation=None) -> dict:
    """The manifest of a model trained from `program` (a mfc.ir.Program).

    Parameters
    ----------
    settings : the TrainSettings the params were trained with.
    preprocessing : mfc.preprocess.Preprocessing, or None (no data).
    history : one dict per epoch trained (`epoch`, `loss`, and the validation's).
    data : what the data was (`source`, `rows`, `features`, and the rows of each part).
    versions : {"mfc": ..., "numpy": ...}.
    evaluation : the metrics on the test rows, if any.
    """
    found = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mfc_version": versions["mfc"],
        "numpy_version": versions["numpy"],
        "spec": {"filename": program.filename, "text": program.source,
                 "fingerprint": program.fingerprint, "graph": program.signature()},
        "loss": program.loss,
        "outputs": list(program.outputs),
        "seed": settings.seed,
        "settings": settings_of(settings),
        "data": data,
        "preprocessing": _preprocessing(preprocessing),
        "params": {name: list(program.nodes[name].shape) for name in program.param_names},
        "history": history,
    }
    if evaluation is not None:
        found["test"] = evaluation
    return found


def settings_of(settings) -> dict:
    """The TrainSettings as the manifest keeps them."""
    values = {f.name: getattr(settings, f.name) for f in fields(settings)
              if f.name not in ("spans", "overridden")}
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in values.items()}


def _preprocessing(preprocessing: Preprocessing | None) -> dict | None:
    if preprocessing is None:
        return None
    return {"features": preprocessing.features,
            "feature_names": _list(preprocessing.feature_names),
            "target_column": preprocessing.target_column,
            "standardized": preprocessing.standardized,
            "classes": _list(preprocessing.classes)}


def _list(values) -> list | None:
    return None if values is None else list(values)


# ---------------------------------------------------------------- reading


def read(path, program=None) -> ModelFile:
    """The model file at `path`, checked: against `program` (a mfc.ir.Program), when
    given, before any param is read.

    Raises ParamsError when the file cannot be read, was saved by a newer mfc, or does
    not fit the program: its graph's fingerprint differs (the message names what differs
    in one line: a param's shape, a missing node), or for an old params-only file, a
    name or shape differs. The params' shapes and dtypes are checked from their headers
    before they are read: a header can claim any shape, and numpy allocates it whole.
    """
    with _archive(path) as archive:
        found = _manifest(path, archive)
        headers = _headers(path, archive, found)
        if program is not None:
            (_check_graph if found else _check_params)(path, program, found, headers)
        _check_kinds(path, headers)
        params = {name: _read_param(path, archive, name, member)
                  for name, (member, _, _) in headers.items()}
        preprocessing = _read_preprocessing(path, archive, found) if found else None
    if program is not None:
        _check_preprocessing(path, program, preprocessing)
    return ModelFile(params, found, preprocessing)


def read_training(path, size: int) -> tuple[dict, dict] | None:
    """The training state a model file keeps (what `save` was given as `training`), or
    None for a file without one. Its arrays are each as long as the flat vector of
    params, `size`: checked from their headers before any is read. Raises ParamsError
    when it cannot be read."""
    with _archive(path) as archive:
        found = _manifest(path, archive)
        if not isinstance(found.get("training"), dict):
            return None
        arrays = {}
        for member in archive.namelist():
            if member.startswith(TRAINING) and member.endswith(".npy"):
                name = member[len(TRAINING):-len(".npy")]
                shape, dtype = _header(path, archive, member, name)
                if dtype.kind not in "biuf" or shape != (size,):
                    raise ParamsError(f"{path}: {member} is not the training state of "
                                      f"{size} params ({format_shape(shape)} {dtype})")
                arrays[name] = _read_array(path, archive, name, member)
    return found["training"], arrays


def load_params(path, params) -> None:
    """Copy the params saved at `path` (a model file, or an old params-only file) into
    `params` (a network's `Params`). Raises ParamsError when the file cannot be read or
    its names or shapes do not match."""
    with _archive(path) as archive:
        headers = _headers(path, archive, _manifest(path, archive))
        _check_names(path, list(params), headers)
        for name, (_, shape, _) in headers.items():
            _check_shape(path, name, shape, params[name].shape, params.where(name))
        _check_kinds(path, headers)
        arrays = {name: _read_param(path, archive, name, member)
                  for name, (member, _, _) in headers.items()}
    for name, array in arrays.items():
        params[name] = array


def describe(path) -> tuple[dict, dict[str, tuple]]:
    """(manifest, param name → (shape, dtype)) of the file at `path`, from the manifest
    and the .npy headers alone; the manifest is {} for an old params-only file. Raises
    ParamsError."""
    with _archive(path) as archive:
        found = _manifest(path, archive)
        headers = _headers(path, archive, found)
    return found, {name: (shape, dtype) for name, (_, shape, dtype) in headers.items()}


@contextmanager
def _archive(path):
    """The .npz archive at `path`, open; a ParamsError for any other file."""
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # reading a FIFO would hang
            raise ParamsError(f"{path} is not a regular file")
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file") from None
    except zipfile.BadZipFile:
        if _quietly(datasets.is_npy, path):
            raise ParamsError(f"{path} holds one array, not an .npz file of params") from None
        raise ParamsError(f"{path} is not an .npz archive of params") from None
    except OSError as err:
        raise ParamsError(f"cannot read {path}: {err.strerror or err}") from None
    with archive:
        yield archive


def _quietly(check, path) -> bool:
    try:
        return check(path)
    except OSError:
        return False


def _manifest(path, archive) -> dict:
    """The manifest, checked to be one this mfc reads; {} for an old params-only file."""
    if MANIFEST not in archive.namelist():
        return {}
    try:
        if archive.getinfo(MANIFEST).file_size > _MAX_MANIFEST:
            raise ValueError("it is too large")
        found = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except (*datasets.npz_errors(), OSError, UnicodeDecodeError) as err:
        raise ParamsError(f"{path}: its {MANIFEST} cannot be read: {err}") from None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise ParamsError(f"{path}: its {MANIFEST} is not an mfc model's")
    version = found.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ParamsError(f"{path}: its {MANIFEST} has no format_version")
    if version > FORMAT_VERSION:
        raise ParamsError(f"{path} is in model file format {version}, from a newer mfc "
                          f"(version {found.get('mfc_version', '?')}); this one reads "
                          f"format {FORMAT_VERSION}")
    problem = _structure_problem(found)
    if problem:
        raise ParamsError(f"{path}: its {MANIFEST} is damaged: {problem}")
    return found


# ---------------------------------------------------------------- the manifest's structure
# What each key the readers use holds (docs/model-file.md), checked once where the
# manifest is read, so that no reader meets a list where it reads an object. A check
# takes (value, where it is) and returns what is wrong, or None. `null` is allowed
# wherever a writer may put it: a key without a value, a number that is not finite.


def _shown(value) -> str:
    from mfc.text import clip

    return clip(json.dumps(value, ensure_ascii=False), 40)


def _leaf(test, what: str):
    return lambda value, where: None if test(value) else f"{where} is {_shown(value)}, not {what}"


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_TEXT = _leaf(lambda v: isinstance(v, str), "text")
_COUNT = _leaf(lambda v: _is_whole(v) and v >= 0, "a whole number")
_NUMBER = _leaf(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number")
_BOOL = _leaf(lambda v: isinstance(v, bool), "true or false")
_ANY_LIST = _leaf(lambda v: isinstance(v, list), "a list")
_ANY_OBJECT = _leaf(lambda v: isinstance(v, dict), "an object")


def _optional(check):
    return lambda value, where: None if value is None else check(value, where)


def _list_of(check):
    def checked(value, where):
        if not isinstance(value, list):
            return f"{where} is {_shown(value)}, not a list"
        return next(filter(None, (check(v, f"{where}[{i}]") for i, v in enumerate(value))), None)
    return checked


def _object(keys: dict, each=None, then=None):
    """An object whose `keys` (those there) pass their checks, its other values `each`
    (when given), and then the whole `then` (when given)."""
    def checked(value, where):
        if not isinstance(value, dict):
            return f"{where} is {_shown(value)}, not an object"
        for key, item in value.items():
            check = keys.get(key, each)
            problem = check(item, f"{where}.{key}" if where else key) if check else None
            if problem:
                return problem
        return then(value, where) if then is not None else None
    return checked


def _classes(value, where):
    words = all(isinstance(v, str) for v in value)
    if not value or not (words or all(_is_whole(v) for v in value)) or \
            len(set(value)) < len(value):
        return f"{where} is {_shown(value)}, not distinct words or whole numbers"
    return None


def _features_named(value, where):
    names, features = value.get("feature_names"), value.get("features")
    if features is None:
        return f"{where} has no features"
    if names is not None and len(names) != features:
        return f"{where}.feature_names has {len(names)} names for {features} features"
    return None


_STRUCTURE = _object({
    "mfc_version": _TEXT, "numpy_version": _TEXT,
    "spec": _optional(_object({"filename": _TEXT, "text": _TEXT, "fingerprint": _TEXT,
                               "graph": _ANY_LIST})),
    "loss": _optional(_TEXT),
    "outputs": _optional(_list_of(_TEXT)),
    "seed": _optional(_COUNT),
    "settings": _optional(_ANY_OBJECT),
    "data": _optional(_object({"source": _optional(_TEXT), "target_column": _optional(_TEXT)},
                              each=_optional(_COUNT))),
    "preprocessing": _optional(_object({
        "features": _leaf(lambda v: _is_whole(v) and v >= 1, "a whole number above 0"),
        "feature_names": _optional(_list_of(_TEXT)), "target_column": _optional(_TEXT),
        "standardized": _optional(_BOOL), "classes": _optional(_list_of(
            _leaf(lambda v: isinstance(v, str) or _is_whole(v), "a word or a whole number")))},
        then=lambda value, where: _features_named(value, where) or _optional(_classes)(
            value.get("classes"), f"{where}.classes"))),
    "params": _optional(_object({}, each=_list_of(_COUNT))),
    "history": _optional(_list_of(_object({}, each=_optional(_NUMBER)))),
    "test": _optional(_object({"output": _optional(_TEXT), "task": _optional(_TEXT),
                               "loss_node": _optional(_TEXT), "against": _optional(_TEXT),
                               "classes": _ANY_LIST, "macro": _ANY_OBJECT,
                               "confusion_matrix": _ANY_OBJECT}, each=_optional(_NUMBER))),
    "training": _optional(_ANY_OBJECT),
})


def _structure_problem(manifest: dict) -> str | None:
    """What is wrong with the first value of the manifest that does not hold what mfc
    writes there (`preprocessing.classes[1] is ...`); None when every one does. Keys
    mfc does not know are left alone (`_STRUCTURE` checks only its own)."""
    return _STRUCTURE(manifest, "")


def _headers(path, archive, manifest: dict) -> dict[str, tuple]:
    """param name → (archive member, shape, dtype), from the headers alone: the
    top-level .npy members of a model file, or every member of an old params-only
    file."""
    members = {}
    for member in archive.namelist():
        if manifest and ("/" in member or not member.endswith(".npy")):
            continue  # the manifest, the preprocessing's, and what a later mfc adds
        name = member.removesuffix(".npy")
        members[name] = (member, *_header(path, archive, member, name))
    if manifest:  # in the manifest's order, which is the spec's
        order = list(manifest.get("params") or {})
        members = dict(sorted(members.items(), key=lambda item: (
            order.index(item[0]) if item[0] in order else len(order))))
    return members


def _header(path, archive, member: str, name: str) -> tuple:
    try:
        return datasets.npy_header(archive, member)
    except (*datasets.npz_errors(), OSError) as err:
        raise ParamsError(f"{path} is not a readable .npz archive of params: "
                          f"{name}: {err}") from None


def _check_graph(path, program, manifest: dict, headers: dict) -> None:
    """A ParamsError, naming what differs, when the file was saved from a graph other
    than the program's."""
    spec = manifest.get("spec") or {}
    if spec.get("fingerprint") != program.fingerprint:
        differences = graph_differences(spec.get("graph") or [], program.signature())
        raise ParamsError(f"{path} was saved from another graph than {program.filename}: "
                          + (_joined(differences) or "their fingerprints differ"))
    _check_params(path, program, manifest, headers)


def _check_params(path, program, manifest: dict, headers: dict) -> None:
    """The params saved are the program's, with its shapes."""
    _check_names(path, program.param_names, headers)
    for name, (_, shape, _) in headers.items():
        node = program.nodes[name]
        _check_shape(path, name, shape, node.shape, node.declared_at())


def _check_names(path, expected: list[str], headers: dict) -> None:
    missing = [n for n in expected if n not in headers]
    extra = [n for n in headers if n not in expected]
    if missing or extra:
        raise ParamsError(f"{path} does not match the spec: " + "; ".join(
            ([f"it lacks {', '.join(missing)}"] if missing else []) +
            ([f"the spec has no {', '.join(extra)}"] if extra else [])))


def _check_shape(path, name: str, shape: tuple, expected: tuple, where: str) -> None:
    if tuple(shape) != tuple(expected):
        raise ParamsError(f"{path}: {name} has shape {shape} there, but "
                          f"{tuple(expected)} in the spec ({where})")


def _check_kinds(path, headers: dict) -> None:
    for name, (_, _, dtype) in headers.items():
        if dtype.kind not in "biuf":
            raise ParamsError(f"{path}: {name} holds {dtype} values, not real numbers")


def _read_param(path, archive, name: str, member: str) -> np.ndarray:
    array = _read_array(path, archive, name, member)
    if not np.all(np.isfinite(array)):
        raise ParamsError(f"{path}: {name} does not hold finite real numbers")
    return array


def _read_array(path, archive, name: str, member: str) -> np.ndarray:
    try:
        return datasets.read_npy(archive, member)
    except (*datasets.npz_errors(), OSError) as err:
        raise ParamsError(f"{path} is not a readable .npz archive of params: "
                          f"{name}: {err}") from None


def _read_preprocessing(path, archive, manifest: dict) -> Preprocessing | None:
    """The preprocessing the manifest describes, with its arrays, checked."""
    found = manifest.get("preprocessing")
    if found is None:
        return None
    try:
        features = int(found["features"])
        names, classes = found.get("feature_names"), found.get("classes")
        mean = std = None
        if found.get("standardized"):
            mean, std = (_statistic(path, archive, key, features) for key in ("mean", "std"))
        return Preprocessing(features, tuple(names) if names is not None else None,
                             found.get("target_column"), mean, std,
                             tuple(classes) if classes is not None else None)
    except (KeyError, TypeError, ValueError) as err:
        raise ParamsError(f"{path}: its preprocessing cannot be read: {err}") from None


def _check_preprocessing(path, program, preprocessing: Preprocessing | None) -> None:
    """A ParamsError when the preprocessing does not fit the program: another number of
    features than its features Input takes, more classes than its scores give."""
    if preprocessing is None:
        return
    features = program.settings.features
    shape = program.nodes[features].shape if features in program.nodes else None
    width = shape[1] if shape is not None and len(shape) == 2 else None
    if isinstance(width, int) and preprocessing.features != width:
        raise ParamsError(f"{path}: its preprocessing takes {preprocessing.features} features, "
                          f"but Input '{features}' of {program.filename} takes {width}")
    classes = preprocessing.classes
    scores = program.label_inputs.get(program.settings.targets)
    if classes is not None and scores is not None and len(classes) > scores:
        raise ParamsError(f"{path}: its preprocessing names {len(classes)} classes, but "
                          f"{program.filename} scores {scores}")


def _statistic(path, archive, key: str, features: int) -> np.ndarray:
    member = f"{PREPROCESSING}{key}.npy"
    if member not in archive.namelist():
        raise ParamsError(f"{path}: the features were standardised, but {member} is missing")
    shape, dtype = _header(path, archive, member, member)
    if tuple(shape) != (features,) or dtype.kind != "f":
        raise ParamsError(f"{path}: {member} has shape {format_shape(shape)} and dtype "
                          f"{dtype}, not ({features},) numbers")
    array = _read_array(path, archive, member, member)
    if not np.all(np.isfinite(array)) or key == "std" and np.any(array <= 0):
        raise ParamsError(f"{path}: {member} does not hold usable statistics")
    return array


# ---------------------------------------------------------------- what differs


def graph_differences(saved: list, current: list) -> list[str]:
    """What differs between two graphs' signatures (mfc.ir.Program.signature), in the
    spec's order: nodes missing or added, another op, other operands, another shape,
    other keywords."""
    before = {row[0]: row for row in saved if isinstance(row, list) and len(row) == 5}
    after = {row[0]: row for row in current}
    found = [f"the spec has no node '{name}' ({row[1]})" for name, row in before.items()
             if name not in after]
    for name, (_, op, inputs, shape, attrs) in after.items():
        if name not in before:
            found.append(f"the file has no node '{name}' ({op})")
            continue
        _, old_op, old_inputs, old_shape, old_attrs = before[name]
        if old_op != op:
            found.append(f"'{name}' is {old_op} in the file, {op} in the spec")
        elif old_inputs != inputs:
            found.append(f"'{name}' reads {', '.join(old_inputs)} in the file, "
                         f"{', '.join(inputs)} in the spec")
        elif old_shape != shape:
            found.append(f"{name} has shape {_shape(old_shape)} in the file, "
                         f"{_shape(shape)} in the spec")
        elif old_attrs != attrs:
            found.append(f"'{name}' has {_keywords(old_attrs)} in the file, "
                         f"{_keywords(attrs)} in the spec")
    return found


def _shape(shape) -> str:
    return format_shape(tuple(shape) if shape is not None else None)


def _keywords(attrs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) or "no keywords"


def _joined(differences: list[str], most: int = 3) -> str:
    shown = "; ".join(differences[:most])
    more = len(differences) - most
    return shown + (f"; and {more} more difference{'s' if more > 1 else ''}" if more > 0 else "")
