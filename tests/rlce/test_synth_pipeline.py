"""rlce synth's stages against the real executor: a valid proposal is accepted with its
figures, and each rejection reason comes from a proposal crafted to earn it."""

from __future__ import annotations

import pytest

from executors.runner import Runner
from rlce.data import parse_problem
from rlce.synth.contamination import Decontaminator, example_items, humaneval_items
from rlce.synth.mutants import mutants, trivial_programs
from rlce.synth.pipeline import Pipeline, RunnerExecutor, SynthParams
from rlce.synth.proposal import EXAMPLES, Seed

pytestmark = pytest.mark.slow

SEED = Seed("rlce/py/example", "example", "Write a Python function `f(x)` that doubles x.")


def answer(statement: str, solution: str, tests: list[str]) -> str:
    calls = "\n".join(tests)
    return (f"Problem:\n{statement}\n\nSolution:\n```python\n{solution}```\n\n"
            f"Tests:\n```python\n{calls}\n```\n")


GOOD = answer(
    "Given a list of integers, return the sum of the squares of its even elements; an "
    "empty list gives 0.",
    "def sum_even_squares(xs):\n    total = 0\n    for x in xs:\n        if x % 2 == 0:\n"
    "            total += x * x\n    return total\n",
    ["sum_even_squares([1, 2, 3, 4])", "assert sum_even_squares([]) == 99",
     "sum_even_squares([-2, 5, 6])", "sum_even_squares([7])", "sum_even_squares([10, 10])"])


@pytest.fixture(scope="module")
def executor():
    r = Runner(workers=2).start()
    yield RunnerExecutor(r)
    r.close()


@pytest.fixture(scope="module")
def decon():
    return Decontaminator(humaneval_items())


def run(executor, decon, texts, **params):
    p = Pipeline(executor, SynthParams(**{"mutants": 10, **params}), decon, teacher="test")
    for t in texts:
        p.feed(t, SEED)
    p.finish()
    return p


def outcome(p, i=0):
    rec = sorted(p.log, key=lambda r: int(r["key"][1:]))[i]
    return rec["outcome"], rec["detail"]


def test_valid_proposal_is_accepted_with_outputs_from_execution(executor, decon):
    p = run(executor, decon, [GOOD])
    assert outcome(p)[0] == "accepted", p.log
    (row,) = p.accepted
    cases = row["tests"]["cases"]
    # expected values come from running the reference, never from the teacher's "== 99"
    assert [c["expected"] for c in cases] == [20, 0, 40, 0, 200]
    prov = row["provenance"]
    assert prov["teacher"] == "test" and prov["seed"] == SEED.id
    assert prov["killed"] / prov["mutants"] == prov["mutation_score"] >= 0.6
    problem = parse_problem(row)  # loadable as a training problem, as it is
    assert problem.tests["fn_name"] == "sum_even_squares"
    assert "sum_even_squares(xs)" in problem.prompt
    # two reference runs, the reference on the final tests, trivial programs, mutants
    reference = row["reference"]
    assert p.report() == {"proposed": 1, "accepted": 1, "rejected": {},
                          "executions": 3 + len(trivial_programs("f", [20, 0, 40, 0, 200]))
                          + len(mutants(reference, 10))}


def test_malformed_proposals_are_rejected_with_their_reason(executor, decon):
    texts = [
        "Problem:\nshort\n",
        "Problem:\nReturn the number of vowels in a string, counting a e i o u.\n",
        answer("Return the number of vowels in a string, counting a e i o u only.",
               "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s\n", ["count_vowels('ab')"]),
        answer("Return the number of vowels in a string, counting a e i o u only.",
               "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s)\n",
               ["count_vowels(some_string)"]),
    ]
    p = run(executor, decon, texts)
    assert [outcome(p, i)[0] for i in range(4)] == ["no_statement", "no_solution",
                                                    "solution_syntax", "no_test_inputs"]
    assert p.executions == 0  # a malformed proposal costs no execution


def test_contaminated_proposal_is_removed(executor, decon):
    # HumanEval/0's function name, and a statement that repeats HumanEval/0's words
    named = GOOD.replace("sum_even_squares", "has_close_elements")
    worded = answer(
        "Check if in given list of numbers, are any two numbers closer to each other than "
        "given threshold.", "def near(xs, t):\n    return any(abs(a - b) < t for a in xs "
        "for b in xs if a is not b)\n", ["near([1.0, 2.0], 0.5)", "near([1.0, 1.2], 0.5)",
                                         "near([], 1.0)"])
    p = run(executor, decon, [named, worded])
    assert outcome(p, 0) == ("contaminated", "function name 'has_close_elements' is "
                                             "HumanEval/0's")
    assert outcome(p, 1)[0] == "contaminated" and "HumanEval/0" in outcome(p, 1)[1]


def test_duplicates_of_a_kept_problem_are_rejected(executor, decon):
    p = run(executor, decon, [GOOD, GOOD])
    assert [outcome(p, i)[0] for i in range(2)] == ["accepted", "duplicate"]


def test_reference_failures_reject_inputs_or_the_problem(executor, decon):
    stmt = "Return a number computed from the integer n in a way described at length here."
    raising = answer(stmt, "def g(n):\n    if n > 2:\n        raise ValueError(n)\n"
                           "    return n + 1\n", ["g(1)", "g(2)", "g(3)", "g(4)"])
    random_out = answer(stmt + " Randomly.", "import random\ndef h(n):\n"
                        "    return n + random.random()\n", ["h(1)", "h(2)", "h(3)"])
    spin = answer(stmt + " Slowly.", "def k(n):\n    while n > 0:\n        n = n + 1\n"
                                     "    return n\n", ["k(1)", "k(2)", "k(3)"])
    p = run(executor, decon, [raising, random_out, spin], timeout_s=1.0)
    reason, detail = outcome(p, 0)
    assert reason == "too_few_tests" and "'raises': 2" in detail
    reason, detail = outcome(p, 1)
    assert reason == "too_few_tests" and "'nondeterministic': 3" in detail
    assert outcome(p, 2)[0] == "reference_timeout"


def test_a_reference_that_cannot_run_rejects_the_problem(executor, decon):
    stmt = "Return n plus one, for the integer n, as this long statement says it must."
    broken = answer(stmt, "import nosuchmodule\ndef a(n):\n    return n + 1\n",
                    ["a(1)", "a(2)", "a(3)"])
    hungry = answer(stmt + " Hungry.", "big = bytearray(4 << 30)\ndef b(n):\n"
                                       "    return n + 1\n", ["b(1)", "b(2)", "b(3)"])
    loud = answer(stmt + " Loud.", "def c(n):\n    print('x' * (4 << 20))\n"
                                   "    return n + 1\n", ["c(1)", "c(2)", "c(3)"])
    p = run(executor, decon, [broken, hungry, loud])
    assert [outcome(p, i)[0] for i in range(3)] == [
        "reference_error", "reference_memory_limit", "reference_output_limit"], p.log
    assert "nosuchmodule" in outcome(p, 0)[1]


def test_a_reference_that_fails_its_own_final_tests_is_rejected(executor, decon):
    # its output depends on how many calls came before: running the inputs again in reverse
    # does not show it (the dropped input shifts every later case), judging the tests does
    stmt = "Return ten times the integer x, plus something about the calls made so far."
    counting = answer(stmt, "calls = 0\ndef tag(x):\n    global calls\n    calls += 1\n"
                            "    if x < 0:\n        raise ValueError(x)\n"
                            "    return x * 10 + calls % 2\n",
                      ["tag(-1)", "tag(1)", "tag(2)", "tag(3)", "tag(4)"])
    p = run(executor, decon, [counting])
    reason, detail = outcome(p)
    assert reason == "reference_fails_tests" and detail.startswith("failed"), p.log


def test_outputs_json_cannot_carry_drop_their_inputs(executor, decon):
    stmt = "Return a value built from the integer n as the long rule in this text says."
    odd = answer(stmt, "def odd(n):\n    if n == 3:\n        return chr(55296)\n"
                       "    if n == 4:\n        return 10 ** 5000\n    return n + 1\n",
                 ["odd(1)", "odd(2)", "odd(3)", "odd(4)", "odd(5)"])
    p = run(executor, decon, [odd], min_tests=4)
    reason, detail = outcome(p)
    assert reason == "too_few_tests" and "'not_plain_data': 2" in detail


def test_answers_too_deep_for_the_parser_are_rejected_not_fatal(executor, decon):
    stmt = "Return x after a long chain of operations described at length in this text."
    deep = answer(stmt, "def deep(x):\n    return " + "-" * 3000 + "x\n",
                  ["deep(1)", "deep(2)", "deep(3)"])
    chain = answer(stmt + " Chained.", "def chain(x):\n    return x" + " + 1" * 400 + "\n",
                   ["chain(1)", "chain(2)", "chain(3)"])
    p = run(executor, decon, [deep, chain])
    assert outcome(p, 0)[0] == "solution_syntax"
    assert outcome(p, 1)[0] == "no_mutants", p.log  # too deep to copy: nothing to mutate


def test_tests_that_do_not_discriminate_are_rejected(executor, decon):
    stmt = "Return a number computed from the integer n by the rule described in the text."
    zeros = answer(stmt, "def z(n):\n    total = 0\n    for i in range(n):\n"
                         "        total += i * 0\n    return total\n", ["z(1)", "z(2)", "z(3)"])
    weak = answer(stmt + " Large numbers differ.",
                  "def w(n):\n    if n > 1000:\n        return n * 3 - 7 + n // 2 - (n % 5)\n"
                  "    return n + 1\n", ["w(1)", "w(2)", "w(3)"])
    nothing = answer(stmt + " Sorted.", "def s(xs):\n    return sorted(xs)\n",
                     ["s([3, 1])", "s([2, 1, 0])", "s([])"])
    p = run(executor, decon, [zeros, weak, nothing], mutants=20)
    assert outcome(p, 0) == ("trivial_pass", "a program that ignores its input passes: "
                                             "constant 0")
    reason, detail = outcome(p, 1)
    assert reason == "weak_tests", p.log
    assert outcome(p, 2)[0] == "no_mutants"


def test_augment_adds_inputs_and_raises_the_mutation_score(executor, decon):
    ref = ("def clip_sum(xs, cap):\n    total = 0\n    for x in xs:\n        if x > cap:\n"
           "            total += cap\n        else:\n            total += x\n    return total\n")
    row = {"id": "rlce/py/clip_sum", "language": "python", "prompt": "Sum, clipping at cap.",
           "reference": ref, "tests": {"format": "call", "fn_name": "clip_sum", "cases": [
               {"args": [[1, 2], 5], "expected": 3}, {"args": [[], 3], "expected": 0},
               {"args": [[4], 9], "expected": 4}]}}
    p = Pipeline(executor, SynthParams(mutants=12, extra_inputs=10), decon)
    p.augment(row)
    p.finish()
    (out,) = p.accepted
    aug = out["augmented"]
    assert aug["cases_before"] == 3 and aug["cases_after"] > 3
    assert aug["mutation_score"] > aug["mutation_score_before"]
    assert out["tests"]["cases"][:3] == row["tests"]["cases"]
    # synth.augment_into=heldout: the same new cases, as held-out tests the reward never sees
    p = Pipeline(executor, SynthParams(mutants=12, extra_inputs=10, augment_into="heldout"),
                 decon)
    p.augment(row)
    p.finish()
    (held,) = p.accepted
    assert held["tests"]["cases"] == row["tests"]["cases"]
    assert held["tests"]["heldout"] == out["tests"]["cases"][3:]
    assert parse_problem(held).reward_count == 3
    # the reference must agree with the problem's own expected outputs
    wrong = {**row, "id": "rlce/py/wrong", "tests": {**row["tests"], "cases": [
        {"args": [[1, 2], 5], "expected": 4}, *row["tests"]["cases"][1:]]}}
    p = Pipeline(executor, SynthParams(mutants=4, extra_inputs=3), decon)
    p.augment(wrong)
    p.finish()
    assert not p.accepted and p.log[0]["outcome"] == "reference_disagrees"
    # the teacher's calls join the tests (outputs from the reference), before the shaped
    # ones; one the problem has already, and one on which the reference raises, do not
    teacher = [{"args": [[1, 2], 5], "kwargs": {}}, {"args": [[10, -4, 7], 6], "kwargs": {}},
               {"args": [None, 1], "kwargs": {}}, {"args": [[3, 3, 3], 2], "kwargs": {}}]
    p = Pipeline(executor, SynthParams(mutants=12, extra_inputs=0), decon)
    p.augment(row, teacher)
    p.finish()
    (out,) = p.accepted
    assert out["tests"]["cases"][3:] == [{"args": [[10, -4, 7], 6], "expected": 8},
                                         {"args": [[3, 3, 3], 2], "expected": 6}]
    assert out["augmented"]["teacher_inputs"] == 3 and out["augmented"]["teacher_cases"] == 2
    assert out["augmented"]["inputs_dropped"] == {"raises": 1}


IO_ANSWER = """Problem:
The first line holds n, the second line n integers. Print the largest of them and, on the
next line, how many times it occurs.

Solution:
```python
n = int(input())
xs = list(map(int, input().split()))
best = max(xs)
print(best)
print(xs.count(best))
```

Tests:
```text
3
1 5 5
```
```text
1
-7
```
```text
4
2 9 3 1
```
"""
JS_SOLUTION = ("const [n, line] = require('fs').readFileSync(0, 'utf8').split('\\n');\n"
               "const xs = line.trim().split(/\\s+/).map(Number);\n"
               "const best = Math.max(...xs);\n"
               "console.log(best);\nconsole.log(xs.filter(x => x === best).length);\n")


def test_io_problem_is_written_for_every_language_and_judges_each(executor, decon):
    p = Pipeline(executor, SynthParams(mutants=10, languages=("python", "javascript")), decon)
    p.feed(IO_ANSWER, SEED, kind="io")
    p.finish()
    assert outcome(p)[0] == "accepted", p.log
    py, js = sorted(p.accepted, key=lambda r: r["language"] != "python")
    assert (py["language"], js["language"]) == ("python", "javascript")
    assert js["id"] == py["id"] + "/javascript" and js["tests"] == py["tests"]
    assert [c["output"] for c in py["tests"]["cases"]] == ["5\n2\n", "-7\n1\n", "9\n1\n"]
    assert "JavaScript (Node.js) program" in js["prompt"] and "reference" not in js
    job = parse_problem(js).job(JS_SOLUTION, "js-check")
    verdict = next(iter(executor.runner.run([job])))
    assert verdict["status"] == "passed", verdict
    wrong = parse_problem(js).job(JS_SOLUTION.replace("Math.max", "Math.min"), "js-wrong")
    assert next(iter(executor.runner.run([wrong])))["status"] == "failed"


def test_io_tests_an_echo_passes_are_rejected(executor, decon):
    echo = IO_ANSWER.replace("best = max(xs)\nprint(best)\nprint(xs.count(best))",
                             "print(n)\nprint(' '.join(map(str, xs)))")
    p = run_kind(executor, decon, [echo], "io")
    assert outcome(p) == ("trivial_pass", "a program that ignores its input passes: "
                                          "the input echoed")


def run_kind(executor, decon, texts, kind):
    p = Pipeline(executor, SynthParams(mutants=10), decon)
    for t in texts:
        p.feed(t, SEED, kind=kind)
    p.finish()
    return p


def test_the_worked_examples_are_valid_proposals_and_a_copy_is_rejected(executor, decon):
    copies = Decontaminator(humaneval_items() + example_items())
    for kind, text in EXAMPLES.items():  # what the teacher is shown must pass every stage
        assert outcome(run_kind(executor, decon, [text], kind))[0] == "accepted", kind
        # a copy under other names
        renamed = text.replace("longest_run", "max_streak").replace("count", "ups")
        assert outcome(run_kind(executor, copies, [renamed], kind))[0] == "copies_example"
