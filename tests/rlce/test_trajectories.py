"""The trajectory store: records read back as they were logged, the passed-only and none
modes, the size cap, and shards that stay readable when the writing process is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rlce.trajectories import COLUMNS, TrajectoryStore, read


def record(i: int, status: str = "passed") -> dict:
    return {"problem": f"p{i}", "language": "python", "prompt": f"prompt {i}",
            "completion": f"```python\nx = {i}\n```", "program": f"x = {i}\n",
            "status": status, "passed": 3 if status == "passed" else 1, "total": 3,
            "reward": 1.0 if status == "passed" else 0.0, "policy_version": i,
            "tokens": 10 + i, "generate_latency_s": 0.5, "execute_s": 0.01,
            "heldout_passed": i, "heldout_total": 2 * i, "hardcoded": "" if i % 3 else "why",
            "prescreened": i == 4, "critic_p": None if i % 2 else 0.25 * i,
            "text": "kept out of the store"}


def test_records_read_back_as_logged(tmp_path):
    store = TrajectoryStore(tmp_path / "t")
    logged = [record(i, "passed" if i % 2 else "failed") for i in range(5)]
    store.add(logged[:3], "train", 1)
    assert store.flush().name == "part-00000.parquet"
    store.add(logged[3:], "eval-after", 2)
    store.flush()
    assert store.flush() is None  # nothing new: no empty shard
    rows = read(tmp_path / "t")
    assert [r["step"] for r in rows] == [1, 1, 1, 2, 2]
    assert [r["source"] for r in rows] == ["train"] * 3 + ["eval-after"] * 2
    for row, rec in zip(rows, logged):
        assert set(row) == {name for name, _ in COLUMNS}
        assert all(row[k] == rec[k] for k in row if k not in ("source", "step"))


def test_passed_and_none_modes_and_a_bad_mode(tmp_path):
    store = TrajectoryStore(tmp_path / "p", "passed")
    store.add([record(1), record(2, "failed"), record(3)], "train", 1)
    store.flush()
    assert [r["problem"] for r in read(tmp_path / "p")] == ["p1", "p3"]
    none = TrajectoryStore(tmp_path / "n", "none")
    none.add([record(1)], "train", 1)
    assert none.flush() is None and not (tmp_path / "n").exists()
    with pytest.raises(ValueError, match="logging.trajectories must be one of all, passed"):
        TrajectoryStore(tmp_path / "x", "some")


def test_the_size_cap_stops_the_store_and_says_so(tmp_path, caplog):
    store = TrajectoryStore(tmp_path / "c", max_mb=1e-6)  # one byte: the first shard fills it
    store.add([record(1)], "train", 1)
    store.flush()
    assert store.full and "reached logging.trajectories_max_mb" in caplog.text
    store.add([record(2)], "train", 2)
    assert store.flush() is None
    assert [r["problem"] for r in read(tmp_path / "c")] == ["p1"]


# three shards written, then the process is killed half way through writing the fourth
WRITER = """
import os, sys
import pyarrow.parquet as pq
from rlce.trajectories import TrajectoryStore
from tests.rlce.test_trajectories import record
store = TrajectoryStore(sys.argv[1])
for step in range(1, 4):
    store.add([record(step)], "train", step)
    store.flush()
real = pq.write_table
def dying(table, where, **kw):
    real(table, where, **kw)
    with open(where, "r+b") as f:  # half a file on disk, then the kill
        f.truncate(os.path.getsize(where) // 2)
    os.write(1, b"dying\\n")
    os.kill(os.getpid(), 9)
pq.write_table = dying
store.add([record(4)], "train", 4)
store.flush()
"""
ROOT = Path(__file__).resolve().parents[2]


def test_a_run_killed_while_writing_leaves_readable_shards(tmp_path):
    out = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path / "k")],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == -signal.SIGKILL and out.stdout == "dying\n", out.stderr
    assert [r["problem"] for r in read(tmp_path / "k")] == ["p1", "p2", "p3"]
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet",
        "part-00003.parquet.tmp"]  # the half-written one never got a shard's name
    again = TrajectoryStore(tmp_path / "k")  # a resumed run writes after them
    again.add([record(5)], "train", 5)
    assert again.flush().name == "part-00003.parquet"
    assert [r["problem"] for r in read(tmp_path / "k")] == ["p1", "p2", "p3", "p5"]


def test_a_shard_that_cannot_be_written_costs_its_records_not_the_run(tmp_path, caplog):
    store = TrajectoryStore(tmp_path / "f")
    bad = record(1)
    bad["tokens"] = "many"  # not an integer: Arrow refuses the table
    store.add([bad], "train", 1)
    assert store.flush() is None and store.dropped == 1 and not store.pending
    assert "not written (1 samples lost)" in caplog.text
    store.add([{**record(2), "prompt": "lone \ud800 surrogate"}], "train", 2)
    store.flush()
    assert [r["prompt"] for r in read(tmp_path / "f")] == ["lone ? surrogate"]


def test_a_run_resumed_in_its_folder_drops_the_shards_of_steps_it_does_again(tmp_path):
    store = TrajectoryStore(tmp_path)
    for step, source in [(0, "eval-before"), (1, "train"), (2, "train"), (3, "train")]:
        store.add([record(step)], source, step)
        store.flush()
    (tmp_path / "part-00009.parquet").write_bytes(b"not parquet")  # left as it is
    assert TrajectoryStore(tmp_path).drop_after(1) == 2
    (tmp_path / "part-00009.parquet").unlink()
    assert [(r["source"], r["step"]) for r in read(tmp_path)] == [("eval-before", 0),
                                                                  ("train", 1)]
    again = TrajectoryStore(tmp_path)  # numbering goes on after what is left
    again.add([record(2)], "train", 2)
    assert again.flush().name == "part-00002.parquet"
