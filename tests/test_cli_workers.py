"""`mfc run --backend torch`: its flags, and `--workers N`, one data-parallel run in N
processes (torch.distributed, gloo on 127.0.0.1) that equals a run in one process, in
which only worker 0 speaks and saves, and which ends in one line when a worker dies."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mfc
from mfc.cli import main

SPECS = Path(__file__).parent.parent / "specs"
IRIS = str(SPECS / "iris.mf")


def mfc_command(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mfc", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def history(path) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))["history"]


# ---------------------------------------------------------------- flags


@pytest.mark.parametrize("args,message", [
    (["--workers", "2"], "--workers 2 trains on several processes with PyTorch; add "
                         "--backend torch"),
    (["--backend", "torch", "--workers", "0"], "--workers must be 1 or more, not 0"),
    (["--device", "cuda"], "--device picks a PyTorch device; add --backend torch (the "
                           "numpy backend runs on the CPU)"),
])
def test_flags_that_do_not_fit_are_one_line(args, message, capsys):
    assert main(["run", IRIS, *args]) == 2
    assert capsys.readouterr().err.strip() == f"mfc: error: {message}"


def test_more_workers_than_cores_is_one_line_and_starts_none(capsys, monkeypatch):
    """Each worker is a whole Python with torch (some 150 MB): --workers 1000 on a
    small machine would exhaust its memory."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(subprocess, "Popen", None)  # nothing may start
    assert main(["run", IRIS, "--backend", "torch", "--workers", "5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "mfc: error: --workers 5: this machine has 4 CPU cores, and each worker is a whole "
        "process (a Python, torch and the data); use at most 4, or torchrun to spread the "
        "workers over several machines (docs/scaling.md)")


def test_a_device_that_is_not_there_is_one_line(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert main(["run", IRIS, "--backend", "torch", "--device", "cuda", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mfc: error: --device cuda: no CUDA GPU")


def test_without_torch_the_torch_backend_says_how_to_install_it():
    code = ("import sys; sys.modules['torch'] = None\nfrom mfc.cli import main\n"
            f"sys.exit(main(['run', {IRIS!r}, '--backend', 'torch']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "mfc: error: --backend torch needs PyTorch, which is " \
                                  "not installed here: pip install 'mfc[torch]'"


def test_the_torch_backend_trains_and_saves_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("torch")
    saved = tmp_path / "m.npz"
    assert main(["run", IRIS, "--backend", "torch", "--epochs", "2", "--save", str(saved)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Epoch: 1, Loss: ")
    numpy_run = mfc.load(IRIS)
    np.testing.assert_allclose([e["loss"] for e in history(saved)], numpy_run.train(epochs=2),
                               rtol=1e-9)


# ---------------------------------------------------------------- several workers


DROPOUT_IRIS = """
X, y = Input(), Input()
W1, b1 = Param(_, 16, init=xavier), Param(16)
W2, b2 = Param(16, 3, init=xavier), Param(3)
h = Dropout(Tanh(Linear(X, W1, b1)), 0.2)
scores = Linear(h, W2, b2)
cost = CrossEntropy(y, scores)
train { data = "iris"; validation = 0.2; epochs = 3; batch_size = 7; learning_rate = 0.05
        optimizer = momentum }
"""


def test_two_workers_equal_one_with_the_same_global_batch(tmp_path):
    """A batch of 7 rows split 4 + 3 (each share's gradient weighted by its rows), with
    a Dropout whose noise each worker takes its share of."""
    pytest.importorskip("torch")
    spec, saved = tmp_path / "iris.mf", tmp_path / "two.npz"
    spec.write_text(DROPOUT_IRIS)
    done = mfc_command("run", str(spec), "--backend", "torch", "--workers", "2",
                       "--save", str(saved), "--set", "checkpoint_every=2", "--checkpoint",
                       str(tmp_path / "ck.npz"), "--log", str(tmp_path / "run.csv"))
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    assert [line.split(",")[0] for line in out.splitlines() if line.startswith("Epoch")] == \
        ["Epoch: 1", "Epoch: 2", "Epoch: 3"]  # worker 0 alone prints, and writes
    assert err.count("saved 4 params to") == 2 and "a checkpoint at epoch 2" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "iris.mf", "run.csv",
                                                         "two.npz"]
    one = mfc.load(spec, backend="torch")
    epochs = []
    one.train(on_epoch=epochs.append)
    for entry, epoch in zip(history(saved), epochs, strict=True):
        assert entry["loss"] == pytest.approx(epoch.loss, rel=1e-9, abs=0)
        assert entry["validation_loss"] == pytest.approx(epoch.validation_loss, rel=1e-9, abs=0)
    two = np.load(saved)
    for name, value in one.params.items():
        np.testing.assert_allclose(two[name], value, rtol=1e-9, atol=1e-12)


def _worker(rank: int, command: subprocess.Popen) -> int | None:
    """The pid of worker `rank` of a run started by `command` (Linux: by environment)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == command.pid and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


def long_run_after_its_first_epoch(saved) -> subprocess.Popen:
    """`mfc run` of iris on 2 workers, for ever, saving to `saved`: after its first
    epoch line."""
    pytest.importorskip("torch")
    command = mfc_command("run", IRIS, "--backend", "torch", "--workers", "2",
                          "--epochs", "100000", "--save", str(saved))
    line = command.stdout.readline()
    assert line.startswith("Epoch: 1"), (line, command.stderr.read())
    return command


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker in /proc")
def test_a_worker_that_dies_ends_the_run_in_one_line_and_nothing_is_saved(tmp_path):
    saved = tmp_path / "m.npz"
    command = long_run_after_its_first_epoch(saved)
    os.kill(_worker(1, command), signal.SIGKILL)
    out, err = command.communicate(timeout=120)
    assert command.returncode == 1
    assert err.strip().splitlines() == ["mfc: error: worker 1 of 2 was killed by SIGKILL; "
                                        "the run stopped, and nothing was saved"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker in /proc")
def test_ctrl_c_stops_every_worker_after_a_step_and_worker_0_saves(tmp_path):
    saved = tmp_path / "m.npz"
    command = long_run_after_its_first_epoch(saved)
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=120)
    assert command.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("mfc: interrupted ") and "saved 4 params" in lines[1]
    assert mfc.load(IRIS).restore(saved) is None  # a whole model file, of this spec


def test_a_batch_smaller_than_the_workers_is_one_line():
    pytest.importorskip("torch")
    done = mfc_command("run", IRIS, "--backend", "torch", "--workers", "2", "--batch-size",
                       "1", "--epochs", "1")
    out, err = done.communicate(timeout=600)
    assert done.returncode == 2
    assert err.strip() == "mfc: error: batch_size 1 cannot be shared by 2 workers: each " \
                          "needs a row of every batch; use a batch_size of at least 2, or " \
                          "fewer workers"


def test_the_documented_torchrun_command_on_two_nodes_equals_one_worker(tmp_path):
    """docs/scaling.md's command for two machines, with both "machines" here (one
    worker each, on 127.0.0.1): node 0 alone prints and saves, and its model file holds
    the params of a run in one process."""
    pytest.importorskip("torch")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    spec = tmp_path / "iris.mf"
    spec.write_text(DROPOUT_IRIS)
    nodes = []
    for rank in ("0", "1"):
        folder = tmp_path / f"node{rank}"
        folder.mkdir()
        nodes.append(subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
             "--nproc-per-node", "1", "--node-rank", rank, "--master-addr", "127.0.0.1",
             "--master-port", port, "-m", "mfc", "run", str(spec), "--backend", "torch",
             "--save", "iris.npz"],
            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    (out0, err0), (out1, err1) = (node.communicate(timeout=600) for node in nodes)
    assert [node.returncode for node in nodes] == [0, 0], (err0, err1)
    assert out0.count("Epoch: ") == 3 and "Epoch" not in out1
    assert not (tmp_path / "node1" / "iris.npz").exists()
    one = mfc.load(spec, backend="torch")
    one.train()
    saved = np.load(tmp_path / "node0" / "iris.npz")
    for name, value in one.params.items():
        np.testing.assert_allclose(saved[name], value, rtol=1e-9, atol=1e-12)


_WATCHED_WORKER = """
import gc, sys
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

destroy = dist.destroy_process_group

def watched(*args, **kwargs):
    alive = sum(type(o) is DistributedDataParallel for o in gc.get_objects())
    with open(sys.argv[1], "w") as report:
        report.write(str(alive))
    destroy(*args, **kwargs)

dist.destroy_process_group = watched
from mfc.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_worker_leaves_the_group_once_nothing_uses_it(tmp_path):
    """DistributedDataParallel, left in reference cycles, outlived the group and took
    it down from a destructor at exit: now and then a finished worker aborted."""
    pytest.importorskip("torch")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    workers = [subprocess.Popen(
        [sys.executable, "-c", _WATCHED_WORKER, str(tmp_path / f"alive{rank}"), "run", IRIS,
         "--backend", "torch", "--epochs", "1"],
        env=dict(os.environ, RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                 MASTER_PORT=port), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank in (0, 1)]
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    assert [(tmp_path / f"alive{rank}").read_text() for rank in (0, 1)] == ["0", "0"]
