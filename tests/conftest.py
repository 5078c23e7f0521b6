import textwrap

import pytest

import mfc

LESSON = """\
X, y   = Input(), Input()
W1, b1 = Param(_, 10), Param(10)
W2, b2 = Param(10, 1), Param(1)
l1 = Linear(X, W1, b1); s1 = Sigmoid(l1)
l2 = Linear(s1, W2, b2); cost = MSE(y, l2)
train { data = "diabetes"; epochs = 100; batch_size = 11; learning_rate = 0.01 }
"""


def spec_errors(source: str):
    """The diagnostics of a spec that must fail to compile."""
    with pytest.raises(mfc.SpecError) as info:
        mfc.compile(textwrap.dedent(source))
    return info.value.diagnostics


def codes(source: str) -> list[str]:
    return [d.code for d in spec_errors(source)]
