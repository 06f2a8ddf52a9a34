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


def test_honest_programs_beside_hostile_ones_keep_their_verdicts(runner):
    """A job set with one hostile program (each kind of the hostile-load benchmark) for
    every two honest ones, shuffled: every honest job passes, and every hostile one gets a
    verdict of its own, never an infrastructure failure."""
    import random

    from executors.bench import humaneval_jobs, humaneval_problems
    from executors.loadbench import HOSTILE, hostile_jobs

    honest = humaneval_jobs(humaneval_problems()[:48], "/beside")
    hostile = hostile_jobs(4 * len(HOSTILE), "t")
    jobs = honest + hostile
    random.Random(1).shuffle(jobs)
    got = {v["id"]: v for v in runner.run(jobs)}
    assert len(got) == len(jobs)
    assert {got[j["id"]]["status"] for j in honest} == {"passed"}
    statuses = Counter(got[j["id"]]["status"] for j in hostile)
    assert set(statuses) <= {"timeout", "memory_limit", "output_limit", "runtime_error",
                             "failed"}, statuses
