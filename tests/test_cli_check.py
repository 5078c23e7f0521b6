"""`mfc check`, `--version`, `--help`: exit codes and output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LESSON
from mfc.cli import main

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.mf"))


@pytest.fixture
def spec(tmp_path):
    def write(text, name="net.mf"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


def test_valid_spec_prints_a_summary(spec, capsys):
    assert main(["check", spec(LESSON)]) == 0
    out = capsys.readouterr().out
    assert ["W1", "Param", "(10,", "10)", "100"] in [line.split() for line in out.splitlines()]
    assert "trainable parameters: 121" in out
    assert out.splitlines()[0].endswith(": ok, 10 nodes, loss 'cost', output 'l2'")


def test_the_summary_names_every_output_and_json_gives_them(spec, capsys):
    path = spec(LESSON.replace("train {", "train { output = s1, l2;"))
    assert main(["check", path]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("outputs 's1', 'l2'")
    assert main(["check", path, "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert (result["loss"], result["outputs"]) == ("cost", ["s1", "l2"])


def test_spec_errors_exit_1_with_diagnostics_on_stderr(spec, capsys):
    path = spec("X = Input(_, 3)\ncost = Sum(X @ W)\n")
    assert main(["check", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:16: error[E101]: undefined name 'W'" in err


def test_byte_order_mark_is_not_part_of_line_one(spec, capsys):
    assert main(["check", spec("\ufeffx = Param(3)\ncost = Sum(x, axs=0)\n")]) == 1
    assert ":2:15: error[E106]" in capsys.readouterr().err


def test_every_file_is_checked(spec, capsys):
    good, bad = spec(LESSON, "good.mf"), spec("x = (", "bad.mf")
    assert main(["check", good, bad]) == 1
    captured = capsys.readouterr()
    assert "good.mf: ok" in captured.out and "bad.mf:1:5: error[E002]" in captured.err


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b"x = Param(1)\xff\xfe\n"), "not UTF-8"),
])
def test_io_errors_exit_2_with_one_line(tmp_path, capsys, setup, message):
    path = tmp_path / "net.mf"
    setup(path)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_usage_errors_exit_2(capsys):
    assert main(["check"]) == 2
    assert main(["frobnicate"]) == 2
    assert main([]) == 2


def test_json_format(spec, capsys):
    path = spec("x = Param(3)\ncost = Sum(x, axs=0)\n")
    assert main(["check", "--format", "json", path]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    (d,) = report["diagnostics"]
    assert (d["code"], d["line"], d["column"], d["severity"]) == ("E106", 2, 15, "error")
    assert report["ok"] is False


def test_version_and_help():
    for flag in ("--version", "--help"):
        done = subprocess.run([sys.executable, "-m", "mfc.cli", flag], capture_output=True,
                              text=True, cwd=Path(__file__).parent.parent)
        assert done.returncode == 0 and "mfc" in done.stdout


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_every_spec_checks_clean(path, capsys):
    assert main(["check", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_check_does_not_import_scikit_learn_or_graphviz(tmp_path):
    code = ("import sys; from mfc.cli import main; main(['check', sys.argv[1]]); "
            "print('sklearn' in sys.modules, 'graphviz' in sys.modules)")
    path = tmp_path / "net.mf"
    path.write_text(LESSON)
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, cwd=Path(__file__).parent.parent)
    assert done.stdout.strip().splitlines()[-1] == "False False"


def test_check_imports_neither_numpy_nor_networkx():
    """Their imports cost more than checking a small spec; a check runs no array code."""
    regressor = next(p for p in SPECS if p.name == "regressor.mf")
    script = ("import sys\nfrom mfc.cli import main\n"
              "code = main(['check', sys.argv[1]])\n"
              "print(code, sorted(m for m in ('numpy', 'networkx', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, str(regressor)],
                          capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 []"


# ---------------------------------------------------------------- fragments, unfinished specs

FRAGMENTS = """\
fragment Dense(x, n, act = Sigmoid) {
    W = Param(_, n)
    b = Param(n)
    return act(Linear(x, W, b))
}
X, y = Input(_, 4), Input()
h = repeat(2, Dense, X, 8, act = ReLU)
scores = Dense(h, 3, act = Identity)
cost = CrossEntropy(y, scores)
"""


def test_a_summarised_program_is_freed_without_the_cycle_collector():
    """No reference cycle holds a checked program once summarised (a closure of the
    summary that called itself did: the whole program then waited for the collector,
    0.3 s at 100k nodes)."""
    import gc
    import weakref

    from mfc.cli.check import summary
    from mfc.lang.compiler import compile_text

    program = compile_text(FRAGMENTS)
    assert "h.1: Dense(8, ReLU)" in summary(program)  # the calls are grouped
    freed = weakref.ref(program)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del program
        assert freed() is None
    finally:
        if enabled:
            gc.enable()


def test_the_summary_groups_each_calls_nodes_under_it_with_its_params(spec, capsys):
    assert main(["check", spec(FRAGMENTS)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["h.1:", "Dense(8,", "ReLU)", "40"] in rows
    assert ["scores:", "Dense(3,", "Identity)", "27"] in rows
    assert ["h.1.W", "Param", "(4,", "8)", "32"] in rows
    assert rows.index(["h.1:", "Dense(8,", "ReLU)", "40"]) < rows.index(["h.1.W", "Param", "(4,", "8)", "32"])


def test_json_maps_every_node_back_to_its_call(spec, capsys):
    assert main(["check", spec(FRAGMENTS), "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    nodes = {n["name"]: n for n in result["expansion"]["nodes"]}
    assert nodes["h.2.W"]["call"] == "h.2" and nodes["X"]["call"] is None
    assert (nodes["h.2.W"]["line"], nodes["h.2.W"]["column"]) == (2, 9)  # in the body
    calls = {c["name"]: c for c in result["expansion"]["calls"]}
    assert calls["h.1"]["fragment"] == "Dense" and calls["h.1"]["args"] == "8, ReLU"
    assert (calls["h.1"]["line"], calls["h.1"]["column"]) == (7, 5)
    assert calls["scores"]["nodes"] == ["scores.W", "scores.b", "scores.linear1", "scores"]
    assert calls["scores"]["outputs"] == ["scores"]


def test_an_unfinished_spec_shows_what_is_known(spec, capsys):
    path = spec("X = Input()\nW1, b1 = Param(_, 10), Param(10)\nh = Sigmoid(Linear(X, W1, b1))\n")
    assert main(["check", path]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith(": ok, 5 nodes, no loss yet")
    rows = [line.split() for line in captured.out.splitlines()]
    assert ["X", "Input", "(N,", "?)"] in rows and ["W1", "Param", "(?,", "10)"] in rows
    assert ["h", "Sigmoid", "(N,", "10)"] in rows
    assert "warning[W008]" in captured.err
    assert main(["run", path]) == 1  # running needs a finished spec


def test_an_input_takes_the_shape_a_param_fixes(spec, capsys):
    path = spec("X, y = Input(), Input()\nW, b = Param(5, 10), Param(10)\n"
                "cost = MSE(y, Linear(X, W, b) @ Param(10, 1))\n")
    assert main(["check", path]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["X", "Input", "(N,", "5)"] in rows and ["y", "Input", "(N,)"] in rows
