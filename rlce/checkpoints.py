"""A run's checkpoint folders: written whole or not at all, found by step, pruned.

A checkpoint is written into a hidden ``.incomplete-<name>`` folder beside its place and
renamed into place once every file is on disk, so a crash in the middle of a write (kill -9,
a full disk) never leaves a folder under a checkpoint's name that is not a whole checkpoint.
A complete checkpoint is a ``checkpoint`` or ``checkpoint-step<N>`` folder of the run folder
with a readable ``controller.json``; ``checkpoint.resume=auto`` continues from the newest."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlce.config import CONTROLLER_STATE

INCOMPLETE = ".incomplete-"
FINAL = "checkpoint"
# what wrote a checkpoint; only the periodic and stop ones are pruned by checkpoint.keep
# (the final one and each round's stay, as the run folder promises)
PRUNABLE = ("every", "stop")


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; the earlier ones are untouched."""


def step_name(step: int) -> str:
    return f"{FINAL}-step{step}"


def _fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` and the folder itself to disk, so the rename that
    follows never publishes a folder whose files are still only in memory."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(where: Path, write: Callable[[Path], None]) -> Path:
    """Have ``write`` fill a temporary folder, then rename it to ``where`` (replacing a
    checkpoint already there). On failure the temporary folder is removed, ``where`` and
    every other checkpoint stay as they were, and CheckpointError names the cause and the
    newest checkpoint still whole."""
    tmp = where.parent / f"{INCOMPLETE}{where.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        _fsync_tree(tmp)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(e, Exception):
            raise  # a second signal or an interpreter exit: nothing to explain
        cause = getattr(e, "cause", None) or e  # a Ray task error wraps the learner's
        lines = str(cause).strip().splitlines() or [""]
        last = newest(where.parent)
        kept = f"the newest whole checkpoint is {last}" if last else "no checkpoint was kept"
        raise CheckpointError(f"checkpoint {where} not written ({type(cause).__name__}: "
                              f"{lines[-1][:300]}); {kept}") from e
    if where.exists():  # the same step written again (a run resumed after its end)
        old = where.parent / f"{INCOMPLETE}replaced-{where.name}"
        shutil.rmtree(old, ignore_errors=True)
        where.rename(old)
        tmp.rename(where)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(where)
    _fsync_dir(where.parent)
    return where


def read_state(folder: Path) -> dict[str, Any] | None:
    """A checkpoint's controller state, or None if ``folder`` is not a whole checkpoint."""
    try:
        state = json.loads((folder / CONTROLLER_STATE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("step"), int) else None


def checkpoints(run_dir: Path) -> list[tuple[int, Path, dict[str, Any]]]:
    """The whole checkpoints of a run folder as (step, folder, state), oldest first; at one
    step the final checkpoint comes after a step checkpoint."""
    found = []
    for folder in run_dir.glob(f"{FINAL}*"):
        if folder.name != FINAL and not folder.name.startswith(f"{FINAL}-step"):
            continue
        state = read_state(folder)
        if state is not None:
            found.append((state["step"], folder.name == FINAL, folder, state))
    return [(step, folder, state) for step, _, folder, state in sorted(found)]


def newest(run_dir: Path) -> Path | None:
    """The checkpoint ``checkpoint.resume=auto`` continues from: the one at the highest
    step, or None when the run folder has none."""
    found = checkpoints(run_dir)
    return found[-1][1] if found else None


def remove_incomplete(run_dir: Path) -> list[str]:
    """Delete what an interrupted write left behind; the names removed."""
    gone = []
    for folder in run_dir.glob(f"{INCOMPLETE}*"):
        shutil.rmtree(folder, ignore_errors=True)
        gone.append(folder.name)
    return sorted(gone)


def prune(run_dir: Path, keep: int) -> list[str]:
    """Delete the periodic and stop checkpoints beyond the newest ``keep`` of them (0: keep
    all); the final checkpoint and the rounds' are never deleted. The names removed."""
    if keep <= 0:
        return []
    prunable = [folder for _, folder, state in checkpoints(run_dir)
                if state.get("kind") in PRUNABLE]
    gone = []
    for folder in prunable[:-keep]:
        shutil.rmtree(folder)
        gone.append(folder.name)
    return gone
