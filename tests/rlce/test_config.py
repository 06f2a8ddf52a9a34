"""The run's config schema: every option can be set from the command line and arrives in the
typed object the parts receive; presets only override; bad values name their option."""

from __future__ import annotations

import dataclasses
import types
import typing

import pytest

from executors.config import FleetConfig
from rlce.cli import load_config
from rlce.config import TrainConfig
from rlce.core.config import AlgoConfig, LearnerConfig, RolloutConfig


def leaves(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field, type]]:
    """``(path, field, type)`` of every option of a config dataclass, nested ones included."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out += leaves(t, f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", f, t))
    return out


# options whose generic test value (default + 2, "custom", ...) would not pass their check;
# None: a path that must name a real file or folder (those checks are tested below)
SPECIAL = {"rollout.backend": "transformers", "rollout.inflight_update": "wait",
           "rollout.dtype": "bfloat16", "learner.schedule": "cosine",
           "learner.dtype": "bfloat16", "learner.device": "cpu", "algo.estimator": "rloo",
           "algo.aggregation": "seq_mean", "algo.kl_kind": "k1", "algo.overlong": "filter",
           "algo.top_p": None, "data.source": "generator", "data.on_error": "raise", "data.on_change": "continue",
           "eval.set": "humaneval", "reward.name": "fraction",
           "reward.heldout": "penalize", "reward.hardcode": "penalize", "reward.on_alert": "stop",
           "critic.head": "mlp", "critic.path": None, "critic.prescreen": None,
           "critic.baseline": None, "critic.prescreen_audit": None, "eval.rerank": None,
           "synth.augment_into": "heldout", "logging.mode": "offline",
           "checkpoint.resume": None, "data.path": None, "eval.path": None,
           "algo.stop": ["END"], "eval.k": [1, 2], "model.name": "tiny-llama-test",
           "executor.sandbox": None, "algo.clip_low": 0.1, "learner.min_lr_ratio": 0.5,
           "executor.timeout_s": 3.0, "algo.temperature": 0.9, "executor.min_actors": 0,
           "synth.mode": "augment", "synth.seeds": "data", "synth.kind": "io", "synth.shots": 0,
           "synth.topics": ["sums", "strings"], "synth.from_run": None,
           "synth.recheck": None, "synth.band_high": 0.9, "synth.min_mutation_score": 0.9,
           "logging.trajectories": "passed", "data.curriculum": "failures",
           "data.mastered_rate": 0.8, "algo.loss": "sft", "algo.sft_from": None,
           "checkpoint.on_stop": "finish", "eval.against": None}


def other_value(path: str, t: type, default) -> tuple[str, object]:
    """An override for ``path`` that differs from its default and passes its check."""
    if path in SPECIAL:
        v = SPECIAL[path]
        return (None, None) if v is None else (f"{path}={_yaml(v)}", v)
    optional = typing.get_origin(t) in (typing.Union, types.UnionType)
    base = typing.get_args(t)[0] if optional else t
    if base is bool:
        return f"{path}={str(not default).lower()}", (not default)
    if base is int:
        v = (default or 0) + 2
        return f"{path}={v}", v
    if base is float:
        v = (default or 0.0) + 0.5
        return f"{path}={v}", v
    if base is str:
        return f"{path}=custom", "custom"
    if typing.get_origin(base) is list:
        return f"{path}=[python,go]", ["python", "go"]
    raise AssertionError(f"no test value for {path} ({t})")


def _yaml(v) -> str:
    return "[" + ",".join(map(str, v)) + "]" if isinstance(v, list) else str(v)


ALL = leaves(TrainConfig)


def test_every_option_is_settable_from_the_command_line():
    checked = 0
    for path, f, t in ALL:
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        override, want = other_value(path, t, default)
        if override is None:
            continue  # paths and resumes must name real files; their checks are tested below
        overrides = [override, "eval.n=4"] if path == "eval.k" else [override]
        if path == "eval.set":
            overrides.append("eval.limit=null")
        cfg = load_config(overrides)
        got = cfg
        for part in path.split("."):
            got = getattr(got, part)
        assert got == want != default, (path, got, want, default)
        checked += 1
    assert checked == len(ALL) - sum(v is None for v in SPECIAL.values())


def test_the_parts_receive_the_schema_objects_themselves():
    cfg = load_config(["algo=rloo", "learner.mini_batches=2"])
    assert type(cfg) is TrainConfig
    assert type(cfg.algo) is AlgoConfig and cfg.algo.estimator == "rloo"
    assert type(cfg.learner) is LearnerConfig and cfg.learner.mini_batches == 2
    assert type(cfg.rollout) is RolloutConfig and type(cfg.executor) is FleetConfig


def test_defaults_are_the_embedded_default_and_presets_only_override():
    cfg = load_config([])
    assert cfg.learner.lr == LearnerConfig.lr == 5e-5
    assert (cfg.data.languages, cfg.data.difficulties) == (["python"], ["easy"])
    assert cfg.eval.limit == 128 and cfg.algo.problems_per_draw == 32
    assert (cfg.executor.min_actors, cfg.executor.max_actors) == (1, 1)  # executor=local
    multi = load_config(["cluster=multi_node"])
    assert multi.rollout.engines == 8 and multi.learner.actors == 8
    assert multi.algo == cfg.algo  # a cluster preset leaves the method alone


@pytest.mark.parametrize("override,message", [
    ("algo.top_p=0.9", "algo.top_p must be 1.0"),
    ("algo.estimator=ppo", "algo.estimator must be one of grpo, drgrpo, rloo, reinforce_pp"),
    ("rollout.engines=0", "rollout.engines must be >= 1, got 0"),
    ("learner.mini_batches=0", "learner.mini_batches must be >= 1, got 0"),
    ("executor.timeout_s=0", "executor.timeout_s must lie in (0, 120.0]"),
    ("eval.set=jsonl", "eval.set=jsonl needs eval.path to be a file"),
    ("data.source=hf", "data.source=hf needs data.path"),
    ("+learner.foo=1", "unknown config option(s) ['learner.foo']"),
    ("checkpoint.keep=-1", "checkpoint.keep must be >= 0, got -1"),
    ("checkpoint.on_stop=wait", "checkpoint.on_stop must be one of abandon, finish"),
    ("checkpoint.grace_s=0", "checkpoint.grace_s must be > 0, got 0.0"),
    ("checkpoint.resume=/nonexistent", "is not a checkpoint of rlce train (or give auto)"),
    ("eval.against=/nonexistent.json", "eval.against=/nonexistent.json is not a file"),
])
def test_bad_values_name_their_option(override, message):
    with pytest.raises(ValueError) as e:
        load_config([override])
    assert message in str(e.value)


def test_rounds_phases_and_their_checks():
    from rlce.config import RoundsConfig

    assert RoundsConfig(count=2, sft_steps=1, rl_steps=2).phases() == [
        (1, "sft", 0, 1), (1, "pg", 1, 3), (2, "sft", 3, 4), (2, "pg", 4, 6)]
    assert RoundsConfig(count=1, sft_steps=0, rl_steps=2).phases() == [(1, "pg", 0, 2)]
    assert RoundsConfig().phases() == []
    for overrides, message in [
            (["rounds.count=1", "rounds.sft_steps=0", "rounds.rl_steps=0"],
             "rounds.sft_steps \\+ rounds.rl_steps must be >= 1"),
            (["rounds.count=-1"], "rounds.count must be >= 0"),
            (["rounds.count=2", "algo=sft"], "alternates algo.loss itself"),
            (["rounds.count=2", "data=generator"], "needs a finite problem set")]:
        with pytest.raises(ValueError, match=message):
            load_config(overrides)


def test_resume_auto_is_taken_as_it_is_until_the_run_folder_is_known():
    assert load_config(["checkpoint.resume=auto"]).checkpoint.resume == "auto"


@pytest.mark.parametrize("overrides, message", [
    (["eval.rerank=critic"], "eval.rerank=critic needs critic.path"),
    (["critic.prescreen=true"], "critic.prescreen=true needs critic.path"),
    (["critic.baseline=true"], "critic.baseline=true needs critic.path"),
    (["critic.baseline=true", "critic.path=.", "algo.n=1"], "it needs algo.n >= 2"),
    (["critic.path=/no/such/critic"], "critic.path=/no/such/critic is not a folder"),
    (["reward.heldout_fraction=1.0"], r"reward.heldout_fraction must be in \[0, 1\)"),
    (["critic.prescreen_tau=2"], r"critic.prescreen_tau must be in \[0, 1\]"),
])
def test_the_guard_and_critic_options_are_checked_together(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(overrides)
