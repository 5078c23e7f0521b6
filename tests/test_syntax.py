"""Stage 1: text -> AST."""

import pytest

from mfc.lang import ast
from mfc.diagnostics import SpecError
from mfc.lang.syntax import parse


def only_value(source):
    (assign,) = parse(source).assigns
    (value,) = assign.values
    return value


def test_statements_end_at_newline_or_semicolon():
    module = parse("a = Input()\nb = Sigmoid(a); c = Tanh(b)\n\n")
    assert [a.targets[0].id for a in module.assigns] == ["a", "b", "c"]


def test_newline_inside_brackets_continues_the_statement():
    call = only_value("l1 = Linear(X,\n   W1,\n   b1)")
    assert [a.id for a in call.args] == ["X", "W1", "b1"]
    assert (call.span.line, call.span.end_line) == (1, 3)


def test_comments_and_blank_lines_are_ignored():
    module = parse("# header\n\nx = Param(1)  # trailing\n# end")
    assert len(module.assigns) == 1


def test_tuple_assignment_keeps_pairs():
    (assign,) = parse("X, y = Input(), Input()").assigns
    assert [t.id for t in assign.targets] == ["X", "y"]
    assert [v.op for v in assign.values] == ["Input", "Input"]


@pytest.mark.parametrize("source, op, args", [
    ("c = a + b", "Add", 2), ("c = a - b", "Sub", 2), ("c = a * b", "Mul", 2),
    ("c = a / b", "Div", 2), ("c = a @ b", "MatMul", 2), ("c = a ** 2", "Pow", 2),
    ("c = -a", "Neg", 1),
])
def test_infix_operators_are_op_calls(source, op, args):
    call = only_value(source)
    assert (call.op, len(call.args), call.infix) == (op, args, True)


def test_precedence_and_associativity():
    # -x ** 2 + 5 * (a @ b) - 3  ==  ((-(x ** 2)) + (5 * (a @ b))) - 3
    call = only_value("z = -x ** 2 + 5 * (a @ b) - 3")
    assert call.op == "Sub"
    add = call.args[0]
    assert add.op == "Add"
    assert add.args[0].op == "Neg" and add.args[0].args[0].op == "Pow"
    assert add.args[1].op == "Mul" and add.args[1].args[1].op == "MatMul"
    right = only_value("z = a ** b ** c")
    assert right.args[1].op == "Pow"  # right-associative


def test_keyword_literals():
    call = only_value('p = Param(3, init=zeros, a=-1.5, b="s\\"q", c=true)')
    values = {k.name: (k.value.value, k.value.kind) for k in call.keywords}
    assert values == {"init": ("zeros", "word"), "a": (-1.5, "number"),
                      "b": ('s"q', "string"), "c": ("true", "word")}


def test_numbers():
    call = only_value("x = Add(1, 2.5e-3)")
    assert [a.value for a in call.args] == [1, 0.0025]
    assert isinstance(call.args[0].value, int)


def test_train_block_settings_with_newlines_and_semicolons():
    module = parse('train {\n  data = "iris"\n  epochs = 3; optimizer = adam\n}\n')
    (block,) = module.trains
    assert [(s.key, s.value.value) for s in block.settings] == [
        ("data", "iris"), ("epochs", 3), ("optimizer", "adam")]


def test_spans_are_one_based():
    call = only_value("x = Sigmoid(y)")
    assert (call.span.line, call.span.column) == (1, 5)
    assert (call.op_span.column, call.op_span.end_column) == (5, 12)
    assert isinstance(call.args[0], ast.Name) and call.args[0].span.column == 13


def test_deep_nesting_does_not_recurse():
    depth = 5000
    module = parse("x = " + "(" * depth + "1" + ")" * depth)
    assert module.assigns[0].values[0].value == 1


@pytest.mark.parametrize("source, code, line, column", [
    ("l1 = Linear(X, W1 b1)", "E001", 1, 19),
    ("x = ", "E001", 1, 5),
    ("l1 = Linear(X, W1, b1\ns = Sigmoid(l1)\n", "E002", 1, 12),
    ("x = (1 + 2", "E002", 1, 5),
    ('train { data = "diabetes }', "E003", 1, 16),
    ("x = 3 $", "E001", 1, 7),
])
def test_syntax_errors(source, code, line, column):
    with pytest.raises(SpecError) as info:
        parse(source)
    (d,) = info.value.diagnostics
    assert (d.code, d.line, d.column) == (code, line, column)


def test_syntax_error_says_what_was_expected():
    with pytest.raises(SpecError) as info:
        parse("l1 = Linear(X, W1 b1)")
    assert "expected ')' or ','" in info.value.diagnostics[0].message
