"""mfc.threads: how many BLAS threads a training step gets, by the size of its products."""

import os
from contextlib import nullcontext

import pytest
from threadpoolctl import threadpool_info

import mfc
from mfc import threads
from mfc.cli import main

WIDE = """
X, y = Input(_, 4096), Input()
W1, b1 = Param(4096, 4096), Param(4096)
W2, b2 = Param(4096, 1), Param(1)
cost = MSE(y, Linear(Tanh(Linear(X, W1, b1)), W2, b2))
"""


def blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_the_largest_product_is_asked_of_the_ops():
    model = mfc.compile(WIDE)
    assert threads.largest_product(model.program, 128) == 128 * 4096 * 4096
    program = mfc.compile("a, b = Param(3, 4), Param(4, 5)\ncost = Sum(a @ b)").program
    assert threads.largest_product(program, 1) == 3 * 4 * 5


def test_small_steps_get_one_thread_and_large_ones_every_core():
    program = mfc.compile(WIDE).program
    assert threads.chosen(program, 32) == 1  # 5e8 multiply-adds: measured not to pay
    assert threads.chosen(program, 256) == (os.cpu_count() or 1)
    assert threads.chosen(program, 32, requested=3) == 3


def test_the_limit_holds_inside_the_block_only():
    before = blas_threads()
    with threads.limited(1):
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


def test_training_runs_under_the_chosen_limit(monkeypatch):
    seen = []
    model = mfc.compile("x = Param(1, init=10)\ncost = x ** 2 + 5\n")
    monkeypatch.setattr(threads, "limited", lambda n: (seen.append(n), nullcontext())[1])
    model.train(epochs=1)
    model.train(epochs=1, threads=2)
    assert seen == [1, 2]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_a_setting_error(bad):
    with pytest.raises(mfc.SettingError, match="threads"):
        mfc.compile("x = Param(1)\ncost = Sum(x * x)").train(epochs=1, threads=bad)


@pytest.mark.parametrize("value", ["0", "two", "-3"])
def test_a_bad_threads_flag_is_one_line_exit_2(capsys, value):
    spec = os.path.join(os.path.dirname(__file__), "..", "specs", "warmup.mf")
    assert main(["run", spec, "--threads", value]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "--threads" in err
