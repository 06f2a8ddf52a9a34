"""Output comparators for ``io`` tests and plain-data equality for ``call`` tests.

These run on the host, never in the sandbox: expected outputs are not sent to the candidate.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
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


INTEGER = re.compile(r"[+-]?[0-9]+")
# one way to match each digit (no ``[0-9]+\.?[0-9]*``, which backtracks quadratically on a
# long run of digits that does not match: a program's output must not cost the host hours)
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _plain_number(tok: str) -> bool:
    """A number as a program prints one: ASCII digits, point and exponent, or nan/inf.
    (``float()`` also takes ``1_000.5`` and other scripts' digits, which no judge expects.)"""
    return DECIMAL.fullmatch(tok) is not None or tok.lower().lstrip("+-") in ("nan", "inf",
                                                                               "infinity")


def _same_integer(got: str, want: str) -> bool:
    """An expected integer token is matched exactly by value (``2.000`` or ``2e0`` for ``2``),
    never within a tolerance: a relative tolerance on ``1000000000`` would pay ``1000000999``.
    Compared as exact decimals, so tokens of any length cost no precision and raise nothing."""
    if DECIMAL.fullmatch(got) is None:
        return False
    try:
        return Decimal(got) == Decimal(want)
    except InvalidOperation:  # an exponent past 10**18: no integer token of ours is that big
        return False


def compare_float(got: str, want: str, tolerance: float = 1e-6) -> bool:
    """Tokens equal; where the expected token is an integer, the output's must have exactly
    its value; where it is any other number, the output's must be within ``tolerance``
    absolute or relative of it."""
    g, w = got.split(), want.split()
    if len(g) != len(w):
        return False
    for a, b in zip(g, w):
        if INTEGER.fullmatch(b):
            if not _same_integer(a, b):
                return False
            continue
        fb = _as_float(b)
        if fb is None:
            if a != b:
                return False
            continue
        fa = _as_float(a) if _plain_number(a) else None
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
    an expected float is matched within ``rel_tol`` (relative or absolute), an expected
    integer exactly (a float within ``rel_tol`` absolute of it counts, not one off by a
    relative ``rel_tol``); a returned ``Fraction`` or ``Decimal`` is the number it stands for
    (JSON has only numbers). A returned set or frozenset equals no expected value: JSON has
    no sets, and a set has neither the order nor the repeats of the list it would stand
    for (``{1, 2, 3}`` is not ``[1, 2, 2, 3]``, nor ``[3, 2, 1]`` sorted descending); test
    set-valued functions with ``check``/``asserts``. Only built-in types get here (the
    sandbox codec refuses anything else), so no user-defined ``__eq__`` is ever called.
    Total: any two values give True or False, never an exception (the returned value is
    the program's, and a comparison that raised would blame the executor)."""
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        return _numbers_equal(got, want, rel_tol)
    if isinstance(got, (Fraction, Decimal)) and isinstance(want, (int, float)):
        return _exact_number_equal(got, want, rel_tol)
    if isinstance(got, (list, tuple)) and isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(plain_equal(a, b, rel_tol) for a, b in zip(got, want))
    if isinstance(got, dict) and isinstance(want, dict):
        if len(got) != len(want):
            return False
        gk = {_json_key(k): v for k, v in got.items()}
        return all(k in gk and plain_equal(gk[k], v, rel_tol) for k, v in want.items())
    if isinstance(got, (set, frozenset)):
        return False
    return type(got) is type(want) and got == want


def _numbers_equal(got: float, want: float, rel_tol: float) -> bool:
    """Numbers compared as exact rationals where an int is involved, so that ints of any size
    never overflow a float conversion (``math.isclose(10**400, 1.5)`` raises)."""
    if isinstance(got, int) and isinstance(want, int):
        return got == want
    if isinstance(got, float) and isinstance(want, float):
        if math.isnan(got) or math.isnan(want):
            return math.isnan(got) and math.isnan(want)
        return math.isclose(got, want, rel_tol=rel_tol, abs_tol=rel_tol)
    x = got if isinstance(got, float) else want  # one int and one float
    if not math.isfinite(x):  # no int is nan or infinite
        return False
    a, b, tol = Fraction(got), Fraction(want), Fraction(rel_tol)
    if isinstance(want, int):  # an expected integer: only a float next to it counts
        return abs(a - b) <= tol
    return abs(a - b) <= max(tol * max(abs(a), abs(b)), tol)


def _exact_number_equal(got: Fraction | Decimal, want: float, rel_tol: float) -> bool:
    """A returned ``Fraction`` or ``Decimal`` as the number it is: exactly equal to an expected
    integer, within ``rel_tol`` of an expected float (as the float nearest to it, an error far
    below the tolerance). A Decimal NaN equals only NaN; a finite value past the float range
    equals no float. Nothing here raises (a signalling NaN is never compared) or expands a
    huge exponent (a Decimal compares with an int by its exponent)."""
    if isinstance(got, Decimal) and got.is_nan():
        return isinstance(want, float) and math.isnan(want)
    if isinstance(want, int):
        return got == want
    try:
        near = float(got)
    except OverflowError:  # a Fraction past the float range
        return False
    if math.isinf(near) and not (isinstance(got, Decimal) and got.is_infinite()):
        return False
    return _numbers_equal(near, want, rel_tol)


def _json_key(k: Any) -> Any:
    """A returned dict's key as JSON would write it (JSON object keys are strings: ``true``,
    ``false``, ``null``, ``Infinity``); an int too long for ``str`` stays an int, which no
    expected (string) key equals."""
    if isinstance(k, str):
        return k
    if k is None or isinstance(k, (bool, float)):
        return json.dumps(k)
    try:
        return str(k)
    except ValueError:
        return k
