"""Stage 5 (mfc.lang.validate): the loss, the outputs, what the data rules out, warnings."""

from pathlib import Path

import numpy as np
import pytest

import mfc
from conftest import LESSON, spec_errors

ROOT = Path(__file__).resolve().parent.parent

CLASSIFIER = """\
X, y = Input(), Input()
W, b = Param(_, 3), Param(3)
scores = Linear(X, W, b)
ce = CrossEntropy(y, scores)
cost = ce + 0.01 * Sum(W * W)
train { data = "iris"; loss = cost }
"""


def program(source: str, **settings):
    return mfc.compile(source, "net.mf", **settings).program


def located(source: str, **settings) -> list[tuple]:
    return [(d.code, d.line, d.column) for d in spec_errors_with(source, **settings)]


def spec_errors_with(source: str, **settings):
    with pytest.raises(mfc.SpecError) as info:
        mfc.compile(source, "net.mf", **settings)
    return info.value.diagnostics


# -- the loss and the outputs


def test_the_loss_is_the_one_sink_of_one_element():
    assert program(LESSON).loss == "cost"


def test_the_loss_setting_picks_among_several():
    assert program("x = Param(3)\na = Sum(x)\nb = Mean(x)\ntrain { loss = b }").loss == "b"


def test_the_output_is_the_losss_operand_that_is_not_the_targets():
    assert program(LESSON).outputs == ("l2",)


def test_the_output_of_a_regularised_loss_is_its_data_loss_prediction():
    assert program(CLASSIFIER).outputs == ("scores",)


def test_a_loss_made_of_no_loss_op_has_no_output():
    assert program("x = Param(1, init=10)\ncost = x ** 2 + 5\n").outputs == ()


def test_the_output_setting_names_one_node_or_several():
    assert program(CLASSIFIER.replace("loss = cost", "loss = cost; output = X, scores")
                   ).outputs == ("X", "scores")
    assert program(LESSON, output="s1").outputs == ("s1",)
    assert program(LESSON, output="s1, l2").outputs == ("s1", "l2")
    assert program(LESSON, output=["l1"]).outputs == ("l1",)


@pytest.mark.parametrize("setting, column", [
    ("output = nothing", 18),  # no such node
    ("output = l2, W1", 22),  # a Param: the data does not change it
    ("output = s1, cost", 22),  # needs the targets, which a prediction lacks
    ("output = y", 18),  # the targets themselves
])
def test_an_output_a_prediction_cannot_give_is_E405_at_its_name(setting, column):
    source = LESSON.replace("train {", f"train {{ {setting};")
    assert located(source) == [("E405", 6, column)]


@pytest.mark.parametrize("setting, column", [('output = "l 2"', 18), ("output = l2, 3", 22),
                                            ("epochs = 1, 2", 18)])
def test_an_ill_typed_output_or_a_list_where_one_value_goes_is_E401(setting, column):
    source = LESSON.replace("train {", f"train {{ {setting};").replace(" epochs = 100;", "")
    assert located(source) == [("E401", 6, column)]


def test_output_is_fixed_when_the_spec_is_compiled():
    with pytest.raises(mfc.SettingError, match="output: fixed when the spec is compiled"):
        mfc.compile(LESSON).train(output="s1")


def test_labels_and_their_classes_come_from_the_op_not_its_name():
    p = program(CLASSIFIER)
    assert p.label_inputs == {"y": 3}
    assert p.scores_and_labels() == ("scores", "y")
    assert program(LESSON).label_inputs == {}


# -- what the data rules out: one rule, wherever the setting came from


def test_a_validation_fraction_that_leaves_no_rows_is_found_at_check_time():
    source = LESSON.replace("train {", "train { validation = 0.001;")
    assert located(source) == [("E401", 6, 22)]


def test_a_batch_larger_than_the_data_from_the_spec_is_located_at_its_setting():
    source = LESSON.replace("batch_size = 11", "batch_size = 500")
    (d,) = spec_errors_with(source)
    assert (d.code, d.line) == ("E401", 6) and "442 training examples" in d.message


def test_the_default_batch_size_against_tiny_data_is_located_at_the_data(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((20, 2)), y=np.ones(20))
    spec = tmp_path / "net.mf"
    spec.write_text('X, y = Input(), Input()\nW = Param(_, 1)\ncost = MSE(y, X @ W)\n'
                    'train { data = "d.npz" }\n')
    with pytest.raises(mfc.SpecError) as info:
        mfc.load(spec)
    (d,) = info.value.diagnostics
    assert (d.code, d.line, d.column) == ("E401", 4, 16) and "the default batch_size" in d.message


@pytest.mark.parametrize("setting, column", [("batch_size = 100", 62), ("test = 0.999", 56)])
def test_what_a_csvs_rows_rule_out_is_found_at_check_time(tmp_path, setting, column):
    """flowers.csv has 120 rows: 96 to train on after validation = 0.2."""
    (tmp_path / "flowers.csv").write_bytes((ROOT / "specs" / "flowers.csv").read_bytes())
    spec = tmp_path / "net.mf"
    spec.write_text('X, y = Input(), Input()\nW = Param(_, 3)\ncost = CrossEntropy(y, X @ W)\n'
                    f'train {{ data = "flowers.csv"; validation = 0.2; {setting} }}\n')
    with pytest.raises(mfc.SpecError) as info:
        mfc.load(spec)
    (d,) = info.value.diagnostics
    assert (d.code, d.line, d.column) == ("E401", 4, column)


def test_a_flag_the_data_rules_out_is_a_setting_error_not_a_spec_error():
    with pytest.raises(mfc.SettingError, match="^batch_size: 'batch_size' is 1000"):
        mfc.compile(LESSON, batch_size=1000)


def test_class_labels_from_a_regression_dataset_are_found_at_check_time():
    source = CLASSIFIER.replace('"iris"', '"diabetes"')
    assert located(source) == [("E404", 6, 16)]
    with pytest.raises(mfc.SettingError, match="^data: "):
        mfc.compile(CLASSIFIER, data="diabetes")


def test_an_input_the_named_data_cannot_feed_is_E407_at_check_time():
    source = CLASSIFIER.replace("X, y = Input(), Input()", "X, y, z = Input(), Input(), Input(_, 3)")
    source = source.replace("scores = Linear(X, W, b)", "scores = Linear(X, W, b) + z")
    assert located(source) == [("E407", 1, 7)]
    without_data = source.replace('data = "iris"; ', "").replace("Param(_, 3)", "Param(4, 3)")
    assert program(without_data).loss == "cost"  # the data may come with `mfc run --data`
    no_targets = 'X, z = Input(), Input(_, 1)\ncost = Sum(X @ Param(_, 1) + z)\n' \
                 'train { data = "iris" }\n'  # an autoencoder's data: y goes unused
    assert located(no_targets) == [("E407", 1, 4)]


RUN_SPECS = {  # a loss on one output, or on three class scores
    "mse": "X, y = Input(), Input()\nW, b = Param(_, 1), Param(1)\n"
           "cost = MSE(y, Linear(X, W, b))\n",
    "ce": "X, y = Input(), Input()\nW, b = Param(_, 3), Param(3)\n"
          "cost = CrossEntropy(y, Linear(X, W, b))\n",
}


# Settings whose checks depend on the data or on each other, with values on both sides.
RUN_SETTINGS = {  # (None: not set; a value listed twice is drawn twice as often)
    "validation": [None, 0.001, 0.2, 0.2, 0.999], "test": [None, None, 0.2, 0.5],
    "batch_size": [16, 64, 64, 2000], "lr_schedule": [None, None, "plateau", "cosine"],
    "patience": [None, None, 2], "restore_best": [None, None, "true"],
}


def test_what_check_accepts_with_bundled_data_the_run_does_not_refuse():
    """A bundled dataset is known whole at check time, so every refusal is check's: a
    spec `mfc check` accepts trains, for a sample of the combinations of settings."""
    import itertools
    import random

    from mfc.data import BUNDLED_NAMES

    combos = list(itertools.product(BUNDLED_NAMES, RUN_SPECS, *RUN_SETTINGS.values()))
    accepted = 0
    for data, spec, *values in random.Random(8).sample(combos, 120):
        given = {k: v for k, v in zip(RUN_SETTINGS, values) if v is not None}
        block = "; ".join([f'data = "{data}"', "epochs = 1"] +
                          [f"{k} = {v}" for k, v in given.items()])
        try:
            model = mfc.compile(RUN_SPECS[spec] + f"train {{ {block} }}\n")
        except mfc.SpecError:
            continue
        model.train()  # any refusal here, check could have made
        accepted += 1
    assert accepted > 20  # the sample is not all refusals


def test_scores_as_wide_as_another_number_of_classes_is_E200():
    assert [d.code for d in spec_errors(CLASSIFIER.replace("Param(_, 3), Param(3)",
                                                           "Param(_, 4), Param(4)"))] == ["E200"]


# -- warnings


def test_softmax_before_a_labels_loss_inside_a_bigger_loss_is_W005():
    source = CLASSIFIER.replace("CrossEntropy(y, scores)", "CrossEntropy(y, Softmax(scores))")
    assert [d.code for d in program(source).diagnostics] == ["W005"]


def test_a_param_that_never_reaches_the_loss_is_W001():
    p = program("x = Param(3)\nz = Param(2)\ncost = Sum(x)\nunused = Sum(z)\ntrain { loss = cost }")
    assert sorted(d.code for d in p.diagnostics) == ["W001", "W003"]


@pytest.mark.parametrize("setting,suggested,never", [
    ("features = V", "'X'", "'W'"),  # the data goes to an Input, never a Param
    ("targets = W2", None, "'W'"),
    ("loss = y2", None, "'y'"),  # an Input is never the loss
    ("loss = cots", "'cost'", "'y'"),
])
def test_did_you_mean_suggests_only_what_the_setting_takes(setting, suggested, never):
    source = ("X, y = Input(_, 4), Input()\nW = Param(4, 1)\ncost = MSE(y, X @ W)\n"
              f'train {{ data = "iris"; {setting} }}\n')
    (d,) = [d for d in spec_errors_with(source) if d.code == "E405"]
    assert never not in (d.help or "")
    assert suggested is None or suggested in d.help


def test_a_csv_with_a_header_and_no_rows_is_found_at_check_time(tmp_path):
    (tmp_path / "h.csv").write_text("a,b,t\n\n\n")
    spec = tmp_path / "net.mf"
    spec.write_text('X, y = Input(), Input()\nW = Param(_, 1)\ncost = MSE(y, X @ W)\n'
                    'train { data = "h.csv" }\n')
    with pytest.raises(mfc.SpecError) as info:
        mfc.load(spec)
    assert [(d.code, d.line, d.column) for d in info.value.diagnostics] == [("E404", 4, 16)]


@pytest.mark.parametrize("overrides,start", [
    ({"features": "W"}, "features: the data's features go to 'W', which is a Param"),
    ({"targets": "X"}, "targets: features and targets both go to 'X'"),
    ({"targets": "z"}, "targets: the data's targets go to 'z', but there is no such node"),
    ({"loss": "W"}, "loss: the loss 'W' has shape (4, 3), not one element"),
    ({"loss": "cots"}, "loss: loss names 'cots', but there is no such node; did you mean 'cost'?"),
])
def test_a_node_setting_given_as_a_flag_is_a_setting_error_not_a_spec_error(overrides, start):
    """The spec does not hold the value, so no place in it is at fault."""
    source = CLASSIFIER.replace("Param(_, 3)", "Param(4, 3)").replace("; loss = cost", "")
    with pytest.raises(mfc.SettingError) as info:
        mfc.compile(source, **overrides)
    assert str(info.value).startswith(start)
