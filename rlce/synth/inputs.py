"""New test inputs shaped like a problem's own: each argument's observed values give its type
and the properties every example kept (the sign of numbers, the length of lists and
strings, the characters used, sorted or distinct elements), and new values keep those
properties, edge values first (the smallest and largest seen, zero, empty where an example
was empty), then random ones. Inputs a problem's statement would still rule out (an index
past a list's end) make the reference raise and are dropped when it runs."""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Shape:
    """What the examples of one value have in common."""

    kind: str  # bool, int, float, str, list, dict, none, choice
    lo: float = 0
    hi: float = 0
    min_len: int = 0
    max_len: int = 0
    alphabet: str = ""
    sorted: bool = False
    distinct: bool = False
    item: Shape | None = None  # list elements; dict values
    examples: list[Any] = field(default_factory=list)


def _kind(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return "dict"
    return "other"


def shape_of(values: list[Any]) -> Shape:
    kinds = {_kind(v) for v in values}
    if kinds == {"int", "float"}:
        kinds = {"float"}
    if len(kinds) != 1 or kinds == {"other"}:
        return Shape("choice", examples=values)
    (kind,) = kinds
    if kind in ("int", "float"):
        if max(abs(v) for v in values) > 1e15:  # past floats' exact integers: reuse them
            return Shape("choice", examples=values)
        return Shape(kind, lo=min(values), hi=max(values), examples=values)
    if kind == "str":
        chars = "".join(sorted(set("".join(values))))
        return Shape("str", min_len=min(map(len, values)), max_len=max(map(len, values)),
                     alphabet=chars or string.ascii_lowercase, examples=values)
    if kind == "list":
        items = [x for v in values for x in v]
        return Shape("list", min_len=min(map(len, values)), max_len=max(map(len, values)),
                     sorted=all(_sorted(v) for v in values) and any(len(v) > 1 for v in values),
                     distinct=all(_distinct(v) for v in values),
                     item=shape_of(items) if items else None, examples=values)
    if kind == "dict":
        keys = [k for v in values for k in v]
        vals = [x for v in values for x in v.values()]
        return Shape("dict", min_len=min(map(len, values)), max_len=max(map(len, values)),
                     alphabet="".join(sorted(set("".join(keys)))) or string.ascii_lowercase,
                     item=shape_of(vals) if vals else None, examples=values)
    return Shape(kind, examples=values)


def _sorted(v: list) -> bool:
    try:
        return all(a <= b for a, b in zip(v, v[1:]))
    except TypeError:
        return False


def _distinct(v: list) -> bool:
    return len({json.dumps(x, sort_keys=True) for x in v}) == len(v)


def _number_range(s: Shape) -> tuple[float, float]:
    """The observed range, widened by its span (at least 4) on each side, except that a
    sign every example kept is kept: no negative where none was seen, no positive where
    none was seen."""
    span = max(s.hi - s.lo, 4)
    return (s.lo if s.lo >= 0 else s.lo - span, s.hi + span if s.hi > 0 else s.hi)


def draw(s: Shape, rng: random.Random, edge: int = -1) -> Any:
    """A value of shape ``s``: edge value number ``edge`` when it has one, else random."""
    if s.kind == "none":
        return None
    if s.kind == "bool":
        return rng.random() < 0.5
    if s.kind == "choice":
        return rng.choice(s.examples)
    if s.kind in ("int", "float"):
        lo, hi = _number_range(s)
        edges = [s.lo, s.hi] + ([0] if lo <= 0 <= hi else []) + [lo, hi]
        if 0 <= edge < len(edges):
            v = edges[edge]
        else:
            v = rng.uniform(lo, hi)
        return int(round(v)) if s.kind == "int" else round(float(v), 3)
    if s.kind == "str":
        n = _length(s, rng, edge)
        return "".join(rng.choice(s.alphabet) for _ in range(n))
    if s.kind == "list":
        n = _length(s, rng, edge)
        if s.item is None:
            return []
        items = [draw(s.item, rng, edge if edge >= 0 and i == 0 else -1) for i in range(n)]
        if s.distinct:
            items = list({json.dumps(x, sort_keys=True): x for x in items}.values())
        if s.sorted:
            try:
                items.sort()
            except TypeError:
                pass
        return items
    if s.kind == "dict":
        n = _length(s, rng, edge)
        keys = {"".join(rng.choice(s.alphabet) for _ in range(rng.randint(1, 6)))
                for _ in range(n)}
        return {k: draw(s.item, rng) if s.item else None for k in sorted(keys)}
    raise ValueError(f"no values of kind {s.kind!r}")


def _length(s: Shape, rng: random.Random, edge: int) -> int:
    top = max(min(max(s.max_len * 2, s.min_len + 3), 24), s.min_len)
    if edge == 0:
        return s.min_len
    if edge == 1:
        return top
    return rng.randint(s.min_len, top)


def more_inputs(examples: list[dict[str, Any]], count: int, seed: int = 0
                ) -> list[dict[str, Any]]:
    """Up to ``count`` new inputs ({"args", "kwargs"}) shaped like ``examples``, none equal
    to an example or to each other. Examples that disagree on their arguments (a different
    number of them, other keyword names) leave nothing to shape: no new input."""
    if not examples:
        return []
    arity = {len(e.get("args", [])) for e in examples}
    names = {tuple(sorted(e.get("kwargs", {}))) for e in examples}
    if len(arity) != 1 or len(names) != 1:
        return []
    (n,), (kw,) = arity, names
    arg_shapes = [shape_of([e["args"][i] for e in examples]) for i in range(n)]
    kw_shapes = {k: shape_of([e["kwargs"][k] for e in examples]) for k in kw}
    rng = random.Random(seed)
    seen = {json.dumps([e.get("args", []), e.get("kwargs", {})], sort_keys=True)
            for e in examples}
    out: list[dict[str, Any]] = []
    for attempt in range(count * 10):
        if len(out) >= count:
            break
        edge = attempt if attempt < 5 else -1
        new = {"args": [draw(s, rng, edge) for s in arg_shapes],
               "kwargs": {k: draw(s, rng, edge) for k, s in kw_shapes.items()}}
        key = json.dumps([new["args"], new["kwargs"]], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(new)
    return out
