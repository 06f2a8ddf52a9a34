"""The trajectory store: every executed sample of a run, as Parquet shards in the run folder
(``trajectories/part-00000.parquet``, ...), written as the run goes. A shard is written whole
when the run flushes (after each training step and each evaluation), so a run that is killed
loses at most the samples since its last flush and every shard on disk stays readable::

    import datasets
    ds = datasets.load_dataset("parquet", data_files="runs/<time>/trajectories/*.parquet")

``logging.trajectories`` is ``all`` (every sample), ``passed`` (only those whose program
passed: what rejection-sampling fine-tuning trains on) or ``none``; the store stops at
``logging.trajectories_max_mb`` and says so once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# (column, Arrow type name): every record has each of them
COLUMNS = (("source", "string"), ("step", "int64"), ("problem", "string"),
           ("language", "string"), ("prompt", "string"), ("completion", "string"),
           ("program", "string"), ("status", "string"), ("passed", "int64"), ("total", "int64"),
           ("reward", "float64"), ("policy_version", "int64"), ("tokens", "int64"),
           ("generate_latency_s", "float64"), ("execute_s", "float64"),
           # the reward guard (rlce/guard.py): held-out tests of a sample that passed its
           # reward tests (0 of 0 otherwise), and the hard-coding detector's reason or ""
           ("heldout_passed", "int64"), ("heldout_total", "int64"), ("hardcoded", "string"),
           # not executed: the critic rated it below critic.prescreen_tau (its status is
           # the failure it was scored as, not a verdict)
           ("prescreened", "bool_"),
           ("critic_p", "float64"))  # the critic's P(pass), where a critic rated it
MODES = ("all", "passed", "none")


class TrajectoryStore:
    def __init__(self, folder: Path, mode: str = "all", max_mb: float = 1024.0) -> None:
        if mode not in MODES:
            raise ValueError(f"logging.trajectories must be one of {', '.join(MODES)}, "
                             f"got {mode!r}")
        self.folder, self.mode, self.max_bytes = Path(folder), mode, int(max_mb * 2**20)
        self.pending: list[dict[str, Any]] = []
        # after any shard already there (a resumed run or a second rlce eval in one folder)
        self.shards = 1 + max(map(_index, self.folder.glob("part-*.parquet")), default=-1)
        self.dropped = 0
        self.rows = 0
        self.bytes = 0
        self.full = False

    def add(self, records: list[dict[str, Any]], source: str, step: int) -> None:
        """Buffer the records of ``source`` (train, eval-before, ...) at ``step``."""
        if self.mode == "none" or self.full:
            return
        for r in records:
            if self.mode == "passed" and r["status"] != "passed":
                continue
            row = {"source": source, "step": step, **{k: _utf8(r.get(k)) for k, _ in COLUMNS
                                                      if k not in ("source", "step")}}
            self.pending.append(row)

    def flush(self) -> Path | None:
        """Write what was buffered as one new shard; the shard's path, or None if nothing
        was written."""
        if not self.pending or self.full:
            self.pending.clear()
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in COLUMNS])
        path = self.folder / f"part-{self.shards:05d}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        try:
            table = pa.Table.from_pylist(self.pending, schema=schema)
            self.folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, tmp, compression="zstd")
            tmp.rename(path)  # a shard is on disk whole or not at all
        except (OSError, pa.ArrowException, ValueError, TypeError) as e:
            # a full disk or a bad record costs these records, never the run
            self.dropped += len(self.pending)
            logger.error("trajectory shard %s not written (%d samples lost): %s: %s", path,
                         len(self.pending), type(e).__name__, e)
            tmp.unlink(missing_ok=True)
            return None
        finally:
            n = len(self.pending)
            self.pending.clear()
        self.shards += 1
        self.rows += n
        self.bytes += path.stat().st_size
        if self.bytes >= self.max_bytes:
            self.full = True
            logger.warning("the trajectory store in %s reached logging.trajectories_max_mb "
                           "(%.0f MB): no more samples are recorded in this run", self.folder,
                           self.max_bytes / 2**20)
        return path


    def drop_after(self, step: int) -> int:
        """Delete the shards holding samples of steps after ``step`` (a run resumed in its
        own folder from a checkpoint at ``step`` does those steps again); how many."""
        import pyarrow.parquet as pq

        dropped = 0
        for shard in sorted(self.folder.glob("part-*.parquet")):
            try:
                steps = pq.read_table(shard, columns=["step"]).column("step").to_pylist()
            except (OSError, ValueError) as e:
                logger.warning("trajectory shard %s unreadable, left as it is: %s", shard, e)
                continue
            if steps and max(steps) > step:
                shard.unlink()
                dropped += 1
        return dropped


def _index(shard: Path) -> int:
    """The number of ``part-<n>.parquet`` (-1 for a name that is not one of ours)."""
    n = shard.stem.removeprefix("part-")
    return int(n) if n.isdigit() else -1


def _utf8(v: Any) -> Any:
    """Text as Parquet can hold it: a lone surrogate (a prompt read from JSON may have one)
    becomes ``?``."""
    if isinstance(v, str):
        return v.encode("utf-8", "replace").decode("utf-8")
    return v


def read(folder: Path) -> list[dict[str, Any]]:
    """Every record of a store, shard by shard in the order they were written."""
    import pyarrow.parquet as pq

    shards = sorted(Path(folder).glob("part-*.parquet"), key=_index)
    rows: list[dict[str, Any]] = []
    for shard in shards:
        rows += pq.read_table(shard).to_pylist()
    return rows
