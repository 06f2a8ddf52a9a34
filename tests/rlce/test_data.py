"""Problem rows, the JSONL loader's error reports, the generator (through the real executor)
and the pass@k estimator."""

from __future__ import annotations

import itertools
import json
from math import comb

import pytest

from rlce.data import ProblemError, generate, load_jsonl, parse_problem, pass_at_k

GOOD = {"id": "inc", "language": "python", "prompt": "Write inc(x).",
        "tests": {"format": "asserts", "asserts": ["assert inc(1) == 2"]}}


def test_loader_reports_bad_rows_by_file_and_line_and_keeps_the_rest(tmp_path):
    f = tmp_path / "p.jsonl"
    rows = [json.dumps(GOOD), "{not json", json.dumps({**GOOD, "id": "x", "tests": {}}),
            json.dumps({**GOOD, "id": "y", "language": "cobol"}), "",
            json.dumps({**GOOD, "id": "z", "prompt": ""}), json.dumps(GOOD),
            json.dumps({**GOOD, "id": "go1", "language": "go",
                        "tests": {"format": "asserts", "asserts": ["x"]}})]
    f.write_text("\n".join(rows) + "\n")
    problems, errors = load_jsonl(f)
    assert [p.id for p in problems] == ["inc"]
    assert errors[0] == f"{f}:2: not valid JSON (Expecting property name enclosed in double quotes)"
    assert errors[1] == f"{f}:3: problem 'x' has no tests"
    assert errors[2].startswith(f"{f}:4: problem 'y': ") and "cobol" in errors[2]
    assert errors[3] == f"{f}:6: field 'prompt' must be a non-empty string"
    assert errors[4] == f"{f}:7: duplicate problem id 'inc'"
    assert errors[5].startswith(f"{f}:8: problem 'go1': ") and "asserts" in errors[5]
    with pytest.raises(ProblemError, match=":2: not valid JSON"):
        load_jsonl(f, on_error="raise")


def test_a_problem_makes_an_execution_job():
    p = parse_problem(GOOD)
    assert p.job("def inc(x): return x + 1", "inc/0") == {
        "id": "inc/0", "language": "python", "source": "def inc(x): return x + 1",
        "tests": GOOD["tests"]}


@pytest.fixture(scope="module")
def runner():
    from executors import Runner

    with Runner(workers=1) as r:
        yield r


def test_generated_problems_are_reproducible_and_solvable(runner):
    first = list(itertools.islice(generate(seed=3), 8))
    again = list(itertools.islice(generate(seed=3), 8))
    assert first == again and len({p.id for p in first}) == 8
    assert first != list(itertools.islice(generate(seed=4), 8))
    jobs = []
    for p in first:
        family = p.id.rsplit("/", 1)[1]
        if family == "linear":
            a_times = p.prompt.split("returns ")[1].split(" times")[0]
            b = p.prompt.split("plus (")[1].rstrip(").")
            src = f"def f(x):\n    return {a_times} * x + ({b})\n"
        elif family == "count_divisible":
            k = p.prompt.split("divisible by ")[1].rstrip(".")
            src = f"def count_div(xs):\n    return sum(1 for v in xs if v % {k} == 0)\n"
        elif family == "repeat_words":
            n = p.prompt.split("words ")[1].split(" times")[0]
            src = f"print(' '.join(w for w in input().split() for _ in range({n})))\n"
        else:
            src = "def max_gap(xs):\n    return max(b - a for a, b in zip(xs, xs[1:]))\n"
        jobs.append(p.job(src, p.id))
        jobs.append(p.job("def f(*a):\n    return None\nprint()\n", p.id + "/wrong"))
    verdicts = {v["id"]: v for v in runner.run(jobs)}
    for p in first:
        assert verdicts[p.id]["status"] == "passed", verdicts[p.id]
        assert verdicts[p.id + "/wrong"]["status"] != "passed"


def test_pass_at_k_matches_the_combinatorial_definition():
    for n, c, k in [(10, 3, 1), (10, 3, 5), (20, 0, 4), (5, 5, 2), (7, 2, 7), (100, 13, 10)]:
        expected = 1 - comb(n - c, k) / comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(4, 1, 5)
