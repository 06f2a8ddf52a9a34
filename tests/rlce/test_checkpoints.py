"""Checkpoint folders: written whole or not at all (a failing writer, a really full disk),
the newest found for checkpoint.resume=auto, old ones pruned by checkpoint.keep."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from rlce.checkpoints import (
    CheckpointError,
    checkpoints,
    newest,
    prune,
    remove_incomplete,
    step_name,
    write_checkpoint,
)
from rlce.config import CONTROLLER_STATE


def writer(step: int, kind: str, payload: bytes = b"weights"):
    def write(where: Path) -> None:
        where.mkdir(parents=True)
        (where / "model.safetensors").write_bytes(payload)
        (where / CONTROLLER_STATE).write_text(json.dumps({"step": step, "kind": kind}))
    return write


def test_a_checkpoint_appears_whole_and_a_failed_write_leaves_the_old_ones(tmp_path):
    first = write_checkpoint(tmp_path / step_name(1), writer(1, "every"))
    assert (first / "model.safetensors").read_bytes() == b"weights"

    def half(where: Path) -> None:  # the learner wrote its weights, then the disk filled
        where.mkdir()
        (where / "model.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointError) as e:
        write_checkpoint(tmp_path / step_name(2), half)
    assert f"checkpoint {tmp_path / step_name(2)} not written" in str(e.value)
    assert "No space left on device" in str(e.value)
    assert f"the newest whole checkpoint is {first}" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [step_name(1)]
    assert newest(tmp_path) == first


def test_writing_a_step_again_replaces_it_whole(tmp_path):
    where = tmp_path / "checkpoint"
    write_checkpoint(where, writer(3, "final", b"old"))
    write_checkpoint(where, writer(3, "final", b"new"))
    assert (where / "model.safetensors").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]


def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                           capture_output=True, text=True, check=False)
    if mount.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mount.stderr.strip()}")
    try:
        first = write_checkpoint(disk / step_name(1), writer(1, "every", b"x" * 1000))
        with pytest.raises(CheckpointError) as e:
            write_checkpoint(disk / step_name(2), writer(2, "every", b"x" * 300_000))
        assert "OSError" in str(e.value) and "No space left on device" in str(e.value)
        assert [p.name for p in disk.iterdir()] == [step_name(1)]
        assert checkpoints(disk)[0][:2] == (1, first)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_newest_is_the_highest_whole_step_and_ignores_the_rest(tmp_path):
    assert newest(tmp_path) is None
    for step in (2, 10):
        write_checkpoint(tmp_path / step_name(step), writer(step, "every"))
    (tmp_path / step_name(30)).mkdir()  # no controller state: not a checkpoint
    (tmp_path / step_name(40)).mkdir()
    (tmp_path / step_name(40) / CONTROLLER_STATE).write_text("{trunc")
    (tmp_path / ".incomplete-checkpoint-step50").mkdir()
    (tmp_path / "checkpointer").mkdir()
    assert newest(tmp_path) == tmp_path / step_name(10)
    write_checkpoint(tmp_path / "checkpoint", writer(10, "final"))
    assert newest(tmp_path) == tmp_path / "checkpoint"  # at one step the final one wins
    assert remove_incomplete(tmp_path) == [".incomplete-checkpoint-step50"]
    assert not (tmp_path / ".incomplete-checkpoint-step50").exists()


def test_keep_prunes_only_periodic_and_stop_checkpoints(tmp_path):
    kinds = {1: "every", 2: "round", 3: "every", 4: "stop", 5: "every"}
    for step, kind in kinds.items():
        write_checkpoint(tmp_path / step_name(step), writer(step, kind))
    write_checkpoint(tmp_path / "checkpoint", writer(5, "final"))
    assert prune(tmp_path, 0) == []
    assert prune(tmp_path, 2) == [step_name(1), step_name(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint", step_name(2), step_name(4), step_name(5)]
    assert prune(tmp_path, 2) == []


def test_an_interrupted_write_leaves_only_a_hidden_folder(tmp_path):
    """kill -9 in the middle of a write: a child process dies while writing; the folder under
    the checkpoint's name never appears, and the next look removes what was left."""
    code = ("import os, sys\n"
            "from pathlib import Path\n"
            "from rlce.checkpoints import write_checkpoint\n"
            "def write(where):\n"
            "    where.mkdir(); (where / 'model.safetensors').write_bytes(b'half')\n"
            "    os.kill(os.getpid(), 9)\n"
            f"write_checkpoint(Path({str(tmp_path / step_name(7))!r}), write)\n")
    proc = subprocess.run([os.sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    assert [p.name for p in tmp_path.iterdir()] == [".incomplete-" + step_name(7)]
    assert newest(tmp_path) is None
    assert remove_incomplete(tmp_path) == [".incomplete-" + step_name(7)]
