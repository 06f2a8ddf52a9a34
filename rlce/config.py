"""The schema of a run, which Hydra composes ``conf/config.yaml`` over: the parts' own configs
(``rlce.core.config`` for the method, the engines and the learner; the executor fleet's
``FleetConfig``) and the driver's options below. Each option is declared once, with its one
default and its check; the parts receive these objects as they are. Override anything on the
command line (``rlce train algo.steps=50 rollout.engines=2``); unknown keys fail at once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from executors.config import FleetConfig
from rlce.core.config import AlgoConfig, LearnerConfig, ModelConfig, RolloutConfig, at_least, one_of
from rlce.rewards import REWARDS

SOURCES = ("shipped", "generator", "jsonl", "hf")
EVAL_SETS = ("shipped", "humaneval", "jsonl")


class ConfigError(ValueError):
    """A user's mistake in the config (a bad value, a missing file): reported in one line
    naming the option, exit code 2."""


@dataclass
class DataConfig:
    source: str = "shipped"  # shipped, generator, jsonl or hf (a datasets.save_to_disk folder)
    path: Optional[str] = None  # jsonl: the file; hf: the dataset folder
    split: Optional[str] = None  # hf: the split of a DatasetDict (default: train)
    on_error: str = "skip"  # malformed rows: skip (reported with file and line) or raise
    # shipped: only these languages and levels. The embedded default trains on the easy
    # Python problems, the ones a 135M model solves sometimes (so its groups carry a signal)
    languages: Optional[list[str]] = field(default_factory=lambda: ["python"])
    difficulties: Optional[list[str]] = field(default_factory=lambda: ["easy"])
    seed: int = 0  # order of the problems (shuffled per epoch) and the generator's draws
    # uniform: every problem once per epoch, shuffled; failures: drawn by training pass rate
    # (rlce.data.CurriculumStream): mastered ones rarely, never-solved ones retired and
    # revisited, the rest most
    curriculum: str = "uniform"
    mastered_rate: float = 0.9  # failures: a pass rate this high over min_tries is mastered
    min_tries: int = 8  # failures: samples judged before a problem's rate counts
    retire_after: int = 16  # failures: samples judged, none passed, before it is retired
    revisit_every: int = 64  # failures: every N draws one retired problem comes back
    # a run continued from a checkpoint (resume, or a restart after a lost learner) whose
    # problem set has changed since: fail (naming the file) or continue over the new set
    on_change: str = "fail"

    def __post_init__(self) -> None:
        one_of("data.source", self.source, SOURCES)
        one_of("data.on_error", self.on_error, ("skip", "raise"))
        one_of("data.curriculum", self.curriculum, ("uniform", "failures"))
        one_of("data.on_change", self.on_change, ("fail", "continue"))
        if self.curriculum == "failures" and self.source == "generator":
            raise ValueError("data.curriculum=failures needs a finite problem set, not "
                             "data.source=generator (whose problems are never drawn twice)")
        if not 0 < self.mastered_rate <= 1:
            raise ValueError(f"data.mastered_rate must lie in (0, 1], got {self.mastered_rate}")
        for name in ("min_tries", "retire_after", "revisit_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.retire_after < self.min_tries:
            raise ValueError(f"data.retire_after={self.retire_after} is below data.min_tries="
                             f"{self.min_tries}: no problem could be retired before its rate "
                             "counts")
        if self.source in ("jsonl", "hf") and not self.path:
            raise ValueError(f"data.source={self.source} needs data.path")
        if self.source == "jsonl" and not Path(self.path).expanduser().is_file():
            raise ValueError(f"data.path={self.path} is not a file")
        if self.source == "hf" and not Path(self.path).expanduser().is_dir():
            raise ValueError(f"data.path={self.path} is not a dataset folder")


@dataclass
class EvalConfig:
    set: str = "shipped"  # shipped (train-set pass rate), humaneval, or jsonl (eval.path)
    path: Optional[str] = None
    limit: Optional[int] = 128  # problems, drawn with a fixed seed; null: the whole set
    n: int = 4  # samples per problem
    k: list[int] = field(default_factory=lambda: [1])
    temperature: float = 0.7
    max_tokens: Optional[int] = None  # null: algo.max_tokens
    every: int = 0  # also every N training steps (0: only before and after training)
    before: bool = True
    after: bool = True
    # rlce eval: an earlier evaluation's JSON (eval.json, eval-before.json, ...) to compare
    # with, problem by problem (the paired difference in pass@1, its z and one-sided p)
    against: Optional[str] = None
    # none, or critic: also pass@1 of the sample the critic (critic.path) rates most likely
    # to pass among each problem's eval.n, against a random one (rlce eval)
    rerank: str = "none"

    def __post_init__(self) -> None:
        one_of("eval.set", self.set, EVAL_SETS)
        one_of("eval.rerank", self.rerank, ("none", "critic"))
        if self.against and not Path(self.against).expanduser().is_file():
            raise ValueError(f"eval.against={self.against} is not a file (give an eval.json "
                             "of rlce eval or an eval-*.json of rlce train)")
        if self.set == "jsonl" and not (self.path and Path(self.path).expanduser().is_file()):
            raise ValueError(f"eval.set=jsonl needs eval.path to be a file, got {self.path!r}")
        if self.n < 1 or not self.k or any(k < 1 or k > self.n for k in self.k):
            raise ValueError(f"eval.k={list(self.k)} must lie between 1 and eval.n={self.n}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"eval.limit must be >= 1 or null, got {self.limit}")


@dataclass
class CheckpointConfig:
    every: int = 0  # also every N steps (0: only at the end)
    # a checkpoint folder of an earlier run: continue from it; auto: from the newest whole
    # checkpoint in this run's folder (hydra.run.dir), or from the start if it has none
    resume: Optional[str] = None
    keep: int = 0  # keep only the newest N periodic and stop checkpoints (0: all)
    # SIGTERM/SIGINT: abandon (drop the step in progress at its next safe point) or finish
    # it; then a checkpoint and exit 0. A second signal, or grace_s more, exits at once.
    on_stop: str = "abandon"
    grace_s: float = 60.0

    def __post_init__(self) -> None:
        if (self.resume and self.resume != "auto"
                and not (Path(self.resume).expanduser() / CONTROLLER_STATE).is_file()):
            raise ValueError(f"checkpoint.resume={self.resume}: {CONTROLLER_STATE} is missing, "
                             "so it is not a checkpoint of rlce train (or give auto)")
        if self.keep < 0:
            raise ValueError(f"checkpoint.keep must be >= 0, got {self.keep}")
        one_of("checkpoint.on_stop", self.on_stop, ("abandon", "finish"))
        if not self.grace_s > 0:
            raise ValueError(f"checkpoint.grace_s must be > 0, got {self.grace_s}")


CONTROLLER_STATE = "controller.json"


@dataclass
class RewardConfig:
    name: str = "binary"  # a reward registered in rlce.rewards
    # the guard (rlce/guard.py). Held-out tests: a problem's tests.heldout, or this fraction
    # of each problem's test items (chosen by a hash of its id); they run in the same job
    heldout_fraction: float = 0.0
    # log: count samples that pass the reward tests and fail held-out ones;
    # penalize: such a sample also gets reward 0
    heldout: str = "log"
    # the static hard-coding check of passing programs: off, log or penalize (reward 0)
    hardcode: str = "log"
    # an alert (W&B and the console) when either rate over the last alert_window steps is
    # above alert_threshold, given at least alert_min_passed passing samples in the window
    alert_threshold: float = 0.2
    alert_window: int = 5
    alert_min_passed: int = 10
    on_alert: str = "warn"  # warn, or stop: a graceful stop with a checkpoint

    def __post_init__(self) -> None:
        one_of("reward.name", self.name, tuple(sorted(REWARDS)))
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError(f"reward.heldout_fraction must be in [0, 1), got "
                             f"{self.heldout_fraction}")
        one_of("reward.heldout", self.heldout, ("log", "penalize"))
        one_of("reward.hardcode", self.hardcode, ("off", "log", "penalize"))
        if not 0 <= self.alert_threshold <= 1:
            raise ValueError(f"reward.alert_threshold must be in [0, 1], got "
                             f"{self.alert_threshold}")
        at_least("reward.alert_window", self.alert_window, 1)
        at_least("reward.alert_min_passed", self.alert_min_passed, 1)
        one_of("reward.on_alert", self.on_alert, ("warn", "stop"))


@dataclass
class LoggingConfig:
    project: str = "rlce"
    # auto: online with WANDB_API_KEY, else offline; or online, offline, disabled
    mode: str = "auto"
    dir: str = "runs"  # run folders go here (hydra.run.dir is ${logging.dir}/<time>)
    table_every: int = 5  # a W&B table of sample programs and verdicts every N steps
    samples_per_step: int = 16  # sample records per step kept for that table
    progress: bool = True
    # every executed sample as Parquet shards in <run>/trajectories (rlce/trajectories.py):
    # all, passed (only programs that passed) or none; at most trajectories_max_mb
    trajectories: str = "all"
    trajectories_max_mb: float = 1024.0

    def __post_init__(self) -> None:
        one_of("logging.mode", self.mode, ("auto", "online", "offline", "disabled"))
        one_of("logging.trajectories", self.trajectories, ("all", "passed", "none"))
        if self.trajectories_max_mb <= 0:
            raise ValueError(f"logging.trajectories_max_mb must be > 0, got "
                             f"{self.trajectories_max_mb}")

    def wandb_mode(self) -> str:
        if self.mode == "auto":
            return "online" if os.environ.get("WANDB_API_KEY") else "offline"
        return self.mode


@dataclass
class ClusterConfig:
    address: Optional[str] = None  # null: RAY_ADDRESS if set (Ray jobs), else a local Ray
    name: str = "laptop"  # the preset's name, recorded with the run


SYNTH_SEEDS = ("shipped", "data", "topics", "failures")


@dataclass
class SynthConfig:
    """``rlce synth``: problems written by a teacher model and kept only where execution
    confirms them (``mode=propose``), or more tests for problems that have a reference
    solution (``mode=augment``). See rlce/synth/pipeline.py for the stages."""

    mode: str = "propose"  # propose (new problems) or augment (more tests for data.*)
    teacher: Optional[str] = None  # any model id or folder; null: model.name
    # what the teacher starts from: shipped (the shipped Python function problems as
    # examples), data (data.* as training reads it), topics (synth.topics), failures (the
    # problems a run of rlce train fails: synth.from_run)
    seeds: str = "shipped"
    topics: Optional[list[str]] = None
    from_run: Optional[str] = None  # failures: the run folder of rlce train
    fail_below: float = 0.0  # failures: problems whose pass rate is at most this
    # function (a Python function with call tests), io (a program over stdin/stdout,
    # whose tests then judge it in every one of synth.languages) or both (alternating)
    kind: str = "function"
    languages: list[str] = field(default_factory=lambda: ["python"])
    # worked answers shown to the teacher before each request (0 or 1): a small teacher copies
    # a shape it has seen; a proposal that copies the example is rejected (copies_example)
    shots: int = 1
    proposals: int = 64  # teacher answers asked for (seeds are cycled)
    per_seed: int = 4  # answers per seed prompt
    temperature: float = 0.8
    max_tokens: int = 768
    min_tests: int = 3  # test inputs that must survive execution
    max_tests: int = 20
    mutants: int = 12  # mutants of the reference each problem's tests must face
    min_mutation_score: float = 0.6
    timeout_s: float = 5.0  # each reference, mutant and trivial run
    extra_inputs: int = 10  # augment: new inputs tried per problem, shaped like its own
    # augment: test calls the teacher is asked to write per problem (its outputs are ignored:
    # the reference's count); 0: only the shaped inputs, and no engine is started
    teacher_inputs: int = 0
    # augment: the new cases join the problem's tests, or become its held-out tests
    # (tests.heldout: judged beside the reward tests, never rewarded; rlce/guard.py)
    augment_into: str = "tests"
    ngram: int = 10  # decontamination: words in a row a statement may not share
    code_ngram: int = 20  # decontamination: tokens in a row a solution may not share
    policy_samples: int = 0  # samples of model.name per kept problem; 0: no difficulty band
    band_low: float = 0.0  # with policy_samples: keep pass rates strictly between these
    band_high: float = 1.0
    recheck: Optional[str] = None  # augment: an eval JSON of rlce train/eval whose passing
    #  programs are judged again on the augmented tests (the original tests' false positives)
    out: Optional[str] = None  # the problem file; null: problems.jsonl in the run folder

    def __post_init__(self) -> None:
        one_of("synth.mode", self.mode, ("propose", "augment"))
        one_of("synth.augment_into", self.augment_into, ("tests", "heldout"))
        one_of("synth.seeds", self.seeds, SYNTH_SEEDS)
        one_of("synth.kind", self.kind, ("function", "io", "both"))
        one_of("synth.shots", self.shots, (0, 1))
        if self.teacher_inputs < 0:
            raise ValueError(f"synth.teacher_inputs must be >= 0, got {self.teacher_inputs}")
        for lang in self.languages:
            one_of("synth.languages", lang, ("python", "javascript", "go", "rust", "cpp"))
        if not self.languages:
            raise ValueError("synth.languages must name at least one language")
        if self.mode == "propose" and self.seeds == "topics" and not self.topics:
            raise ValueError("synth.seeds=topics needs synth.topics, a list of topics")
        if self.mode == "propose" and self.seeds == "failures" and not (
                self.from_run and Path(self.from_run).expanduser().is_dir()):
            raise ValueError(f"synth.seeds=failures needs synth.from_run, the folder of a "
                             f"run of rlce train; got {self.from_run!r}")
        for name in ("proposals", "per_seed", "min_tests", "mutants", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"synth.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_tests < self.min_tests:
            raise ValueError(f"synth.max_tests={self.max_tests} is below synth.min_tests="
                             f"{self.min_tests}")
        if not 0 <= self.min_mutation_score <= 1:
            raise ValueError(f"synth.min_mutation_score must lie in [0, 1], got "
                             f"{self.min_mutation_score}")
        if not 0 <= self.band_low < self.band_high <= 1:
            raise ValueError(f"synth.band_low < synth.band_high in [0, 1] needed, got "
                             f"{self.band_low} and {self.band_high}")
        if self.recheck and not Path(self.recheck).expanduser().is_file():
            raise ValueError(f"synth.recheck={self.recheck} is not a file")


@dataclass
class RoundsConfig:
    """``rounds.count`` > 0 makes the run rounds of rejection-sampling fine-tuning
    (``sft_steps`` steps of ``algo.loss=sft``) then RL (``rl_steps`` of ``algo``), in one
    process and one W&B history; problems are drawn by their pass rates so far (the failure
    curriculum), so each round spends its draws on what the last one failed. ``algo.steps``
    is then ``count`` x (``sft_steps`` + ``rl_steps``)."""

    count: int = 0
    sft_steps: int = 3
    rl_steps: int = 5

    def __post_init__(self) -> None:
        for name in ("count", "sft_steps", "rl_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"rounds.{name} must be >= 0, got {getattr(self, name)}")
        if self.count and not self.sft_steps + self.rl_steps:
            raise ValueError("rounds.sft_steps + rounds.rl_steps must be >= 1")

    def phases(self) -> list[tuple[int, str, int, int]]:
        """(round, loss, first step, end step) of each phase, steps counted from 0."""
        out, step = [], 0
        for r in range(1, self.count + 1):
            for loss, n in (("sft", self.sft_steps), ("pg", self.rl_steps)):
                if n:
                    out.append((r, loss, step, step + n))
                    step += n
        return out


@dataclass
class CriticConfig:
    """``rlce critic train|eval`` (rlce/critic.py)."""
    # trajectory stores to learn from or score on: run folders, trajectories folders or
    # Parquet files
    stores: list[str] = field(default_factory=list)
    # which samples of the stores: prefixes of their source (train; eval takes every
    # evaluation's, which may be of an evaluation set such as HumanEval)
    sources: list[str] = field(default_factory=lambda: ["train"])
    backbone: Optional[str] = None  # null: model.name (the policy's own model)
    path: Optional[str] = None  # a critic folder (rlce critic eval, and the critic's uses)
    heldout_fraction: float = 0.25  # of the problems, held out of training for the figures
    max_examples: int = 2000  # per split, drawn with the seed (the backbone reads each once)
    max_len: int = 384  # tokens per example; the program keeps all but 32 of them
    batch_size: int = 8
    # linear, mlp (one hidden layer of 64), or auto: the one, and the L2 strength, with
    # the lowest log loss on a quarter of the training problems (never the held-out ones)
    head: str = "auto"
    l2: Optional[float] = None  # null: chosen from 1e-3, 1e-2, 0.1, 1, 10
    epochs: int = 300  # full-batch Adam steps of the head
    lr: float = 0.01
    seed: int = 0
    # its uses in rlce train (critic.path): a sample it rates below prescreen_tau is not
    # executed and gets a failing verdict (prescreen_audit: executed anyway, to count the
    # passes that loses, and scored as not executed); baseline: advantages are the reward
    # minus the mean of its ratings of the group's other samples
    prescreen: bool = False
    prescreen_tau: float = 0.05
    prescreen_audit: bool = False
    baseline: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.prescreen_tau <= 1:
            raise ValueError(f"critic.prescreen_tau must be in [0, 1], got "
                             f"{self.prescreen_tau}")
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError(f"critic.heldout_fraction must be in [0, 1), got "
                             f"{self.heldout_fraction}")
        one_of("critic.head", self.head, ("auto", "linear", "mlp"))
        if self.l2 is not None and self.l2 < 0:
            raise ValueError(f"critic.l2 must be >= 0 or null, got {self.l2}")
        for name in ("max_examples", "max_len", "batch_size", "epochs"):
            at_least(f"critic.{name}", getattr(self, name), 1)
        if self.max_len < 64:
            raise ValueError(f"critic.max_len must be >= 64, got {self.max_len}")
        if self.path and not Path(self.path).expanduser().is_dir():
            raise ValueError(f"critic.path={self.path} is not a folder")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    executor: FleetConfig = field(default_factory=FleetConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    data: DataConfig = field(default_factory=DataConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    rounds: RoundsConfig = field(default_factory=RoundsConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    seed: int = 0  # sampling, the learner's initialisation of its RNGs, evaluation draws

    def __post_init__(self) -> None:
        if self.eval.rerank == "critic" and not self.critic.path:
            raise ValueError("eval.rerank=critic needs critic.path=<a critic folder>")
        for use in ("prescreen", "baseline"):
            if getattr(self.critic, use) and not self.critic.path:
                raise ValueError(f"critic.{use}=true needs critic.path=<a critic folder>")
        if self.critic.prescreen_audit and not self.critic.prescreen:
            raise ValueError("critic.prescreen_audit=true audits pre-screening: it needs "
                             "critic.prescreen=true")
        if self.critic.baseline and (self.algo.loss != "pg" or self.algo.sft_from):
            raise ValueError("critic.baseline=true sets policy-gradient advantages: it has "
                             "no use with algo.loss=sft or algo.sft_from")
        if self.eval.rerank == "critic" and self.eval.n < 2:
            raise ValueError("eval.rerank=critic picks one of each problem's samples: it "
                             "needs eval.n >= 2")
        if self.critic.baseline and self.algo.n < 2:
            raise ValueError("critic.baseline=true compares a sample with the rest of its "
                             "group: it needs algo.n >= 2")
        if self.rounds.count:
            if self.algo.loss != "pg" or self.algo.sft_from:
                raise ValueError("rounds.count > 0 alternates algo.loss itself: leave algo "
                                 "at pg, without algo.sft_from")
            if self.data.source == "generator":
                raise ValueError("rounds.count > 0 draws problems by their pass rates: it "
                                 "needs a finite problem set, not data.source=generator")

    @property
    def start_model(self) -> str:
        """What the engines and the learner load: the checkpoint a run resumes from, else
        ``model.name`` (which the KL reference always is)."""
        return self.checkpoint.resume or self.model.name


def to_dict(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg))


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
