"""Problems: one JSONL schema that carries the executor's test formats, a loader that reports
bad rows by file and line, and a procedural generator of unlimited simple problems.

A problem row::

    {"id": "sum-even", "language": "python", "prompt": "Write a function ...",
     "tests": {"format": "asserts", "asserts": ["assert sum_even([1, 2]) == 2"]},
     "difficulty": "easy"}

``tests`` is exactly an execution job's ``tests`` object (executors/README.md), so a program
extracted from a completion becomes a job with no translation.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executors.schema import InvalidJob, parse_job
from rlce.guard import check_heldout, job_tests, reward_count


class ProblemError(ValueError):
    """A problem row is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Problem:
    id: str
    language: str
    prompt: str
    tests: dict[str, Any]
    difficulty: str = "unknown"
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def job(self, source: str, job_id: str) -> dict[str, Any]:
        """The execution job that judges ``source`` against this problem's tests (with the
        fleet's limits, ``executor.timeout_s``): its reward tests followed by its held-out
        ones (``rlce.guard``), all in one job."""
        return {"id": job_id, "language": self.language, "source": source,
                "tests": job_tests(self.tests)[0]}

    @property
    def reward_count(self) -> int:
        """How many of the job's tests are reward tests (the rest are held out)."""
        return reward_count(self.tests)


def fingerprint(problems: list[Problem]) -> str:
    """A digest of a problem set as the run sees it: every problem's id, language, prompt and
    tests, in order (the draws depend on the order too)."""
    import hashlib
    import json

    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.id, p.language, p.prompt, p.tests], sort_keys=True,
                            default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def parse_problem(row: Any, where: str = "") -> Problem:
    """Validate one row (a dict) into a Problem, or raise ProblemError naming the problem."""
    at = f"{where}: " if where else ""
    if not isinstance(row, dict):
        raise ProblemError(f"{at}a problem must be a JSON object, got {type(row).__name__}")
    for key in ("id", "language", "prompt"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ProblemError(f"{at}field {key!r} must be a non-empty string")
    tests = row.get("tests")
    if not isinstance(tests, dict) or not tests:
        raise ProblemError(f"{at}problem {row['id']!r} has no tests")
    if tests.get("record"):
        raise ProblemError(f"{at}problem {row['id']!r}: its call tests record values instead "
                           "of judging them ('record': true)")
    bad = check_heldout(tests)
    if bad:
        raise ProblemError(f"{at}problem {row['id']!r}: {bad}")
    try:  # the executor's own validation of the tests for this language (held-out ones too)
        job = parse_job({"id": row["id"], "language": row["language"], "source": "x",
                         "tests": job_tests(tests)[0]})
    except InvalidJob as e:
        raise ProblemError(f"{at}problem {row['id']!r}: {e}") from None
    known = {"id", "language", "prompt", "tests", "difficulty"}
    return Problem(row["id"], job.language, row["prompt"], tests,
                   str(row.get("difficulty", "unknown")),
                   {k: v for k, v in row.items() if k not in known})


def _json_field(text: str, where: str, what: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        subject = f"{what} is " if what else ""
        raise ProblemError(f"{where}: {subject}not valid JSON ({e.msg})") from None


def _collect(rows: Iterator[tuple[str, Callable[[], Any]]], on_error: str
             ) -> tuple[list[Problem], list[str]]:
    """Parse ``(where, read_row)`` pairs into problems; a bad row (or a duplicate id) is
    reported with its place and skipped, or raised with ``on_error="raise"``."""
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be skip or raise, got {on_error!r}")
    problems: list[Problem] = []
    errors: list[str] = []
    seen: set[str] = set()
    for where, read_row in rows:
        try:
            p = parse_problem(read_row(), where)
            if p.id in seen:
                raise ProblemError(f"{where}: duplicate problem id {p.id!r}")
            seen.add(p.id)
            problems.append(p)
        except ProblemError as e:
            if on_error == "raise":
                raise
            errors.append(str(e))
    return problems, errors


def load_jsonl(path: str | Path, on_error: str = "skip"
               ) -> tuple[list[Problem], list[str]]:
    """Problems from a JSONL file and the errors of the rows that were skipped
    (``on_error="raise"`` fails on the first). Duplicate ids are errors too."""
    path = Path(path)

    def rows() -> Iterator[tuple[str, Callable[[], Any]]]:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    where = f"{path}:{n}"
                    yield where, lambda line=line, where=where: _json_field(line, where)
    return _collect(rows(), on_error)


def load_hf(path: str | Path, split: str | None = None, on_error: str = "skip"
            ) -> tuple[list[Problem], list[str]]:
    """Problems from a Hugging Face ``datasets`` dataset saved with ``save_to_disk``: rows in
    the schema above, with ``tests`` either an object or a JSON string (Arrow needs one type
    per column). A ``DatasetDict`` needs ``split`` unless it has a ``train`` split."""
    import datasets

    if not Path(path).exists():
        raise FileNotFoundError(f"no dataset saved at {path}")
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        name = split or ("train" if "train" in ds else None)
        if name not in ds:
            raise ValueError(f"{path}: choose a split with data.split, one of {sorted(ds)}")
        ds, split = ds[name], name
    elif split:
        raise ValueError(f"{path} holds one dataset, not splits; leave data.split unset")

    def read(row: dict[str, Any], where: str) -> dict[str, Any]:
        row = {k: v for k, v in row.items() if v is not None}
        if isinstance(row.get("tests"), str):
            row["tests"] = _json_field(row["tests"], where, "field 'tests'")
        return row

    rows = ((f"{path}[{split or 'dataset'}] row {n}",
             lambda row=row, n=n: read(dict(row), f"{path}[{split or 'dataset'}] row {n}"))
            for n, row in enumerate(ds))
    return _collect(rows, on_error)


# -- a procedural generator of simple problems with tests

def _linear(rng: random.Random) -> dict[str, Any]:
    a, b = rng.randint(2, 9), rng.randint(-20, 20)
    xs = rng.sample(range(-50, 50), 5)
    return {"prompt": f"Write a Python function `f(x)` that returns {a} times x plus ({b}).",
            "tests": {"format": "asserts",
                      "asserts": [f"assert f({x}) == {a * x + b}" for x in xs]}}


def _count_divisible(rng: random.Random) -> dict[str, Any]:
    k = rng.randint(2, 7)
    cases = [[rng.randint(-30, 60) for _ in range(rng.randint(0, 8))] for _ in range(5)]
    return {"prompt": f"Write a Python function `count_div(xs)` that returns how many integers "
                      f"in the list `xs` are divisible by {k}.",
            "tests": {"format": "call", "fn_name": "count_div",
                      "cases": [{"args": [c], "expected": sum(1 for v in c if v % k == 0)}
                                for c in cases]}}


def _repeat_words(rng: random.Random) -> dict[str, Any]:
    n = rng.randint(2, 4)
    lines = [" ".join(rng.choice(["red", "blue", "cat", "dog", "sun"])
                      for _ in range(rng.randint(1, 4))) for _ in range(4)]
    return {"prompt": f"Write a Python program that reads one line from standard input and "
                      f"prints each of its words {n} times in a row, separated by single "
                      f"spaces.",
            "tests": {"format": "io", "cases": [
                {"input": ln + "\n", "output": " ".join(w for w in ln.split() for _ in range(n))}
                for ln in lines]}}


def _max_gap(rng: random.Random) -> dict[str, Any]:
    cases = [sorted(rng.sample(range(0, 100), rng.randint(2, 7))) for _ in range(5)]
    return {"prompt": "Write a Python function `max_gap(xs)` that takes a sorted list of at "
                      "least two integers and returns the largest difference between two "
                      "neighbours.",
            "tests": {"format": "asserts", "asserts": [
                f"assert max_gap({c}) == {max(b - a for a, b in zip(c, c[1:]))}"
                for c in cases]}}


FAMILIES = {"linear": _linear, "count_divisible": _count_divisible,
            "repeat_words": _repeat_words, "max_gap": _max_gap}


def generate(seed: int = 0, families: list[str] | None = None) -> Iterator[Problem]:
    """An endless, reproducible stream of simple Python problems with tests."""
    names = families or sorted(FAMILIES)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown problem families {unknown}; valid: {sorted(FAMILIES)}")
    rng = random.Random(seed)
    i = 0
    while True:
        name = names[i % len(names)]
        row = FAMILIES[name](rng)
        yield parse_problem({"id": f"gen/{seed}/{i}/{name}", "language": "python",
                             "difficulty": "easy", **row})
        i += 1


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), for n samples of which c
    passed."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


class ProblemStream:
    """Problems in a reproducible order: a finite set is shuffled per epoch with the seed, an
    endless source is taken as it comes. ``position`` counts problems drawn, so a resumed run
    continues with the same order (``skip``)."""

    def __init__(self, source: Iterable[Problem], seed: int = 0, shuffle: bool = True) -> None:
        self.finite = isinstance(source, (list, tuple))
        self.items = list(source) if self.finite else None
        if self.finite and not self.items:
            raise ValueError("the problem set is empty")
        self.source = None if self.finite else iter(source)
        self.seed, self.shuffle, self.position = seed, shuffle, 0
        self._order: list[int] = []
        self._epoch = -1

    def _order_for(self, epoch: int) -> list[int]:
        if epoch != self._epoch:
            order = list(range(len(self.items)))
            if self.shuffle:
                random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._order, self._epoch = order, epoch
        return self._order

    def __next__(self) -> Problem:
        if self.finite:
            epoch, i = divmod(self.position, len(self.items))
            p = self.items[self._order_for(epoch)[i]]
        else:
            p = next(self.source)
        self.position += 1
        return p

    def __iter__(self) -> Iterator[Problem]:
        return self

    def skip(self, n: int) -> None:
        for _ in range(n):
            next(self)

    def observe(self, counts: dict[str, list[int]]) -> None:
        """Pass rates do not change a uniform order (``CurriculumStream`` uses them)."""

    def exclude(self, pid: str) -> None:
        """A problem that cannot be used (its prompt does not fit) stays in a uniform order:
        the controller skips it each time."""


class CurriculumStream:
    """Problems drawn by what the policy can learn from (``data.curriculum=failures``): each
    problem's training pass rate (``observe``) sets its weight.

    - tried fewer than ``min_tries`` times, or in the band between never and mastered:
      weight 1 (the problems whose groups carry a learning signal);
    - mastered (pass rate at least ``mastered_rate`` over ``min_tries`` or more): weight
      ``mastered_weight``, so it is drawn rarely, not never;
    - never solved in ``retire_after`` tries: retired (weight 0), but every ``revisit_every``
      draws the retired problem drawn least recently comes back once.

    A problem drawn in the last ``window`` draws is not drawn again while others are left.
    ``state()`` and ``load_state()`` carry the statistics, the random state and the position
    through a checkpoint, so a resumed run continues them."""

    def __init__(self, problems: list[Problem], seed: int = 0, mastered_rate: float = 0.9,
                 min_tries: int = 8, retire_after: int = 16, revisit_every: int = 64,
                 mastered_weight: float = 0.05) -> None:
        if not problems:
            raise ValueError("the problem set is empty")
        self.items = list(problems)
        self.index = {p.id: i for i, p in enumerate(self.items)}
        self.rng = random.Random(seed)
        self.mastered_rate, self.min_tries = mastered_rate, min_tries
        self.retire_after, self.revisit_every = retire_after, revisit_every
        self.mastered_weight = mastered_weight
        self.window = min(64, len(self.items) // 4)
        self.stats = {p.id: [0, 0] for p in self.items}  # id -> [passed, judged]
        self.last_drawn = {p.id: -1 for p in self.items}
        self.position = 0
        self.finite = True
        self.excluded: set[str] = set()
        # draws (an asynchronous run's generation thread) and the statistics and checkpoints
        # (the training loop) come from different threads
        self._lock = threading.Lock()

    def observe(self, counts: dict[str, list[int]]) -> None:
        """Add judged samples per problem: ``{id: [passed, judged]}`` (ids not in the set,
        such as evaluation problems, are ignored)."""
        with self._lock:
            for pid, (passed, judged) in counts.items():
                if pid in self.stats:
                    self.stats[pid][0] += passed
                    self.stats[pid][1] += judged

    def exclude(self, pid: str) -> None:
        """Never draw ``pid`` again (its prompt does not fit the engines' context): it would
        stay untried at full weight and take ever more draws."""
        with self._lock:
            self.excluded.add(pid)

    def band(self, pid: str) -> str:
        passed, judged = self.stats[pid]
        if judged < self.min_tries:
            return "untried" if judged == 0 else "learning"
        if passed / judged >= self.mastered_rate:
            return "mastered"
        if passed == 0 and judged >= self.retire_after:
            return "retired"
        return "learning"

    def bands(self) -> dict[str, int]:
        out = dict.fromkeys(("untried", "learning", "mastered", "retired"), 0)
        for pid in self.stats:
            out[self.band(pid)] += 1
        return out

    def _weight(self, pid: str) -> float:
        if pid in self.excluded:
            return 0.0
        return {"mastered": self.mastered_weight, "retired": 0.0}.get(self.band(pid), 1.0)

    def __next__(self) -> Problem:
        with self._lock:
            return self.items[self.index[self._draw()]]

    def _draw(self) -> str:
        retired = [pid for pid in self.stats
                   if self.band(pid) == "retired" and pid not in self.excluded]
        if retired and self.position and self.position % self.revisit_every == 0:
            pid = min(retired, key=lambda p: (self.last_drawn[p], self.index[p]))
        else:
            recent = {pid for pid, at in self.last_drawn.items()
                      if at >= 0 and self.position - at <= self.window}
            weights = {pid: self._weight(pid) for pid in self.stats}
            ids = [pid for pid, w in weights.items() if w and pid not in recent] or \
                [pid for pid, w in weights.items() if w]  # only recent ones can be drawn
            if not ids:  # every problem retired or excluded: draw among all
                ids = list(self.stats)
            pid = self.rng.choices(ids, [weights[p] or 1.0 for p in ids])[0]
        self.last_drawn[pid] = self.position
        self.position += 1
        return pid

    def __iter__(self) -> Iterator[Problem]:
        return self

    def state(self) -> dict[str, Any]:
        """A copy of everything the draws depend on. In an asynchronous run it includes
        draws whose batches were generated but not yet trained on, so a resumed one does
        not repeat them: it continues the statistics, not the exact sequence."""
        with self._lock:
            version, internal, gauss = self.rng.getstate()
            return {"position": self.position,
                    "stats": {k: list(v) for k, v in self.stats.items()},
                    "last_drawn": dict(self.last_drawn), "excluded": sorted(self.excluded),
                    "rng": [version, list(internal), gauss]}

    def load_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.position = state["position"]
            self.stats.update({k: list(v) for k, v in state["stats"].items()
                               if k in self.stats})
            self.last_drawn.update({k: v for k, v in state["last_drawn"].items()
                                    if k in self.last_drawn})
            self.excluded = {k for k in state.get("excluded", []) if k in self.stats}
            version, internal, gauss = state["rng"]
            self.rng.setstate((version, tuple(internal), gauss))
