"""Every kind of spec error: (source, code, line, column), never message text.

All of a spec's errors are reported at once; these specs each hold one, so the table
also shows that one mistake yields one diagnostic (no cascades)."""

import pytest

import mfc
from conftest import spec_errors
from mfc.diagnostics import render

NET = """\
X, y = Input(_, 13), Input()
W1, b1 = Param(_, 10), Param(10)
W2, b2 = Param(10, 1), Param(1)
"""

FED = "X, y = Input(), Input()\nW = Param(_, 1)\ncost = MSE(y, X @ W)\n"

CASES = [
    # syntax
    ("x = Sigmoid(y", "E002", 1, 12),
    ("x = Linear(X, W b)", "E001", 1, 17),
    ("x = * 2", "E001", 1, 5),
    ('train { data = "x }', "E003", 1, 16),
    ("x = 3 ?", "E001", 1, 7),
    ("train { epochs = }", "E001", 1, 18),
    # names
    (NET + "l1 = Linear(X, W1, b9)\ncost = MSE(y, l1 @ W2)", "E101", 4, 20),
    (NET + "l1 = Linaer(X, W1, b1)\ncost = MSE(y, l1 @ W2)", "E102", 4, 6),
    (NET + "W1 = Param(13, 10)\nl1 = Linear(X, W1, b1)\ncost = MSE(y, l1 @ W2)", "E103", 4, 1),
    ("X, y = Input()\ncost = Mean(X)", "E104", 1, 1),
    (NET + "l1 = Linear(X, W1, b1, b1)\ncost = MSE(y, l1 @ W2)", "E105", 4, 6),
    ("x = Param(3, int=zeros)\ncost = Sum(x)", "E106", 1, 14),
    ("x = Param(3, init=gaussian)\ncost = Sum(x)", "E107", 1, 19),
    ("x = Param(3)\ncost = Sum(x, axis=0.5)", "E107", 2, 20),
    ("x = Param(3)\ncost = Sum(_)", "E108", 2, 12),
    ("x = Param(3, init=ones, init=zeros)\ncost = Sum(x)", "E109", 1, 25),
    ("x = Param(3.5)\ncost = Sum(x)", "E110", 1, 11),
    ("x = Param(n)\ncost = Sum(x)", "E110", 1, 11),
    ("Param(3)", "E001", 1, 6),
    # graph
    ("a = Sigmoid(b)\nb = Tanh(a)\ncost = Sum(b)", "E120", 1, 1),
    ("a = Sigmoid(a)\ncost = Sum(a)", "E120", 1, 1),
    # shapes
    (NET.replace("_, 10", "12, 10") + "l1 = Linear(X, W1, b1)\ncost = MSE(y, l1 @ W2)",
     "E200", 4, 6),
    (NET + "l1 = Linear(X, W1, b1)\nl2 = l1 + Param(3)\ncost = MSE(y, l2 @ W2)", "E200", 5, 6),
    ("a = Param(3, 4)\nb = Param(5, 2)\ncost = Sum(a @ b)", "E200", 3, 12),
    (NET + "l1 = Linear(X, W1, W2)\ncost = MSE(y, l1 @ W2)", "E201", 4, 6),
    ("x = Param(3)\ncost = Sum(x, axis=1)", "E201", 2, 8),
    ("x = Param(_, 3)\ncost = Sum(x)", "E202", 1, 11),
    ("X = Input()\nW = Param(_, 1)\ncost = Sum(X @ W)", "E202", 2, 11),
    ("x = Param(0)\ncost = Sum(x)", "E203", 1, 11),
    ("x = Param(4, -2)\ncost = Sum(x)", "E203", 1, 14),
    ("x = Param(100000, 100000)\ncost = Sum(x)", "E204", 1, 5),
    # loss
    ("x = Param(3)\nout = x * 2", "E300", 2, 1),
    ("x = Param(3)\na = Sum(x)\nb = Mean(x)", "E301", 2, 1),
    ("x = Param(3)\na = Sum(x)\ntrain { loss = x }", "E302", 3, 16),
    (FED + "h = X @ W\ntrain { data = iris; loss = h }", "E302", 5, 29),  # (N, 1)
    # train block
    ("x = Param(1)\ncost = Sum(x)\ntrain { epoch = 3 }", "E400", 3, 9),
    ("x = Param(1)\ncost = Sum(x)\ntrain { epochs = 0 }", "E401", 3, 18),
    ("x = Param(1)\ncost = Sum(x)\ntrain { batch_size = 2.5 }", "E401", 3, 22),
    ("x = Param(1)\ncost = Sum(x)\ntrain { optimizer = adagrad }", "E401", 3, 21),
    ("x = Param(1)\ncost = Sum(x)\ntrain { learning_rate = fast }", "E401", 3, 25),
    ("x = Param(1)\ncost = Sum(x)\ntrain { loss = \"the cost\" }", "E401", 3, 16),
    ("x = Param(1)\ncost = Sum(x)\ntrain { standardize = 1 }", "E401", 3, 23),
    ("x = Param(1)\ncost = Sum(x)\ntrain { validation = 1.5 }", "E401", 3, 22),
    ("x = Param(1)\ncost = Sum(x)\ntrain { gamma = 1.5 }", "E401", 3, 17),
    ("x = Param(1)\ncost = Sum(x)\ntrain { lr_schedule = linear }", "E401", 3, 23),
    ("x = Param(1)\ncost = Sum(x)\ntrain { decay = biases }", "E401", 3, 17),
    ("x = Param(1)\ncost = Sum(x)\ntrain { patience = 0 }", "E401", 3, 20),
    ("x = Param(1)\ncost = Sum(x)\ntrain { epochs = 3\n epochs = 4 }", "E402", 4, 2),
    ("x = Param(1)\ncost = Sum(x)\ntrain { epochs = 3 }\ntrain { seed = 1 }", "E403", 4, 1),
    (FED + "train { data = diabets }", "E404", 4, 16),
    (FED + "train { data = \"table.txt\" }", "E404", 4, 16),
    (FED + "train { data = iris; target_column = label }", "E404", 4, 38),
    (FED + "train { data = iris; targets = X }", "E405", 4, 32),
    (FED + "train { data = iris; patience = 5 }", "E408", 4, 33),
    (FED + "train { data = iris; restore_best = true }", "E408", 4, 37),
    (FED + "train { data = iris; lr_schedule = plateau }", "E408", 4, 36),
    ("x = Param(1)\ncost = Sum(x)\ntrain { lr_schedule = step }", "E408", 3, 23),
    ("x = Param(1)\ncost = Sum(x)\ntrain { lr_schedule = exponential }", "E408", 3, 23),
    ("x = Param(1)\ncost = Sum(x)\ntrain { learning_rate = 0.1; min_lr = 0.1 }", "E408", 3, 39),
    (FED + "train { data = iris; loss = X }", "E405", 4, 29),
    (FED + "train { data = iris; batch_size = 200 }", "E401", 4, 35),
    ("X, y = Input(), Input()\nW = Param(_, 2)\ncost = CrossEntropy(y, X @ W)\n"
     "train { data = iris }", "E200", 3, 8),
    ("a = Param(100000, 1)\nb = Param(1, 100000)\ncost = Sum(a * b)", "E204", 3, 12),
    ("x = Param(1, init=1e400)\ncost = Sum(x)", "E107", 1, 19),
    ("x = Param(1)\ncost = Sum(x * 1e400)", "E111", 2, 16),
    ("x = Param(1)\ncost = Sum(x)\ntrain { learning_rate = 1e400 }", "E401", 3, 25),
    ("x = Param(1)\ncost = Sum(x)\ntrain { loss = cots }", "E405", 3, 16),
    ("inp = Input(_, 10)\nW = Param(10, 1)\ncost = Sum(inp @ W)\ntrain { data = diabetes }",
     "E405", 4, 16),
    ("X = Input(_, 10)\ny = Param(1)\ncost = Sum(X @ Param(10, 1)) + Sum(y)\n"
     "train { data = diabetes; targets = y }", "E405", 4, 36),
    # the data's width against a declared shape
    ("X, y = Input(_, 13), Input()\nW = Param(13, 1)\ncost = MSE(y, X @ W)\n"
     "train { data = diabetes }", "E200", 1, 8),
]


@pytest.mark.parametrize("source, code, line, column", CASES)
def test_error_code_and_position(source, code, line, column):
    errors = [d for d in spec_errors(source) if d.severity == "error"]
    assert [(d.code, d.line, d.column) for d in errors] == [(code, line, column)]


def test_the_table_is_large():
    assert len(CASES) >= 30


def test_all_errors_are_reported_in_one_pass():
    source = ("X, y = Input(_, 13), Input()\n"
              "W1 = Param(12, 10)\n"
              "l1 = Linear(X, W1, b9)\n"        # E101
              "s1 = Sigmod(l1)\n"               # E102
              "l2 = X @ W1\n"                   # E200
              "cost = MSE(y, l2)\n"
              "train { epochz = 3 }\n")         # E400
    assert [d.code for d in spec_errors(source)] == ["E101", "E102", "E200", "E400"]


def test_a_setting_both_bad_and_repeated_gets_both_errors():
    errors = spec_errors("x = Param(1)\ncost = Sum(x)\ntrain { epochs = -1\n epochs = 4 }")
    assert [(d.code, d.line) for d in errors] == [("E401", 3), ("E402", 4)]


def test_did_you_mean_one_edit_away():
    (d,) = spec_errors("W1 = Param(2)\nW2 = Param(2)\ncost = Sum(W3)")
    assert d.code == "E101" and "'W1'" in d.help and "'W2'" in d.help


def test_did_you_mean_for_names_ops_and_settings():
    source = ("X, y = Input(_, 3), Input()\nWeights = Param(3, 1)\n"
              "cost = MSE(y, Lineer(X, Weight, Param(1)))\ntrain { epoks = 3 }")
    helps = {d.code: d.help for d in spec_errors(source)}
    assert "Weights" in helps["E101"] and "Linear" in helps["E102"] and "epochs" in helps["E400"]


def test_duplicate_definition_points_at_both():
    (d,) = spec_errors("a = Param(1)\na = Param(2)\ncost = Sum(a)")
    assert (d.line, d.notes[0].span.line) == (2, 1)


def test_cycle_points_at_every_node_on_it():
    (d,) = spec_errors("a = Sigmoid(c)\nb = Tanh(a)\nc = ReLU(b)\ncost = Sum(c)")
    assert [d.line] + [n.span.line for n in d.notes] == [1, 2, 3]


def test_an_escaped_quote_does_not_hide_a_bracket():
    (d,) = spec_errors('train { data = "\\"(" }\nx = 3 3')
    assert (d.code, d.line, d.column) == ("E001", 2, 7)


def test_an_empty_spec_has_no_loss_at_its_start():
    (d,) = spec_errors("# nothing yet\n")
    assert (d.code, d.line, d.column) == ("E300", 1, 1)


def test_shape_mismatch_names_operands_shapes_and_declarations():
    (d,) = spec_errors("X = Input(_, 13)\ny = Input()\nW1 = Param(12, 10)\nb1 = Param(10)\n"
                       "cost = MSE(y, Linear(X, W1, b1) @ Param(10, 1))")
    assert "X has 13 columns" in d.message and "W1 has 12 rows" in d.message
    assert "W1 declared at 3:1" in d.message


def test_warnings_do_not_fail_the_compile():
    program = mfc.compile("X = Input(_, 2)\nunused = Input()\nW = Param(2, 1)\n"
                          "lonely = Param(3)\nside = Tanh(X)\ncost = Sum(X @ W)")
    assert sorted(d.code for d in program.program.diagnostics) == ["W001", "W002", "W003"]


def test_softmax_before_cross_entropy_is_a_warning():
    program = mfc.compile("X, y = Input(_, 4), Input(_)\nW = Param(4, 3)\n"
                          "cost = CrossEntropy(y, Softmax(X @ W))")
    assert [(d.code, d.line, d.column) for d in program.program.diagnostics] == [("W005", 3, 8)]


def test_rendered_diagnostic_has_location_source_line_and_caret():
    with pytest.raises(mfc.SpecError) as info:
        mfc.compile("x = Param(3)\ncost = Sum(x, axs=0)", filename="net.mf")
    text = str(info.value)
    lines = text.splitlines()
    assert lines[0].startswith("net.mf:2:15: error[E106]: ")
    assert lines[1].endswith("cost = Sum(x, axs=0)")
    assert lines[2].index("^") == lines[1].index("axs")
    assert lines[3].startswith("help: ")


OP_CASES = [
    ("x = Param(3)\ncost = Sum(LeakyReLU(x, 0.1, 2))", "E105", 2, 12),
    ("X = Input(_, 3)\ncost = Sum(Linear(X))", "E105", 2, 12),
    ("x = Param(3)\ncost = Sum(Reshape(x))", "E105", 2, 12),
    ("x = Param(3)\ncost = Sum(LeakyReLU(x, x + 1))", "E107", 2, 25),
    ("x = Param(3)\ncost = Sum(LeakyReLU(x, 0.1, alpha=0.2))", "E109", 2, 30),
    ("x = Param(3)\ncost = Huber(x, x, delta=0)", "E107", 2, 26),
    ("x = Param(2, 3)\ncost = Sum(Reshape(x, 4, _))", "E200", 2, 12),
    ("x = Param(2, 3)\ncost = Sum(Reshape(x, _, _))", "E201", 2, 12),
    ("a = Param(2, 3)\nb = Param(3, 3)\ncost = Sum(Concat(a, b))", "E200", 3, 12),
    ("a = Param(2, 3)\nb = Param(3)\ncost = Sum(Concat(a, b))", "E201", 3, 12),
    ("a = Param(2, 3)\ncost = Sum(Concat(a, a, axis=2))", "E201", 2, 12),
    ("X = Input(_, 3)\nW = Param(4, 2)\ncost = Sum(Linear(X, W))", "E200", 3, 12),
]


@pytest.mark.parametrize("source, code, line, column", OP_CASES)
def test_errors_of_the_newer_ops(source, code, line, column):
    errors = [d for d in spec_errors(source) if d.severity == "error"]
    assert [(d.code, d.line, d.column) for d in errors] == [(code, line, column)]


# ---------------------------------------------------------------- fragments, repeat, use

DENSE = """\
fragment Dense(x, n, act = Sigmoid, init = xavier) {
    W = Param(_, n, init = init)
    b = Param(n)
    return act(Linear(x, W, b))
}
"""
BLOCK = DENSE + """\
fragment Block(x, n) {
    h = Dense(x, n, act = ReLU)
    return Dense(h, n)
}
"""
X4 = "X = Input(_, 4)\n"
PAIR = "fragment C(x) {\n    return Tanh(x), ReLU(x)\n}\n"

FRAGMENT_CASES = [
    # inside a body reached through two levels of calls: at the body's line and column
    (BLOCK + "X = Input(_, 4, 2)\nh = Block(X, 8)\ncost = Sum(h)\n", "E201", 4, 16),
    (BLOCK + X4 + "h = Block(X, 8, act = ReLU)\ncost = Sum(h)\n", "E106", 11, 17),
    ("fragment F(x) {\n    return Sigmod(x)\n}\n" + X4 + "cost = Sum(F(X)) + Sum(F(X))\n",
     "E102", 2, 12),
    ("fragment F(x) {\n    return Tanh(x + z)\n}\n" + X4 + "cost = Sum(F(X))\n", "E101", 2, 21),
    ("fragment F(x) {\n    h = Tanh(x)\n    h = ReLU(x)\n    return h\n}\n" + X4 +
     "cost = Sum(F(X))\n", "E103", 3, 5),
    ("fragment F(x) {\n    x = Tanh(x)\n    return x\n}\n" + X4 + "cost = Sum(F(X))\n",
     "E103", 2, 5),
    ("fragment F(x, x) {\n    return Tanh(x)\n}\n" + X4 + "cost = Sum(F(X, X))\n", "E103", 1, 15),
    ("fragment F(x) {\n    return Tanh(x)\n}\nfragment F(x) {\n    return ReLU(x)\n}\n" + X4 +
     "cost = Sum(F(X))\n", "E103", 4, 10),
    ("fragment Linear(x) {\n    return Tanh(x)\n}\n" + X4 + "cost = Sum(Tanh(X))\n", "E103", 1, 10),
    ("fragment F(_) {\n    return 1\n}\n" + X4 + "cost = Sum(X) + F(2)\n", "E108", 1, 12),
    # a call's arguments: at the call, or at the argument
    (DENSE + X4 + "cost = Sum(Dense(X))\n", "E105", 7, 12),
    (DENSE + X4 + "cost = Sum(Dense(X, 3, ReLU, xavier, 5))\n", "E105", 7, 12),
    (DENSE + X4 + "cost = Sum(Dense(X, 3, ack = ReLU))\n", "E106", 7, 24),
    (DENSE + X4 + "cost = Sum(Dense(X, 3, n = 4))\n", "E109", 7, 24),
    (DENSE + X4 + "cost = Sum(Dense(X, 3, init = gaussian))\n", "E107", 7, 31),
    (DENSE + X4 + "cost = Sum(Dense(X, 2.5))\n", "E110", 7, 21),
    (DENSE + X4 + "cost = Sum(Dense(X, -3))\n", "E203", 7, 21),
    (DENSE + X4 + "cost = Sum(Dense(X, 3, act = Relu))\n", "E102", 7, 30),
    (DENSE + X4 + "cost = Sum(Dense(X, 3, act = _))\n", "E108", 7, 30),
    (DENSE + X4 + "cost = Sum(Dense(Xx, 3))\n", "E101", 7, 18),
    (DENSE + X4 + "W = Param(4, 4)\ncost = Sum(Dense(X, 3, act = W))\n", "E113", 8, 30),
    ("fragment F(x, f) {\n    return x * f\n}\n" + X4 + "cost = Sum(F(X, ReLU))\n", "E113", 5, 17),
    (BLOCK.replace("Dense(x, n, act = ReLU)", "Dense(x, n, act = Relu)") + X4 +
     "cost = Sum(Block(X, 8))\n", "E102", 7, 27),
    # repeat
    (DENSE + X4 + "h = repeat(0, Dense, X, 4)\ncost = Sum(h)\n", "E114", 7, 12),
    (DENSE + X4 + "h = repeat(2.5, Dense, X, 4)\ncost = Sum(h)\n", "E114", 7, 12),
    (DENSE + X4 + "h = repeat(100000000, Dense, X, 4)\ncost = Sum(h)\n", "E114", 7, 12),
    (X4 + "h = repeat(2, ReLU, X)\ncost = Sum(h)\n", "E114", 2, 15),
    (PAIR + X4 + "h = repeat(2, C, X)\ncost = Sum(h)\n", "E114", 5, 15),
    (DENSE + X4 + "h = repeat(2, Dense)\ncost = Sum(h)\n", "E105", 7, 5),
    (DENSE + X4 + "h = repeat(2, Dense, X)\ncost = Sum(h)\n", "E105", 7, 5),
    # return values
    (PAIR + X4 + "cost = Sum(C(X))\n", "E115", 5, 12),
    (PAIR + X4 + "a, b, c = C(X)\ncost = Sum(a) + Sum(b)\n", "E104", 5, 1),
    ("fragment F(x) {\n    h = Tanh(x)\n}\n" + X4 + "cost = Sum(F(X))\n", "E131", 1, 10),
    ("fragment F(x) {\n    return Tanh(x)\n    return ReLU(x)\n}\n" + X4 + "cost = Sum(F(X))\n",
     "E131", 3, 5),
    (X4 + "cost = Sum(X)\nreturn cost\n", "E131", 3, 1),
    # recursion, direct and through another fragment
    ("fragment F(x) {\n    return F(x)\n}\n" + X4 + "cost = Sum(F(X))\n", "E130", 2, 12),
    ("fragment F(x) {\n    return G(x)\n}\nfragment G(x) {\n    return Tanh(F(x))\n}\n" + X4 +
     "cost = Sum(F(X))\n", "E130", 5, 17),
    # a fragment nothing calls is still checked
    ("fragment F(x) {\n    return Sigmod(x)\n}\n" + X4 + "cost = Sum(X)\n", "E102", 2, 12),
    ("fragment F(x, n) {\n    W = Param(n, 3.5)\n    return x @ W\n}\n" + X4 + "cost = Sum(X)\n",
     "E110", 2, 18),
]


@pytest.mark.parametrize("source, code, line, column", FRAGMENT_CASES)
def test_fragment_errors_code_and_position(source, code, line, column):
    errors = [d for d in spec_errors(source) if d.severity == "error"]
    assert [(d.code, d.line, d.column) for d in errors] == [(code, line, column)]


def test_nested_repeats_stop_at_the_node_limit_at_each_count(monkeypatch):
    from mfc.lang import graph

    monkeypatch.setattr(graph, "MAX_NODES", 500)
    source = DENSE + "fragment E(x) {\n    return repeat(100, Dense, x, 4)\n}\n" + X4 + \
        "h = repeat(100, E, X)\ncost = Sum(h)\n"
    errors = [d for d in spec_errors(source) if d.severity == "error"]
    assert [(d.code, d.line, d.column) for d in errors] == [("E114", 7, 19),
                                                            ("E114", 10, 12)]


def test_an_error_two_calls_deep_has_a_note_for_each_call_innermost_first():
    (d,) = spec_errors(BLOCK + "X = Input(_, 4, 2)\nh = Block(X, 8)\ncost = Sum(h)\n")
    assert [(f, s.line, s.column) for f, s in d.span.calls()] == [("Dense", 7, 9),
                                                                    ("Block", 11, 5)]
    text = render(d, BLOCK, "net.mf")
    assert "note: in Dense, called at net.mf:7:9" in text
    assert text.index("in Dense, called") < text.index("in Block, called at net.mf:11:5")
    assert d.to_dict("net.mf")["calls"] == [
        {"fragment": "Dense", "file": "net.mf", "line": 7, "column": 9, "end_line": 7,
         "end_column": 32},
        {"fragment": "Block", "file": "net.mf", "line": 11, "column": 5, "end_line": 11,
         "end_column": 16}]


def test_a_name_written_as_a_dim_in_a_fragment_suggests_its_dim_parameters():
    body = "fragment F(x, n) {{\n    W = Param(_, {})\n    return x @ W\n}}\n"
    (near,) = spec_errors(body.format("m") + X4 + "cost = Sum(F(X, 3))\n")
    assert (near.code, near.help) == ("E110", "did you mean 'n'?")
    (far,) = spec_errors(body.format("width") + X4 + "cost = Sum(F(X, 3))\n")
    assert far.help == "'width' is not a parameter of this fragment"
    (top,) = spec_errors("W = Param(_, m)\ncost = Sum(W)\n")
    assert top.help is None


def test_the_same_error_through_several_calls_is_reported_once():
    source = "fragment F(x) {\n    return Sigmod(x)\n}\n" + X4 + "cost = Sum(F(X)) + Sum(F(X))\n"
    (d,) = spec_errors(source)
    assert d.notes[-1].message == "the same in 1 more call of F"


def test_a_fragment_nothing_calls_is_a_warning():
    program = mfc.compile(DENSE + X4 + "cost = Sum(X)\n").program
    assert [(d.code, d.line, d.column) for d in program.diagnostics] == [("W007", 1, 10)]


# (files, code, the file it is in, line, column): the spec is net.mf
USE_CASES = [
    ({"net.mf": 'use "layrs.mf"\nX = Input(_, 2)\ncost = Sum(X)\n'}, "E140", "net.mf", 1, 1),
    ({"net.mf": 'use stdlib\nX = Input(_, 2)\ncost = Sum(X)\n'}, "E140", "net.mf", 1, 1),
    ({"net.mf": 'use "a.mf"\nX = Input(_, 2)\ncost = Sum(X)\n', "a.mf": 'use "b.mf"\n',
      "b.mf": 'use "a.mf"\n'}, "E121", "b.mf", 1, 1),
    ({"net.mf": 'use "a.mf"\nX = Input(_, 2)\ncost = Sum(X)\n', "a.mf": 'use "net.mf"\n'},
     "E121", "a.mf", 1, 1),
    ({"net.mf": 'use "a.mf"\nX = Input(_, 2)\ncost = Sum(X)\n',
      "a.mf": "fragment F(x) {\n  return x\n}\nZ = Input()\n"}, "E141", "a.mf", 4, 1),
    ({"net.mf": 'use "a.mf"\nX = Input(_, 2)\ncost = Sum(X)\n', "a.mf": "fragment F(x {\n"},
     "E001", "a.mf", 1, 14),
    ({"net.mf": 'use "a.mf"\nfragment F(x) {\n  return x\n}\nX = Input(_, 2)\n'
      'cost = Sum(F(X))\n', "a.mf": "fragment F(x) {\n  return Tanh(x)\n}\n"},
     "E103", "a.mf", 1, 10),
    ({"net.mf": 'use std\nfragment Dense(x) {\n  return x\n}\nX = Input(_, 2)\n'
      'cost = Sum(Dense(X))\n'}, "E103", "std", 5, 10),
    ({"net.mf": 'use "a.mf"\nX = Input(_, 2)\ncost = Sum(Lin(X, 3))\n',
      "a.mf": "fragment Lin(x, n) {\n  W = Param(3, n)\n  return x @ W\n}\n"},
     "E200", "a.mf", 3, 10),
]


@pytest.mark.parametrize("files, code, where, line, column", USE_CASES)
def test_use_errors_code_file_and_position(tmp_path, files, code, where, line, column):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(mfc.SpecError) as info:
        mfc.load(tmp_path / "net.mf")
    errors = [d for d in info.value.diagnostics if d.severity == "error"]
    assert [(d.code, d.line, d.column) for d in errors] == [(code, line, column)]
    (d,) = errors
    shown = d.span.source.name if d.span.source is not None else str(tmp_path / "net.mf")
    assert shown.endswith(where if where != "std" else "std.mf")
