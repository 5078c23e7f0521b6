"""mfc.files: the whole new file or the old one untouched (atomic_write), and only what
mfc wrote replaced (check_replaceable)."""

import os
import zipfile

import numpy as np
import pytest

from mfc.files import (NotReplaceable, atomic_write, check_replaceable, check_writable,
                       kind_of_file, same_file)
from mfc.modelfile import save_params


def write_half_then(error):
    def write(file):
        file.write(b"half of the new")
        file.flush()
        raise error
    return write


def test_writes_the_file_and_leaves_nothing_else(tmp_path):
    atomic_write(tmp_path / "out.bin", lambda file: file.write(b"new"))
    assert (tmp_path / "out.bin").read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_replaces_an_existing_file(tmp_path):
    (tmp_path / "out.bin").write_bytes(b"old")
    atomic_write(str(tmp_path / "out.bin"), lambda file: file.write(b"new"))
    assert (tmp_path / "out.bin").read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("error", [KeyboardInterrupt(), ValueError("bad"), OSError(28, "full")])
def test_a_failure_mid_write_keeps_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(type(error)):
        atomic_write(path, write_half_then(error))
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failure_creates_no_file(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.bin", write_half_then(KeyboardInterrupt()))
    assert os.listdir(tmp_path) == []


def test_an_existing_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, lambda file: file.write(b"new"))
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_new_file_gets_the_umasks_permissions(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic_write(tmp_path / "out.bin", lambda file: file.write(b"new"))
    finally:
        os.umask(previous)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o640


def test_a_missing_folder_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "no" / "out.bin", lambda file: file.write(b"new"))
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- what a path may name


def test_a_symlink_is_followed_and_kept(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    atomic_write(link, lambda file: file.write(b"new"))
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path / "real")) == ["out.bin"]  # the temporary was there
    assert sorted(os.listdir(tmp_path)) == ["link.bin", "real"]


def test_a_dangling_symlink_creates_its_target(tmp_path):
    (tmp_path / "link.bin").symlink_to("new.bin")
    atomic_write(tmp_path / "link.bin", lambda file: file.write(b"new"))
    assert (tmp_path / "new.bin").read_bytes() == b"new"
    assert (tmp_path / "link.bin").is_symlink()


def test_a_symlink_loop_is_an_os_error(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "a", lambda file: file.write(b"new"))
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
    assert os.readlink(tmp_path / "a") == "b"


@pytest.mark.parametrize("make,kind", [(os.mkfifo, "a FIFO"), (os.mkdir, "a folder")])
def test_what_is_not_a_regular_file_is_refused_and_kept(tmp_path, make, kind):
    path = tmp_path / "special"
    make(path)
    before = path.stat().st_mode
    refused = pytest.raises(OSError, match=rf"not a regular file \({kind}\)")
    with refused:
        atomic_write(path, lambda file: file.write(b"new"))
    with refused:
        check_writable(path)
    assert path.stat().st_mode == before
    assert os.listdir(tmp_path) == ["special"]


def test_the_longest_file_names_can_be_written(tmp_path):
    path = tmp_path / ("n" * 251 + ".npz")  # 255: the temporary's name cannot derive from it
    atomic_write(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == [path.name]


def test_check_writable_leaves_nothing_and_fails_as_the_write_would(tmp_path):
    check_writable(tmp_path / "out.bin")
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        check_writable(tmp_path / "no" / "out.bin")
    with pytest.raises(OSError):
        check_writable(tmp_path / ("n" * 300))


def test_same_file_sees_through_symlinks(tmp_path):
    (tmp_path / "spec.mf").write_text("x")
    (tmp_path / "link.svg").symlink_to("spec.mf")
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    assert same_file(tmp_path / "link.svg", tmp_path / "spec.mf")
    assert same_file(tmp_path / "." / "spec.mf", tmp_path / "spec.mf")
    assert not same_file(tmp_path / "new.svg", tmp_path / "spec.mf")
    assert not same_file(tmp_path / "a", tmp_path / "spec.mf")


# ---------------------------------------------------------------- what may be replaced


def _zip_of(path, *members):
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            archive.writestr(member, b"x")


FILES = [  # (name, how to write it, the kind of file mfc sees in it)
    ("p.npz", lambda p: save_params(p, {"W": np.ones((2, 3)), "b": np.zeros(3)}), "model"),
    ("m.npz", lambda p: _zip_of(p, "manifest.json", "params/W.npy"), "model"),
    ("w", lambda p: save_params(p, {"x": np.ones(1)}), "model"),  # whatever its name
    ("z.npz", lambda p: _zip_of(p, "notes.txt", "W.npy"), None),
    ("a.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20)), "png"),
    ("a.pdf", lambda p: p.write_bytes(b"%PDF-1.7\n%..."), "pdf"),
    ("a.svg", lambda p: p.write_text('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg>'), "svg"),
    ("b.svg", lambda p: p.write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>"), "svg"),
    ("a.dot", lambda p: p.write_text("digraph mfc {\n}\n"), "dot"),
    ("b.dot", lambda p: p.write_text("// mine\nstrict graph {}"), "dot"),
    ("h.csv", lambda p: p.write_text("a,b\n1,2\n"), None),
    ("s.mf", lambda p: p.write_text("x = Param(3)\ncost = Sum(x)\n"), None),
    ("e.png", lambda p: p.write_bytes(b""), None),
    ("t.html", lambda p: p.write_text("<html><body><svg></svg></body></html>"), None),
]


@pytest.mark.parametrize("name,write,kind", FILES)
def test_kind_of_file_knows_what_mfc_writes(tmp_path, name, write, kind):
    write(tmp_path / name)
    assert kind_of_file(tmp_path / name) == kind


@pytest.mark.parametrize("name,write,kind", FILES)
def test_only_a_file_of_the_kind_being_written_is_replaceable(tmp_path, name, write, kind):
    path = tmp_path / name
    write(path)
    before = path.read_bytes()
    for writing in ("model", "svg", "png", "pdf", "dot"):
        # a drawing's kind is the one its name says, when it names one
        expected = name.rsplit(".", 1)[-1] if writing != "model" and "." in name and \
            name.rsplit(".", 1)[-1] in ("svg", "png", "pdf", "dot") else writing
        if kind == expected:
            check_replaceable(path, writing)
        else:
            with pytest.raises(NotReplaceable):
                check_replaceable(path, writing)
        check_replaceable(path, writing, force=True)
    assert path.read_bytes() == before


def test_nothing_there_or_a_dangling_symlink_is_replaceable(tmp_path):
    check_replaceable(tmp_path / "new.npz", "model")
    (tmp_path / "link.png").symlink_to("nowhere.png")
    check_replaceable(tmp_path / "link.png", "png")


def test_a_symlink_is_judged_by_the_file_it_names(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "link.npz").symlink_to("notes.txt")
    with pytest.raises(NotReplaceable):
        check_replaceable(tmp_path / "link.npz", "model")
