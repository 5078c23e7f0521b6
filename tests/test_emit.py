"""`mfc emit`: the standalone script trains in a virtualenv that has numpy alone, prints
the lines `mfc run` prints, and saves a model file mfc loads."""

import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mfc
from mfc.cli import main

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.mf"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_script(python, script, *args, cwd):
    """stdout of the script, run with nothing of this environment (no PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([python, script, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_virtualenv_has_numpy_and_nothing_else(numpy_only_python, tmp_path):
    for module, found in [("numpy", True), ("mfc", False), ("sklearn", False)]:
        done = subprocess.run([numpy_only_python, "-c", f"import {module}"],
                              capture_output=True, env={}, cwd=tmp_path)
        assert (done.returncode == 0) == found, module


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_the_script_of_every_spec_prints_what_mfc_run_prints(capsys, tmp_path, spec,
                                                             numpy_only_python):
    script = tmp_path / "train_net.py"
    code, _, err = run(capsys, "emit", spec, "--target", "numpy", "-o", script, "--with-data")
    assert code == 0, err
    expected = run(capsys, "run", spec, "--save", tmp_path / "by_mfc.npz")[1]
    printed = run_script(numpy_only_python, script, "--save", "model.npz", cwd=tmp_path)
    assert printed == expected
    model = mfc.load(spec)
    model.restore(tmp_path / "model.npz")  # what `mfc predict` and `mfc eval` load
    by_mfc = mfc.load(spec)
    by_mfc.restore(tmp_path / "by_mfc.npz")
    for name, param in by_mfc.params.items():
        np.testing.assert_array_equal(model.params[name], param)
    assert [e["number"] for e in model.history] == [e["number"] for e in by_mfc.history]
    kept = [m.preprocessing and (m.preprocessing.classes, m.preprocessing.feature_names)
            for m in (model, by_mfc)]
    assert kept[0] == kept[1]


def test_the_script_reads_the_data_file_it_is_given(capsys, tmp_path, numpy_only_python):
    spec = next(p for p in SPECS if p.name == "iris.mf")
    run(capsys, "emit", spec, "-o", tmp_path / "a.py", "--with-data", "--epochs", 2)
    run(capsys, "emit", spec, "-o", tmp_path / "b.py", "--epochs", 2)
    assert not (tmp_path / "b.npz").exists()
    first = run_script(numpy_only_python, tmp_path / "a.py", cwd=tmp_path)
    again = run_script(numpy_only_python, tmp_path / "b.py", tmp_path / "a.npz", cwd=tmp_path)
    assert first == again and first.count("Epoch") == 2


def test_the_script_is_readable_and_names_the_spec(capsys):
    spec = next(p for p in SPECS if p.name == "regressor.mf")
    code, out, _ = run(capsys, "emit", spec)
    assert code == 0
    assert "    l1 = Linear(X, W1, b1); s1 = Sigmoid(l1)" in out  # the spec, in the header
    assert "# l1 = Linear(X, W1, b1)  (11, 10)" in out  # one op a line, with its shape
    assert "import sklearn" not in out and "import mfc" not in out
    compile(out, "train_net.py", "exec")


def test_step_only_is_the_generated_step(capsys):
    spec = next(p for p in SPECS if p.name == "digits.mf")
    code, out, _ = run(capsys, "emit", spec, "--step-only")
    assert code == 0
    assert out.startswith("def build(") and "def step():" in out and "Epoch" not in out


@pytest.mark.parametrize("flags", [["--with-data"], ["--target", "onnx"],
                                   ["-o", "missing/dir/x.py"]])
def test_bad_outputs_are_one_line_exit_2(capsys, flags):
    code, out, err = run(capsys, "emit", SPECS[0], *flags)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1


def test_an_existing_file_is_kept_without_force(capsys, tmp_path):
    script = tmp_path / "x.py"
    script.write_text("mine")
    code, _, err = run(capsys, "emit", SPECS[0], "-o", script)
    assert code == 2 and script.read_text() == "mine"
    assert run(capsys, "emit", SPECS[0], "-o", script, "--force")[0] == 0
    assert "def build_training(" in script.read_text()


@pytest.mark.parametrize("hidden,data", [("GELU(Linear(X, W1, b1))", "diabetes"),
                                         ("Dropout(Tanh(Linear(X, W1, b1)), 0.2)", "iris")])
def test_what_the_ops_need_comes_with_the_script(capsys, tmp_path, numpy_only_python,
                                                 hidden, data):
    """GELU's Φ is mfc's (numpy has no erf), Dropout draws from mfc's Noise: the script
    carries their source."""
    spec = tmp_path / "net.mf"
    loss = ("MSE" if data == "diabetes" else "CrossEntropy") + "(y, Linear(h, W2, b2))"
    width = 1 if data == "diabetes" else 3
    spec.write_text(f"X, y = Input(), Input()\nW1, b1 = Param(_, 8, init=he), Param(8)\n"
                    f"W2, b2 = Param(8, {width}, init=xavier), Param({width})\n"
                    f"h = {hidden}\ncost = {loss}\n"
                    f'train {{ data = "{data}"; epochs = 2; learning_rate = 0.001; '
                    "validation = 0.2 }\n")
    assert run(capsys, "emit", spec, "-o", tmp_path / "net.py", "--with-data")[0] == 0
    printed = run_script(numpy_only_python, tmp_path / "net.py", cwd=tmp_path)
    assert printed == run(capsys, "run", spec)[1]


@pytest.mark.parametrize("flags", [
    ["--optimizer", "adamw", "--set", "weight_decay=0.01", "--set", "lr_schedule=cosine"],
    ["--optimizer", "rmsprop", "--set", "clip_norm=0.5", "--set", "weight_decay=0.001"],
    ["--set", "lr_schedule=plateau", "--set", "lr_patience=1", "--set", "warmup_epochs=1"],
])
def test_optimizers_and_schedules_come_with_the_script(capsys, tmp_path, numpy_only_python,
                                                       flags):
    spec = next(p for p in SPECS if p.name == "iris.mf")
    flags = [*flags, "--epochs", 6]
    assert run(capsys, "emit", spec, "-o", tmp_path / "t.py", "--with-data", *flags)[0] == 0
    printed = run_script(numpy_only_python, tmp_path / "t.py", cwd=tmp_path)
    assert printed == run(capsys, "run", spec, *flags)[1]


@pytest.mark.parametrize("flags", [
    ["--set", "patience=2", "--set", "min_delta=0.05"],  # stops early, keeps the best
    ["--set", "restore_best=true"],                      # runs on, keeps the best
    ["--set", "patience=2", "--set", "min_delta=0.05", "--set", "restore_best=false"],
])
def test_early_stopping_comes_with_the_script(capsys, tmp_path, numpy_only_python, flags):
    spec = next(p for p in SPECS if p.name == "iris.mf")
    flags = [*flags, "--epochs", 12]
    assert run(capsys, "emit", spec, "-o", tmp_path / "t.py", "--with-data", *flags)[0] == 0
    printed = run_script(numpy_only_python, tmp_path / "t.py", "--save", "saved.npz",
                         cwd=tmp_path)
    assert printed == run(capsys, "run", spec, *flags, "--save", tmp_path / "m.npz")[1]
    assert printed.count("Epoch: ") < 12 or "patience" not in flags[1]
    by_script, by_mfc = mfc.load(spec), mfc.load(spec)
    by_script.restore(tmp_path / "saved.npz")
    by_mfc.restore(tmp_path / "m.npz")
    for name, param in by_mfc.params.items():
        np.testing.assert_array_equal(by_script.params[name], param)


# ---------------------------------------------------------------- the script's command line


def script_done(python, script, *args, cwd):
    """The script's finished process (no environment of this one, as run_script)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([python, script, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


def assert_one_line_exit_2(done):
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def iris_script(capsys, tmp_path):
    """An emitted iris script of one epoch, t.py, with its data t.npz."""
    spec = next(p for p in SPECS if p.name == "iris.mf")
    code, _, err = run(capsys, "emit", spec, "-o", tmp_path / "t.py", "--with-data",
                       "--epochs", 1)
    assert code == 0, err
    return tmp_path / "t.py"


def test_the_script_saves_over_no_file_it_did_not_write(iris_script, numpy_only_python):
    folder = iris_script.parent
    (folder / "flowers.csv").write_text("sepal,petal\n1,2\n")
    for target in ["t.py", "flowers.csv", "t.npz"]:  # itself, a CSV, its own data
        before = (folder / target).read_bytes()
        done = script_done(numpy_only_python, iris_script, "--save", target, cwd=folder)
        assert_one_line_exit_2(done)
        assert "--force" in done.stderr and (folder / target).read_bytes() == before
    (folder / "empty.npz").write_bytes(b"")
    assert_one_line_exit_2(script_done(numpy_only_python, iris_script, "--save", "empty.npz",
                                       cwd=folder))
    for _ in range(2):  # a model file it wrote is replaced
        done = script_done(numpy_only_python, iris_script, "--save", "m.npz", cwd=folder)
        assert done.returncode == 0, done.stderr
    done = script_done(numpy_only_python, iris_script, "--save", "flowers.csv", "--force",
                       cwd=folder)
    assert done.returncode == 0, done.stderr
    mfc.load(next(p for p in SPECS if p.name == "iris.mf")).restore(folder / "flowers.csv")
    assert sorted(p.name for p in folder.iterdir()) == ["empty.npz", "flowers.csv", "m.npz",
                                                         "t.npz", "t.py"]  # no temporaries


@pytest.mark.parametrize("args", [["--epochs", "2"], ["--bogus"], ["t.npz", "t.npz"],
                                  ["--save"], ["--save", ""], ["--save", "nowhere/m.npz"],
                                  ["--save", "."]])
def test_bad_arguments_to_the_script_are_one_line_exit_2(iris_script, numpy_only_python,
                                                         args):
    assert_one_line_exit_2(script_done(numpy_only_python, iris_script, *args,
                                       cwd=iris_script.parent))


def test_the_script_has_a_help(iris_script, numpy_only_python):
    done = script_done(numpy_only_python, iris_script, "--help", cwd=iris_script.parent)
    assert done.returncode == 0 and done.stdout.startswith("usage: t.py")
    assert all(word in done.stdout for word in ("DATA.npz", "--save", "--force", "iris.mf"))


def _npz(path, **arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def _not_the_data(folder):
    """Files that are not the data of the iris script, by name."""
    with np.load(folder / "t.npz") as archive:
        data = {key: archive[key] for key in archive.files}
    (folder / "keep.csv").write_text("precious\n")
    (folder / "empty.npz").write_bytes(b"")
    np.save(folder / "one.npy", data["train/X"])
    (folder / "a_folder").mkdir()
    _npz(folder / "pickled.npz", **{**data, "train/X": data["train/X"].astype(object)})
    _npz(folder / "no_labels.npz", **{k: v for k, v in data.items() if k != "train/y"})
    _npz(folder / "no_validation.npz", **{k: v for k, v in data.items()
                                          if not k.startswith("validation/")})
    _npz(folder / "narrow.npz", **{**data, "train/X": data["train/X"][:, :3]})
    _npz(folder / "floats.npz", **{**data, "train/y": data["train/y"].astype(float)})
    _npz(folder / "short.npz", **{**data, "train/y": data["train/y"][:-1]})
    _npz(folder / "few.npz", **{**data, "validation/X": data["validation/X"][:5]})
    _npz(folder / "scalar.npz", **{**data, "train/y": np.float64(1)})
    with zipfile.ZipFile(folder / "bytes.npz", "w") as archive:  # members not .npy
        for key in data:
            archive.writestr(key, b"precious")
    return ["bytes.npz", "keep.csv", "empty.npz", "one.npy", "a_folder", "pickled.npz", "no_labels.npz",
            "no_validation.npz", "narrow.npz", "floats.npz", "short.npz", "few.npz",
            "scalar.npz", "missing.npz"]


def test_a_data_file_that_is_not_the_scripts_is_one_line_exit_2(iris_script,
                                                                 numpy_only_python):
    folder = iris_script.parent
    for name in _not_the_data(folder):
        done = script_done(numpy_only_python, iris_script, name, cwd=folder)
        assert_one_line_exit_2(done)
        assert name in done.stderr
    assert (folder / "keep.csv").read_text() == "precious\n"


def test_emit_writes_nothing_when_one_output_cannot_be_written(capsys, tmp_path):
    spec = next(p for p in SPECS if p.name == "iris.mf")
    (tmp_path / "x.npz").write_text("mine")
    (tmp_path / "d.npz").mkdir()
    for name, force in [("x", []), ("d", ["--force"])]:
        code, out, err = run(capsys, "emit", spec, "-o", tmp_path / f"{name}.py",
                             "--with-data", *force)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / f"{name}.py").exists()
    assert (tmp_path / "x.npz").read_text() == "mine"


def test_the_script_and_its_data_are_never_one_file(capsys, tmp_path):
    spec = next(p for p in SPECS if p.name == "iris.mf")
    code, out, err = run(capsys, "emit", spec, "-o", tmp_path / "s.npz", "--with-data")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s.npz").exists()
