"""Pure logic: job validation, comparators, plain-data equality and the in-sandbox codec."""

import math

import pytest

from executors.compare import compare_exact, compare_float, compare_whitespace, plain_equal
from executors.inbox import decode, encode
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
