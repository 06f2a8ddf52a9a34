"""Load: thousands of jobs through the runner, none lost, none duplicated."""

from collections import Counter

import pytest

from tests.executors.conftest import asserts_job, io_job

pytestmark = pytest.mark.slow  # 5,000 sandboxed jobs


def test_five_thousand_jobs_each_get_one_verdict(runner):
    jobs = []
    for i in range(5000):
        kind = i % 4
        if kind == 0:
            jobs.append(asserts_job("def f(x):\n    return x * 2\n", [f"assert f({i}) == {2 * i}"],
                                    id=f"L{i}"))
        elif kind == 1:
            jobs.append(asserts_job("def f(x):\n    return x\n", [f"assert f({i}) == {2 * i}"],
                                    id=f"L{i}"))
        elif kind == 2:
            jobs.append(io_job("print(int(input()) + 1)\n", [(f"{i}\n", str(i + 1))], id=f"L{i}"))
        else:
            jobs.append({"id": f"L{i}", "language": "python"})  # invalid
    verdicts = list(runner.run(jobs))
    ids = Counter(v["id"] for v in verdicts)
    assert len(verdicts) == 5000
    assert set(ids) == {f"L{i}" for i in range(5000)} and max(ids.values()) == 1
    by_id = {v["id"]: v["status"] for v in verdicts}
    expect = {0: "passed", 1: "failed", 2: "passed", 3: "invalid_job"}
    wrong = [(i, by_id[f"L{i}"]) for i in range(5000)
             if not (by_id[f"L{i}"] == expect[i % 4] or (i % 4 == 1 and i == 0))]
    assert not wrong, wrong[:10]
