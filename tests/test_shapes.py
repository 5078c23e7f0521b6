"""Stage 4: shape inference."""

import pytest

import mfc
from conftest import LESSON, spec_errors


def shapes(source):
    return mfc.compile(source).shapes


def test_lesson_net_resolves_from_the_bundled_data():
    s = shapes(LESSON)
    assert s["X"] == ("N", 10) and s["W1"] == (10, 10) and s["l2"] == ("N", 1)
    assert s["cost"] == ()


@pytest.mark.parametrize("expr, shape", [
    ("a + b", ("N", 3)), ("a * Param(1)", ("N", 3)), ("a @ Param(3, 5)", ("N", 5)),
    ("Sum(a)", ()), ("Mean(a, axis=0)", (3,)), ("Sum(a, axis=-1)", ("N",)),
    ("Softmax(a)", ("N", 3)), ("-a", ("N", 3)), ("a ** 2", ("N", 3)),
    ("Param(3) @ Param(3)", ()), ("a @ Param(3)", ("N",)),
])
def test_rules(expr, shape):
    s = shapes(f"a = Input(_, 3)\nb = Param(3)\nout = {expr}\ncost = Sum(out) + Sum(b)")
    assert s["out"] == shape


def test_hole_dims_are_inferred_from_use():
    s = shapes("X = Input(_, 7)\nW = Param(_, _)\nb = Param(_)\n"
               "h = Linear(X, W, b)\nV = Param(4, 2)\ncost = Sum(Tanh(h) @ V)")
    assert s["W"] == (7, 4) and s["b"] == (4,)


def test_csv_header_gives_the_width(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,c,target\n1,2,3,4\n")
    spec = tmp_path / "net.mf"
    spec.write_text("X, y = Input(), Input()\nW = Param(_, 1)\ncost = MSE(y, X @ W)\n"
                    'train { data = "d.csv"; batch_size = 1 }\n')  # one row
    assert mfc.load(spec).shapes["W"] == (3, 1)


def test_missing_data_file_is_a_warning_and_defers_widths(tmp_path):
    spec = tmp_path / "net.mf"
    spec.write_text("X, y = Input(), Input()\nW = Param(_, 1)\ncost = MSE(y, X @ W)\n"
                    'train { data = "later.csv" }\n')
    program = mfc.load(spec)
    assert [d.code for d in program.program.diagnostics] == ["W004"]
    assert program.shapes["W"] == ("?", 1) and program.program.trainable_count is None


def test_mse_takes_both_operands_as_columns():
    s = shapes("y = Input(_)\na = Input(_, 1)\ncost = MSE(y, a)")
    assert s["cost"] == ()
    assert [d.code for d in spec_errors("y = Input(_)\na = Input(_, 3)\ncost = MSE(y, a)")] \
        == ["E200"]


def test_batch_dim_cannot_be_a_fixed_size():
    errors = spec_errors("X = Input(_, 3)\np = Param(5)\ncost = Sum(X @ Param(3) + p)")
    assert [d.code for d in errors] == ["E200"]


def test_param_tied_to_the_batch_is_unresolved():
    errors = spec_errors("X = Input(_, 3)\np = Param(_)\ncost = Sum(X @ Param(3) + p)")
    assert [d.code for d in errors] == ["E202"]


@pytest.mark.parametrize("loss, y", [("MSE(y, X @ W)", ("N",)), ("Mean((y - X @ W) ** 2)", None),
                                     ("CrossEntropy(y, X @ W)", ("N",)), ("Sum(y - X @ W)", None)])
def test_a_loss_of_undeclared_inputs_is_still_one_element(loss, y):
    """(A loss's targets take the shape its predictions fix; an Add's operand does not.)"""
    s = shapes(f"X, y = Input(_, 3), Input()\nW = Param(3, 1)\ncost = {loss}")
    assert s["y"] == y and s["cost"] == ()


def test_two_batch_dims_broadcasting_into_n_by_n_is_a_warning():
    program = mfc.compile("X, y = Input(_, 3), Input(_)\nW = Param(3, 1)\n"
                          "cost = Mean((y - X @ W) ** 2)")
    assert program.shapes["cost.sub1"] == ("N", "N")
    assert [(d.code, d.line, d.column) for d in program.program.diagnostics] == [("W006", 3, 14)]
    assert mfc.compile("X, y = Input(_, 3), Input(_, 1)\nW = Param(3, 1)\n"
                       "cost = Mean((y - X @ W) ** 2)").program.diagnostics == ()


def test_numbers_in_messages_read_as_words():
    (too_large,) = spec_errors("a = Param(100000, 100000, 100000, 100000, 100000, 100000)\n"
                               "cost = Sum(a)\n")
    assert too_large.code == "E204"
    assert "1.0e+30 elements (8.0e+30 bytes as float64)" in too_large.message
    (gib,) = spec_errors("a = Param(100000, 100000)\ncost = Sum(a)\n")
    assert "10,000,000,000 elements (74.5 GiB as float64)" in gib.message
    (rank,) = spec_errors("X, y = Input(_, 3), Input(_, 3, 2)\ncost = CrossEntropy(y, X)\n")
    assert "y must have 1 dim, but" in rank.message


@pytest.mark.parametrize("count,text", [(0, "0 bytes"), (1, "1 byte"), (1023, "1,023 bytes"),
                                        (1024, "1.0 KiB"), (2**31, "2.0 GiB"),
                                        (3 * 2**60, "3.0 EiB"), (2**70, "1.2e+21 bytes")])
def test_byte_sizes(count, text):
    from mfc.text import byte_size

    assert byte_size(count) == text


def test_an_operand_read_twice_is_named_once():
    (d,) = spec_errors("x = Param(3, 4)\ncost = Sum(x @ x)\n")
    assert d.code == "E200" and d.message.count("declared at") == 1 and len(d.notes) == 1


def test_an_input_without_dims_takes_the_shape_its_readers_fix():
    model = mfc.compile("X, y = Input(), Input()\nW, b = Param(5, 10), Param(10)\n"
                        "cost = CrossEntropy(y, Linear(X, W, b))\n")
    assert model.shapes["X"] == ("N", 5) and model.shapes["y"] == ("N",)
    model = mfc.compile("X, t = Input(), Input()\nh = X @ Param(3, 2)\ncost = MSE(t, h)\n")
    assert model.shapes["X"] == ("N", 3) and model.shapes["t"] == ("N", 2)


def test_an_unfinished_spec_compiles_when_asked_to():
    from mfc.lang.compiler import compile_text

    text = "X = Input()\nW = Param(_, 4)\nh = Tanh(X @ W)\n"
    with pytest.raises(mfc.SpecError):
        compile_text(text)
    program = compile_text(text, finished=False)
    assert program.loss is None and program.shapes == {"X": ("N", "?"), "W": ("?", 4),
                                                       "h.matmul1": ("N", 4), "h": ("N", 4)}
    assert [d.code for d in program.diagnostics] == ["W008"]
    with pytest.raises(mfc.SpecError):  # a size nothing could ever fix is still an error
        compile_text("z = Param(_, 3)\nh = Tanh(z)\n", finished=False)
