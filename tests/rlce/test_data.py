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


def test_hf_datasets_on_disk_load_with_errors_named_by_split_and_row(tmp_path):
    import datasets

    from rlce.data import load_hf

    tests = json.dumps(GOOD["tests"])
    rows = [{**GOOD, "tests": tests}, {**GOOD, "id": "bad", "tests": "{nope"},
            {**GOOD, "tests": tests}, {**GOOD, "id": "none", "tests": None}]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                          "test": datasets.Dataset.from_list(rows[:1])}
                         ).save_to_disk(str(tmp_path / "ds"))
    problems, errors = load_hf(tmp_path / "ds")
    assert [p.id for p in problems] == ["inc"] and problems[0].tests == GOOD["tests"]
    where = f"{tmp_path / 'ds'}[train]"
    assert errors == [(f"{where} row 1: field 'tests' is not valid JSON (Expecting property "
                       f"name enclosed in double quotes)"),
                      f"{where} row 2: duplicate problem id 'inc'",
                      f"{where} row 3: problem 'none' has no tests"]
    assert [p.id for p in load_hf(tmp_path / "ds", split="test")[0]] == ["inc"]
    with pytest.raises(ProblemError, match="row 1"):
        load_hf(tmp_path / "ds", on_error="raise")
    with pytest.raises(ValueError, match="one of \\['test', 'train'\\]"):
        load_hf(tmp_path / "ds", split="validation")
    with pytest.raises(FileNotFoundError):
        load_hf(tmp_path / "missing")


def test_problem_stream_is_reproducible_per_epoch_and_resumes_in_order():
    from rlce.data import ProblemStream

    items = [parse_problem({**GOOD, "id": f"p{i}"}) for i in range(5)]
    a = ProblemStream(items, seed=1)
    order = [next(a).id for _ in range(12)]
    assert sorted(order[:5]) == sorted(order[5:10]) == [f"p{i}" for i in range(5)]
    assert order[:5] != order[5:10]  # each epoch is shuffled anew
    b = ProblemStream(items, seed=1)
    b.skip(7)
    assert [next(b).id for _ in range(5)] == order[7:12] and b.position == 12
    assert [p.id for p in itertools.islice(ProblemStream(items, seed=2), 5)] != order[:5]
    endless = ProblemStream(generate(seed=3))
    endless.skip(2)
    assert next(endless).id == list(itertools.islice(generate(seed=3), 3))[2].id
    with pytest.raises(ValueError, match="empty"):
        ProblemStream([])


def _problems(n: int) -> list:
    from rlce.data import parse_problem

    return [parse_problem({"id": f"p{i}", "language": "python", "prompt": f"task {i}",
                           "tests": {"format": "asserts", "asserts": ["assert True"]}})
            for i in range(n)]


def test_curriculum_draws_the_band_most_mastered_rarely_retired_only_on_revisits():
    from collections import Counter

    from rlce.data import CurriculumStream

    s = CurriculumStream(_problems(12), seed=1, min_tries=4, retire_after=8,
                         revisit_every=50, mastered_weight=0.05)
    s.observe({"p0": [4, 4], "p1": [4, 4],  # mastered
               "p2": [0, 8], "p3": [0, 9],  # retired
               "p4": [1, 4], "nope": [1, 1]})  # learning; an unknown id is ignored
    assert s.bands() == {"untried": 7, "learning": 1, "mastered": 2, "retired": 2}
    drawn = [next(s).id for _ in range(1000)]
    c = Counter(drawn)
    # 8 problems of weight 1 and 2 of weight 0.05 share the draws; the window of 3 recent
    # draws holds them back a little, so each weight-1 problem gets about 1000 / 8.1
    assert all(c[f"p{i}"] > 80 for i in range(4, 12))
    assert c["p0"] + c["p1"] < 40
    # retired ones come back only at every 50th draw, least recently drawn first
    revisits = [i for i, pid in enumerate(drawn) if pid in ("p2", "p3")]
    assert revisits == list(range(50, 1000, 50))
    assert [drawn[i] for i in revisits[:4]] == ["p2", "p3", "p2", "p3"]
    # no problem twice within the window while others are left
    assert all(len(set(drawn[i:i + 4])) == 4 for i in range(len(drawn) - 4)
               if not {i, i + 1, i + 2, i + 3} & set(revisits))


def test_curriculum_state_round_trip_continues_the_same_draws():
    import json

    from rlce.data import CurriculumStream

    a = CurriculumStream(_problems(20), seed=3, min_tries=2)
    for _ in range(15):
        next(a)
    a.observe({"p1": [2, 2], "p2": [1, 3]})
    state = json.loads(json.dumps(a.state()))  # as a checkpoint stores it
    b = CurriculumStream(_problems(20), seed=99, min_tries=2)
    b.load_state(state)
    assert b.position == 15 and b.bands() == a.bands()
    assert [next(a).id for _ in range(40)] == [next(b).id for _ in range(40)]


def test_curriculum_never_draws_retired_or_excluded_outside_revisits_on_a_small_set():
    from rlce.data import CurriculumStream

    s = CurriculumStream(_problems(8), seed=2, min_tries=1, retire_after=1,
                         revisit_every=64)
    s.observe({f"p{i}": [0, 2] for i in range(6)})  # six retired, two left to learn
    s.exclude("p7")  # its prompt does not fit
    drawn = [next(s).id for _ in range(640)]
    revisits = {i for i in range(64, 640, 64)}
    assert {d for i, d in enumerate(drawn) if i not in revisits} == {"p6"}
    assert {drawn[i] for i in revisits} <= {f"p{i}" for i in range(6)}


def test_curriculum_options_are_checked():
    from rlce.config import DataConfig

    with pytest.raises(ValueError, match="needs a finite problem set"):
        DataConfig(source="generator", curriculum="failures")
    with pytest.raises(ValueError, match="data.retire_after=4 is below data.min_tries=8"):
        DataConfig(curriculum="failures", retire_after=4)
    with pytest.raises(ValueError, match="data.mastered_rate must lie in"):
        DataConfig(mastered_rate=0.0)
