"""Fine-tuning pairs from files (rlce/sft.py): JSONL and trajectory stores read back with bad
rows named by file and row, evaluation and failed samples never trained on, a file with
nothing to train on refused, and the batches' order kept across a resume. Also
``program_key``, which deduplicates passing programs."""

from __future__ import annotations

import json

import pytest

from rlce.prompts import INSTRUCTION, program_key
from rlce.sft import Pair, PairBatches, PairError, pair_batches, read_pairs
from rlce.trajectories import TrajectoryStore


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_pairs_with_bad_rows_named_by_file_and_line(tmp_path):
    f = write_jsonl(tmp_path / "pairs.jsonl", [
        {"problem": "a", "prompt": "Add.", "completion": "```python\nx=1\n```"},
        {"prompt": "Sub.", "completion": ""},
        "{not json",
        {"problem": "b", "prompt": "Mul.", "completion": "y", "status": "failed"},
        ["a", "list"],
        {"prompt": "Div.", "completion": "z"},
    ])
    pairs, errors, kept_out = read_pairs(f)
    assert pairs == [Pair("a", "Add.", "```python\nx=1\n```"), Pair("Div.", "Div.", "z")]
    assert kept_out == 1  # the failed sample: kept out, not an error
    assert errors == [f"{f}:2: field 'completion' must be a non-empty string",
                      f"{f}:3: not valid JSON (Expecting property name enclosed in double "
                      "quotes: line 1 column 2 (char 1))",
                      f"{f}:5: a row must be an object, got list"]
    with pytest.raises(PairError, match=f"{f}:2: field 'completion'"):
        read_pairs(f, on_error="raise")


def test_a_store_gives_its_passed_training_samples_never_evaluation_ones(tmp_path):
    store = TrajectoryStore(tmp_path / "run" / "trajectories")

    def rec(i, status):
        return {"problem": f"p{i}", "language": "python", "prompt": f"prompt {i}",
                "completion": f"```python\nx = {i}\n```", "program": f"x = {i}\n",
                "status": status, "passed": 1, "total": 1, "reward": 1.0,
                "policy_version": 0, "tokens": 5, "generate_latency_s": 0.1, "execute_s": 0.0}

    store.add([rec(0, "passed"), rec(1, "failed"), rec(2, "passed")], "train", 1)
    store.flush()
    store.add([rec(3, "passed")], "eval-after", 2)  # HumanEval's samples, say
    store.flush()
    for path in (tmp_path / "run", tmp_path / "run" / "trajectories",
                 tmp_path / "run" / "trajectories" / "part-00000.parquet"):
        pairs, errors, _ = read_pairs(path)
        assert [p.problem for p in pairs] == ["p0", "p2"] and not errors, path
    assert read_pairs(tmp_path / "run")[2] == 2  # the failed one and the evaluation's


def test_nothing_to_train_on_is_refused_with_the_reason(tmp_path):
    f = write_jsonl(tmp_path / "failed.jsonl",
                    [{"prompt": "p", "completion": "c", "status": "failed"}] * 3)
    with pytest.raises(PairError, match=r"\(none of its 3 training samples passed\): there "
                                        "is nothing to train on"):
        read_pairs(f)
    with pytest.raises(PairError, match="does not exist"):
        read_pairs(tmp_path / "missing.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PairError, match="neither a file nor a folder of trajectory shards"):
        read_pairs(tmp_path / "empty")


def test_pairs_become_the_prompts_training_renders_and_overlong_ones_are_named(
        tmp_path, tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    f = write_jsonl(tmp_path / "p.jsonl", [
        {"problem": "a", "prompt": "Add two numbers.", "completion": "```python\nx=1\n```"},
        {"problem": "a", "prompt": "Add two numbers.", "completion": "```python\nx = 1\n```"},
        {"problem": "long", "prompt": "word " * 400, "completion": "c"},
    ])
    pairs, _, _ = read_pairs(f)
    batches, errors = pair_batches(f, pairs, tok, max_len=256, groups=1, seed=0)
    assert len(errors) == 1 and "problem 'long'" in errors[0] and "context of 256" in errors[0]
    (group,) = next(batches)
    assert group.problem_id == "a" and len(group.samples) == 2
    s = group.samples[0]
    want = tok.apply_chat_template(
        [{"role": "user", "content": f"Add two numbers.\n\n{INSTRUCTION}"}],
        add_generation_prompt=True, tokenize=True, return_dict=False)
    assert list(s.prompt_ids) == list(want)
    assert tok.decode(s.completion_ids) == "```python\nx=1\n```"
    assert len(s.behaviour_logprobs) == len(s.completion_ids)
    with pytest.raises(PairError, match="context of 256"):
        pair_batches(f, pairs, tok, max_len=256, groups=1, seed=0, on_error="raise")


def test_batches_cover_every_group_each_epoch_and_resume_in_order():
    from rlce.core.types import ScoredSample

    samples = {f"p{i}": [ScoredSample((1,), (2,), (0.0,), 1.0)] for i in range(5)}
    a = PairBatches(samples, groups=2, seed=3)
    drawn = [g.problem_id for _ in range(5) for g in next(a)]  # two epochs of 5
    assert sorted(drawn[:5]) == sorted(drawn[5:]) == [f"p{i}" for i in range(5)]
    b = PairBatches(samples, groups=2, seed=3)
    b.skip(4)
    assert [g.problem_id for g in next(b)] == drawn[4:6] and b.position == 6


def test_program_key_ignores_layout_and_comments_not_meaning():
    a = "def f(x):\n    # double it\n    return x*2\n"
    b = "def f(x):\n\n    return (x * 2)  # twice\n"
    c = "def f(x):\n    return x * 3\n"
    assert program_key(a, "python") == program_key(b, "python") != program_key(c, "python")
    assert program_key("int main() {\n  return 0;\n}", "cpp") == \
        program_key("int main() { return 0; }", "cpp")
    assert program_key("def f(:", "python") == "def f(:"  # not Python: its text
