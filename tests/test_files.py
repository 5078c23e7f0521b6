"""mfc.files.atomic_write: the whole new file, or the old one untouched."""

import os

import pytest

from mfc.files import atomic_write, check_writable, same_file


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
