"""Tests for mfc.modelfile: saved params, written atomically, read without pickles."""

import io
import os
import zipfile

import numpy as np
import pytest

import mfc
from conftest import BAD_PARAMS_FILES
from mfc import modelfile
from mfc.modelfile import ParamsError, load_params, save_params

WARMUP = "x = Param(1, init=10)\ncost = x ** 2 + 5\ntrain { learning_rate = 0.1; epochs = 60 }\n"

REGRESSOR = """
X, y = Input(), Input()
W1, b1 = Param(_, 10), Param(10)
W2, b2 = Param(10, 1), Param(1)
cost = MSE(y, Linear(Sigmoid(Linear(X, W1, b1)), W2, b2))
train { data = "diabetes"; epochs = 20; batch_size = 11; learning_rate = 0.01 }
"""


def program_of(text):
    return mfc.compile(text, "<test>")


def test_save_and_load_round_trip(tmp_path):
    program = program_of(REGRESSOR)
    program.train(epochs=2)
    save_params(tmp_path / "p.npz", program.params)
    fresh = program_of(REGRESSOR.replace('data = "diabetes";', 'data = "diabetes"; seed = 9;'))
    load_params(tmp_path / "p.npz", fresh.params)
    for name in program.params:
        np.testing.assert_array_equal(fresh.params[name], program.params[name])
    with np.load(tmp_path / "p.npz", allow_pickle=False) as archive:
        assert archive.files == list(program.params)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    path.write_bytes(b"the previous file")

    def fail_halfway(file, params):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(modelfile, "_write_npz", fail_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_params(path, {"a": np.ones(2)})
    assert path.read_bytes() == b"the previous file"
    assert os.listdir(tmp_path) == ["p.npz"]  # no temporary file left behind


def test_params_named_like_savez_keywords_survive(tmp_path):
    save_params(tmp_path / "p.npz", {"file": np.ones(2), "allow_pickle": np.zeros(1)})
    with np.load(tmp_path / "p.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["allow_pickle", "file"]


@pytest.mark.parametrize("arrays,message", [
    ({"W1": np.zeros((10, 10))}, "it lacks b1, W2, b2"),
    ({"W1": np.zeros((10, 10)), "b1": np.zeros(10), "W2": np.zeros((10, 1)),
      "b2": np.zeros(1), "W3": np.zeros(1)}, "the spec has no W3"),
    ({"W1": np.zeros((4, 10)), "b1": np.zeros(10), "W2": np.zeros((10, 1)),
      "b2": np.zeros(1)}, r"W1 has shape \(4, 10\) there, but \(10, 10\) in the spec "
                          r"\(declared at line 3\)"),
    ({"W1": np.full((10, 10), np.nan), "b1": np.zeros(10), "W2": np.zeros((10, 1)),
      "b2": np.zeros(1)}, "finite"),
])
def test_mismatched_params_file_is_a_clear_error(tmp_path, arrays, message):
    np.savez(tmp_path / "p.npz", **arrays)
    with pytest.raises(ParamsError, match=message):
        load_params(tmp_path / "p.npz", program_of(REGRESSOR).params)


@pytest.mark.parametrize("content", [b"not a zip", None])
def test_unreadable_params_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "p.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ParamsError):
        load_params(path, program_of(REGRESSOR).params)


@pytest.mark.parametrize("name,write,message", BAD_PARAMS_FILES)
def test_a_file_that_is_not_an_npz_of_arrays_is_a_params_error(tmp_path, name, write,
                                                               message):
    path = tmp_path / name
    write(path)
    with pytest.raises(ParamsError, match=message) as err:
        load_params(path, program_of(WARMUP).params)
    assert "pickle" not in str(err.value)


def test_arrays_of_objects_are_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(np.lib.format, "read_array", None)  # any read would fail
    np.savez(tmp_path / "p.npz", x=np.array([object()], dtype=object))
    with pytest.raises(ParamsError, match="x holds object values, not real numbers"):
        load_params(tmp_path / "p.npz", program_of(WARMUP).params)


def test_a_shape_is_checked_before_its_array_is_read(tmp_path):
    header = io.BytesIO()  # claims 2.4 TB, holds nothing: reading it would fail
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**11, 3)})
    with zipfile.ZipFile(tmp_path / "p.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue())
    with pytest.raises(ParamsError, match=r"x has shape \(100000000000, 3\) there, but "
                                          r"\(1,\) in the spec"):
        load_params(tmp_path / "p.npz", program_of(WARMUP).params)


@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir])
def test_params_that_are_not_a_regular_file_are_refused_unread(tmp_path, make):
    make(tmp_path / "p.npz")  # reading a FIFO would wait for a writer forever
    with pytest.raises(ParamsError, match="p.npz is not a regular file"):
        load_params(tmp_path / "p.npz", program_of(WARMUP).params)


def test_a_params_path_the_system_refuses_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match="File name too long"):
        load_params(tmp_path / ("p" * 300 + ".npz"), program_of(WARMUP).params)
