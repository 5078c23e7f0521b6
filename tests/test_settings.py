"""The train block's settings, and overrides from flags and the API."""

import pytest

import mfc
from mfc.diagnostics import Diagnostic, render
from mfc.settings import TrainSettings

SPEC = "X = Input()\nx = Param(1)\ncost = Sum(x) + Sum(X)\ntrain { epochs = 3; optimizer = adam; data = diabetes }"


def test_block_values_and_defaults():
    s = mfc.compile("x = Param(1)\ncost = Sum(x)\ntrain { epochs = 3; optimizer = \"adam\"\n"
                    "standardize = false; validation = 0.25 }").settings
    assert (s.epochs, s.optimizer, s.standardize, s.validation) == (3, "adam", False, 0.25)
    assert (s.batch_size, s.learning_rate, s.sampling, s.seed) == (32, 0.01, "shuffle", 0)


@pytest.mark.parametrize("key, value", [
    ("epochs", 0), ("epochs", True), ("epochs", 2.5), ("batch_size", -1),
    ("learning_rate", 0), ("optimizer", "adagrad"), ("standardize", "no"), ("seed", -3),
    ("features", 5), ("loss", "not a name"), ("validation", 1.0), ("data", ""), ("epochz", 3),
    ("test", 0), ("test", 1.5), ("output", "a b"), ("output", ()), ("output", ["h", 3]),
])
def test_bad_overrides_are_refused(key, value):
    with pytest.raises(ValueError):
        TrainSettings().with_overrides(**{key: value})


@pytest.mark.parametrize("value, shown", [("", "not ''"), ("h,,X", "not 'h,,X'"),
                                          ("h, 3x", "not 'h,3x'")])
def test_bad_node_names_from_a_flag_are_shown_as_typed(value, shown):
    with pytest.raises(ValueError) as info:
        TrainSettings().with_overrides(output=value)
    assert str(info.value).endswith(shown)


def test_output_takes_one_name_or_several():
    s = mfc.compile("X = Input(_, 2)\nx = Param(2)\nh = X * x\ncost = Sum(h)\n"
                    "train { output = h, X; test = 0.2 }").settings
    assert (s.output, s.test) == (("h", "X"), 0.2)
    assert TrainSettings().with_overrides(output="h , X").output == ("h", "X")


def test_overrides_replace_values_and_forget_their_spans():
    block = mfc.compile(SPEC).settings
    changed = block.with_overrides(epochs=7, optimizer=None)
    assert (changed.epochs, changed.optimizer) == (7, "adam")
    assert "epochs" not in changed.spans and "optimizer" in changed.spans


def test_a_diagnostic_without_a_place_names_only_the_file():
    text = render(Diagnostic("E405", "from a flag", None), "x = 1\n", "net.mf")
    assert text.splitlines() == ["net.mf: error[E405]: from a flag"]


def test_control_characters_in_a_message_stay_on_one_line():
    text = render(Diagnostic("W004", "data file 'é\n.csv' not found", None), "", "net.mf")
    assert text.splitlines() == ["net.mf: warning[W004]: data file 'é\\n.csv' not found"]


@pytest.mark.parametrize("written,value", [("1e3", 1000), ("1000.0", 1000), ("12", 12)])
def test_a_whole_number_is_whole_however_it_is_written(written, value):
    s = mfc.compile(f"x = Param(1)\ncost = Sum(x)\ntrain {{ epochs = {written}; "
                    f"seed = {written} }}").settings
    assert (s.epochs, s.seed) == (value, value)
    assert type(s.epochs) is int and type(s.seed) is int
    overridden = TrainSettings().with_overrides(epochs=float(written), batch_size=1e1)
    assert (overridden.epochs, overridden.batch_size) == (value, 10)
    assert type(overridden.epochs) is int and type(overridden.batch_size) is int


def test_defaults_that_depend_on_other_settings():
    plain = TrainSettings()
    assert (plain.decay_in_force, plain.keeps_best, plain.factor, plain.rate_varies) == \
        (0.0, False, 0.1, False)
    adamw = plain.with_overrides(optimizer="adamw", patience=3, validation=0.2)
    assert (adamw.decay_in_force, adamw.keeps_best) == (0.01, True)
    assert adamw.with_overrides(weight_decay=0, restore_best=False).decay_in_force == 0.0
    assert plain.with_overrides(warmup_epochs=2).rate_varies


def test_new_settings_are_read_from_the_block():
    s = mfc.compile("x = Param(1)\ncost = Sum(x)\ntrain { optimizer = rmsprop; rho = 0.9\n"
                    "eps = 1e-6; weight_decay = 0.1; decay = all; clip_norm = 2\n"
                    "lr_schedule = cosine; min_lr = 0.001; warmup_epochs = 2 }").settings
    assert (s.optimizer, s.rho, s.eps, s.weight_decay, s.decay, s.clip_norm) == \
        ("rmsprop", 0.9, 1e-6, 0.1, "all", 2.0)
    assert (s.lr_schedule, s.min_lr, s.warmup_epochs) == ("cosine", 0.001, 2)
