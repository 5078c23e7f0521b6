"""mfc.files.atomic_write: the whole new file, or the old one untouched."""

import os

import pytest

from mfc.files import atomic_write


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
