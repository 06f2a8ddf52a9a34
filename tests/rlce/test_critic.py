"""The execution critic (rlce/critic.py): its figures against their definitions, examples read
from trajectory stores, and ``rlce critic train``/``eval`` end to end on the tiny model, with
the bad inputs the issue names."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rlce.critic import CriticError, heldout_problems, load_examples, prescreen_at, scores
from rlce.trajectories import TrajectoryStore


def brute_auroc(p, y):
    pos = [a for a, t in zip(p, y) if t]
    neg = [a for a, t in zip(p, y) if not t]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auroc_is_the_share_of_pass_fail_pairs_ranked_right_ties_counting_half():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.integers(0, 5, size=40) / 4  # many ties
        y = rng.integers(0, 2, size=40)
        assert scores(p, y)["auroc"] == pytest.approx(brute_auroc(p, y), abs=1e-12)
    assert np.isnan(scores(np.array([0.1, 0.2]), np.array([1, 1]))["auroc"])


def test_calibration_error_and_precision_at_90_percent_recall_by_hand():
    # bins of width 0.1: {0.05, 0.05} -> mean 0.05 vs 0.5; {0.95, 0.95} -> 0.95 vs 1.0
    s = scores(np.array([0.05, 0.05, 0.95, 0.95]), np.array([0, 1, 1, 1]))
    assert s["ece"] == pytest.approx((2 * 0.45 + 2 * 0.05) / 4)
    # 10 passes: the first 9 are found among the top 12 (3 failures ranked above some)
    p = np.linspace(1, 0, 20)
    y = np.array([1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1] + [0] * 7 + [1])
    s = scores(p, y)
    assert s["precision_at_90_recall"] == pytest.approx(9 / 12)
    assert s["threshold_at_90_recall"] == pytest.approx(p[11])
    assert s["base_rate"] == 0.5 and s["examples"] == 20
    # a threshold takes the examples tied with it
    tied = scores(np.array([0.9, 0.5, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0, 0]))
    assert tied["precision_at_90_recall"] == pytest.approx(2 / 4)


def test_within_problem_auroc_ignores_what_only_tells_problems_apart():
    # problem a is easy (rated high, passes), b hard (rated low, fails): across problems the
    # ranking is perfect, yet within a the failure is rated above the pass
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    y = np.array([0, 1, 1, 0, 0])
    s = scores(p, y, problems=["a", "a", "a", "b", "b"])
    assert s["auroc"] == pytest.approx(4 / 6)  # pairs (pass, fail): 4 of 6 ranked right
    # within a: pairs (0.8 pass, 0.9 fail), (0.7 pass, 0.9 fail) both wrong; b has no pass
    assert s["within_auroc"] == 0.0 and s["within_problems"] == 1
    assert "within_auroc" not in scores(p, y)


def test_prescreening_figures_count_skipped_executions_and_the_passes_among_them():
    p = np.array([0.01, 0.03, 0.04, 0.08, 0.15, 0.5])
    y = np.array([0, 1, 0, 0, 1, 1])
    s = scores(p, y)
    # below 0.02: one of six skipped, no pass; below 0.05: three, one of the three passes
    assert s["saved@0.02"] == pytest.approx(1 / 6) and s["lost@0.02"] == 0
    assert s["saved@0.05"] == pytest.approx(3 / 6) and s["lost@0.05"] == pytest.approx(1 / 3)
    assert s["saved@0.2"] == pytest.approx(5 / 6) and s["lost@0.2"] == pytest.approx(2 / 3)
    # a threshold skips what lies strictly below it, as the loop does
    assert prescreen_at(p, y, 0.08)["saved@0.08"] == pytest.approx(3 / 6)
    assert np.isnan(prescreen_at(p, np.zeros(6), 0.1)["lost@0.1"])


def write_store(folder, rows):
    store = TrajectoryStore(folder)
    store.add(rows, "train", 1)
    store.flush()


def row(problem, program, status, heldout=(0, 0)):
    return {"problem": problem, "language": "python", "prompt": f"solve {problem}",
            "completion": program, "program": program, "status": status, "passed": 1,
            "total": 1, "reward": 0.0, "policy_version": 0, "tokens": 3,
            "heldout_passed": heldout[0], "heldout_total": heldout[1], "hardcoded": ""}


def test_examples_count_each_program_once_and_a_held_out_failure_is_a_failure(tmp_path):
    write_store(tmp_path / "run" / "trajectories", [
        row("a", "x = 1", "passed"), row("a", "x = 1", "passed"), row("a", "x = 2", "failed"),
        row("b", "y = 1", "passed", heldout=(1, 3)), row("b", "y = 2", "passed", (3, 3))])
    examples, counts = load_examples([str(tmp_path / "run")])
    assert [(e.problem, e.program, e.passed) for e in examples] == [
        ("a", "x = 1", True), ("a", "x = 2", False), ("b", "y = 1", False), ("b", "y = 2", True)]
    assert counts == {"rows": 5, "no_verdict": 0, "other_source": 0, "duplicates": 1}
    # the same store named by its trajectories folder or one shard
    (shard,) = (tmp_path / "run" / "trajectories").glob("part-*.parquet")
    for path in (tmp_path / "run" / "trajectories", shard):
        assert load_examples([str(path)])[0] == examples


def test_only_training_samples_that_ran_are_read_unless_asked(tmp_path):
    """A training run's store also holds its evaluations (maybe of an evaluation set the
    critic must not learn), and pre-screened samples never ran: their status is not a
    verdict."""
    store = TrajectoryStore(tmp_path / "t")
    store.add([row("a", "x = 1", "passed"), {**row("a", "x = 2", "failed"),
                                             "prescreened": True}], "train", 1)
    store.add([row("HumanEval/0", "y = 1", "passed")], "eval-after", 1)
    store.flush()
    examples, counts = load_examples([str(tmp_path / "t")])
    assert [e.program for e in examples] == ["x = 1"]
    assert (counts["no_verdict"], counts["other_source"]) == (1, 1)
    examples, _ = load_examples([str(tmp_path / "t")], ("train", "eval"))
    assert [e.program for e in examples] == ["x = 1", "y = 1"]


def test_stores_without_verdicts_or_that_are_not_stores_are_refused_by_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "bare").mkdir()
    pq.write_table(pa.table({"prompt": ["p"], "completion": ["c"]}),
                   tmp_path / "bare" / "part-00000.parquet")
    with pytest.raises(CriticError, match=r"part-00000.parquet: a trajectory store without "
                                          r"problem, program, status"):
        load_examples([str(tmp_path / "bare")])
    write_store(tmp_path / "none", [row("a", "x", None)])
    with pytest.raises(CriticError, match=r"no executed sample with a verdict \(1 rows, 1 "):
        load_examples([str(tmp_path / "none")])
    with pytest.raises(CriticError, match="does not exist"):
        load_examples([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CriticError, match="holds no trajectory store"):
        load_examples([str(tmp_path / "empty")])
    with pytest.raises(CriticError, match="critic.stores is empty"):
        load_examples([])


def test_problems_are_held_out_by_a_hash_of_their_id():
    problems = {f"p{i}" for i in range(40)}
    held = heldout_problems(problems, 0.25, seed=0)
    assert len(held) == 10 and held == heldout_problems(problems, 0.25, seed=0)
    assert held != heldout_problems(problems, 0.25, seed=1)
    assert heldout_problems({"a", "b"}, 0.01, 0) and len(heldout_problems({"a", "b"}, .99, 0)) == 1
    assert heldout_problems(problems, 0.0, 0) == set()
    # one io problem in several languages is held out (or trained on) whole
    langs = {f"rlce/{lang}/sum-{i}" for lang in ("python", "go", "rust") for i in range(8)}
    held = heldout_problems(langs, 0.25, seed=0)
    assert len(held) == 6 and len({p.rsplit("/", 1)[1] for p in held}) == 2


# -- the commands on the tiny model ---------------------------------------------------------

def rlce(args, cwd):
    return subprocess.run([sys.executable, "-m", "rlce.cli", *args], check=False, cwd=cwd,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model):
    """``rlce critic train`` on a store whose passing programs say so in a word the
    backbone reads: (its output, the critic folder, the folder the test works in, the
    command line's common options)."""
    tmp_path = tmp_path_factory.mktemp("critic")
    rows = []
    for i in range(24):
        for k in range(6):
            ok = k % 2 == 0
            rows.append(row(f"p{i}", f"def f(x):\n    return {'good' if ok else 'bad'}({k}, x)",
                            "passed" if ok else "failed"))
    write_store(tmp_path / "run" / "trajectories", rows)
    common = ["model=tiny", f"critic.stores=[{tmp_path / 'run'}]", "logging.progress=false",
              f"logging.dir={tmp_path / 'out'}"]
    out = rlce(["critic", "train", *common], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (folder,) = (tmp_path / "out").glob("*/critic")
    return out, folder, tmp_path, common


@pytest.mark.slow
def test_critic_train_and_eval_end_to_end_on_the_tiny_model(trained):
    """The head learns its training problems; eval reproduces the held-out figures; the
    folder is a Hugging Face model; bad inputs stop with one line naming them."""
    from transformers import AutoModel, AutoTokenizer

    out, trained_folder, tmp_path, common = trained
    folder = tmp_path / "copy"  # (this test spoils its tokenizer, the next uses it whole)
    shutil.copytree(trained_folder, folder)
    info = json.loads((folder / "critic.json").read_text())
    assert len(info["heldout"]) == 6 and len(info["trained_on"]) == 18
    assert info["examples"]["train"] == 108 and info["examples"]["heldout"] == 36
    assert info["head"] in ("linear", "mlp") and len(info["selection"]) == 10
    assert info["figures"]["train"]["auroc"] > 0.95  # the word is there to be learned
    assert "held-out problems: 36 examples (18 passed" in out.stdout
    AutoModel.from_pretrained(folder)  # a Hugging Face folder as it is
    AutoTokenizer.from_pretrained(folder)

    out = rlce(["critic", "eval", *common, f"critic.path={folder}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (result,) = (tmp_path / "out").glob("*/critic-eval.json")
    ev = json.loads(result.read_text())
    for key, value in info["figures"]["heldout"].items():  # the same examples, same figures
        assert ev["unseen problems"][key] == pytest.approx(value, abs=1e-6, nan_ok=True), key
    assert ev["problems it trained on"]["examples"] == 108

    # a tokenizer that is not the model's
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_tokens([f"<extra{i}>" for i in range(5000)])
    tok.save_pretrained(folder)
    out = rlce(["critic", "eval", *common, f"critic.path={folder}"], tmp_path)
    assert out.returncode == 2 and "its tokenizer has" in out.stderr
    assert "the tokenizer is not this model's" in out.stderr, out.stderr[-2000:]
    # not a critic, and a store without verdicts
    out = rlce(["critic", "eval", *common, f"critic.path={tmp_path}"], tmp_path)
    assert out.returncode == 2 and "not a critic" in out.stderr, out.stderr[-2000:]
    write_store(tmp_path / "noverdict", [row("a", "x", None)])
    out = rlce(["critic", "train", "model=tiny", f"critic.stores=[{tmp_path / 'noverdict'}]",
                f"logging.dir={tmp_path / 'out2'}"], tmp_path)
    assert out.returncode == 2 and "no executed sample with a verdict" in out.stderr
    assert not list((tmp_path / "out2").glob("*/critic"))


def test_reranking_picks_each_problems_most_likely_sample_and_pairs_it_with_a_random_one():
    from rlce.evaluate import rerank

    recs = [{"problem": p, "status": s} for p, s in [
        ("a", "failed"), ("a", "passed"), ("a", "failed"), ("a", "failed"),  # 1 of 4
        ("b", "passed"), ("b", "failed"), ("b", "failed"), ("b", "failed"),  # 1 of 4
        ("c", "failed"), ("c", "failed"), ("c", "failed"), ("c", "failed")]]  # 0 of 4
    p = np.array([.1, .9, .2, .3,  .2, .8, .2, .1,  .5, .5, .5, .5])
    out = rerank(recs, p)
    # a: picks the pass; b: picks a failure; c: a tie, the first (a failure)
    assert out["pass@1_rerank"] == pytest.approx(1 / 3)
    assert out["pass@1_random"] == pytest.approx((0.25 + 0.25 + 0) / 3)
    d = out["paired"]
    assert (d["better"], d["worse"], d["same"]) == (1, 1, 1)
    assert d["diff"] == pytest.approx(1 / 3 - 1 / 6)
    # within a: the pass rated highest (1); within b: above one failure, tied with one,
    # below one (0.5); c has no pass and no say
    assert out["rerank_within_auroc"] == pytest.approx(0.75)
    assert out["rerank_within_problems"] == 2


class FixedCritic:
    """Ratings by program text (the thing under test is what the loop does with them)."""

    def __init__(self, table):
        self.table, self.calls = table, 0

    def predict(self, examples):
        self.calls += 1
        return np.array([self.table[ex.program.strip()] for ex in examples])


def run_round(critic_use, programs, verdict_of):
    from rlce.controller import generate_and_execute
    from rlce.core.types import Sample, SamplingSettings
    from rlce.data import parse_problem
    from rlce.rewards import binary

    problem = parse_problem({"id": "p", "language": "python", "prompt": "Write f.",
                             "tests": {"format": "call", "fn_name": "f",
                                       "cases": [{"args": [1], "expected": 1}]}})
    submitted = []

    class Pool:
        def generate(self, prompts, settings):
            for i, prog in enumerate(programs):
                yield Sample("p", i, (1,), (2,), (-0.1,), f"```python\n{prog}\n```", "stop", 0, 0)

    class Fleet:
        def submit(self, job, callback):
            submitted.append(job["id"])
            ok = verdict_of[job["source"].strip()]
            callback({"id": job["id"], "status": "passed" if ok else "failed",
                      "passed": int(ok), "total": 1, "tests": [], "duration_s": 0.0})

        def check(self):
            pass

    batch = generate_and_execute(Pool(), Fleet(), [problem], SamplingSettings(n=len(programs)),
                                 binary, critic=critic_use)
    return batch, submitted


PROGRAMS = ["def f(x): return x", "def f(x): return 1", "def f(x): return 0",
            "def f(x): return -x"]
RATINGS = {PROGRAMS[0]: 0.9, PROGRAMS[1]: 0.01, PROGRAMS[2]: 0.02, PROGRAMS[3]: 0.5}
PASSES = {PROGRAMS[0]: True, PROGRAMS[1]: True, PROGRAMS[2]: False, PROGRAMS[3]: False}


@pytest.mark.slow  # rlce.controller imports ray
def test_pre_screening_skips_what_the_critic_rates_low_and_an_audit_counts_the_lost_passes():
    from rlce.controller import CriticUse

    use = CriticUse(FixedCritic(RATINGS), prescreen=True, tau=0.05)
    batch, submitted = run_round(use, PROGRAMS, PASSES)
    assert submitted == ["p#0", "p#3"]  # two of four executed
    assert [r["status"] for r in batch.records] == ["passed", "failed", "failed", "failed"]
    assert [r["prescreened"] for r in batch.records] == [False, True, True, False]
    assert [r["reward"] for r in batch.records] == [1.0, 0.0, 0.0, 0.0]
    assert batch.stats.prescreened == 2 and batch.stats.prescreen_lost == 0  # unknown
    # audited: every program runs, the screened ones are still scored as not executed, and
    # the pass the critic threw away is counted
    use = CriticUse(FixedCritic(RATINGS), prescreen=True, tau=0.05, audit=True)
    batch, submitted = run_round(use, PROGRAMS, PASSES)
    assert len(submitted) == 4
    assert [r["reward"] for r in batch.records] == [1.0, 0.0, 0.0, 0.0]
    assert batch.stats.prescreened == 2 and batch.stats.prescreen_lost == 1
    assert [r["critic_p"] for r in batch.records] == [0.9, 0.01, 0.02, 0.5]


@pytest.mark.slow  # rlce.controller imports ray
def test_the_critic_baseline_is_the_mean_rating_of_the_groups_other_samples():
    from rlce.controller import CriticUse

    critic = FixedCritic(RATINGS)
    batch, _ = run_round(CriticUse(critic, baseline=True), PROGRAMS, PASSES)
    (group,) = batch.groups
    c = [RATINGS[p] for p in PROGRAMS]
    r = [1.0, 1.0, 0.0, 0.0]
    want = [r[i] - (sum(c) - c[i]) / 3 for i in range(4)]
    assert group.advantages == pytest.approx(want)
    assert critic.calls == 1  # one batch for the round
    # a group whose samples all failed still has a signal where the critic expected passes
    batch, _ = run_round(CriticUse(FixedCritic(RATINGS), baseline=True), PROGRAMS,
                         dict.fromkeys(PROGRAMS, False))
    (group,) = batch.groups
    assert all(a < 0 for a in group.advantages) and len(set(group.advantages)) == 4


@pytest.mark.slow  # rlce.controller imports ray
def test_a_step_counts_only_groups_whose_rewards_differ_and_trains_on_the_critics_too():
    """With the critic's baseline a group of equal rewards has advantages; it is trained on
    but does not count towards algo.groups_per_step, so a step draws as many groups with a
    pass and a failure as GRPO does."""
    from types import SimpleNamespace

    from rlce.controller import Controller
    from rlce.core.config import AlgoConfig
    from rlce.core.types import ScoredSample, TrainGroup

    def group(pid, rewards, advantages=None):
        return TrainGroup(pid, tuple(ScoredSample((1,), (2,), (-0.1,), r) for r in rewards),
                          advantages)

    groups = [group("mixed", [1, 0], (0.6, -0.4)), group("fails", [0, 0], (-0.1, -0.2)),
              group("flat", [0, 0], (0.0, 0.0)), group("grpo", [1, 0]), group("none", [1, 1])]
    ctrl = SimpleNamespace(algo=AlgoConfig())
    kept, informative, stale, uniform = Controller._select(ctrl, groups, 0)
    assert [g.problem_id for g in kept] == ["mixed", "fails", "grpo"]
    assert informative == 2 and uniform == 2 and stale == 0
    # keeping uniform groups: every kept group counts
    ctrl = SimpleNamespace(algo=AlgoConfig(drop_uniform_groups=False))
    kept, informative, _, _ = Controller._select(ctrl, groups, 0)
    assert len(kept) == informative == 5


@pytest.mark.slow
def test_eval_reranks_with_the_critic_on_the_problems_it_never_trained_on(trained):
    """``rlce eval eval.rerank=critic`` on the tiny model: the figures are there, and the
    problems the critic trained on are left out and counted."""
    _, folder, tmp_path, _ = trained
    info = json.loads((folder / "critic.json").read_text())
    ids = info["heldout"][:2] + info["trained_on"][:2]
    problems = tmp_path / "eval.jsonl"
    problems.write_text("".join(json.dumps(
        {"id": pid, "language": "python", "prompt": "Write f(x) returning x.",
         "tests": {"format": "call", "fn_name": "f", "cases": [{"args": [1], "expected": 1}]}})
        + "\n" for pid in ids))
    out = rlce(["eval", "model=tiny", "eval.set=jsonl", f"eval.path={problems}", "eval.n=2",
                "eval.rerank=critic", f"critic.path={folder}", "algo.max_tokens=16",
                "rollout.max_model_len=512", "rollout.kv_cache_gb=1", "logging.progress=false",
                f"logging.dir={tmp_path / 'ev'}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (result,) = (tmp_path / "ev").glob("*/eval.json")
    ev = json.loads(result.read_text())
    assert ev["eval/rerank_problems"] == 2 and ev["eval/rerank_left_out"] == 2
    assert 0 <= ev["eval/pass@1_rerank"] <= 1 and 0 <= ev["eval/pass@1_random"] <= 1
    assert ev["eval/problems"] == 4  # (the evaluation's own count stays)
    assert re.search(r"eval/rerank_left_out\s+2\n", out.stdout), out.stdout[-2000:]
