"""`mfc run` and `mfc draw` end to end: exit codes, output, files written (`mfc check`
is in test_cli_check.py). The libraries they call are tested in test_train.py and
test_draw.py."""

import errno
import os
import re
import signal
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from conftest import BAD_PARAMS_FILES, LESSON, chain_spec
from mfc import cli
from mfc.draw import render as render_mod
from mfc.cli import main
from mfc.draw.render import find_renderer

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCH_LINE = re.compile(r"^Epoch: (\d+), Loss: (-?\d+\.\d{3})(, .*)?$")


def run(capsys, *argv):
    """`mfc` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_spec(tmp_path, text, name="net.mf"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- mfc run


def test_run_prints_one_line_per_epoch(capsys):
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 4)
    assert code == 0
    lines = out.splitlines()
    assert lines == ["Epoch: 1, Loss: 105.000", "Epoch: 2, Loss: 69.000",
                     "Epoch: 3, Loss: 45.960", "Epoch: 4, Loss: 31.214"]
    assert "\r" not in err  # no progress bar: stderr is not a terminal


def test_a_run_imports_only_what_it_uses():
    """lark (the parse runs on cached tables), workers' processes and sockets, zip
    archives, close matches of names: each a share of a run's memory, none used here."""
    import subprocess

    unused = ("lark", "socket", "subprocess", "tempfile", "zipfile", "difflib")
    script = ("import sys\nfrom mfc.cli import main\n"
              "code = main(['run', sys.argv[1], '--epochs', '2'])\n"
              f"print(code, sorted(m for m in {unused!r} if m in sys.modules))")
    main(["check", str(SPECS / "digits.mf")])  # the parse tables are in the cache
    done = subprocess.run([sys.executable, "-c", script, str(SPECS / "digits.mf")],
                          capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 []"


@pytest.mark.parametrize("spec", sorted(p.name for p in SPECS.glob("*.mf")))
def test_every_spec_runs_to_a_lower_loss(capsys, spec):
    code, out, err = run(capsys, "run", SPECS / spec, "--epochs", 3)
    assert code == 0, err
    losses = [float(EPOCH_LINE.match(line).group(2)) for line in out.splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]


@pytest.mark.parametrize("spec", ["regressor.mf", "iris.mf"])
def test_both_backends_print_the_same_lines(capsys, spec):
    outputs = [run(capsys, "run", SPECS / spec, "--epochs", 5, "--backend", backend)
               for backend in ("numpy", "miniflow")]
    assert outputs[0][0] == outputs[1][0] == 0
    assert outputs[0][1] == outputs[1][1]


def test_explain_prints_the_generated_step_and_trains_nothing(capsys):
    code, out, err = run(capsys, "run", SPECS / "digits.mf", "--explain", "--batch-size", 8)
    assert code == 0, err
    assert "def step():" in out and "Epoch" not in out
    assert "# scores = Linear(h, W2, b2)  (8, 10)" in out
    compile(out, "explained", "exec")  # valid Python


@pytest.mark.parametrize("flags", [["--backend", "miniflow"], ["--save", "p.npz"]])
def test_explain_refuses_what_it_cannot_do(capsys, flags):
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--explain", *flags)
    assert code == 2 and out == "" and len(err.splitlines()) == 1


def test_flags_override_the_block(capsys, tmp_path):
    code, out, _ = run(capsys, "run", SPECS / "regressor.mf", "--epochs", 2, "--batch-size",
                       50, "--learning-rate", 0.001, "--seed", 5, "--optimizer", "adam",
                       "--data", "iris")  # iris is 4 wide: the shapes are inferred again
    assert code == 0 and len(out.splitlines()) == 2


def test_data_flag_is_relative_to_the_current_folder(capsys, tmp_path, monkeypatch):
    rows = ["a,b,t"] + [f"{i},{i % 7},{i % 3}" for i in range(30)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "run", SPECS / "regressor.mf", "--data", "d.csv",
                         "--epochs", 1, "--batch-size", 5)
    assert code == 0, err


def test_a_data_path_from_a_flag_is_named_as_it_was_typed(capsys, tmp_path, monkeypatch):
    (tmp_path / "bad.csv").write_text("a,b,t\n" + "1,2,3\n" * 11 + "4,x,6\n")  # batch_size 11
    monkeypatch.chdir(tmp_path)
    for flags in (["--data", "bad.csv"], ["--set", "data=bad.csv"]):
        one_line_error(*run(capsys, "run", SPECS / "regressor.mf", *flags),
                       "mfc: error: bad.csv:13: column 'b'")
    one_line_error(*run(capsys, "run", SPECS / "regressor.mf", "--data", "nothere.csv"),
                   f"data file 'nothere.csv' not found (looked in {tmp_path}/nothere.csv)")


def test_a_full_disk_under_stdout_is_named(capsys, monkeypatch):
    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Full())
    one_line_error(*run(capsys, "check", SPECS / "warmup.mf"),
                   "mfc: error: cannot write to stdout: No space left on device")


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "-1"], "epochs"),
    (["--batch-size", "0"], "batch_size"),
    (["--learning-rate", "0"], "learning_rate"),
    (["--optimizer", "adagrad"], "optimizer"),
    (["--data", "missing.csv"], "data file 'missing.csv' not found"),
    (["--data", "bostn"], "unknown"),
    (["--batch-size", "1000"], "'batch_size' is 1000, more than the 442 training"),
    (["--load", "missing.npz"], "no such file"),
    (["--save", "no/such/folder/p.npz"], "no folder"),
    (["--save", SPECS / "regressor.mf" / "p.npz"], "regressor.mf' is not a folder"),
    (["--save", "p" * 300 + ".npz"], "File name too long"),
    (["--data", "d" * 300 + ".csv"], "File name too long"),
    (["--load", "p" * 300 + ".npz"], "File name too long"),
])
def test_bad_flags_exit_2_with_one_line(capsys, flags, message):
    code, out, err = run(capsys, "run", SPECS / "regressor.mf", *flags)
    assert code == 2
    assert err.startswith("mfc: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def one_line_error(code, out, err, *parts):
    assert code == 2 and out == ""
    assert err.startswith("mfc: error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err


def test_save_refuses_the_spec_and_the_data_before_training(capsys, tmp_path):
    spec = write_spec(tmp_path, (SPECS / "regressor.mf").read_text())
    (tmp_path / "link.npz").symlink_to(spec)
    rows = "a,b,t\n" + "".join(f"{i},{i % 7},{i % 3}\n" for i in range(30))
    (tmp_path / "q.csv").write_text(rows)
    (tmp_path / "block.mf").write_text(spec.read_text().replace('"diabetes"', '"q.csv"'))
    for argv, what in [([spec, "--save", spec], "is the spec"),
                       ([spec, "--save", tmp_path / "link.npz"], "is the spec"),
                       ([spec, "--data", tmp_path / "q.csv", "--save", tmp_path / "q.csv"],
                        "is the data file"),
                       ([tmp_path / "block.mf", "--save", tmp_path / "q.csv"],
                        "is the data file")]:
        one_line_error(*run(capsys, "run", *argv), what, "the params would replace it")
    assert spec.read_text() == (SPECS / "regressor.mf").read_text()
    assert (tmp_path / "q.csv").read_text() == rows and (tmp_path / "link.npz").is_symlink()


def test_save_replaces_only_a_model_file_without_force(capsys, tmp_path):
    other = write_spec(tmp_path, "x = Param(3)\ncost = Sum(x)\n", "other.mf")
    notes = tmp_path / "notes.npz"
    notes.write_text("mine")
    for path in (other, notes):
        before = path.read_bytes()
        code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 1, "--save", path)
        one_line_error(code, out, err, f"--save {path}", "not an mfc model file", "--force")
        assert path.read_bytes() == before
        code, _, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 1, "--save", path,
                           "--force")
        assert code == 0 and f"saved 1 param to {path}" in err
    code, _, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 1, "--save", notes)
    assert code == 0, err  # a model file now: mfc's to replace


def test_save_to_an_empty_name_asks_for_one(capsys):
    one_line_error(*run(capsys, "run", SPECS / "warmup.mf", "--save", ""),
                   "--save is empty; give a file name")


def test_an_output_over_the_data_names_the_data_as_the_user_did(capsys, tmp_path,
                                                                monkeypatch):
    (tmp_path / "q.csv").write_text("a,b,t\n" + "".join(f"{i},{i % 7},{i % 3}\n"
                                                        for i in range(30)))
    monkeypatch.chdir(tmp_path)
    one_line_error(*run(capsys, "run", SPECS / "regressor.mf", "--data", "q.csv",
                        "--batch-size", 5, "--save", "q.csv"),
                   "mfc: error: --save q.csv is the data file 'q.csv'; the params would "
                   "replace it")


def test_save_refuses_what_is_not_a_regular_file_before_training(capsys, tmp_path):
    fifo = tmp_path / "p.npz"
    os.mkfifo(fifo)
    one_line_error(*run(capsys, "run", SPECS / "warmup.mf", "--save", fifo),
                   "not a regular file (a FIFO)")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_save_writes_through_a_symlink_and_takes_the_longest_names(capsys, tmp_path):
    target = tmp_path / ("p" * 251 + ".npz")
    (tmp_path / "link.npz").symlink_to(target.name)
    for path in (target, tmp_path / "link.npz"):
        code, _, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 1, "--save", path)
        assert code == 0, err
    assert (tmp_path / "link.npz").is_symlink()
    assert sorted(os.listdir(tmp_path)) == sorted(["link.npz", target.name])


def test_a_missing_data_file_says_so(capsys, tmp_path):
    spec = write_spec(tmp_path, (SPECS / "regressor.mf").read_text().replace(
        '"diabetes"', '"x.csv"'))
    code, out, err = run(capsys, "run", spec)
    assert code == 2 and "warning[W004]" in err
    assert err.endswith(f"mfc: error: data file 'x.csv' not found (looked in "
                        f"{tmp_path}/x.csv)\n")


@pytest.mark.parametrize("command", ["check", "run", "draw"])
def test_a_data_name_too_long_is_an_error_in_the_spec(capsys, tmp_path, command):
    spec = write_spec(tmp_path, (SPECS / "regressor.mf").read_text().replace(
        '"diabetes"', f'"{"d" * 300}.csv"'))
    code, _, err = run(capsys, command, spec, *(["-o", "-"] if command == "draw" else []))
    assert code == 1 and "error[E404]" in err and "File name too long" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("stage", ["mfc.lang.compiler.compile_text", "mfc.data.load"])
def test_ctrl_c_while_compiling_or_loading_is_one_line(capsys, monkeypatch, tmp_path, stage):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, interrupted)
    code, out, err = run(capsys, "run", SPECS / "regressor.mf", "--save", tmp_path / "p.npz")
    assert (code, out, err) == (130, "", "mfc: interrupted\n")
    assert os.listdir(tmp_path) == []  # nothing to save yet


def test_an_os_error_that_escapes_is_one_line(capsys, monkeypatch):
    def fails(args):
        raise OSError(36, "File name too long", "some/path")

    monkeypatch.setattr(cli.check, "run", fails)
    one_line_error(*run(capsys, "check", SPECS / "warmup.mf"),
                   "some/path: File name too long")


def test_spec_errors_exit_1_with_diagnostics(capsys, tmp_path):
    spec = write_spec(tmp_path, "X = Input(_, 2)\ncost = Sum(Foo(X))\n")
    code, _, err = run(capsys, "run", spec)
    assert code == 1 and "error[E102]" in err


def test_unfed_input_exits_1_with_a_diagnostic(capsys, tmp_path):
    spec = write_spec(tmp_path, "x = Param(2)\nX = Input(_, 2)\ncost = Sum(X * x)\n")
    code, _, err = run(capsys, "run", spec)
    assert code == 1
    assert err.startswith(f"{spec}:2:1: error[E407]: the loss needs Input 'X'")
    assert "^" in err and "Traceback" not in err


def test_nan_stops_the_run_and_saves_nothing(capsys, tmp_path):
    path = tmp_path / "p.npz"
    code, out, err = run(capsys, "run", SPECS / "regressor.mf", "--learning-rate", "1e6",
                         "--save", path)
    assert code == 1
    assert re.search(r"the loss became (nan|inf) in epoch \d+, step \d+ of 40; try a "
                     r"smaller learning rate", err)
    assert not path.exists()


def test_a_late_divergence_saves_the_last_finite_epoch_and_exits_1(capsys, tmp_path):
    spec = write_spec(tmp_path, "x = Param(1, init=10)\ncost = x ** 2 + 5\n"
                      "train { learning_rate = 1.5; epochs = 600 }\n")
    path = tmp_path / "p.npz"
    code, out, err = run(capsys, "run", spec, "--save", path)
    last = len(out.splitlines())  # the last epoch whose line was printed
    assert code == 1 and last > 500
    assert err.startswith(f"mfc: error: the loss became inf in epoch {last + 1}, step 1")
    assert err.count("\n") == 2
    assert f"saved 1 param to {path}, as of epoch {last}" in err
    with np.load(path, allow_pickle=False) as archive:
        assert archive["x"][0] == 10 * (-2.0) ** last


def test_save_then_load_resumes(capsys, tmp_path):
    path = tmp_path / "p.npz"
    code, first, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 3, "--save", path)
    assert code == 0 and f"saved 1 param to {path}" in err
    code, resumed, _ = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 1, "--load", path)
    assert code == 0
    # three updates took x from 10 to 10·0.8³ = 5.12, so the next loss is 5.12² + 5
    assert resumed.splitlines() == ["Epoch: 1, Loss: 31.214"]


def test_a_test_split_is_evaluated_after_training_and_kept_in_the_model(capsys, tmp_path):
    path = tmp_path / "m.npz"
    code, out, err = run(capsys, "run", SPECS / "iris.mf", "--epochs", 2, "--save", path)
    assert code == 0 and "Test rows" not in out  # the spec holds no test rows
    spec = write_spec(tmp_path, (SPECS / "iris.mf").read_text().replace(
        "validation = 0.2", "validation = 0.2; test = 0.2"))
    code, out, err = run(capsys, "run", spec, "--epochs", 2, "--save", path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[2:4] == ["", "Test rows (held out from training and validation):"]
    assert lines[4].startswith("loss (cost): ") and lines[4].endswith(" on 30 rows")
    assert lines[5].startswith("accuracy: ") and "confusion matrix:" in lines


def test_epochs_0_evaluates_the_loaded_params_and_trains_nothing(capsys, tmp_path):
    path = tmp_path / "m.npz"
    assert run(capsys, "run", SPECS / "iris.mf", "--epochs", 3, "--save", path)[0] == 0
    before = path.read_bytes()
    code, out, err = run(capsys, "run", SPECS / "iris.mf", "--epochs", 0, "--load", path)
    assert code == 0, err
    assert "Epoch:" not in out and out.startswith("\nValidation rows:\nloss (cost): ")
    code, out, _ = run(capsys, "run", SPECS / "regressor.mf", "--epochs", 0)
    assert code == 0 and out.startswith("\nTraining rows (none held out):\nloss (cost): ")
    assert "R²" in out and path.read_bytes() == before


def test_epochs_0_without_data_prints_the_loss(capsys, tmp_path):
    path = tmp_path / "w.npz"
    assert run(capsys, "run", SPECS / "warmup.mf", "--epochs", 3, "--save", path)[0] == 0
    code, out, _ = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 0, "--load", path)
    assert (code, out) == (0, "Loss: 31.214\n")


def test_an_old_params_file_loads_with_a_note(capsys, tmp_path):
    np.savez(tmp_path / "old.npz", x=np.array([5.12]))
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 1, "--load",
                         tmp_path / "old.npz")
    assert code == 0 and out == "Epoch: 1, Loss: 31.214\n"
    assert err.startswith("mfc: note: ") and "carries no preprocessing" in err


def test_mismatched_load_exits_2(capsys, tmp_path):
    np.savez(tmp_path / "p.npz", x=np.ones(3))
    code, _, err = run(capsys, "run", SPECS / "warmup.mf", "--load", tmp_path / "p.npz")
    assert code == 2 and "x has shape (3,) there, but (1,) in the spec" in err


@pytest.mark.parametrize("name,write,message", BAD_PARAMS_FILES)
def test_a_load_that_is_not_an_npz_of_arrays_exits_2_with_one_line(capsys, tmp_path, name,
                                                                  write, message):
    path = tmp_path / name
    write(path)
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--load", path)
    assert code == 2 and out == ""
    assert err.startswith("mfc: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("rate", ["1e6", "1e150"])
def test_a_diverging_run_says_one_line_without_numpy_warnings(capsys, rate):
    code, _, err = run(capsys, "run", SPECS / "regressor.mf", "--learning-rate", rate)
    assert code == 1
    assert err.startswith("mfc: error: the loss became") and err.count("\n") == 1


def test_on_a_terminal_a_progress_bar_is_drawn_and_cleared(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 2)
    assert code == 0 and len(out.splitlines()) == 2
    assert "] epoch 1/2  step 1/1  loss 105" in err and "] epoch 2/2" in err
    *drawn, summary = err.split("\r\x1b[K")  # cleared before the summary
    assert summary.startswith("Done: 2 epochs") and summary.count("\n") == 1


def test_ctrl_c_keeps_the_last_completed_step(capsys, tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    report = cli.run._Progress.report

    def interrupt_after_epoch_2(progress, epoch):
        report(progress, epoch)
        if epoch.number == 2:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(cli.run._Progress, "report", interrupt_after_epoch_2)
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--save", path)
    assert code == 130
    assert len(out.splitlines()) == 2 and "interrupted after epoch 2" in err
    with np.load(path, allow_pickle=False) as archive:
        assert archive["x"][0] == pytest.approx(10 * 0.8 ** 2)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_keep_the_last_completed_step(capsys, tmp_path, monkeypatch, signum):
    path = tmp_path / "p.npz"
    report = cli.run._Progress.report

    def signal_after_epoch_2(progress, epoch):
        report(progress, epoch)
        if epoch.number == 2:
            signal.raise_signal(signum)

    monkeypatch.setattr(cli.run._Progress, "report", signal_after_epoch_2)
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--save", path)
    assert code == 128 + signum
    name = signal.Signals(signum).name
    assert len(out.splitlines()) == 2 and f"interrupted ({name}) after epoch 2" in err
    with np.load(path, allow_pickle=False) as archive:
        assert archive["x"][0] == pytest.approx(10 * 0.8 ** 2)
    assert signal.getsignal(signum) is signal.SIG_DFL


def test_a_sigterm_from_outside_saves_and_exits_143(tmp_path):
    import subprocess

    spec = write_spec(tmp_path, "x = Param(1, init=10)\ncost = x ** 2 + 5\n"
                      "train { learning_rate = 0.001; epochs = 100000000 }\n")
    path = tmp_path / "p.npz"
    process = subprocess.Popen([sys.executable, "-m", "mfc", "run", str(spec), "--save",
                                str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().startswith("Epoch: 1,")  # training has begun
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and f"saved 1 param to {path}" in err
    with np.load(path, allow_pickle=False) as archive:
        assert 0 < archive["x"][0] < 10


# ---------------------------------------------------------------- mfc draw


@pytest.fixture
def lesson(tmp_path):
    path = tmp_path / "lesson.mf"
    path.write_text(LESSON)
    return path


@pytest.fixture
def no_renderer(monkeypatch):
    monkeypatch.setattr(render_mod, "_system_dot", lambda: None)
    monkeypatch.setattr(render_mod, "_graphviz_pure", lambda: None)


def needs(fmt):
    if find_renderer(fmt) is None:
        pytest.skip(f"no {fmt} renderer on this machine")


def test_default_output_is_svg_beside_the_spec(lesson):
    needs("svg")
    assert main(["draw", str(lesson)]) == 0
    ET.parse(lesson.with_suffix(".svg"))


def test_format_dot_without_output_goes_beside_the_spec(lesson, no_renderer):
    assert main(["draw", str(lesson), "--format", "dot"]) == 0
    assert lesson.with_suffix(".dot").read_text().startswith("digraph mfc {")


@pytest.mark.parametrize("name, check", [
    ("out.dot", lambda data: data.startswith(b"digraph")),
    ("out.SVG", lambda data: b"<svg" in data),
    ("out.png", lambda data: data.startswith(PNG_MAGIC)),
])
def test_output_extension_chooses_the_format(lesson, tmp_path, name, check):
    if not name.endswith(".dot"):
        needs(name.rsplit(".", 1)[1].lower())
    assert main(["draw", str(lesson), "-o", str(tmp_path / name)]) == 0
    assert check((tmp_path / name).read_bytes())


def test_dash_writes_to_stdout(lesson, tmp_path, capsys):
    assert main(["draw", str(lesson), "-o", "-", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph mfc {")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.mf"]


def test_dash_writes_svg_by_default(lesson, capsys):
    needs("svg")
    assert main(["draw", str(lesson), "-o", "-"]) == 0
    ET.fromstring(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["out.jpg", "out"])
def test_unknown_output_extension_is_one_line_exit_2(lesson, tmp_path, capsys, name):
    assert main(["draw", str(lesson), "-o", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--format" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.mf"]


def test_explicit_format_wins_over_the_extension(lesson, tmp_path):
    assert main(["draw", str(lesson), "-o", str(tmp_path / "out.txt"), "--format", "dot"]) == 0
    assert (tmp_path / "out.txt").read_text().startswith("digraph")


def test_invalid_spec_exits_1_with_diagnostics_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "bad.mf"
    spec.write_text("x = Input(_, 3)\ncost = Sum(x, axs=0)\n")
    assert main(["draw", str(spec), "--format", "dot"]) == 1
    assert "error[E106]" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mf"]


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_no_renderer_exits_2_with_one_line_saying_what_to_install(lesson, tmp_path, capsys,
                                                                   no_renderer, fmt):
    assert main(["draw", str(lesson), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.mf"]


def test_a_failed_render_leaves_the_old_file_alone(lesson, tmp_path, no_renderer):
    old = tmp_path / "out.svg"
    old.write_text("old")
    assert main(["draw", str(lesson), "-o", str(old)]) == 2
    assert old.read_text() == "old"


def test_writing_replaces_the_file_and_leaves_no_temporary(lesson, tmp_path):
    out = tmp_path / "out.dot"
    out.write_text("digraph old {}\n")
    assert main(["draw", str(lesson), "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.mf", "out.dot"]


@pytest.mark.parametrize("name,content,fmt", [
    ("h.csv", "a,b\n1,2\n", "png"), ("h.csv", "a,b\n1,2\n", "dot"),
    ("notes.svg", "my notes", "dot"), ("old.dot", "x = Param(3)\n", "dot")])
def test_draw_replaces_only_a_drawing_of_the_format_its_name_says(lesson, tmp_path, capsys,
                                                                  no_renderer, name, content,
                                                                  fmt):
    out = tmp_path / name
    out.write_text(content)
    code, stdout, err = run(capsys, "draw", lesson, "-o", out, "--format", fmt)
    one_line_error(code, stdout, err, f"-o {out}", "--force")
    assert out.read_text() == content
    if fmt == "dot":  # renders with nothing installed
        assert run(capsys, "draw", lesson, "-o", out, "--format", fmt, "--force")[0] == 0
        assert out.read_text().startswith("digraph mfc {")


def test_draw_to_an_empty_name_asks_for_one(lesson, capsys):
    one_line_error(*run(capsys, "draw", lesson, "-o", ""), "--output is empty; give a file name")


def test_unwritable_output_is_one_line_exit_2(lesson, tmp_path, capsys):
    assert main(["draw", str(lesson), "-o", str(tmp_path / "no" / "out.dot")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err


def test_never_draws_over_the_spec(lesson, capsys):
    assert main(["draw", str(lesson), "-o", str(lesson), "--format", "dot"]) == 2
    assert lesson.read_text() == LESSON


def test_never_draws_over_the_spec_through_a_symlink(lesson, capsys):
    link = lesson.with_name("link.svg")
    link.symlink_to(lesson.name)
    one_line_error(*run(capsys, "draw", lesson, "-o", link),
                   f"-o {link} is the spec '{lesson}' (a symlink to it); will not draw over it")
    assert lesson.read_text() == LESSON and link.is_symlink()


def test_never_draws_over_the_data(tmp_path, capsys):
    rows = "a,t\n" + "1,2\n" * 11  # as many as LESSON's batch_size
    (tmp_path / "q.csv").write_text(rows)
    spec = write_spec(tmp_path, LESSON.replace('"diabetes"', '"q.csv"'))
    one_line_error(*run(capsys, "draw", spec, "-o", tmp_path / "q.csv", "--format", "dot"),
                   "is the data file", "the drawing would replace it")
    assert (tmp_path / "q.csv").read_text() == rows


def test_a_spec_named_like_its_drawing_asks_for_o(tmp_path, capsys):
    spec = write_spec(tmp_path, LESSON, "net.svg")
    one_line_error(*run(capsys, "draw", spec), "name the drawing with -o")
    assert spec.read_text() == LESSON


def test_draw_refuses_a_symlink_loop_and_a_fifo(lesson, tmp_path, capsys):
    (tmp_path / "a.dot").symlink_to("b.dot")
    (tmp_path / "b.dot").symlink_to("a.dot")
    os.mkfifo(tmp_path / "f.dot")
    one_line_error(*run(capsys, "draw", lesson, "-o", tmp_path / "a.dot"), "cannot write")
    one_line_error(*run(capsys, "draw", lesson, "-o", tmp_path / "f.dot"),
                   "not a regular file (a FIFO)")
    assert stat.S_ISFIFO((tmp_path / "f.dot").stat().st_mode)
    assert sorted(os.listdir(tmp_path)) == ["a.dot", "b.dot", "f.dot", "lesson.mf"]


def test_large_spec_collapses_by_itself_with_a_note(tmp_path, capsys):
    spec = tmp_path / "deep.mf"
    spec.write_text(chain_spec(60))
    assert main(["draw", str(spec), "-o", "-", "--format", "dot"]) == 0
    out, err = capsys.readouterr()
    assert "note:" in err and "--max-nodes" in err
    assert "nodes drawn as" in out


def test_max_nodes_raises_the_limit(tmp_path, capsys):
    spec = tmp_path / "deep.mf"
    spec.write_text(chain_spec(60))
    assert main(["draw", str(spec), "-o", "-", "--format", "dot", "--max-nodes", "1000"]) == 0
    out, err = capsys.readouterr()
    assert "note:" not in err and "nodes drawn as" not in out


def test_a_large_spec_of_fragment_calls_folds_by_itself(tmp_path, capsys):
    spec = tmp_path / "deep.mf"
    spec.write_text("use std\nX = Input(_, 4)\nh = repeat(60, Dense, X, 4, act = ReLU)\n"
                    "cost = Sum(h)\n")
    assert main(["draw", str(spec), "-o", "-", "--format", "dot"]) == 0
    out, err = capsys.readouterr()
    assert "each fragment call is drawn as one box" in err
    assert "h: 60× Dense(4, ReLU)" in out
    assert main(["draw", str(spec), "-o", "-", "--format", "dot", "--collapse"]) == 0
    assert "60× Dense" not in capsys.readouterr().out


def test_collapse_flag_collapses_a_small_spec(tmp_path, capsys):
    spec = tmp_path / "deep.mf"
    spec.write_text(chain_spec(5))
    assert main(["draw", str(spec), "-o", "-", "--format", "dot", "--collapse"]) == 0
    out, err = capsys.readouterr()
    assert "5×(Linear → ReLU)" in out and "note:" not in err


def test_negative_max_nodes_is_a_usage_error(lesson, capsys):
    assert main(["draw", str(lesson), "--format", "dot", "--max-nodes", "-1"]) == 2


def test_a_format_other_than_the_name_says_is_written_with_a_note(tmp_path, capsys):
    out = tmp_path / "net.svg"
    code, _, err = run(capsys, "draw", SPECS / "warmup.mf", "-o", out, "--format", "dot")
    assert code == 0 and out.read_text().startswith("digraph")
    assert err.startswith("mfc: note: ") and "dot" in err and "svg" in err


@pytest.mark.parametrize("debug", [False, True])
def test_an_error_that_is_not_mfcs_is_a_bug_and_says_so(capsys, monkeypatch, debug):
    def broken(args):
        raise ValueError("an invariant broke")

    monkeypatch.setattr(cli.check, "run", broken)
    argv = (["--debug"] if debug else []) + ["check", str(SPECS / "warmup.mf")]
    assert main(argv) == 70
    err = capsys.readouterr().err
    assert "mfc: internal error: ValueError: an invariant broke" in err
    assert "please report it" in err
    assert ("Traceback" in err) == debug


# ---------------------------------------------------------------- the command line


def test_run_help_gives_each_common_flag_its_help_and_default(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for flag, default in [("--epochs", "10"), ("--batch-size", "32"),
                          ("--learning-rate", "0.01"), ("--seed", "0")]:
        described = re.search(rf"{flag} \S+ (.*?) \(default: the train block's, else "
                              rf"{re.escape(default)}\)", help_text)
        assert described and described.group(1), flag
    assert "--set NAME=VALUE" in help_text and "target_column" in help_text


CSV_WITH_PRICE = "a,b,price,note\n" + "".join(f"{i},{i % 7},{2 * i},{i % 3}\n" for i in range(40))


def test_set_reaches_every_train_setting(capsys, tmp_path):
    (tmp_path / "house.csv").write_text(CSV_WITH_PRICE)
    spec = write_spec(tmp_path, "X, y = Input(), Input()\nW, b = Param(_, 1), Param(1)\n"
                      "cost = MSE(y, Linear(X, W, b))\n")
    code, out, err = run(capsys, "run", spec, "--data", tmp_path / "house.csv", "--set",
                         "target_column=price", "--set", "validation=0.25", "--set",
                         "batch_size=5", "--set", "sampling=resample", "--set",
                         "standardize=false", "--set", "dtype=float32", "--epochs", "2")
    assert code == 0, err
    assert len(out.splitlines()) == 2 and "Validation loss" in out


@pytest.mark.parametrize("flags,parts", [
    (["--set", "epochs=abc"], ["epochs", "whole number", "'abc'"]),
    (["--set", "epoch=3"], ["epoch", "did you mean 'epochs'"]),
    (["--set", "validation"], ["--set takes NAME=VALUE"]),
    (["--set", "optimizer=adagrad"], ["optimizer", "sgd, momentum, adam"]),
    (["--set", "epochs=3", "--epochs", "4"], ["epochs", "twice"]),
    (["--set", "seed=1", "--set", "seed=2"], ["seed", "twice"]),
    (["--epochs", "2.5"], ["epochs", "whole number"]),
])
def test_a_bad_set_is_one_line_exit_2(capsys, flags, parts):
    one_line_error(*run(capsys, "run", SPECS / "warmup.mf", *flags), *parts)


def test_a_whole_number_written_with_an_exponent_is_a_whole_number(capsys):
    code, out, _ = run(capsys, "run", SPECS / "warmup.mf", "--epochs", "3e0", "--set",
                       "batch_size=1e1")
    assert code == 0 and len(out.splitlines()) == 3


@pytest.mark.parametrize("argv,wrong,meant", [
    (["run", "--epohcs", "3", "x.mf"], "--epohcs", "--epochs"),
    (["run", "x.mf", "--learning_rate=0.1"], "--learning_rate", "--learning-rate"),
    (["draw", "x.mf", "--colapse"], "--colapse", "--collapse"),
    (["check", "--formt", "json", "x.mf"], "--formt", "--format"),
])
def test_a_misspelt_flag_is_named_with_the_one_meant(capsys, argv, wrong, meant):
    one_line_error(*run(capsys, *argv), f"unknown flag {wrong}; did you mean {meant}?")


def test_ctrl_c_while_mfc_starts_is_one_line(capsys, monkeypatch):
    """The entry point imports the command under its own guard: a Ctrl-C while Python
    loads mfc's modules is "interrupted", not a traceback."""
    import importlib.abc

    from mfc import start

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "mfc.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "mfc.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert start.main(["check", str(SPECS / "warmup.mf")]) == 130
    assert capsys.readouterr().err == "mfc: interrupted\n"


def test_the_console_script_starts_at_the_guarded_entry_point():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'mfc = "mfc.start:main"' in text


def test_the_readmes_run_output_is_what_mfc_prints(capsys):
    """The README shows what a fresh install prints: the epochs it lists before '...'."""
    readme = (ROOT / "README.md").read_text()
    for spec in ("regressor", "digits"):
        block = readme.split(f"$ mfc run specs/{spec}.mf\n", 1)[1].split("```", 1)[0]
        shown = block.split("...", 1)[0].splitlines()
        code, out, _ = run(capsys, "run", SPECS / f"{spec}.mf", "--epochs", len(shown))
        assert code == 0 and out.splitlines() == shown, spec


@pytest.mark.parametrize("argv,parts", [
    (["rn", "x.mf"], ["unknown command 'rn'; did you mean 'run'?"]),
    (["--debug", "chek", "x.mf"], ["unknown command 'chek'; did you mean 'check'?"]),
    (["check"], ["required: FILE", "(see 'mfc check --help')"]),
    (["run", "x.mf", "--epochs"], ["expected one argument", "(see 'mfc run --help')"]),
])
def test_usage_errors_say_which_command_and_where_its_help_is(capsys, argv, parts):
    one_line_error(*run(capsys, *argv), *parts)


@pytest.mark.parametrize("argv,name", [
    (["run", SPECS / "warmup.mf", "--load", ""], "--load"),  # was: trained from scratch
    (["export", SPECS / "warmup.mf", "--load", ""], "--load"),
    (["check", SPECS / "warmup.mf", ""], "FILE"),  # was: '' taken for the folder
    (["plot", ""], "LOG"),  # was: an internal error
    (["run", SPECS / "warmup.mf", "--log", ""], "--log"),
    (["info", ""], "MODEL.npz"),
])
def test_an_empty_file_name_is_one_line_naming_the_argument(capsys, argv, name):
    one_line_error(*run(capsys, *argv), f"mfc: error: {name} is empty; give a file name")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_outside_training_is_one_line_and_writes_nothing(capsys, monkeypatch,
                                                                 tmp_path, signum):
    from mfc.draw import render

    def stopped(*args, **kwargs):
        signal.raise_signal(signum)

    monkeypatch.setattr(render, "render", stopped)
    code, out, err = run(capsys, "draw", SPECS / "warmup.mf", "-o", tmp_path / "w.svg")
    assert (code, out) == (128 + signum, "")
    assert err == f"mfc: interrupted ({signal.Signals(signum).name})\n"
    assert os.listdir(tmp_path) == [] and signal.getsignal(signum) is signal.SIG_DFL


# ---------------------------------------------------------------- seeing the run

EPOCH_OR_SUMMARY = re.compile(r"^(Done|Stopped early|Interrupted)")


def summary_of(err: str) -> str:
    """The final summary line, the last line on stderr."""
    (line,) = [x for x in err.split("\r\x1b[K")[-1].splitlines() if EPOCH_OR_SUMMARY.match(x)]
    return line


def test_every_run_ends_with_a_summary_line(capsys):
    code, out, err = run(capsys, "run", SPECS / "iris.mf", "--epochs", 5)
    assert code == 0 and len(out.splitlines()) == 5
    assert re.fullmatch(r"Done: 5 epochs, \d+\.\d\d s; best epoch \d \(validation loss "
                        r"\d\.\d{3}\); final validation loss \d\.\d{3}", summary_of(err))


def test_quiet_prints_only_the_summary(capsys):
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--quiet")
    assert code == 0 and out == ""
    assert summary_of(err).startswith("Done: 50 epochs") and err.count("\n") == 1


@pytest.mark.parametrize("every, shown", [(3, [3, 6, 7]), (7, [7]), (10, [7])])
def test_every_prints_each_nth_epoch_and_the_last(capsys, every, shown):
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 7, "--every", every)
    assert code == 0
    assert [int(EPOCH_LINE.match(x).group(1)) for x in out.splitlines()] == shown
    assert summary_of(err).startswith("Done: 7 epochs")


def test_every_prints_the_epoch_an_early_stop_ends_at(capsys, tmp_path):
    spec = write_spec(tmp_path, LESSON.replace("epochs = 100", "epochs = 500"))
    code, out, err = run(capsys, "run", spec, "--set", "validation=0.5", "--set",
                         "patience=3", "--learning-rate", "0.2", "--optimizer", "adam",
                         "--every", "1000")
    last = int(re.match(r"Stopped early at epoch (\d+)", summary_of(err)).group(1))
    assert code == 0 and [EPOCH_LINE.match(x).group(1) for x in out.splitlines()] == [str(last)]


@pytest.mark.parametrize("flags", [["--every", "0"], ["--every", "x"],
                                   ["--every", "2", "--quiet"]])
def test_bad_every_is_one_line_exit_2(capsys, flags):
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", *flags)
    assert code == 2 and out == "" and err.startswith("mfc: error:") and err.count("\n") == 1


def test_the_epoch_line_shows_a_scheduled_rate(capsys):
    code, out, _ = run(capsys, "run", SPECS / "warmup.mf", "--epochs", 3, "--set",
                       "lr_schedule=step", "--set", "step_size=1", "--set", "gamma=0.5")
    assert code == 0
    assert [x.rsplit(", ", 1)[1] for x in out.splitlines()] == [
        "Learning rate: 0.1", "Learning rate: 0.05", "Learning rate: 0.025"]


def test_early_stopping_from_the_command_line_says_why_it_stopped(capsys, tmp_path):
    spec = write_spec(tmp_path, LESSON.replace("epochs = 100", "epochs = 500"))
    code, out, err = run(capsys, "run", spec, "--set", "validation=0.5", "--set",
                         "patience=3", "--learning-rate", "0.2", "--optimizer", "adam")
    assert code == 0 and len(out.splitlines()) < 500
    summary = summary_of(err)
    assert re.match(r"Stopped early at epoch (\d+) of 500 \(no better validation loss for "
                    r"3 epochs\).*; best epoch \d+ \(validation loss [\d.]+\), its params "
                    r"kept; final validation loss", summary), summary


@pytest.mark.parametrize("flags", [["--set", "patience=3"], ["--set", "lr_schedule=plateau"],
                                   ["--set", "lr_schedule=step"]])
def test_a_setting_that_needs_another_is_one_line_exit_2(capsys, flags):
    code, out, err = run(capsys, "run", SPECS / "warmup.mf", *flags)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"mfc: error: {flags[1].split('=')[0]}: ")


def test_log_csv_has_a_row_per_epoch_as_the_lines_say(capsys, tmp_path):
    log = tmp_path / "run.csv"
    code, out, _ = run(capsys, "run", SPECS / "iris.mf", "--epochs", 4, "--log", log)
    assert code == 0
    lines = log.read_text().splitlines()
    assert lines[0] == ("epoch,loss,validation_loss,validation_accuracy,learning_rate,"
                        "seconds")
    rows = [dict(zip(lines[0].split(","), x.split(","))) for x in lines[1:]]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    for row, line in zip(rows, out.splitlines()):
        assert line.startswith(f"Epoch: {row['epoch']}, Loss: {float(row['loss']):.3f}, "
                               f"Validation loss: {float(row['validation_loss']):.3f}, "
                               f"Validation accuracy: {float(row['validation_accuracy']):.3f}")
        assert float(row["learning_rate"]) == 0.05 and float(row["seconds"]) >= 0


def test_log_jsonl_is_written_as_training_goes(capsys, tmp_path, monkeypatch):
    import json

    log = tmp_path / "run.jsonl"
    seen = []
    report = cli.run._Progress.report

    def reading_the_log(self, epoch):  # after each epoch, the log already has its row
        seen.append(len(log.read_text().splitlines()))
        report(self, epoch)

    monkeypatch.setattr(cli.run._Progress, "report", reading_the_log)
    code, _, _ = run(capsys, "run", SPECS / "regressor.mf", "--epochs", 3, "--log", log)
    assert code == 0 and seen == [1, 2, 3]
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert [sorted(r) for r in rows] == [["epoch", "learning_rate", "loss", "seconds"]] * 3


@pytest.mark.parametrize("name, content, message", [
    ("notes.csv", "a,b\n1,2\n", "is not an mfc run log; --force replaces it"),
    ("run.txt", None, "name it .csv, or .jsonl"),
    ("run.csv", "SPEC", "is the spec"),
])
def test_log_refuses_what_it_should_not_write(capsys, tmp_path, name, content, message):
    spec_name = name if content == "SPEC" else "net.mf"  # a spec named run.csv, say
    spec = write_spec(tmp_path, (SPECS / "warmup.mf").read_text(), spec_name)
    path = spec if content == "SPEC" else tmp_path / name
    if content not in (None, "SPEC"):
        path.write_text(content)
    code, out, err = run(capsys, "run", spec, "--log", path)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    if content not in (None, "SPEC"):
        assert path.read_text() == content


def test_log_replaces_a_log_of_its_own(capsys, tmp_path):
    log = tmp_path / "run.csv"
    assert run(capsys, "run", SPECS / "warmup.mf", "--epochs", 5, "--log", log)[0] == 0
    assert run(capsys, "run", SPECS / "warmup.mf", "--epochs", 2, "--log", log)[0] == 0
    assert len(log.read_text().splitlines()) == 3


def test_plot_flag_draws_the_curve_at_the_end(capsys, tmp_path):
    picture = tmp_path / "curve.png"
    code, _, err = run(capsys, "run", SPECS / "iris.mf", "--epochs", 3, "--plot", picture)
    assert code == 0 and picture.read_bytes().startswith(PNG_MAGIC)
    assert f"drew the loss curve in {picture}" in err


def test_plot_and_log_may_not_be_the_same_file(capsys, tmp_path):
    code, _, err = run(capsys, "run", SPECS / "warmup.mf", "--log", tmp_path / "a.csv",
                       "--save", tmp_path / "a.csv")
    assert code == 2 and "name the same file" in err


def test_a_closed_stdout_loses_neither_the_run_nor_its_save(tmp_path):
    """`mfc run ... --save m.npz | head -1`: head goes away, the training and the save do not."""
    import subprocess

    path = tmp_path / "p.npz"
    process = subprocess.Popen([sys.executable, "-m", "mfc", "run", str(SPECS / "warmup.mf"),
                                "--epochs", "3000", "--save", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "Epoch: 1, Loss: 105.000\n"
    process.stdout.close()  # as head does once it has its lines
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0, err
    assert "stdout was closed" in err and f"saved 1 param to {path}" in err
    assert "Traceback" not in err and "Exception ignored" not in err


# ---------------------------------------------------------------- checkpoints and resume


def params_of(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.endswith(("1", "2"))}


@pytest.mark.parametrize("optimizer", ["momentum", "adamw"])
@pytest.mark.parametrize("sampling", ["shuffle", "resample"])
def test_5_epochs_then_resumed_to_10_is_10_in_one_go(capsys, tmp_path, optimizer, sampling):
    flags = ["--optimizer", optimizer, "--set", f"sampling={sampling}", "--set",
             "lr_schedule=step", "--set", "step_size=3", "--set", "patience=4"]
    half, resumed, whole = (tmp_path / n for n in ("half.npz", "resumed.npz", "whole.npz"))
    assert run(capsys, "run", SPECS / "iris.mf", "--epochs", 5, "--save", half, *flags)[0] == 0
    code, out, err = run(capsys, "run", SPECS / "iris.mf", "--epochs", 10, "--resume", half,
                         "--save", resumed, *flags)
    assert code == 0 and "resuming after epoch 5 of 10" in err
    assert [EPOCH_LINE.match(x).group(1) for x in out.splitlines()] == [
        "6", "7", "8", "9", "10"]
    assert run(capsys, "run", SPECS / "iris.mf", "--epochs", 10, "--save", whole, *flags)[0] == 0
    for name, array in params_of(whole).items():
        assert np.array_equal(array, params_of(resumed)[name]), name


def test_checkpoint_every_writes_a_checkpoint_to_resume_from(capsys, tmp_path, monkeypatch):
    checkpoint, whole, resumed = (tmp_path / n for n in ("c.npz", "w.npz", "r.npz"))
    flags = ["--set", "lr_schedule=cosine", "--set", "warmup_epochs=2"]
    saves = []
    save = cli.run._save

    def interrupt_after_the_checkpoint_of_epoch_4(path, model, when="", **kwargs):
        save(path, model, when, **kwargs)
        saves.append(when)
        if "epoch 4" in when:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(cli.run, "_save", interrupt_after_the_checkpoint_of_epoch_4)
    code, _, err = run(capsys, "run", SPECS / "iris.mf", "--epochs", 9, "--set",
                       "checkpoint_every=2", "--checkpoint", checkpoint, *flags)
    assert code == 128 + signal.SIGTERM
    assert saves[:2] == ["a checkpoint at epoch 2", "a checkpoint at epoch 4"]
    monkeypatch.undo()
    code, out, _ = run(capsys, "run", SPECS / "iris.mf", "--epochs", 9, "--resume",
                       checkpoint, "--save", resumed, *flags)
    assert code == 0 and out.splitlines()[0].startswith("Epoch: 5,")
    assert run(capsys, "run", SPECS / "iris.mf", "--epochs", 9, "--save", whole, *flags)[0] == 0
    for name, array in params_of(whole).items():
        assert np.array_equal(array, params_of(resumed)[name]), name


OPTIMIZERS = ["sgd", "momentum", "rmsprop", "adam", "adamw"]


@pytest.mark.parametrize("before, after", [(a, b) for a in OPTIMIZERS for b in OPTIMIZERS
                                           if a != b])
def test_resuming_with_another_optimizer_starts_its_state_fresh(capsys, tmp_path, before,
                                                                after):
    half = tmp_path / "half.npz"
    assert run(capsys, "run", SPECS / "iris.mf", "--epochs", 2, "--optimizer", before,
               "--save", half)[0] == 0
    code, out, err = run(capsys, "run", SPECS / "iris.mf", "--epochs", 3, "--resume", half,
                         "--optimizer", after)
    assert code == 0 and out.startswith("Epoch: 3,")
    assert f"note: the checkpoint was trained with {before}: {after} starts with a " \
           "fresh state" in err


def test_resuming_with_another_optimizer_on_torch(capsys, tmp_path):
    pytest.importorskip("torch")
    half = tmp_path / "half.npz"
    assert run(capsys, "run", SPECS / "iris.mf", "--epochs", 2, "--optimizer", "adam",
               "--backend", "torch", "--save", half)[0] == 0
    code, out, err = run(capsys, "run", SPECS / "iris.mf", "--epochs", 3, "--resume", half,
                         "--optimizer", "momentum", "--backend", "torch")
    assert code == 0 and out.startswith("Epoch: 3,") and "fresh state" in err


@pytest.mark.parametrize("flags, message", [
    (["--set", "checkpoint_every=2"], "checkpoint_every needs a file"),
    (["--resume", "DONE", "--epochs", "3"], "has trained 3 epochs already"),
    (["--resume", "DONE", "--load", "DONE"], "not allowed with argument"),
    (["--resume", "DONE", "--set", "batch_size=5", "--epochs", "6"],
     "resuming needs the same data"),
    (["--resume", "PARAMS"], "holds no training state"),
])
def test_bad_resumes_and_checkpoints_are_one_line_exit_2(capsys, tmp_path, flags, message):
    from mfc.modelfile import save_params

    done = tmp_path / "done.npz"
    assert run(capsys, "run", SPECS / "iris.mf", "--epochs", 3, "--save", done)[0] == 0
    save_params(tmp_path / "params.npz", params_of(done))
    flags = [str(done) if f == "DONE" else str(tmp_path / "params.npz") if f == "PARAMS"
             else f for f in flags]
    code, out, err = run(capsys, "run", SPECS / "iris.mf", *flags)
    assert code == 2 and message in err
    assert err.splitlines()[-1].startswith("mfc: error:")


def test_resuming_a_file_saved_after_0_epochs_says_so(capsys, tmp_path):
    path = tmp_path / "e0.npz"
    assert run(capsys, "run", SPECS / "iris.mf", "--epochs", 0, "--save", path)[0] == 0
    one_line_error(*run(capsys, "run", SPECS / "iris.mf", "--resume", path),
                   "saved before any epoch was trained", "--load starts from its params")


def test_an_early_stopped_run_saves_the_best_epochs_params(capsys, tmp_path):
    """A wide net on a small split overfits: the run stops before its budget, and the
    saved params give the best epoch's validation loss, as the log has it."""
    import json

    import mfc

    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 10))
    np.savez(tmp_path / "noisy.npz", X=X, y=X[:, 0] + rng.normal(size=48))
    spec = write_spec(tmp_path, LESSON.replace('"diabetes"', '"noisy.npz"').replace(
        "Param(_, 10), Param(10)", "Param(_, 256, init=he), Param(256)").replace(
        "Param(10, 1)", "Param(256, 1)").replace("Sigmoid(l1)", "ReLU(l1)"))
    log, saved = tmp_path / "run.jsonl", tmp_path / "m.npz"
    code, out, err = run(capsys, "run", spec, "--epochs", 300, "--batch-size", 8,
                         "--optimizer", "adam", "--set", "validation=0.5", "--set",
                         "patience=10", "--log", log, "--save", saved)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    best = min(rows, key=lambda r: r["validation_loss"])
    assert code == 0 and len(rows) == best["epoch"] + 10 < 300
    assert f"best epoch {best['epoch']} (validation loss" in summary_of(err)
    model = mfc.load(spec)
    model.restore(saved)
    model.prepare(validation=0.5)
    assert model.evaluate(part="validation").loss == pytest.approx(best["validation_loss"],
                                                                   rel=1e-12)
