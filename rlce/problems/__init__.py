"""The training set that ships with RLCE: problems written for this project (never taken from
an evaluation set), each with a reference solution from which its expected outputs are
computed when the set is built.

``shipped()`` returns them as ``rlce.data.Problem``; ``python -m rlce.problems export FILE``
writes them as JSONL in the schema of ``rlce.data`` (without the references)."""

from __future__ import annotations

import functools
from typing import Any

from rlce.data import Problem, parse_problem
from rlce.problems.catalog_io import IO
from rlce.problems.catalog_py import FUNCTIONS

LANGUAGE_NAMES = {"python": "Python", "javascript": "JavaScript (Node.js)", "go": "Go",
                  "rust": "Rust"}


def _reference(src: str, name: str) -> Any:
    scope: dict[str, Any] = {}
    exec(compile(src, f"<reference {name}>", "exec"), scope)  # noqa: S102 - our own references
    return scope[name]


def _plain(v: Any) -> Any:
    """The value as the executor compares it: tuples as lists, dict keys as written."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):  # JSON would turn them into strings
            raise ValueError(f"expected value {v!r} has a dict key that is not a string")
        return {k: _plain(x) for k, x in v.items()}
    return v


def _function_rows() -> list[dict[str, Any]]:
    rows = []
    for sig, task, level, ref, cases in FUNCTIONS:
        name = sig.split("(")[0]
        fn = _reference(ref, name)
        tests = [{"args": [_plain(a) for a in args], "expected": _plain(fn(*args))}
                 for args in cases]
        rows.append({"id": f"rlce/py/{name}", "language": "python", "difficulty": level,
                     "prompt": f"Write a Python function `{sig}` that {task}.",
                     "tests": {"format": "call", "fn_name": name, "cases": tests},
                     "reference": ref})
    return rows


def _io_rows() -> list[dict[str, Any]]:
    rows = []
    for pid, task, level, languages, ref, inputs in IO:
        solve = _reference(ref, "solve")
        cases = [{"input": i, "output": solve(i)} for i in inputs]
        for lang in languages:
            rows.append({"id": f"rlce/{lang}/{pid}", "language": lang, "difficulty": level,
                         "prompt": f"Write a {LANGUAGE_NAMES[lang]} program that {task}. "
                                   f"Read from standard input and write to standard output.",
                         "tests": {"format": "io", "cases": cases, "compare": "whitespace"}})
    return rows


@functools.lru_cache(maxsize=1)
def _rows() -> tuple[dict[str, Any], ...]:
    return tuple(_function_rows() + _io_rows())


def shipped(languages: list[str] | None = None,
            difficulties: list[str] | None = None) -> list[Problem]:
    """The shipped problems, optionally only some languages and difficulty levels."""
    out = []
    for row in _rows():
        if languages and row["language"] not in languages:
            continue
        if difficulties and row["difficulty"] not in difficulties:
            continue
        out.append(parse_problem(row, f"shipped:{row['id']}"))
    return out


def export(path: str) -> int:
    import json

    rows = [{k: v for k, v in r.items() if k != "reference"} for r in _rows()]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return len(rows)
