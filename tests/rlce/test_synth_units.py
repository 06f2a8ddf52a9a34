"""rlce synth's pure parts: reading the teacher's answer, mutants, new inputs shaped like a
problem's own, decontamination and the seeds a training run's failures give."""

from __future__ import annotations

import ast
import json

import pytest

from rlce.config import ConfigError
from rlce.synth.contamination import (
    Decontaminator,
    Deduper,
    EvalItem,
    code_tokens,
    example_items,
    normalised,
)
from rlce.synth.inputs import more_inputs, shape_of
from rlce.synth.mutants import mutants, trivial_programs
from rlce.synth.pipeline import Pipeline, SynthParams
from rlce.synth.proposal import (
    EXAMPLES,
    Rejected,
    Seed,
    parse,
    parse_inputs,
    parse_io,
    sections,
    teacher_messages,
    teacher_prompt,
)
from rlce.synth.run import apply_band, failure_seeds

SOLUTION = "def double_all(xs):\n    return [x * 2 for x in xs]\n"


def answer(statement="Return a new list with every element of xs doubled, in order.",
           solution=SOLUTION, tests="double_all([1, 2])\ndouble_all([])\ndouble_all([-3])\n"):
    return (f"## Problem\n{statement}\n\n**Solution:**\n```python\n{solution}```\n\n"
            f"Tests:\n```python\n{tests}```\n")


def test_parse_reads_sections_and_literal_test_calls_only():
    p = parse(answer(tests="double_all([1, 2])\nassert double_all([]) == [0]\n"
                           "print(double_all(xs=[4]))\ndouble_all(ys)\nother(1)\n"), 3)
    assert p.fn_name == "double_all" and p.signature == "double_all(xs)"
    assert p.inputs == [{"args": [[1, 2]], "kwargs": {}}, {"args": [[]], "kwargs": {}},
                        {"args": [], "kwargs": {"xs": [4]}}]
    assert p.skipped_inputs == 2  # a name and an unknown function are not test inputs
    assert p.prompt().endswith("Write it as a Python function `double_all(xs)`.")
    assert sections("Problem: one line\nSolution\nbody") == {"problem": "one line",
                                                              "solution": "body"}


@pytest.mark.parametrize("text, reason", [
    ("Problem: too short", "no_statement"),
    (answer(statement="<the task in plain words: what the function takes and what it "
                      "returns>"), "no_statement"),  # the format's placeholder, copied
    (answer(solution=""), "no_solution"),
    (answer(solution="def double_all(xs:\n"), "solution_syntax"),
    (answer(solution="x = 1\n"), "no_function"),
    (answer().split("Tests:")[0], "no_tests"),
    (answer(tests="double_all(xs)\n"), "no_test_inputs"),
    (answer(solution=SOLUTION + "def other(x):\n    return x\n",
            tests="double_all([1])\nother(2)\nother(3)\n"), "ambiguous_entry"),
    (answer(statement="Write def double_all(xs) which doubles each element of xs."),
     "statement_leaks_solution"),
    (answer(tests="double_all([1])\ndouble_all([1])\ndouble_all((1,))\n"), "too_few_tests"),
    (answer(tests="double_all({1, 2})\n"), "no_test_inputs"),  # a set is not JSON
])
def test_parse_rejects_with_the_reason(text, reason):
    with pytest.raises(Rejected) as e:
        parse(text, 3)
    assert e.value.reason == reason


def test_teacher_prompt_names_the_seed_and_the_format():
    for kind, phrase in [("example", "a related idea"), ("topic", "exercise about"),
                         ("failure", "cannot solve")]:
        text = teacher_prompt(Seed("s", kind, "SEED TEXT"), 5)
        assert phrase in text and "SEED TEXT" in text and "at least 5 test calls" in text


def test_teacher_messages_show_a_worked_answer_of_the_kind_asked_for_first():
    seed = Seed("s", "example", "SEED TEXT")
    for kind in ("function", "io"):
        first, example, ask = teacher_messages(seed, 5, kind, shots=1)
        assert [m["role"] for m in (first, example, ask)] == ["user", "assistant", "user"]
        assert example["content"] == EXAMPLES[kind] and "SEED TEXT" not in first["content"]
        assert ask["content"] == teacher_prompt(seed, 5, kind)
        assert teacher_messages(seed, 5, kind, shots=0) == (ask,)


def test_parse_inputs_takes_literal_calls_of_the_function_from_every_block():
    text = ("Here you go:\n```python\nclip([1, 2], 5)\nassert clip([], 3) == 99\n"
            "clip(xs, 1)\nother([1], 2)\n```\nand\n```\nclip([1, 2], 5)\n"
            "print(clip(cap=2, xs=[4]))\n```\n")
    calls, skipped = parse_inputs(text, "clip")
    assert calls == [{"args": [[1, 2], 5], "kwargs": {}}, {"args": [[], 3], "kwargs": {}},
                     {"args": [], "kwargs": {"cap": 2, "xs": [4]}}]
    assert skipped == 2  # clip(xs, 1) and other([1], 2)
    assert parse_inputs("clip([7], 0)\nno code here", "clip") == (
        [{"args": [[7], 0], "kwargs": {}}], 1)


def test_what_every_io_problem_shares_with_the_io_example_is_no_copy():
    d = Decontaminator(example_items())
    d.check(None, "The first line holds n, the second line n integers. Print their sum.",
            "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(xs))\n")
    with pytest.raises(Rejected) as e:  # its task, in other words around it, is a copy
        d.check(None, "Read n numbers. Print how many of the integers are strictly greater "
                      "than the one just before them, please.", "print(0)\n")
    assert e.value.reason == "copies_example"


def test_an_overlap_is_rejected_as_its_items_reason():
    d = Decontaminator([EvalItem("HumanEval/0", "has_close", "Check if two numbers are close."),
                        EvalItem("example/function", "longest_run", "Return the longest run.",
                                 reason="copies_example")])
    for name, reason in [("has_close", "contaminated"), ("longest_run", "copies_example")]:
        with pytest.raises(Rejected) as e:
            d.check(name, "Something else entirely, said in other words.", "")
        assert e.value.reason == reason


def test_mutants_are_distinct_single_changes_that_compile():
    src = ("def f(xs, k):\n    total = 0\n    for x in xs:\n        if x > k and not x == 3:\n"
           "            total += x\n        else:\n            total -= 1\n    return total\n")
    out = mutants(src, 100)
    kinds = {k for k, _ in out}
    assert kinds == {"operator", "comparison", "boolean", "negation", "constant", "branches",
                     "statement"}
    texts = [m for _, m in out]
    assert len(set(texts)) == len(texts) and ast.unparse(ast.parse(src)) + "\n" not in texts
    for m in texts:
        compile(m, "m", "exec")
    assert len(mutants(src, 5)) == 5 and mutants(src, 5, seed=1) != mutants(src, 5, seed=2)
    assert mutants("def s(xs):\n    return sorted(xs)\n", 10) == []


def test_trivial_programs_include_the_most_common_outputs():
    progs = dict(trivial_programs("f", [[1], [1], 7]))
    assert "constant None" in progs and "first argument" in progs
    scope: dict = {}
    exec(progs["constant __import__('json').loads('[1]')"], scope)
    assert scope["f"](5) == [1]


def test_more_inputs_keep_what_every_example_kept():
    examples = [{"args": [[1, 3, 8], 2]}, {"args": [[0, 4], 5]}, {"args": [[2], 0]}]
    new = more_inputs(examples, 30, seed=3)
    assert len(new) == 30
    for i in new:
        xs, k = i["args"]
        assert xs == sorted(xs) and len(xs) == len(set(xs)) and 1 <= len(xs)
        assert all(isinstance(x, int) and x >= 0 for x in xs) and k >= 0
    assert not any(i["args"] in [e["args"] for e in examples] for i in new)
    assert more_inputs([{"args": [1]}, {"args": [1, 2]}], 5) == []  # arities disagree
    s = shape_of(["ab", "ba "])
    assert (s.kind, s.alphabet, s.min_len, s.max_len) == ("str", " ab", 2, 3)


def test_decontamination_by_name_statement_words_and_code():
    d = Decontaminator([EvalItem("E/1", "has_pair", "Return True if any two numbers in the "
                                 "given list add up to exactly zero, else False.",
                                 "    for i in range(len(l)):\n        for j in range(i + 1, "
                                 "len(l)):\n            if l[i] + l[j] == 0:\n"
                                 "                return True\n    return False\n")],
                       ngram=8, code_ngram=12)
    with pytest.raises(Rejected, match="function name 'has_pair'"):
        d.check("has_pair", "Something else entirely, long enough.", "")
    with pytest.raises(Rejected, match="the statement is E/1's"):
        d.check("g", "return true if ANY two numbers in the given list add up to exactly "
                     "zero, else false!", "")
    with pytest.raises(Rejected, match="8 words in a row"):
        d.check("g", "Write g: it must return true if any two numbers in the given list sum "
                     "to zero.", "")
    with pytest.raises(Rejected, match="12 tokens in a row"):
        d.check("g", "Unrelated words.", "def g(l):\n    for i in range(len(l)):\n"
                "        for j in range(i + 1, len(l)):\n            pass\n")
    d.check("g", "Return the product of the list's elements.", "def g(l):\n    return 1\n")
    assert normalised("A,  b!C") == "a b c" and code_tokens("x = 1  # c") == ["x", "=", "1"]


def test_deduper_releases_what_a_rejected_problem_claimed():
    d = Deduper()
    d.check_statement("Sum the list.", "p1")
    with pytest.raises(Rejected, match="repeats p1's"):
        d.check_statement("sum  the LIST", "p2")
    d.release("p1")
    d.check_statement("sum the list", "p3")
    d.check_tests("f", [{"args": [1], "expected": 2}], "p3")
    with pytest.raises(Rejected, match="tests repeat"):
        d.check_tests("f", [{"expected": 2, "args": [1]}], "p4")


def test_failure_seeds_are_the_problems_a_run_fails_worst_first(tmp_path):
    (tmp_path / "problem_pass_rates.json").write_text(json.dumps({
        "a": {"passed": 0, "judged": 8, "prompt": "A"},
        "b": {"passed": 1, "judged": 8, "prompt": "B"},
        "c": {"passed": 8, "judged": 8, "prompt": "C"},
        "d": {"passed": 0, "judged": 0, "prompt": "D"},
        "e": {"passed": 0, "judged": 4, "prompt": None}}))
    assert [s.id for s in failure_seeds(tmp_path, 0.0)] == ["a"]
    seeds = failure_seeds(tmp_path, 0.2)
    assert [(s.id, s.kind, s.text) for s in seeds] == [("a", "failure", "A"),
                                                       ("b", "failure", "B")]
    with pytest.raises(ConfigError, match="problem_pass_rates.json"):
        failure_seeds(tmp_path / "nothing", 0.0)


def io_answer(solution="n = int(input())\nprint(n * n)\n", tests=("2", "3\n", "0")):
    blocks = "".join(f"```text\n{t}\n```\n" for t in tests)
    return (f"Problem:\nRead an integer n from the input and print its square.\n\n"
            f"Solution:\n```python\n{solution}```\n\nTests:\n{blocks}")


def test_parse_io_takes_each_text_block_as_one_input():
    p = parse_io(io_answer(), 3)
    assert p.fn_name is None and p.kind == "io"
    assert p.inputs == [{"input": "2\n"}, {"input": "3\n\n"}, {"input": "0\n"}]
    assert "Write a Go program that reads standard input" in p.prompt("Go")
    for text, reason in [(io_answer(solution="print(4)\n"), "no_stdin"),
                         (io_answer(tests=()), "no_test_inputs"),
                         (io_answer(tests=("1", "1")), "too_few_tests"),
                         (io_answer(solution="n = int(input(\n"), "solution_syntax")]:
        with pytest.raises(Rejected) as e:
            parse_io(text, 3)
        assert e.value.reason == reason
    assert "standard input" in teacher_prompt(Seed("s", "topic", "sums"), 3, "io")


def test_more_inputs_of_long_and_huge_examples():
    words = ["the quick brown fox jumps over the lazy dog", "pack my box with five dozen"]
    for i in more_inputs([{"args": [w]} for w in words], 10):
        assert len(i["args"][0]) >= len(words[1])
    huge = more_inputs([{"args": [10 ** 400]}, {"args": [3]}], 5)
    assert all(i["args"][0] in (10 ** 400, 3) for i in huge)  # reused, never a float range


def test_deep_programs_have_no_mutants_rather_than_an_error():
    assert mutants("def f(x):\n    return x" + " + 1" * 600 + "\n", 5) == []


def test_band_keeps_rates_strictly_inside_and_counts_each_proposal_once():
    p = Pipeline(executor=None, params=SynthParams(), decontaminator=None)
    rows = {"synth/a-1": "synth/a-1", "synth/io-2": "synth/io-2",
            "synth/io-2/go": "synth/io-2", "synth/c-3": "synth/c-3"}
    p.accepted = [{"id": rid, "provenance": {}} for rid in rows]
    p.log = [{"detail": d, "outcome": "accepted"} for d in ("synth/a-1", "synth/io-2",
                                                             "synth/c-3")]
    counts = {"synth/a-1": [2, 4], "synth/io-2": [4, 4], "synth/io-2/go": [1, 4],
              "synth/c-3": [0, 4]}
    apply_band(p, counts, 0.0, 1.0)
    assert [r["id"] for r in p.accepted] == ["synth/a-1", "synth/io-2/go"]
    assert [r["outcome"] for r in p.log] == ["accepted", "accepted", "too_hard"]
    assert dict(p.reasons) == {"too_hard": 1}
    assert p.log[1]["base_pass_rate"] == 1.0  # the first language's rate is kept in the log
