"""The shipped training set: big enough, spread over languages, disjoint from HumanEval, and
every problem solvable: each Python reference passes its own tests in the real executor, and
hand-written JavaScript, Go and Rust solutions pass theirs (a wrong one fails)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rlce.data import load_jsonl
from rlce.evaluate import humaneval
from rlce.problems import export, shipped
from rlce.problems.catalog_io import IO

SUM_TWO = {
    "javascript": "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/)"
                  ".map(Number);\nconsole.log(a + b);\n",
    "go": "package main\nimport \"fmt\"\nfunc main() {\n\tvar a, b int64\n"
          "\tfmt.Scan(&a, &b)\n\tfmt.Println(a + b)\n}\n",
    "rust": "use std::io::Read;\nfn main() {\n    let mut s = String::new();\n"
            "    std::io::stdin().read_to_string(&mut s).unwrap();\n"
            "    let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();\n"
            "    println!(\"{}\", v[0] + v[1]);\n}\n",
}
SORT_NUMBERS_JS = ("const xs = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/)"
                   ".map(Number);\nconsole.log(xs.slice(1, 1 + xs[0]).sort((a, b) => a - b)"
                   ".join(' '));\n")


@pytest.fixture(scope="module")
def runner():
    from executors import Runner

    with Runner(workers=2) as r:
        yield r


def test_the_set_is_large_varied_and_disjoint_from_humaneval():
    problems = shipped()
    langs = Counter(p.language for p in problems)
    assert len(problems) >= 200 and len({p.id for p in problems}) == len(problems)
    assert langs["python"] > len(problems) / 2
    assert min(langs[x] for x in ("javascript", "go", "rust")) >= 10
    assert set(Counter(p.difficulty for p in problems)) == {"easy", "medium"}
    he = humaneval()
    entry_points = {p.tests["entry_point"] for p in he}
    assert not entry_points & {p.tests.get("fn_name") for p in problems}
    stubs = {p.meta["stub"].strip() for p in he}
    assert not any(p.prompt.strip() in stubs for p in problems)
    assert all("reference" not in p.prompt and "def " not in p.prompt for p in problems)
    assert shipped(languages=["go"], difficulties=["easy"]) and all(
        p.language == "go" and p.difficulty == "easy"
        for p in shipped(languages=["go"], difficulties=["easy"]))


def test_every_python_reference_passes_its_tests_in_the_executor(runner):
    jobs = []
    io_refs = {pid: ref for pid, _, _, _, ref, _ in IO}
    for p in shipped(languages=["python"]):
        ref = p.meta.get("reference")
        if ref is None:  # a stdin/stdout problem: its solve() as a program
            ref = io_refs[p.id.rsplit("/", 1)[1]] + "\nimport sys\nprint(solve(sys.stdin.read()))\n"
        jobs.append(p.job(ref, p.id))
    verdicts = list(runner.run(jobs))
    failed = [(v["id"], v["status"], v.get("message")) for v in verdicts
              if v["status"] != "passed"]
    assert len(verdicts) == len(jobs) and not failed


def test_other_languages_are_solvable_and_a_wrong_answer_fails(runner):
    by_id = {p.id: p for p in shipped()}
    jobs = [by_id[f"rlce/{lang}/sum-two"].job(src, lang) for lang, src in SUM_TWO.items()]
    jobs.append(by_id["rlce/javascript/sort-numbers"].job(SORT_NUMBERS_JS, "js-sort"))
    jobs.append(by_id["rlce/javascript/sort-numbers"].job(SUM_TWO["javascript"], "js-wrong"))
    status = {v["id"]: v["status"] for v in runner.run(jobs)}
    assert status == {"javascript": "passed", "go": "passed", "rust": "passed",
                      "js-sort": "passed", "js-wrong": "failed"}


def test_export_writes_jsonl_the_loader_reads_back_without_references(tmp_path):
    n = export(str(tmp_path / "shipped.jsonl"))
    problems, errors = load_jsonl(tmp_path / "shipped.jsonl")
    assert n == len(problems) == len(shipped()) and not errors
    assert all("reference" not in json.loads(line)
               for line in (tmp_path / "shipped.jsonl").read_text().splitlines())
