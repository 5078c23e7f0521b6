"""Whatever the text, compiling it either succeeds or raises SpecError: never anything else."""

from hypothesis import HealthCheck, given, settings, strategies as st

import mfc
from conftest import LESSON

TOKENS = ["X", "y", "W1", "b1", "_", "=", ",", ";", "\n", "(", ")", "{", "}", "+", "-", "*",
          "/", "@", "**", "0", "1", "13", "-2", "2.5", '"diabetes"', '"', "#", "train",
          "Input", "Param", "Linear", "Sigmoid", "MSE", "Sum", "Softmax", "CrossEntropy",
          "init", "axis", "zeros", "loss", "data", "epochs", "é", "\t", "\r\n"]


def compiles_or_spec_error(text):
    try:
        mfc.compile(text)
    except mfc.SpecError as err:
        assert all(d.code[0] in "EW" for d in err.diagnostics)
        assert any(d.severity == "error" for d in err.diagnostics)
        str(err)  # rendering never fails either


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    compiles_or_spec_error(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_token_soup(text):
    compiles_or_spec_error(text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_valid_spec(data):
    text = LESSON
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        token = data.draw(st.sampled_from(TOKENS))
        end = min(len(text), at + data.draw(st.integers(1, 8)))
        if kind == "delete":
            text = text[:at] + text[end:]
        elif kind == "insert":
            text = text[:at] + token + text[at:]
        else:
            text = text[:at] + token + text[end:]
    compiles_or_spec_error(text)
