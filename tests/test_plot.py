"""Run logs (mfc.runlog), loss curves (mfc.plot) and `mfc plot`."""

import io
import json
import math
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET

import pytest

from mfc import plot, runlog
from mfc.cli import main
from mfc.train import Epoch

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

EPOCHS = [Epoch(1, 2.0, 2.5, 0.5, 0.1, 0.01), Epoch(2, 1.0, 1.5, 0.7, 0.05, 0.01),
          Epoch(3, 0.5, 1.7, 0.8, 0.025, 0.02)]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_log(path, epochs=EPOCHS, validation=True):
    with open(path, "w", newline="") as file:
        writer = runlog.Writer(file, runlog.format_of(path),
                               runlog.columns_for(validation, validation))
        for epoch in epochs:
            writer.write(runlog.row(epoch))
    return path


# ---------------------------------------------------------------- logs


@pytest.mark.parametrize("name", ["run.csv", "run.jsonl"])
def test_a_log_reads_back_what_was_written(tmp_path, name):
    rows = runlog.read(write_log(tmp_path / name))
    assert rows == [{"epoch": e.number, "loss": e.loss, "validation_loss": e.validation_loss,
                     "validation_accuracy": e.accuracy, "learning_rate": e.learning_rate,
                     "seconds": e.seconds} for e in EPOCHS]


def test_a_log_without_validation_has_no_validation_columns(tmp_path):
    path = write_log(tmp_path / "run.csv", [Epoch(1, 3.0, learning_rate=0.1, seconds=0.5)],
                     validation=False)
    assert path.read_text() == "epoch,loss,learning_rate,seconds\n1,3.0,0.1,0.5\n"


def test_a_history_entry_becomes_a_row():
    entry = {"epoch": 4, "number": 4, "loss": 1.5, "accuracy": 0.9, "validation_loss": 2.0,
             "learning_rate": 0.01, "seconds": 0.2}
    assert runlog.from_history(entry) == {"epoch": 4, "loss": 1.5, "validation_accuracy": 0.9,
                                          "validation_loss": 2.0, "learning_rate": 0.01,
                                          "seconds": 0.2}


@pytest.mark.parametrize("name, text, message", [
    ("a.csv", "a,b\n1,2\n", "no epoch or loss column"),
    ("a.csv", "epoch,loss\n1,abc\n", "line 2: loss is 'abc'"),
    ("a.csv", "epoch,loss\n", "no epochs"),
    ("a.jsonl", '{"epoch": 1, "loss": 2}\nnot json\n', "line 2: not JSON"),
    ("a.jsonl", '{"epoch": 1}\n', "line 1: not a row"),
    ("a.csv", b"\xff\xfe", "not UTF-8"),
    ("a.csv", "epoch,loss\n99999999999999999999,1\n", "line 2: epoch is '99999999999999999999', "
     r"not a count of epochs \(a whole number from 0 to 2\*\*53\)$"),
    ("a.csv", "epoch,loss\n1.5,1\n", "line 2: epoch is '1.5', not a count"),
    ("a.csv", "epoch,loss\n-1,1\n", "line 2: epoch is '-1', not a count"),
    ("a.jsonl", '{"epoch": true, "loss": 2}\n', "line 1: epoch is True, not a number"),
    ("a.jsonl", '{"epoch": 1, "loss": 1' + "0" * 400 + '}\n',
     r"line 1: loss is 10+…0+, not a number$"),
])
def test_what_is_not_a_log_is_one_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(runlog.LogError, match=message):
        runlog.read(path)


# ---------------------------------------------------------------- curves

ROWS = [runlog.row(e) for e in EPOCHS]


def test_the_best_epoch_is_the_lowest_validation_loss_else_the_lowest_loss():
    assert plot.best_row(ROWS) == (ROWS[1], "validation_loss")
    plain = [{k: v for k, v in r.items() if k == "epoch" or k == "loss"} for r in ROWS]
    assert plot.best_row(plain) == (plain[2], "loss")


def test_the_best_epoch_is_never_a_loss_that_is_not_a_number():
    rows = [{"epoch": 1, "loss": math.nan}, {"epoch": 2, "loss": 2.0}, {"epoch": 3, "loss": 1.0}]
    assert plot.best_row(rows) == (rows[2], "loss")
    assert plot.best_row(rows[:1]) == (None, "loss")
    assert b"best epoch" not in plot.curve(rows[:1], "svg")


@pytest.mark.parametrize("losses", [
    (1e308, 1e-308, 1.0), (1.7e308, 1.0, 2.0), (1e308, -1e308, 5e307), (1.7e308, 1.7e308, 0.0),
    (5e-324, 1.7e308, 1.0), (math.inf, math.nan, 1.0),
])
def test_losses_at_the_ends_of_float64_draw_without_warnings(losses):
    rows = [{"epoch": i, "loss": v, "validation_loss": losses[-i],
             "learning_rate": 10.0 ** (i * 100)} for i, v in enumerate(losses, 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow in matplotlib's margins and ticks
        for fmt in ("png", "svg"):
            assert plot.curve(rows, fmt)


def test_huge_losses_are_drawn_on_a_scaled_axis_that_says_so():
    rows = [{"epoch": 1, "loss": 1e308}, {"epoch": 2, "loss": -1e308}]
    assert "loss (× 1e308)" in plot.curve(rows, "svg").decode()


def test_a_png_curve_is_a_png_with_text_axes():
    image = plot.curve(ROWS, "png", title="a run")
    assert image.startswith(PNG_MAGIC) and len(image) > 10_000


def test_an_svg_curve_labels_its_axes_marks_the_best_epoch_and_the_rate():
    svg = plot.curve(ROWS, "svg", title="a run").decode()
    ET.fromstring(svg)  # well-formed
    for text in ("epoch", "loss", "validation loss", "best epoch 2", "learning rate",
                 "a run"):
        assert text in svg, text


def test_a_constant_rate_gets_no_second_axis():
    rows = [{**r, "learning_rate": 0.1} for r in ROWS]
    assert "learning rate" not in plot.curve(rows, "svg").decode()


def test_the_same_rows_draw_the_same_bytes():
    assert plot.curve(ROWS, "svg") == plot.curve(ROWS, "svg")
    assert plot.curve(ROWS, "pdf") == plot.curve(ROWS, "pdf")
    assert plot.curve(ROWS, "pdf").startswith(b"%PDF-")


# ---------------------------------------------------------------- mfc plot


@pytest.mark.parametrize("out, fmt, magic", [
    ("curve.png", None, PNG_MAGIC), ("curve.svg", None, b"<?xml"),
    ("curve.pdf", None, b"%PDF-"), ("curve.img", "svg", b"<?xml")])
def test_plot_writes_the_format_asked_for(capsys, tmp_path, out, fmt, magic):
    log = write_log(tmp_path / "run.csv")
    flags = ["--format", fmt] if fmt else []
    code, _, err = run(capsys, "plot", log, "-o", tmp_path / out, *flags)
    assert code == 0, err
    assert (tmp_path / out).read_bytes().startswith(magic)


def test_plot_writes_beside_the_log_by_default(capsys, tmp_path):
    log = write_log(tmp_path / "run.jsonl")
    assert run(capsys, "plot", log)[0] == 0
    assert (tmp_path / "run.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("make, flags, message", [
    (None, [], "no such file"),
    ("a,b\n1,2\n", [], "not a run log"),
    ("LOG", ["-o", "curve.gif"], "cannot tell the format"),
    ("LOG", ["-o", "notes.txt", "--format", "png"], "is not a png image; --force"),
    ("LOG", ["-o", "run.csv", "--format", "png"], "is the log itself"),
    ("LOG", ["-o", "nofolder/c.png"], "no folder"),
])
def test_plot_refuses_bad_input_in_one_line(capsys, tmp_path, monkeypatch, make, flags,
                                            message):
    monkeypatch.chdir(tmp_path)
    if make == "LOG":
        write_log(tmp_path / "run.csv")
    elif make is not None:
        (tmp_path / "run.csv").write_text(make)
    (tmp_path / "notes.txt").write_text("keep me")
    code, out, err = run(capsys, "plot", "run.csv", *flags)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_other_commands_do_not_import_matplotlib():
    code = ("import sys; from mfc.cli import main; main(['check', 'specs/warmup.mf']); "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_a_log_written_by_run_plots(capsys, tmp_path):
    log = tmp_path / "run.jsonl"
    assert run(capsys, "run", "specs/iris.mf", "--epochs", 3, "--log", log)[0] == 0
    assert [json.loads(x)["epoch"] for x in io.StringIO(log.read_text())] == [1, 2, 3]
    assert run(capsys, "plot", log, "-o", tmp_path / "c.svg")[0] == 0
