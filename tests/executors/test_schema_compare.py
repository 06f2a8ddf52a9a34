"""Pure logic: job validation, comparators, plain-data equality and the in-sandbox codec."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from executors.compare import compare_exact, compare_float, compare_whitespace, plain_equal
from executors.sandboxed.codec import decode, encode
from executors.schema import InvalidJob, parse_job


def job(**kw):
    base = {"id": "1", "language": "python", "source": "x=1",
            "tests": {"format": "asserts", "asserts": ["assert x == 1"]}}
    base.update(kw)
    return base


def test_valid_job_and_defaults():
    j = parse_job(job(language="py"))
    assert j.language == "python" and j.limits.timeout_s == 5.0 and j.limits.memory_mb == 512


@pytest.mark.parametrize("bad, needle", [
    ({"id": ""}, "'id'"),
    ({"language": "cobol"}, "language"),
    ({"source": 5}, "'source' must be str"),
    ({"tests": {"format": "nope"}}, "tests.format"),
    ({"tests": {"format": "asserts", "asserts": []}}, "asserts is empty"),
    ({"tests": {"format": "check", "code": "x", "entry_point": "not valid"}}, "entry_point"),
    ({"tests": {"format": "io", "cases": [{"input": "1"}]}}, "'output'"),
    ({"tests": {"format": "io", "cases": [{"input": "", "output": ""}], "compare": "fuzzy"}},
     "compare"),
    ({"tests": {"format": "call", "fn_name": "f", "cases": [{"args": [1]}]}}, "expected"),
    ({"limits": {"timeout_s": -1}}, "timeout_s"),
    ({"limits": {"memory_mb": 1}}, "memory_mb"),
    ({"limits": {"cpu": 1}}, "unknown field"),
    ({"language": "go", "tests": {"format": "asserts", "asserts": ["x"]}}, "does not support"),
])
def test_invalid_jobs_name_the_problem(bad, needle):
    with pytest.raises(InvalidJob, match=needle):
        parse_job(job(**bad))


def test_not_an_object():
    with pytest.raises(InvalidJob, match="JSON object"):
        parse_job([1, 2])


def test_exact():
    assert compare_exact("1 2\n", "1 2")
    assert not compare_exact("1  2", "1 2")
    assert not compare_exact("1 2\n\n", "1 2")


def test_whitespace():
    assert compare_whitespace("1   2\n3\n\n", "1 2 3")
    assert not compare_whitespace("1 2", "1 2 3")
    assert not compare_whitespace("12", "1 2")


def test_float():
    assert compare_float("0.3333333 yes", "0.33333333333 yes", 1e-6)
    assert not compare_float("0.33 yes", "0.3333333 yes", 1e-6)
    assert not compare_float("0.3333333 no", "0.3333333 yes", 1e-6)
    assert compare_float("1e9", "1000000000.0001", 1e-6)  # relative
    assert not compare_float("nan", "1.0")
    assert not compare_float("1 2", "1")


def test_plain_equal():
    assert plain_equal((1, 2), [1, 2])
    assert plain_equal(0.1 + 0.2, 0.3)
    assert not plain_equal(True, 1)
    assert not plain_equal(1, True)
    assert plain_equal({"a": [1, (2, 3)]}, {"a": [1, [2, 3]]})
    assert plain_equal({1: "x"}, {"1": "x"})  # JSON object keys are strings
    assert not plain_equal([1, 2], [2, 1])
    assert not plain_equal("1", 1)
    assert plain_equal(float("nan"), float("nan"))


def test_codec_round_trip_keeps_types():
    v = {"a": (1, 2.5, None), 3: [b"x", {1, 2}, frozenset({3})], "big": 10**30, "c": 1 + 2j,
         "inf": math.inf}
    assert decode(encode(v)) == v
    assert type(decode(encode((1,)))) is tuple


def test_codec_refuses_custom_objects():
    class AlwaysEq:
        def __eq__(self, other):
            return True

    with pytest.raises(TypeError):
        encode(AlwaysEq())
    with pytest.raises(TypeError):
        encode([1, AlwaysEq()])

    class SubInt(int):  # travels as the int it holds, read by int's own method
        def __int__(self):
            return 4

    assert type(decode(encode(SubInt(3)))) is int and decode(encode(SubInt(3))) == 3


def test_float_integer_tokens_compare_exactly():
    assert not compare_float("1000000999", "1000000000", 1e-6)
    assert compare_float("2.000 2e0", "2 2")  # the same value, written as a decimal
    assert not compare_float("2.0000001", "2")
    assert not compare_float("two", "2") and not compare_float("1e99999999999999999999", "5")
    assert compare_float("1" * 6000, "1" * 6000) and not compare_float("1" * 6000, "1" * 5999)


def test_a_set_equals_no_json_value():
    assert not plain_equal({1, 2, 3}, [1, 2, 2, 3])  # neither the repeats
    assert not plain_equal({1, 2, 3}, [3, 2, 1])  # nor the order of a list
    assert not plain_equal(frozenset({(1, 2)}), [[1, 2]]) and not plain_equal({1}, {1})
    assert not plain_equal({1}, [{"a": 1}])  # unhashable expected elements: no error


def test_plain_equal_expected_integers_are_exact():
    assert not plain_equal(float(2**60), 2**60 + 1)
    assert plain_equal(float(2**60), 2**60) and plain_equal(3.0000000001, 3)
    assert plain_equal(10**20 + 7, 1e20)  # an expected float keeps its relative tolerance
    assert not plain_equal(2, 2.5)


@pytest.mark.parametrize("got, want", [
    (10**400, 1.5), (1.5, 10**400), (math.inf, 10**400), (10**400, math.nan),
    ({10**5000: 1}, {"x": 1}), ({1}, [{"a": 1}]), ([10**400], [0.5]),
])
def test_plain_equal_never_raises(got, want):
    assert plain_equal(got, want) is False


def test_fractions_and_decimals_compare_as_numbers():
    """Exactly against an expected integer, within the tolerance against an expected float."""
    from decimal import Decimal
    from fractions import Fraction

    assert plain_equal(Fraction(1, 2), 0.5) and plain_equal([Fraction(6, 2)], [3])
    assert plain_equal(Decimal("0.5"), 0.5) and plain_equal(Decimal("3.000"), 3)
    assert plain_equal(Fraction(1, 3), 1 / 3) and not plain_equal(Fraction(1, 3), 0)
    assert not plain_equal(Decimal("3.0000000001"), 3) and not plain_equal(Decimal(3), True)
    assert plain_equal(Decimal("NaN"), math.nan) and plain_equal(Decimal("-Infinity"), -math.inf)
    for got, want in [("sNaN", 3), ("sNaN", 0.5), ("NaN", 1), ("Infinity", 3), ("1e400", math.inf),
                      ("1e999999999999", 3), ("1e999999999999", 1.5), ("-1e-99999999", 10**4000)]:
        assert plain_equal(Decimal(got), want) is False  # no error, no huge expansion


def test_dict_keys_are_spelled_as_json_spells_them():
    assert plain_equal({True: 1, False: 2, None: 3}, {"true": 1, "false": 2, "null": 3})
    assert plain_equal({1.5: 1, math.inf: 2}, {"1.5": 1, "Infinity": 2})
    assert not plain_equal({True: 1}, {"True": 1})


def test_strings_that_are_no_valid_unicode_are_invalid_jobs():
    with pytest.raises(InvalidJob, match="field 'source' contains a lone surrogate"):
        parse_job(job(source="x = '\ud800'"))
    io = {"format": "io", "cases": [{"input": "\udc80", "output": ""}]}
    with pytest.raises(InvalidJob, match=r"'tests.cases\[0\].input' contains a lone surrogate"):
        parse_job(job(tests=io))
    with pytest.raises(InvalidJob, match="'tests.asserts\\[0\\]' contains a lone surrogate"):
        parse_job(job(tests={"format": "asserts", "asserts": ["assert '\ud800'"]}))


def test_values_the_host_cannot_send_or_print_are_invalid_jobs():
    call = {"format": "call", "fn_name": "f", "cases": [{"args": [10**5000], "expected": 1}]}
    with pytest.raises(InvalidJob, match="more than 4300 digits"):
        parse_job(job(tests=call))
    call["cases"][0].update(args=[{1, 2}])
    with pytest.raises(InvalidJob, match="is a set, which is not JSON data"):
        parse_job(job(tests=call))
    call["cases"][0].update(args=[1], expected=10**5000)  # expected stays on the host: fine
    assert parse_job(job(tests=call)).tests["cases"][0]["expected"] == 10**5000
    with pytest.raises(InvalidJob, match="memory_mb .* got a value too large to print"):
        parse_job(job(limits={"memory_mb": 10**5000}))
    with pytest.raises(InvalidJob, match="'id'"):
        parse_job(job(id=10**5000))


def test_javascript_asserts_need_the_evaluation_opt_in():
    js = job(language="javascript", tests={"format": "asserts", "asserts": ["assert(f())"]})
    with pytest.raises(InvalidJob, match="JavaScript asserts are refused"):
        parse_job(js)
    assert parse_job(js, allow_js_asserts=True).language == "javascript"


def test_float_compare_is_linear_in_a_long_token():
    """A long digit run that is no number made the number pattern backtrack quadratically on
    the host (40,000 digits: 32 s of CPU; a 1 MB token: hours, outside every cgroup). In a
    child process, since the regex engine holds the GIL: 1 MB takes a fraction of a second
    now, so a minute is a bound only a regression reaches."""
    code = ("from executors.compare import compare_float\n"
            "assert not compare_float('1' * 1_000_000 + 'x', '5')\n"
            "assert not compare_float('1' * 1_000_000, '5') and compare_float('1' * 10**6, '1' * 10**6)\n")
    root = Path(__file__).parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": str(root)})


def test_ranges_share_one_budget_when_the_host_decodes():
    """A range travels as three integers and becomes a list on the host: a value made of many
    ranges, each under the cap, must not multiply into the host's memory."""
    half = range(1 << 19)
    assert len(decode(encode([half, half]))[1]) == 1 << 19  # 2**20 items in all: judged
    with pytest.raises(ValueError, match="at most 1048576 are judged"):
        decode(encode([half, half, range(1)]))
    with pytest.raises(ValueError, match="at most"):
        decode(encode([range(1 << 20)] * 1000))  # a 10**9-item list before the fix


def test_float_tokens_must_be_spelled_as_numbers_are_printed():
    assert not compare_float("1_000.5", "1000.5")  # float() takes it; no judge does
    assert not compare_float("\u0661.\u0665", "1.5")  # Arabic-Indic digits
    assert compare_float("1000.5000001 -inf NaN 2.5e3", "1000.5 -inf nan 2500.0")
