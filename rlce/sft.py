"""Fine-tuning pairs from a file: ``algo=sft algo.sft_from=PATH`` trains on the prompt /
completion pairs of a JSONL file, a Parquet file, or a trajectory store (a run folder, or its
``trajectories`` folder of ``part-*.parquet`` shards), instead of sampling its own.

A row needs ``prompt`` (the problem's statement, which gets the same instruction and chat
template as a training prompt) and ``completion`` (the model's answer) as non-empty strings;
``problem`` names its problem (rows of one problem train as one group) and, where a row has a
``status`` (as a trajectory store's rows do), only ``passed`` rows are kept. A store's
evaluation rows (``source`` ``eval-...``) are never trained on. A row without
what it needs is reported as ``file:row: reason`` and skipped, or stops the run with
``data.on_error=raise``; a file with no usable pair at all is an error saying so.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlce.core.types import Prompt, ScoredSample, TrainGroup
from rlce.prompts import messages_for

logger = logging.getLogger(__name__)


class PairError(ValueError):
    """The pairs cannot be read, or none is usable; the message names the file."""


@dataclass(frozen=True)
class Pair:
    problem: str
    prompt: str
    completion: str


def files_of(path: Path) -> list[Path]:
    """The files ``path`` names: itself, or a store's shards (``part-*.parquet``) in it or
    in its ``trajectories`` folder."""
    if path.is_file():
        return [path]
    for folder in (path, path / "trajectories"):
        shards = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
        if shards:
            return shards
    if path.exists():
        raise PairError(f"{path} is neither a file nor a folder of trajectory shards "
                        "(part-*.parquet)")
    raise PairError(f"{path} does not exist")


def _rows(file: Path) -> Iterator[tuple[int, Any]]:
    """(row number, row) of a JSONL (1-based lines) or Parquet file (0-based rows); a line
    that is not JSON comes as an exception in place of the row."""
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(file)
        except Exception as e:  # noqa: BLE001 - pyarrow's errors vary by what is broken
            raise PairError(f"{file}: not a readable Parquet file ({e})") from None
        yield from enumerate(table.to_pylist())
        return
    with open(file, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except ValueError as e:
                yield i, e


def parse_pair(row: Any) -> Pair | None:
    """The pair in ``row``; None for a row kept out on purpose (a ``status`` other than
    ``passed``, or a sample of an evaluation); ValueError naming what is missing."""
    if isinstance(row, Exception):
        raise ValueError(f"not valid JSON ({row})")
    if not isinstance(row, dict):
        raise ValueError(f"a row must be an object, got {type(row).__name__}")
    for key in ("prompt", "completion"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ValueError(f"field {key!r} must be a non-empty string")
    if "status" in row and row["status"] != "passed":
        return None
    if str(row.get("source", "")).startswith("eval"):  # an evaluation set is never trained on
        return None
    problem = row.get("problem")
    if problem is not None and not isinstance(problem, str):
        raise ValueError(f"field 'problem' must be a string, got {type(problem).__name__}")
    return Pair(problem or row["prompt"], row["prompt"], row["completion"])


def read_pairs(path: str | Path, on_error: str = "skip") -> tuple[list[Pair], list[str], int]:
    """The usable pairs of ``path``, the ``file:row: reason`` of each bad row, and how many
    rows were kept out (not passed, or evaluation samples). ``on_error="raise"`` raises
    PairError at the first bad row; no usable pair at all raises PairError saying so."""
    pairs, errors, not_passed = [], [], 0
    files = files_of(Path(path))
    for file in files:
        for i, row in _rows(file):
            try:
                pair = parse_pair(row)
            except ValueError as e:
                message = f"{file}:{i}: {e}"
                if on_error == "raise":
                    raise PairError(message) from None
                errors.append(message)
                continue
            if pair is None:
                not_passed += 1
            else:
                pairs.append(pair)
    if not pairs:
        what = (f"none of its {not_passed} training samples passed" if not errors else
                f"{len(errors)} bad rows, {not_passed} samples that did not pass or are "
                "evaluation samples")
        raise PairError(f"{path} holds no pair to fine-tune on ({what}): there is nothing to "
                        "train on")
    return pairs, errors, not_passed


def to_sample(pair: Pair, tokenizer: Any, max_len: int) -> ScoredSample:
    """The pair as the learner's sample: the prompt as training renders it, the completion's
    tokens (no special tokens added); ValueError if it does not fit ``max_len`` tokens."""
    from rlce.core.types import prompt_token_ids

    prompt = Prompt(pair.problem, messages=messages_for(pair.prompt))
    prompt_ids = prompt_token_ids(tokenizer, prompt)
    completion_ids = tokenizer(pair.completion, add_special_tokens=False)["input_ids"]
    if len(prompt_ids) + len(completion_ids) > max_len:
        raise ValueError(f"problem {pair.problem!r}: {len(prompt_ids)} prompt and "
                         f"{len(completion_ids)} completion tokens exceed the context of "
                         f"{max_len}")
    return ScoredSample(tuple(prompt_ids), tuple(completion_ids),
                        (0.0,) * len(completion_ids), 1.0, 0)


class PairBatches:
    """The pairs grouped by problem, as an endless stream of training batches: each batch is
    ``groups`` problems' groups, drawn in a new shuffled order every epoch. ``position``
    counts the groups drawn, so a resumed run continues where it stopped (``skip``)."""

    def __init__(self, samples: dict[str, list[ScoredSample]], groups: int, seed: int) -> None:
        self.groups = [TrainGroup(pid, tuple(ss)) for pid, ss in samples.items()]
        self.per_batch, self.seed = groups, seed
        self.position = 0
        self._order: list[int] = []

    def _epoch(self) -> list[int]:
        order = list(range(len(self.groups)))
        random.Random(self.seed + self.position // max(1, len(self.groups))).shuffle(order)
        return order

    def _next_group(self) -> TrainGroup:
        if not self._order:
            self._order = self._epoch()
        self.position += 1
        return self.groups[self._order.pop()]

    def skip(self, n: int) -> None:
        for _ in range(n):
            self._next_group()

    def __next__(self) -> list[TrainGroup]:
        return [self._next_group() for _ in range(min(self.per_batch, len(self.groups)))]

    def __iter__(self) -> PairBatches:
        return self


def pair_batches(path: str | Path, pairs: list[Pair], tokenizer: Any, *, max_len: int,
                 groups: int, seed: int, on_error: str = "skip"
                 ) -> tuple[PairBatches, list[str]]:
    """The training batches of ``path``'s ``pairs`` (``read_pairs``) and the reason each
    pair too long for the context was left out; PairError if none fits, or at the first with
    ``on_error="raise"``."""
    errors: list[str] = []
    samples: dict[str, list[ScoredSample]] = {}
    for pair in pairs:
        try:
            sample = to_sample(pair, tokenizer, max_len)
        except ValueError as e:
            if on_error == "raise":
                raise PairError(f"{path}: {e}") from None
            errors.append(f"{path}: {e}")
            continue
        samples.setdefault(pair.problem, []).append(sample)
    if not samples:
        raise PairError(f"{path}: no pair fits the context of {max_len} tokens: there is "
                        "nothing to train on")
    return PairBatches(samples, groups, seed), errors
