"""Reading an offline W&B run back (its ``run-*.wandb`` record log) without the W&B service:
the logged history rows, for tests and for a quick look at a run."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # block trailer too short for a header: padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        chunk = data[pos:pos + length]
        if len(chunk) < length:  # the tail of a file whose writer was killed
            return
        pos += length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            buf = chunk
        elif kind == MIDDLE:
            buf += chunk
        elif kind == LAST:
            yield buf + chunk
            buf = b""
        elif length == 0:
            pos += (BLOCK - pos % BLOCK) % BLOCK


def _parsed(run_dir: str | Path, kind: str) -> Iterator[object]:
    """The records of one kind (history, alert, ...) in an offline run folder, in order."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    for raw in _records(files[0]):
        rec = pb.Record()
        try:
            rec.ParseFromString(raw)
        except DecodeError:  # a record cut short by a killed writer: the log ends here
            return
        if rec.WhichOneof("record_type") == kind:
            yield getattr(rec, kind)


def history(run_dir: str | Path) -> list[dict]:
    """The rows logged with ``wandb.log`` in an offline run folder."""
    return [{(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in h.item}
            for h in _parsed(run_dir, "history")]


def alerts(run_dir: str | Path) -> list[dict]:
    """The alerts raised with ``run.alert`` in an offline run folder."""
    return [{"title": a.title, "text": a.text, "level": a.level}
            for a in _parsed(run_dir, "alert")]
