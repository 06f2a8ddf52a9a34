"""`rlce synth` as a user runs it: the teacher's answers through every stage into the run
folder's files and W&B run, and augmented tests that catch a program the original tests
pass and that then train with data=jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.rlce.test_train_cli import SMALL, rlce

pytestmark = pytest.mark.slow  # rlce CLI subprocesses on Ray

CLIP = ("def clip_sum(xs, cap):\n    total = 0\n    for x in xs:\n        if x > cap:\n"
        "            total += cap\n        else:\n            total += x\n    return total\n")
PROBLEMS = [
    {"id": "own/clip_sum", "language": "python", "difficulty": "easy", "reference": CLIP,
     "prompt": "Write a Python function `clip_sum(xs, cap)` that sums xs, counting each "
               "element above cap as cap.",
     "tests": {"format": "call", "fn_name": "clip_sum", "cases": [
         {"args": [[1, 2], 5], "expected": 3}, {"args": [[], 3], "expected": 0},
         {"args": [[4], 9], "expected": 4}]}},
    {"id": "own/echo", "language": "python", "difficulty": "easy",
     "prompt": "Write a Python program that prints its input.",
     "tests": {"format": "io", "cases": [{"input": "a\n", "output": "a"}]}},
]
# passes the original three tests by remembering them, and nothing else
MEMORISED = ("```python\ndef clip_sum(xs, cap):\n    return {(1, 2): 3, (): 0, (4,): 4}"
             "[tuple(xs)]\n```")
HONEST = f"```python\n{CLIP}```"


def test_synth_propose_writes_every_answer_with_its_outcome(tmp_path):
    out = rlce(["synth", "model=tiny", "rollout=transformers", "synth.proposals=4",
                "synth.per_seed=2", "synth.max_tokens=24", "rollout.max_model_len=1024",
                f"logging.dir={tmp_path}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["proposed"] == 4
    assert report["accepted"] + sum(report["rejected"].values()) == 4
    log = [json.loads(ln) for ln in (run_dir / "proposals.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all(r["outcome"] and r["seed"].startswith("rlce/py/") for r in log)
    kept = (run_dir / "problems.jsonl").read_text().splitlines()
    assert len(kept) == report["accepted"]
    assert f"rlce synth (propose): 4 in, {report['accepted']} kept" in out.stdout
    tables = list(run_dir.glob("wandb/offline-run-*/files/media/table/synth/proposals_*.json"))
    assert tables and len(json.loads(tables[0].read_text())["data"]) == 4


def test_augmented_tests_catch_a_memorised_program_and_train(tmp_path):
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    evaluation = tmp_path / "eval-after.json"
    evaluation.write_text(json.dumps({"records": [
        {"problem": "own/clip_sum", "status": "passed", "tokens": 9, "text": MEMORISED},
        {"problem": "own/clip_sum", "status": "passed", "tokens": 9, "text": HONEST}]}))
    out_file = tmp_path / "augmented.jsonl"
    out = rlce(["synth", "synth.mode=augment", "data=jsonl", f"data.path={data}",
                f"synth.recheck={evaluation}", f"synth.out={out_file}", "synth.mutants=8",
                "synth.extra_inputs=8", "logging.mode=disabled",
                f"logging.dir={tmp_path / 'runs'}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {r["id"]: r for r in map(json.loads, out_file.read_text().splitlines())}
    assert rows["own/echo"] == PROBLEMS[1]  # nothing to augment it from: written as it was
    clip = rows["own/clip_sum"]
    assert clip["tests"]["cases"][:3] == PROBLEMS[0]["tests"]["cases"]
    assert clip["augmented"]["cases_after"] == len(clip["tests"]["cases"]) > 3
    (run_dir,) = (tmp_path / "runs").iterdir()
    recheck = json.loads((run_dir / "report.json").read_text())["recheck"]
    assert (recheck["pass_original"], recheck["fail_augmented"]) == (2, 1)
    assert recheck["fail_augmented_by_status"] == {"runtime_error": 1}  # a KeyError
    assert "{(1, 2): 3" in recheck["examples"][0]["text"]
    # the augmented set trains as it is
    train_dir = tmp_path / "train"
    out = rlce(["train", *SMALL, "rollout=transformers", "algo.steps=1", "data=jsonl",
                f"data.path={out_file}", "eval.before=false", "eval.after=false",
                "logging.mode=disabled", f"hydra.run.dir={train_dir}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rates = json.loads((train_dir / "problem_pass_rates.json").read_text())
    assert set(rates) <= {"own/clip_sum", "own/echo"} and rates
    assert all(r["judged"] > 0 and r["prompt"] for r in rates.values())


def test_augment_asks_the_teacher_for_calls_of_each_augmentable_problem(tmp_path):
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    out = rlce(["synth", "synth.mode=augment", "data=jsonl", f"data.path={data}",
                "synth.teacher_inputs=4", "model=tiny", "rollout=transformers",
                "synth.max_tokens=24", "rollout.max_model_len=1024", "synth.mutants=4",
                "synth.extra_inputs=2", "logging.mode=offline",
                f"logging.dir={tmp_path / 'runs'}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    teacher = report["teacher_inputs"]  # the echo problem has no reference: not asked
    assert teacher["answers"] == 1 and teacher["kept"] <= teacher["calls"]
    (clip,) = [json.loads(r) for r in (run_dir / "problems.jsonl").read_text().splitlines()
               if json.loads(r)["id"] == "own/clip_sum"]
    assert clip["augmented"]["teacher_cases"] == teacher["kept"]
    assert f"teacher: 1 answers, {teacher['calls']} calls" in out.stdout


def test_synth_refuses_bad_options_by_name(tmp_path):
    for args, message in [(["synth.mode=invent"], "synth.mode must be one of"),
                          (["synth.seeds=topics"], "synth.seeds=topics needs synth.topics"),
                          (["synth.seeds=failures", f"synth.from_run={tmp_path / 'x'}"],
                           "synth.seeds=failures needs synth.from_run"),
                          (["synth.max_tests=1"], "synth.max_tests=1 is below"),
                          (["synth.shots=2"], "synth.shots must be one of"),
                          (["synth.teacher_inputs=-1"], "synth.teacher_inputs must be >= 0"),
                          (["synth.teacher=/no/such/model"], "synth.teacher")]:
        out = rlce(["synth", *args, f"logging.dir={tmp_path}"], Path(tmp_path))
        assert out.returncode == 2, (args, out.stderr[-2000:])
        assert message in out.stderr, (args, out.stderr[-2000:])
