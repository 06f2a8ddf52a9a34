"""`rlce train`, `rlce eval` and `rlce bench pipeline` as a user runs them: subprocesses on the
tiny model, with the W&B offline run read back, the resolved config, checkpoints, and a resumed
run that continues with the same step, learner state and data order."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import yaml

from rlce.prompts import program_key
from rlce.wandb_offline import history
from tests.ray_nodes import actor_pids

pytestmark = pytest.mark.slow  # rlce CLI subprocesses, training runs on Ray

RLCE = str(Path(sys.executable).parent / "rlce")
# A run's smallest shape. Tests whose subject is not the engine add rollout=transformers: it is
# ready in seconds, where a vLLM engine takes about 35 (tests of the default keep vLLM).
SMALL = ["model=tiny", "algo.groups_per_step=2", "algo.problems_per_draw=0", "algo.n=2",
         "algo.max_tokens=16", "algo.drop_uniform_groups=false", "rollout.max_model_len=512",
         "rollout.kv_cache_gb=1", "eval.limit=3", "eval.n=2"]
STEP_KEYS = ["reward/mean", "reward/std", "reward/pass_rate", "reward/heldout_fail_rate",
             "reward/hardcode_rate", "reward/all_tests_pass_rate", "reward/penalized", "rollout/samples",
             "rollout/response_len_mean", "rollout/staleness_max", "rollout/policy_version",
             "learner/loss", "learner/kl", "learner/entropy", "learner/clip_frac",
             "learner/grad_norm", "learner/lr", "learner/is_weight_mean",
             "throughput/tokens_per_s", "throughput/samples_per_s",
             "throughput/executions_per_s", "exec/queue_depth", "exec/latency_p50_s",
             "time/generate_s", "time/execute_s", "time/train_s", "time/publish_s",
             "time/wait_s", "time/controller_s", "data/groups_dropped", "data/problems_drawn"]


def rlce(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    return subprocess.run([RLCE, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd, check=False)


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def table_problems(run_dir: Path, step: int) -> list[str]:
    """The problem ids of a step's rows in the W&B `samples` tables (files are numbered by
    W&B's own media counter, so rows are selected by their `step` column)."""
    out = []
    for f in (run_dir / "wandb").glob("offline-run-*/files/media/table/samples_*.table.json"):
        t = json.loads(f.read_text())
        col, at = t["columns"].index("problem"), t["columns"].index("step")
        out += [row[col] for row in t["data"] if row[at] == step]
    assert out, f"no samples table rows for step {step} in {run_dir}"
    return sorted(out)


def test_unknown_and_invalid_options_fail_fast_with_their_names(tmp_path):
    for args, message in [(["+foo=1"], "unknown config option(s) ['foo']"),
                          (["algo.stepz=1"], "algo.stepz"),
                          (["learner.schedule=linear"], "learner.schedule must be"),
                          (["reward.name=nope"], "reward.name must be one of binary"),
                          (["data.source=nope"], "data.source must be"),
                          (["data=jsonl"], "needs data.path"),
                          (["eval.k=[5]"], "eval.k=[5] must lie between 1 and eval.n=4"),
                          (["algo.staleness=-1"], "algo.staleness must be >= 0"),
                          (["algo.stop=['']"], "algo.stop must hold non-empty strings"),
                          (["algo.problems_per_draw=-1"], "algo.problems_per_draw must be"),
                          (["checkpoint.resume=/nonexistent"], "checkpoint.resume"),
                          (["algo.steps=abc"], "algo.steps"),
                          (["algo.top_p=0.9"], "algo.top_p must be 1.0"),
                          (["data=jsonl", "data.path=/missing.jsonl"],
                           "data.path=/missing.jsonl is not a file"),
                          (["model.name=/nonexistent/model"], "model.name: model path"),
                          (["data.languages=[cobol]"], "select no shipped problem"),
                          (["algo=sft", "algo.sft_from=/missing.jsonl"],
                           "algo.sft_from=/missing.jsonl: /missing.jsonl does not exist"),
                          (["algo.sft_from=/missing.jsonl"], "it needs algo.loss=sft")]:
        out = rlce(["train", *args, f"logging.dir={tmp_path}"], tmp_path, timeout=120)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr[-2000:])
        assert "Traceback" not in out.stderr, (args, out.stderr[-2000:])
    assert not run_dirs(tmp_path)  # a refused run leaves no run folder behind


def test_help_lists_the_groups_and_cfg_job_prints_the_resolved_config(tmp_path):
    out = rlce(["train", "--help"], tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "== Config groups (presets) ==" in out.stdout
    assert "algo: async, dr_grpo, reinforce_pp, rloo, sft" in out.stdout
    assert "mini_batches: 1" in out.stdout  # every option, with its default
    out = rlce(["train", "--cfg", "job", "algo=rloo", "learner.mini_batches=2"], tmp_path,
               timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    cfg = yaml.safe_load(out.stdout)
    assert cfg["algo"]["estimator"] == "rloo" and cfg["learner"]["mini_batches"] == 2
    assert cfg["data"]["languages"] == ["python"] and cfg["learner"]["lr"] == 5e-5


def test_a_sweep_runs_one_training_run_per_point(tmp_path):
    out = rlce(["train", "-m", "model=tiny", "rollout=transformers", "algo.steps=1",
                "algo.groups_per_step=1", "algo.problems_per_draw=0", "algo.n=2",
                "algo.max_tokens=8", "algo.drop_uniform_groups=false", "eval.before=false",
                "eval.after=false", "logging.mode=disabled", "learner.lr=1e-4,1e-3",
                f"logging.dir={tmp_path}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (sweep,) = tmp_path.glob("multirun-*")
    for num, lr in ((0, 1e-4), (1, 1e-3)):
        cfg = yaml.safe_load((sweep / str(num) / "config.yaml").read_text())
        assert cfg["learner"]["lr"] == lr
        state = json.loads((sweep / str(num) / "checkpoint" / "rlce_state.json").read_text())
        assert state["step"] == 1 and state["learner"]["lr"] == lr


def test_train_logs_checkpoints_and_resumes_with_the_same_data_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    out = rlce(["train", *SMALL, "algo.steps=2", "checkpoint.every=1", "logging.table_every=1",
                "reward.heldout_fraction=0.5", f"logging.dir={a}"], a)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = run_dirs(a)
    # what the run is about comes first, and each long phase says what it is doing
    lines = out.stdout.splitlines()
    assert lines[0] == "rlce: rlce train" and lines[1].startswith("model ")
    assert f"run folder {run_dir}" in lines[3]
    assert "rlce: evaluating before training: 3 shipped problems x 2 samples" in out.stdout
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["algo"]["steps"] == 2 and cfg["model"]["name"] == "tiny-llama-test"
    assert cfg["cluster"]["name"] == "laptop" and cfg["data"]["source"] == "shipped"
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    rows = history(wandb_run)
    steps = [r for r in rows if "reward/mean" in r]
    assert [r["_step"] for r in steps] == [1, 2]
    for key in STEP_KEYS:
        assert all(key in r for r in steps), key
    evals = [r for r in rows if "eval/pass@1" in r]
    assert len(evals) == 2 and all(r["eval/problems"] == 3 for r in evals)
    for d in ("checkpoint", "checkpoint-step1"):
        assert (run_dir / d / "config.json").is_file()
        assert (run_dir / d / "model.safetensors").is_file()
        assert yaml.safe_load((run_dir / d / "config.yaml").read_text()) == cfg
    assert "pass@1" in out.stdout and "checkpoint:" in out.stdout and str(run_dir) in out.stdout
    # both evaluations are kept problem by problem and sample by sample, and compared paired
    saved = [json.loads((run_dir / f"eval-{w}.json").read_text()) for w in ("before", "after")]
    for e, logged in zip(saved, evals):
        assert e["eval/pass@1"] == logged["eval/pass@1"]
        assert len(e["per_problem"]) == 3 and len(e["records"]) == e["eval/samples"]
        assert all(0 <= c <= n <= 2 for c, n in e["per_problem"].values())
        assert e["eval/pass@1"] == pytest.approx(
            sum(c / n for c, n in e["per_problem"].values()) / 3)
    assert saved[0]["per_problem"].keys() == saved[1]["per_problem"].keys()
    assert "paired by problem:" in out.stdout
    # every executed sample is in the trajectory store: one shard per step and evaluation
    store = datasets.load_dataset("parquet", split="train", data_files=sorted(
        str(f) for f in (run_dir / "trajectories").glob("part-*.parquet")))
    by_source = {src: [r for r in store if r["source"] == src]
                 for src in ("eval-before", "train", "eval-after")}
    assert [len(by_source[k]) for k in ("eval-before", "eval-after")] == \
        [len(e["records"]) for e in saved]
    assert len(by_source["train"]) == sum(r["rollout/samples"] for r in steps) \
        - sum(r["rollout/sandbox_errors_excluded"] for r in steps)
    for rec, saved_rec in zip(by_source["eval-before"], saved[0]["records"]):
        assert (rec["problem"], rec["status"], rec["completion"]) == \
            (saved_rec["problem"], saved_rec["status"], saved_rec["text"])
        assert rec["prompt"] and rec["total"] >= rec["passed"] >= 0
    assert {r["step"] for r in by_source["train"]} == {1, 2}
    # the reward guard: half of each problem's tests held out for training (reward tests
    # only in the store's passed/total); evaluation judges every test
    assert re.search(r"reward guard: \d+ of \d+ problems have held-out tests "
                     r"\(reward.heldout=log\); hard-coding check log", out.stdout)
    from rlce.guard import HELDOUT, with_heldout
    from rlce.problems import shipped
    split = {p.id: p for p in with_heldout(shipped(), 0.5)}
    for rec in by_source["train"]:
        p = split[rec["problem"]]
        assert rec["total"] == p.reward_count
        assert rec["heldout_total"] == (len(p.tests.get(HELDOUT, []))
                                        if rec["status"] == "passed" else 0)
    for rec in by_source["eval-before"]:
        assert rec["heldout_total"] == 0 and rec["hardcoded"] == ""
    guard = json.loads((run_dir / "reward_guard.json").read_text())
    assert guard["problems"] == {} or all(len(c) == 4 for c in guard["problems"].values())
    assert sum(c[0] for c in guard["problems"].values()) == sum(
        r["status"] == "passed" for r in by_source["train"])
    rates = json.loads((run_dir / "problem_pass_rates.json").read_text())
    assert sum(r["judged"] for r in rates.values()) == len(by_source["train"])
    assert sum(r["passed"] for r in rates.values()) == sum(
        r["status"] == "passed" for r in by_source["train"])

    # resume from step 1: step 2 again, from the same learner state and the same problems
    out = rlce(["train", *SMALL, "algo.steps=2", "logging.table_every=1", "eval.before=false",
                "reward.heldout_fraction=0.5",
                "eval.after=false", f"checkpoint.resume={run_dir / 'checkpoint-step1'}",
                f"logging.dir={b}"], b)
    assert out.returncode == 0, out.stderr[-3000:]
    (resumed,) = run_dirs(b)
    again = [r for r in history(next((resumed / "wandb").glob("offline-run-*")))
             if "reward/mean" in r]
    assert [r["_step"] for r in again] == [2]
    assert again[0]["learner/step"] == steps[1]["learner/step"] == 2
    assert again[0]["data/problems_drawn"] == steps[1]["data/problems_drawn"]
    assert table_problems(resumed, 2) == table_problems(run_dir, 2)


def test_eval_reports_pass_at_k_on_humaneval_and_compares_paired(tmp_path):
    # an earlier evaluation in which every HumanEval problem passed 1 of 2 samples
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"per_problem": {f"HumanEval/{i}": [1, 2]
                                                   for i in range(164)}}))
    out = rlce(["eval", "model=tiny", "rollout=transformers", "eval=humaneval", "eval.limit=2",
                "eval.n=2", "eval.k=[1,2]", "algo.max_tokens=16", "rollout.max_model_len=1024",
                f"eval.against={earlier}", f"logging.dir={tmp_path}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (f,) = tmp_path.glob("*/eval.json")
    r = json.loads(f.read_text())
    assert r["set"] == "humaneval" and r["eval/problems"] == 2 and r["eval/samples"] == 4
    assert 0.0 <= r["eval/pass@1"] <= r["eval/pass@2"] <= 1.0
    assert sum(v for k, v in r.items() if k.startswith("eval/verdict_")) == 4
    # paired on the 2 problems both judged: each difference is (passed/2 - 1/2)
    diffs = [c / n - 0.5 for c, n in r["per_problem"].values()]
    p = r["paired_against"]
    assert p["problems"] == 2 and p["diff"] == pytest.approx(sum(diffs) / 2)
    assert p["worse"] == sum(d < 0 for d in diffs) and p["better"] == sum(d > 0 for d in diffs)
    assert f"paired by problem against {earlier}: {p['diff']:+.3f}" in out.stdout


def test_bench_pipeline_prints_the_wall_time_split(tmp_path):
    out = rlce(["bench", "pipeline", "model=tiny", "rollout=transformers", "algo.steps=2",
                "algo.groups_per_step=2", "algo.problems_per_draw=0", "algo.n=2",
                "algo.max_tokens=16", "algo.drop_uniform_groups=false", f"logging.dir={tmp_path}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    start = lines.index(next(x for x in lines if x.split() == ["phase", "seconds", "share"]))
    rows = {}  # phase: (seconds, share in %)
    for line in lines[start + 1:]:
        if not line.endswith("%"):
            break
        name, seconds, share = line.rsplit(None, 2)
        rows[name] = (float(seconds), float(share[:-1]))
    wall_name, wall = lines[start + 1 + len(rows)].rsplit(None, 1)
    wall = float(wall)
    assert wall_name == "wall" and wall > 0
    assert list(rows) == ["generate", "execute (after generation)", "wait for samples (async)",
                          "train", "publish", "eval", "controller overhead"]
    # a synchronous run with a learner: it generated, trained and published, never waited
    assert rows["generate"][0] > 0 and rows["train"][0] > 0 and rows["publish"][0] > 0
    assert rows["wait for samples (async)"][0] == 0 and rows["eval"][0] == 0
    # the phases split the wall time: seconds (each printed to 0.01) add up to it, and each
    # share is the phase's seconds over the wall
    assert all(sec >= 0 for sec, _ in rows.values())
    assert sum(sec for sec, _ in rows.values()) == pytest.approx(wall, abs=0.005 * (len(rows) + 1))
    assert sum(share for _, share in rows.values()) == pytest.approx(100.0, abs=0.005 * len(rows))
    for sec, share in rows.values():
        assert share == pytest.approx(100 * sec / wall, abs=100 * 0.01 / wall + 0.005)
    summary = next(x for x in lines if x.startswith("controller overhead ") and "of wall" in x)
    assert float(summary.split()[2].rstrip("%")) == rows["controller overhead"][1]


def test_failure_curriculum_logs_its_bands_and_keeps_them_in_checkpoints(tmp_path):
    out = rlce(["train", *SMALL, "rollout=transformers", "algo.steps=2",
                "data.curriculum=failures", "data.min_tries=2", "eval.before=false",
                "eval.after=false", f"logging.dir={tmp_path}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path)
    steps = [r for r in history(next((run_dir / "wandb").glob("offline-run-*")))
             if "reward/mean" in r]
    bands = ("untried", "learning", "mastered", "retired")
    for r in steps:
        assert sum(r[f"data/curriculum_{b}"] for b in bands) == 128  # the easy Python set
    state = json.loads((run_dir / "checkpoint" / "controller.json").read_text())
    rates = json.loads((run_dir / "problem_pass_rates.json").read_text())
    judged = {pid: s[1] for pid, s in state["curriculum"]["stats"].items() if s[1]}
    assert judged == {pid: r["judged"] for pid, r in rates.items()}
    assert state["curriculum"]["position"] == state["problems_drawn"]


def test_sft_from_pairs_then_rejection_sampling_then_from_the_store(tmp_path):
    """algo=sft end to end on the tiny model. 1: fine-tuned on a JSONL of pairs, it learns a
    completion (its NLL falls). 2: from that checkpoint, rejection sampling finds that
    completion's program passing, keeps one of each program per problem, and samples the
    problem it cannot solve again. 3: fine-tuned on run 2's trajectory store."""
    quiet = {"language": "python", "tests": {"format": "io", "cases": [
        {"input": "", "output": ""}]}}
    problems = [{"id": "quiet", "prompt": "Print nothing.", **quiet},
                {"id": "quiet2", "prompt": "Write a program that prints nothing.", **quiet},
                {"id": "loud", "prompt": "Print 42.", "language": "python", "tests": {
                    "format": "io", "cases": [{"input": "", "output": "42"}]}}]
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(
        {"problem": p["id"], "prompt": p["prompt"], "completion": "```python\npass\n```\n"})
        + "\n" for p in problems[:2]))
    common = ["model=tiny", "rollout=transformers", "algo=sft", "data=jsonl",
              f"data.path={tmp_path}/problems.jsonl",
              "rollout.max_model_len=512", "rollout.kv_cache_gb=1", "eval.before=false",
              "eval.after=false", "learner.warmup_steps=0"]

    def run(name, *args):
        out = rlce(["train", *common, *args, f"logging.dir={tmp_path / name}"], tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        (run_dir,) = run_dirs(tmp_path / name)
        return run_dir, [r for r in history(next((run_dir / "wandb").glob("offline-run-*")))
                         if "learner/nll" in r]

    first, steps = run("pairs", f"algo.sft_from={tmp_path}/pairs.jsonl", "algo.steps=25",
                       "algo.groups_per_step=2", "learner.lr=1e-2")
    nll = [r["learner/nll"] for r in steps]
    assert len(nll) == 25 and all(r["learner/samples"] == 2 for r in steps)
    # 8 tokens a sample from a random model start near ln(vocabulary), about 11
    assert nll[0] > 5 and nll[-1] < 0.5, nll
    second, steps = run("sampled", f"model.name={first / 'checkpoint'}", "algo.steps=1",
                        "algo.n=4", "algo.sft_max_samples=8", "algo.groups_per_step=3",
                        "algo.problems_per_draw=0", "algo.max_tokens=16")
    (m,) = steps
    # loud never passes: sampled again (4 more)
    assert (m["data/draws"], m["rollout/samples"]) == (2, 16)
    store = datasets.load_dataset("parquet", data_files=str(
        second / "trajectories" / "*.parquet"))["train"]
    assert {r["problem"] for r in store if r["status"] == "passed"} == {"quiet", "quiet2"}
    # each quiet problem keeps its distinct passing programs, at most sft_keep (2) of them:
    # `pass` and, now and then, another program the sampler wrote that also prints nothing
    distinct = {pid: {program_key(r["program"], "python") for r in store
                      if r["problem"] == pid and r["status"] == "passed"}
                for pid in ("quiet", "quiet2")}
    kept = sum(min(len(keys), 2) for keys in distinct.values())
    assert m["data/groups_kept"] == 2
    assert m["data/samples_kept"] == m["learner/samples"] == kept
    _, steps = run("store", f"algo.sft_from={second}", "algo.steps=1",
                   "algo.groups_per_step=2")
    assert steps[0]["learner/samples"] == sum(r["status"] == "passed" for r in store)


def test_rounds_alternate_sft_and_rl_in_one_history(tmp_path):
    """rounds.count=2 of 1 SFT step and 1 RL step: 4 steps in one W&B history, each saying
    its round and phase, the learner's loss switching with it (nll in SFT steps, the clip
    fraction in RL ones), round 1's checkpoint and evaluation kept, and the problems drawn
    by pass rate (the failure curriculum's bands logged)."""
    out = rlce(["train", *SMALL, "rounds.count=2", "rounds.sft_steps=1", "rounds.rl_steps=1",
                "eval.before=false", f"logging.dir={tmp_path}"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path)
    steps = [r for r in history(next((run_dir / "wandb").glob("offline-run-*")))
             if "reward/mean" in r]
    assert [(r["step"], r["round/index"], r["round/sft"]) for r in steps] == [
        (1, 1, 1.0), (2, 1, 0.0), (3, 2, 1.0), (4, 2, 0.0)]
    for r in steps:
        assert "data/curriculum_learning" in r
        if r["round/sft"] == 0.0:  # an RL step trains on its groups, all with 2 samples
            assert "learner/clip_frac" in r and "learner/nll" not in r
        elif r["data/samples_kept"]:  # a random model rarely passes: SFT may train nothing
            assert "learner/nll" in r and "learner/clip_frac" not in r
    assert (run_dir / "checkpoint-step2" / "controller.json").exists()
    assert (run_dir / "eval-round1.json").exists() and (run_dir / "eval-after.json").exists()
    assert json.loads((run_dir / "checkpoint" / "controller.json").read_text())["step"] == 4


def start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    with open(log, "w") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=cwd)


def wait_for(proc: subprocess.Popen, ready, what: str, log: Path) -> None:
    """Poll the run folder for an event (a file the run writes at a known point); fail if
    the run ends first. The deadline only keeps a broken run from hanging the suite."""
    deadline = time.monotonic() + 900
    while not ready():
        assert proc.poll() is None, f"the run ended ({proc.returncode}) before {what}: " \
                                    f"{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} in 900 s: {log.read_text()[-3000:]}"
        time.sleep(0.1)


def logged_steps(wandb_run: Path) -> list[int]:
    return [r["_step"] for r in history(wandb_run) if "reward/mean" in r]


def test_a_signal_stops_at_a_checkpoint_and_resume_auto_continues_the_same_run(tmp_path):
    run_dir = tmp_path / "run"
    rates = run_dir / "problem_pass_rates.json"  # rewritten as each step is logged
    first = [RLCE, "train", *SMALL, "algo.steps=4", "logging.table_every=1",
             f"hydra.run.dir={run_dir}", "checkpoint.resume=auto"]

    # SIGTERM once step 1 is logged: a stop checkpoint, exit 0, the command that resumes
    log1 = tmp_path / "run1.log"
    proc = start(first, tmp_path, log1)
    wait_for(proc, rates.exists, "step 1", log1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=900) == 0, log1.read_text()[-3000:]
    out = log1.read_text()
    m = re.search(r"stopped by SIGTERM after step (\d) of 4; checkpoint: (\S+)", out)
    assert m, out[-3000:]
    stopped, ckpt = int(m.group(1)), Path(m.group(2))
    assert 1 <= stopped < 4 and ckpt == run_dir / f"checkpoint-step{stopped}"
    state = json.loads((ckpt / "controller.json").read_text())
    assert (state["step"], state["kind"]) == (stopped, "stop")
    assert (ckpt / "model.safetensors").is_file()
    resume = re.search(r"resume with: (.+)", out).group(1)
    assert resume.endswith(f"hydra.run.dir={run_dir} checkpoint.resume=auto")
    resume = [RLCE, *shlex.split(resume)[1:]]
    assert resume[1:] == first[1:-2] + first[-2:]  # the same options, the same folder
    before = (run_dir / "eval-before.json").read_text()

    # resumed, then two SIGINTs once a step is logged: exit at once, nothing half-written
    log2 = tmp_path / "run2.log"
    mtime = rates.stat().st_mtime_ns
    proc = start(resume, tmp_path, log2)
    wait_for(proc, lambda: rates.stat().st_mtime_ns != mtime, f"step {stopped + 1}", log2)
    proc.send_signal(signal.SIGINT)  # signals of one kind do not queue: the second goes
    wait_for(proc, lambda: "SIGINT: stopping" in log2.read_text(), "the first SIGINT", log2)
    proc.send_signal(signal.SIGINT)  # once the first was seen
    assert proc.wait(timeout=900) == 128 + signal.SIGINT, log2.read_text()[-3000:]
    assert f"continuing from {ckpt}" in log2.read_text()

    # resumed again: it finishes the run in the same folder and the same W&B run
    log3 = tmp_path / "run3.log"
    proc = start(resume, tmp_path, log3)
    assert proc.wait(timeout=900) == 0, log3.read_text()[-3000:]
    out = log3.read_text()
    resumed_from = Path(re.search(r"continuing from (\S+)", out).group(1))
    at = json.loads((resumed_from / "controller.json").read_text())["step"]
    assert stopped <= at < 4 and "paired by problem:" in out
    assert (run_dir / "eval-before.json").read_text() == before  # the baseline is kept
    final = json.loads((run_dir / "checkpoint" / "controller.json").read_text())
    assert (final["step"], final["kind"]) == (4, "final")
    assert not list(run_dir.glob(".incomplete-*"))
    for folder in run_dir.glob("checkpoint-step*"):  # every checkpoint left is whole
        assert (folder / "controller.json").is_file() and (folder / "model.safetensors").is_file()
    runs = sorted((run_dir / "wandb").glob("offline-run-*"), key=lambda p: p.name)
    assert len(runs) == 3 and len({p.name.rsplit("-", 1)[1] for p in runs}) == 1  # one id
    assert logged_steps(runs[0]) == list(range(1, stopped + 1))
    # each step once, in order: a step run 3 did again (run 2 logged it before its exit)
    # is not logged twice
    assert [s for r in runs for s in logged_steps(r)] == [1, 2, 3, 4]
    # every step's training samples are in the store once: what run 2 recorded after the
    # checkpoint run 3 started from was dropped and done again
    shards: dict[int, list[str]] = {}
    for f in sorted((run_dir / "trajectories").glob("part-*.parquet")):
        rows = datasets.load_dataset("parquet", split="train", data_files=str(f))
        for step in {r["step"] for r in rows if r["source"] == "train"}:
            shards.setdefault(step, []).append(f.name)
    assert sorted(shards) == [1, 2, 3, 4] and all(len(v) == 1 for v in shards.values()), shards


def test_a_lost_learner_with_no_restart_left_fails_with_its_checkpoint_and_resume_command(
        tmp_path):
    run_dir = tmp_path / "run"
    log = tmp_path / "run.log"
    proc = start([RLCE, "train", *SMALL, "rollout=transformers", "algo.steps=1000",
                  # (an engine, a learner actor and an executor actor on 2 CPUs)
                  "learner.actors=1", "learner.num_cpus=0", "learner.max_restarts=0",
                  "checkpoint.every=1",
                  "eval.before=false", "eval.after=false", f"hydra.run.dir={run_dir}"],
                 tmp_path, log)
    try:
        wait_for(proc, (run_dir / "checkpoint-step1").is_dir, "step 1", log)
        (pid,) = actor_pids(proc.pid, "Learner")
        os.kill(pid, signal.SIGKILL)
        assert proc.wait(timeout=900) == 1, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    out = log.read_text()
    assert "rlce train: a learner actor was lost during" in out, out[-3000:]
    assert "learner.max_restarts=0 restarts are used up" in out
    assert re.search(r"resume with: rlce train .*checkpoint.resume=auto", out)
    kept = sorted(run_dir.glob("checkpoint-step*"))
    assert kept and not (run_dir / "checkpoint").exists()  # no final checkpoint
    for folder in kept:  # each whole, nothing half-written left
        assert (folder / "controller.json").is_file() and (folder / "model.safetensors").is_file()
    assert not list(run_dir.glob(".incomplete-*"))


def test_a_changed_or_missing_problem_set_stops_a_continued_run_and_keeps_its_checkpoint(
        tmp_path):
    problems = tmp_path / "problems.jsonl"
    rows = [{"id": f"p{i}", "language": "python", "prompt": f"Print {i}.",
             "tests": {"format": "io", "cases": [{"input": "", "output": str(i)}]}}
            for i in range(4)]
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_dir = tmp_path / "run"
    data = ["data=jsonl", f"data.path={problems}"]
    log = tmp_path / "run.log"
    proc = start([RLCE, "train", *SMALL, "rollout=transformers", *data, "algo.steps=2",
                  "checkpoint.every=1", "eval.before=false", "eval.after=false",
                  f"hydra.run.dir={run_dir}"], tmp_path, log)
    ckpt = run_dir / "checkpoint-step1"
    wait_for(proc, ckpt.is_dir, "step 1", log)
    rows[2]["prompt"] = "Print two."  # edited during the run: the run keeps the set it loaded
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
    whole = sorted((f.name, f.stat().st_size) for f in ckpt.iterdir())

    # continued in its own folder from its step-1 checkpoint
    again = ["train", *SMALL, "rollout=transformers", *data, f"checkpoint.resume={ckpt}",
             f"hydra.run.dir={run_dir}"]
    out = rlce(again, tmp_path, timeout=300)
    assert out.returncode == 2, out.stderr[-3000:]
    assert (f"data.path={problems}: the problem set changed since {ckpt} was written "
            "(4 problems") in out.stderr and "data.on_change=continue" in out.stderr
    problems.unlink()
    out = rlce(again, tmp_path, timeout=300)
    assert out.returncode == 2 and f"data.path={problems}" in out.stderr, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert sorted((f.name, f.stat().st_size) for f in ckpt.iterdir()) == whole


def test_an_unwritable_wandb_folder_is_refused_before_anything_starts(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "wandb").write_text("a file where the W&B folder goes")
    out = rlce(["train", *SMALL, f"hydra.run.dir={run_dir}"], tmp_path, timeout=300)
    assert out.returncode == 2, out.stderr[-3000:]
    assert f"logging.dir: the W&B folder {run_dir / 'wandb'} is not writable" in out.stderr
    assert "Traceback" not in out.stderr and "starting Ray" not in out.stdout


def test_a_changed_problem_set_is_refused_continued_on_request_and_said_for_a_new_run(
        tmp_path, capsys):
    from rlce.cli import load_config
    from rlce.config import ConfigError
    from rlce.train import check_unchanged

    path = tmp_path / "p.jsonl"
    path.write_text("")
    ckpt = tmp_path / "run" / "checkpoint-step1"
    ckpt.mkdir(parents=True)
    (ckpt / "controller.json").write_text("{}")  # what the option checks for
    cfg = load_config(["data=jsonl", f"data.path={path}", f"checkpoint.resume={ckpt}"])
    state = {"problems_sha256": "a" * 64, "problems": 4}
    check_unchanged(cfg, state, "a" * 64, 4, True)  # the same set: nothing to say
    assert capsys.readouterr().out == ""
    with pytest.raises(ConfigError, match=re.escape(
            f"data.path={path}: the problem set changed since {ckpt} was written (4 problems, "
            "sha256 aaaaaaaaaaaa then; 5, bbbbbbbbbbbb now); restore it, or continue over the "
            "new set with data.on_change=continue")):
        check_unchanged(cfg, state, "b" * 64, 5, True)
    check_unchanged(cfg, state, "b" * 64, 5, False)  # a new run from that checkpoint
    assert "a new run from it, on this set" in capsys.readouterr().out
    cfg.data.on_change = "continue"
    check_unchanged(cfg, state, "b" * 64, 5, True)
    assert "data.on_change=continue, drawing on from the new set" in capsys.readouterr().out
