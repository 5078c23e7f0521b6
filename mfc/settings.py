"""Train settings: one table (`SCHEMA`) of what each setting takes, and `TrainSettings`,
the values a run uses. The train block of a spec (mfc.lang.train_block), command-line
flags and API keywords are all checked against the same table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace

from mfc.diagnostics import SettingError, Span, did_you_mean

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adamw")
SAMPLINGS = ("shuffle", "resample")
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")
DECAYS = ("weights", "all")
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class TrainSettings:
    data: str | None = None
    target_column: str | None = None
    features: str = "X"
    targets: str = "y"
    loss: str | None = None
    output: tuple[str, ...] | None = None
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    rho: float = 0.99
    eps: float = 1e-8
    weight_decay: float | None = None  # None: the optimizer's default (0.01 for adamw, else 0)
    decay: str = "weights"
    clip_norm: float | None = None
    lr_schedule: str = "constant"
    step_size: int | None = None
    gamma: float | None = None  # None: 0.1 for step and plateau; exponential needs one
    min_lr: float = 0.0
    warmup_epochs: int = 0
    lr_patience: int = 10
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool | None = None  # None: true when patience is set
    checkpoint_every: int | None = None
    seed: int = 0
    sampling: str = "shuffle"
    standardize: bool = True
    validation: float | None = None
    test: float | None = None
    dtype: str = "float64"
    spans: dict = field(default_factory=dict, compare=False, repr=False)  # the spec's
    overridden: frozenset = field(default=frozenset(), compare=False, repr=False)

    def with_overrides(self, **overrides) -> "TrainSettings":
        """These settings with some replaced (flags on the command line, API keywords);
        None means "not given". Values are checked as the block's own are."""
        given = {k: _normalised(k, v) for k, v in overrides.items() if v is not None}
        problems = [f"{key}: {p}" for key, value in given.items()
                    for p in [_check_override(key, value)] if p]
        if problems:
            raise SettingError("; ".join(problems))
        given = {key: _checked_number(key, value) for key, value in given.items()}
        spans = {k: v for k, v in self.spans.items() if k not in given}  # not in the file now
        return replace(self, **given, spans=spans, overridden=self.overridden | set(given))

    # -- values that depend on other settings (None in the table means "the default
    # for the others"; docs/training.md)

    @property
    def decay_in_force(self) -> float:
        """The weight decay λ: as set, else 0.01 for adamw (torch's default) and 0."""
        if self.weight_decay is not None:
            return self.weight_decay
        return 0.01 if self.optimizer == "adamw" else 0.0

    @property
    def keeps_best(self) -> bool:
        """Whether the best epoch's params are kept: as set, else when patience is."""
        return self.restore_best if self.restore_best is not None else self.patience is not None

    @property
    def factor(self) -> float:
        """The schedule's γ: as set, else 0.1 (torch's for step and plateau)."""
        return self.gamma if self.gamma is not None else 0.1

    @property
    def rate_varies(self) -> bool:
        """Whether the learning rate can change from epoch to epoch."""
        return self.lr_schedule != "constant" or self.warmup_epochs > 0

    def origin(self, key: str) -> str:
        """Where a setting's value comes from: 'spec', 'override' or 'default'."""
        return "spec" if key in self.spans else \
            "override" if key in self.overridden else "default"


def _normalised(key: str, value):
    """An override as the block would hold it: node names as a tuple, from a list or
    from text such as "h, scores" (how a flag gives them)."""
    if key in SCHEMA and SCHEMA[key][0] == "nodes":
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(","))
        if isinstance(value, (list, tuple)):
            return tuple(value)
    return value


def _positive_int(value):
    value = _whole(value)
    return value if value is not None and value > 0 else None


def _count(value):
    value = _whole(value)
    return value if value is not None and value >= 0 else None


def _whole(value) -> int | None:
    """A whole number as an int, however it is written (`1000`, `1e3`, `1000.0`)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _positive_number(value):
    return float(value) if _is_number(value) and value > 0 else None


def _fraction(value):
    return float(value) if _is_number(value) and 0 < value < 1 else None


def _momentum(value):
    return float(value) if _is_number(value) and 0 <= value < 1 else None


def _non_negative(value):
    return float(value) if _is_number(value) and value >= 0 else None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# key -> (value kind: path | node | nodes | choice | number | bool, checker or choices,
# wording). A `nodes` value is one name or several (`output = h, scores`).
SCHEMA = {
    "data": ("path", None, "a dataset name or a path to a .csv or .npz file"),
    "target_column": ("path", None, "a CSV column name"),
    "features": ("node", None, "the name of the Input fed the features"),
    "targets": ("node", None, "the name of the Input fed the targets"),
    "loss": ("node", None, "the name of the node to minimise"),
    "output": ("nodes", None, "the names of the nodes a prediction returns"),
    "epochs": ("number", _positive_int, "a whole number, at least 1"),
    "batch_size": ("number", _positive_int, "a whole number, at least 1"),
    "learning_rate": ("number", _positive_number, "a number greater than 0"),
    "optimizer": ("choice", OPTIMIZERS, "one of " + ", ".join(OPTIMIZERS)),
    "momentum": ("number", _momentum, "a number from 0 up to (not including) 1"),
    "beta1": ("number", _momentum, "a number from 0 up to (not including) 1"),
    "beta2": ("number", _momentum, "a number from 0 up to (not including) 1"),
    "rho": ("number", _momentum, "a number from 0 up to (not including) 1"),
    "eps": ("number", _positive_number, "a number greater than 0, such as 1e-8"),
    "weight_decay": ("number", _non_negative, "a number, 0 or more, such as 0.01"),
    "decay": ("choice", DECAYS, "weights (params of 2 or more dims) or all"),
    "clip_norm": ("number", _positive_number, "a number greater than 0, such as 1.0"),
    "lr_schedule": ("choice", SCHEDULES, "one of " + ", ".join(SCHEDULES)),
    "step_size": ("number", _positive_int, "a whole number of epochs, at least 1"),
    "gamma": ("number", _fraction, "a factor between 0 and 1, such as 0.5"),
    "min_lr": ("number", _non_negative, "a number, 0 or more"),
    "warmup_epochs": ("number", _count, "a whole number of epochs, 0 or more"),
    "lr_patience": ("number", _positive_int, "a whole number of epochs, at least 1"),
    "patience": ("number", _positive_int, "a whole number of epochs, at least 1"),
    "min_delta": ("number", _non_negative, "a number, 0 or more"),
    "restore_best": ("bool", None, "true or false"),
    "checkpoint_every": ("number", _positive_int, "a whole number of epochs, at least 1"),
    "seed": ("number", _count, "a whole number, 0 or more"),
    "sampling": ("choice", SAMPLINGS, "shuffle or resample"),
    "standardize": ("bool", None, "true or false"),
    "validation": ("number", _fraction, "a fraction between 0 and 1, such as 0.2"),
    "test": ("number", _fraction, "a fraction between 0 and 1, such as 0.2"),
    "dtype": ("choice", DTYPES, "float64 or float32"),
}


def is_node_name(value) -> bool:
    """Whether `value` can name a node: a name, or a fragment call's scoped name
    (`h1.W`, `h.2.W`)."""
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", value) is not None


def _check_override(key: str, value) -> str | None:
    """What is wrong with a value given from Python or a flag (the block's own values are
    checked as literals, with their spans, by `_setting_problem`)."""
    if key not in SCHEMA:
        return "unknown setting" + (f"; {hint}" if (hint := did_you_mean(key, SCHEMA)) else "")
    kind, check, wording = SCHEMA[key]
    valid = {"number": lambda: check(value) is not None,
             "choice": lambda: value in check,
             "bool": lambda: isinstance(value, bool),
             "path": lambda: isinstance(value, str) and value != "",
             "node": lambda: is_node_name(value),
             "nodes": lambda: isinstance(value, tuple) and len(value) > 0 and all(
                 is_node_name(name) for name in value)}[kind]()
    return None if valid else f"must be {wording}, not {_shown(value)}"


def _shown(value) -> str:
    """A bad override as a message shows it: node names (`_normalised`) as the flag
    wrote them, 'h,,scores'."""
    if isinstance(value, tuple) and all(isinstance(name, str) for name in value):
        return repr(",".join(value))
    return repr(value)


def _checked_number(key: str, value):
    """A number setting's value as its checker gives it (1e3 epochs as the int 1000)."""
    kind, check, _ = SCHEMA[key]
    return check(value) if kind == "number" else value


def from_text(key: str, text: str):
    """A setting's value as the command line gives it (`--set epochs=1e3`, `--epochs
    5`): a number for a number setting, true or false for a yes-or-no one, else the text
    itself (without quotes, if it has them). `with_overrides` then checks it as the
    train block's own values are checked; text that is not a number stays text, and is
    refused there."""
    kind = SCHEMA[key][0] if key in SCHEMA else None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if kind == "number":
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
    if kind == "bool" and text in ("true", "false"):
        return text == "true"
    return text


# What may change from one training call to the next while the batches go on (the
# learning rate, the optimizer and its settings, the schedule, early stopping); any
# other change starts training afresh (mfc.Model.train).
RETUNABLE = ("epochs", "learning_rate", "optimizer", "momentum", "beta1", "beta2", "rho",
             "eps", "weight_decay", "decay", "clip_norm", "lr_schedule", "step_size",
             "gamma", "min_lr", "warmup_epochs", "lr_patience", "patience", "min_delta",
             "restore_best", "checkpoint_every")


# Chosen when the spec is compiled: they pick the loss and output nodes, and the Inputs
# whose shapes the data's width fixes. A run may change the data, not its width.
COMPILE_TIME = ("loss", "features", "targets", "output")


def at_train_time(settings: TrainSettings, overrides: dict) -> TrainSettings:
    """`settings` with `overrides` given when training (not compiling); SettingError
    for a bad value, or for a setting only a compile can change."""
    fixed = [key for key in COMPILE_TIME if overrides.get(key) is not None]
    if fixed:
        raise SettingError("; ".join(f"{key}: fixed when the spec is compiled (set it in "
                                     "the train block and compile again)" for key in fixed))
    settings = settings.with_overrides(**overrides)
    problems = conflicts(settings)
    if problems:
        raise SettingError("; ".join(f"{key}: {message}" for key, message, _ in problems))
    return settings


def conflicts(settings: TrainSettings) -> list[tuple[str, str, str]]:
    """(setting, message, help) for each setting that the others rule out or leave
    incomplete, named at the setting that asks for what is missing."""
    problems = []
    if settings.validation is None:
        for key, wants in [("patience", "stops when the validation loss stops improving"),
                           ("restore_best", "keeps the epoch of the best validation loss")]:
            if getattr(settings, key) not in (None, False):
                problems.append((key, f"'{key}' {wants}, but there is no validation data",
                                 "set validation = 0.2 (a fraction held out)"))
        if settings.lr_schedule == "plateau":
            problems.append(("lr_schedule", "'lr_schedule = plateau' lowers the rate when "
                             "the validation loss stalls, but there is no validation data",
                             "set validation = 0.2 (a fraction held out)"))
    needs = {"step": ("step_size", "the epochs between steps, such as step_size = 10"),
             "exponential": ("gamma", "the factor per epoch, such as gamma = 0.95")}
    if settings.lr_schedule in needs:
        key, wording = needs[settings.lr_schedule]
        if getattr(settings, key) is None:
            problems.append(("lr_schedule", f"'lr_schedule = {settings.lr_schedule}' needs "
                             f"'{key}'", f"set {wording}"))
    if settings.min_lr and settings.min_lr >= settings.learning_rate:
        problems.append(("min_lr", f"'min_lr' ({settings.min_lr:g}) must be below the "
                         f"learning_rate ({settings.learning_rate:g})",
                         "a floor for the schedule, such as learning_rate / 100"))
    return problems


def held_out_rows(rows: int, fraction: float | None) -> int:
    """How many of `rows` a validation or test `fraction` holds out (rounded; 0 without
    one)."""
    return round(rows * fraction) if fraction else 0


# The held-out parts, in the order a split takes them from the shuffled rows.
HELD_OUT = (("validation", "validation"), ("test", "testing"))


def split_sizes(settings: TrainSettings, rows: int) -> dict[str, int]:
    """Rows for each part of the data: 'validation', 'test' (0 without the setting) and
    'train' (the rest)."""
    sizes = {key: held_out_rows(rows, getattr(settings, key)) for key, _ in HELD_OUT}
    return {**sizes, "train": rows - sum(sizes.values())}


def data_problems(settings: TrainSettings, rows: int) -> list[tuple[str, str, str]]:
    """(setting, message, help) for each setting that data of `rows` rows rules out. The
    one place that decides, whether the setting came from the spec, a flag or the API,
    and whether the rows were known at check time or only once the data was loaded."""
    sizes = split_sizes(settings, rows)
    given = [key for key, _ in HELD_OUT if getattr(settings, key)]
    problems = [_held_out_problem(settings, key, sizes, rows) for key in given
                if sizes[key] <= 0]
    if given and not problems and sizes["train"] <= 0:  # blamed on the last one given
        problems.append(_held_out_problem(settings, given[-1], sizes, rows))
    if not problems and settings.batch_size > sizes["train"]:
        problems.append(("batch_size", f"'batch_size' is {settings.batch_size}, more than "
                         f"the {sizes['train']} training examples of the data",
                         f"a batch_size of at most {sizes['train']}"))
    return problems


def _held_out_problem(settings: TrainSettings, key: str, sizes: dict, rows: int) -> tuple:
    """A validation or test fraction that leaves a part of the data without rows."""
    parts = [f"{sizes[k]} for {purpose}" for k, purpose in HELD_OUT if getattr(settings, k)]
    parts.append(f"{sizes['train']} for training")
    others = sum(sizes[k] for k, _ in HELD_OUT if k != key)
    fraction = getattr(settings, key)
    return (key, f"'{key}' of {fraction:g} leaves, of the data's {rows} rows, "
            f"{', '.join(parts[:-1])} and {parts[-1]}; "
            f"{'both need' if len(parts) == 2 else 'each needs'} rows",
            f"a fraction between {1 / rows:.2g} and {max(rows - others - 1, 1) / rows:.2g}")


def setting_span(settings: TrainSettings | None, key: str) -> Span | None:
    return settings.spans.get(key) if settings else None


def report_setting(report, settings: TrainSettings, key: str, code, message: str, *,
                   span: Span | None = None, help: str | None = None, notes=()) -> None:
    """Report what is wrong with the setting `key` as a diagnostic where the spec sets it
    (`span`, else the setting's own place, else, for a default, the data's); or, for a
    value given as a flag or an API keyword, which the spec does not hold, raise
    SettingError: one line, `key: message; help`."""
    if settings.origin(key) == "override":
        raise SettingError(f"{key}: {message}" + (f"; {help}" if help else ""))
    place = span or settings.spans.get(key) or settings.spans.get("data")
    report(code, message, place, help=help, notes=notes)
