"""Output comparators for ``io`` tests and plain-data equality for ``call`` tests.

These run on the host, never in the sandbox: expected outputs are not sent to the candidate.
"""

from __future__ import annotations

import math
from typing import Any


def compare_exact(got: str, want: str) -> bool:
    """Byte-for-byte equal, except that a single trailing newline on either side is ignored."""
    return got.removesuffix("\n") == want.removesuffix("\n")


def compare_whitespace(got: str, want: str) -> bool:
    """Equal as sequences of whitespace-separated tokens (the default)."""
    return got.split() == want.split()


def _as_float(tok: str) -> float | None:
    try:
        return float(tok)
    except ValueError:
        return None


def compare_float(got: str, want: str, tolerance: float = 1e-6) -> bool:
    """Tokens equal; where the expected token is a number, the output's must be within
    ``tolerance`` absolute or relative of it."""
    g, w = got.split(), want.split()
    if len(g) != len(w):
        return False
    for a, b in zip(g, w):
        fb = _as_float(b)
        if fb is None:
            if a != b:
                return False
            continue
        fa = _as_float(a)
        if fa is None or math.isnan(fa) != math.isnan(fb):
            return False
        if math.isnan(fb):
            continue
        if not math.isclose(fa, fb, rel_tol=tolerance, abs_tol=tolerance):
            return False
    return True


def compare_output(got: str, want: str, how: str, tolerance: float = 1e-6) -> bool:
    if how == "exact":
        return compare_exact(got, want)
    if how == "whitespace":
        return compare_whitespace(got, want)
    if how == "float":
        return compare_float(got, want, tolerance)
    raise ValueError(f"unknown comparator {how!r}; valid: exact, whitespace, float")


def plain_equal(got: Any, want: Any, rel_tol: float = 1e-9) -> bool:
    """Equality of plain data as JSON sees it: tuples equal lists, bools are not ints,
    floats equal within ``rel_tol``. Only built-in types get here (the sandbox codec
    refuses anything else), so no user-defined ``__eq__`` is ever called."""
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        if isinstance(got, int) and isinstance(want, int):
            return got == want
        if math.isnan(got) or math.isnan(want):
            return math.isnan(got) and math.isnan(want)
        return math.isclose(got, want, rel_tol=rel_tol, abs_tol=rel_tol)
    if isinstance(got, (list, tuple)) and isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(plain_equal(a, b, rel_tol) for a, b in zip(got, want))
    if isinstance(got, dict) and isinstance(want, dict):
        if len(got) != len(want):
            return False
        gk = {str(k) if not isinstance(k, str) else k: v for k, v in got.items()}
        return all(k in gk and plain_equal(gk[k], v, rel_tol) for k, v in want.items())
    if isinstance(got, (set, frozenset)) and isinstance(want, list):
        return got == set(map(_hashable, want))
    return type(got) is type(want) and got == want


def _hashable(x: Any) -> Any:
    return tuple(map(_hashable, x)) if isinstance(x, list) else x
