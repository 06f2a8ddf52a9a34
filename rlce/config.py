"""The typed configuration of a run: one dataclass per part. Hydra composes
``conf/config.yaml`` over this schema; any option can be overridden on the command line
(``rlce train algo.steps=50 rollout.engines=2``) and unknown keys fail at once.

An option that a part's own config also has takes its default from there (``LearnerConfig.lr``
and so on), so each default lives in one place; the ones set here are the run's own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from actors.rollout import RolloutConfig
from learner.learner import LearnerConfig
from rlce.controller import LoopConfig
from rlce.core.models import DEFAULT_MODEL


@dataclass
class ModelConfig:
    name: str = DEFAULT_MODEL  # alias, local Hugging Face folder or hub id


@dataclass
class RolloutGroupConfig:
    engines: int = 1
    backend: str = RolloutConfig.backend
    max_model_len: int = RolloutConfig.max_model_len
    kv_cache_gb: float = RolloutConfig.kv_cache_gb
    cpu_threads: int = RolloutConfig.cpu_threads
    inflight_update: str = RolloutConfig.inflight_update
    tensor_parallel_size: int = RolloutConfig.tensor_parallel_size
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    resource: Optional[str] = None  # a custom Ray resource each engine asks one unit of


@dataclass
class ExecutorGroupConfig:
    min_actors: int = 1
    max_actors: int = 1
    workers_per_actor: Optional[int] = None
    resource: Optional[str] = None
    timeout_s: float = 5.0


@dataclass
class LearnerGroupConfig:
    lr: float = LearnerConfig.lr
    warmup_steps: int = LearnerConfig.warmup_steps
    schedule: str = LearnerConfig.schedule
    max_grad_norm: float = LearnerConfig.max_grad_norm
    micro_batch_tokens: int = LearnerConfig.micro_batch_tokens
    gradient_checkpointing: bool = LearnerConfig.gradient_checkpointing
    actors: int = 0  # 0: the learner runs in the driver; N: N LearnerActors (FSDP2 if N > 1)
    num_cpus: float = 1.0  # per learner actor
    num_gpus: float = 0.0
    resource: Optional[str] = None  # a custom Ray resource each learner actor asks one unit of


@dataclass
class AlgoConfig:
    steps: int = LoopConfig.steps
    groups_per_step: int = LoopConfig.groups_per_step
    n: int = 4
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    # strings that end a completion, in training and evaluation alike. The default stops once
    # the first fenced code block is closed (the prompt asks for one), so neither the engine
    # nor the learner pays for the prose after it; [] turns it off
    stop: list[str] = field(default_factory=lambda: ["\n```\n"])
    estimator: str = LearnerConfig.estimator
    clip_low: float = LearnerConfig.clip_low
    clip_high: float = LearnerConfig.clip_high
    aggregation: str = LearnerConfig.aggregation
    kl_coef: float = LearnerConfig.kl_coef
    kl_kind: str = LearnerConfig.kl_kind
    tis_cap: Optional[float] = LearnerConfig.tis_cap
    drop_uniform_groups: bool = LoopConfig.drop_uniform_groups
    max_draws_per_step: int = LoopConfig.max_draws_per_step
    # problems per generation round (0: as many as the groups still lacking). 32 for 8
    # groups: with the binary reward about a quarter of the default's groups carry a signal,
    # and on CPU a round of 128 samples took 18-23 s against about 35 s before for 32 (its
    # time is set by the longest completion, not by the batch)
    problems_per_draw: int = 32
    staleness: int = LoopConfig.staleness  # 0 synchronous; k > 0 asynchronous, k versions
    overlong: str = LoopConfig.overlong  # completions cut at max_tokens: keep/filter/penalty
    overlong_penalty: float = LoopConfig.overlong_penalty


@dataclass
class DataConfig:
    source: str = "shipped"  # shipped, generator, jsonl or hf (datasets.save_to_disk folder)
    path: Optional[str] = None  # jsonl file or dataset folder
    split: Optional[str] = None  # hf: the split of a DatasetDict (default: train)
    on_error: str = "skip"  # malformed rows: skip (reported with file and line) or raise
    languages: Optional[list[str]] = None  # shipped: only these languages
    difficulties: Optional[list[str]] = None  # shipped: only these levels (easy, medium)
    seed: int = 0  # order of the problems (shuffled per epoch) and the generator's draws


@dataclass
class EvalConfig:
    set: str = "shipped"  # shipped (train-set pass rate), humaneval, or jsonl (eval.path)
    path: Optional[str] = None
    limit: Optional[int] = 32  # problems, drawn with a fixed seed; None: the whole set
    n: int = 4
    k: list[int] = field(default_factory=lambda: [1])
    temperature: float = 0.7
    max_tokens: Optional[int] = None  # None: algo.max_tokens
    every: int = 0  # also every N training steps (0: only before and after training)
    before: bool = True
    after: bool = True


@dataclass
class CheckpointConfig:
    every: int = 0  # also every N steps (0: only at the end)
    resume: Optional[str] = None  # a checkpoint folder of an earlier run: continue from it


@dataclass
class RewardConfig:
    name: str = "binary"


@dataclass
class LoggingConfig:
    project: str = "rlce"
    mode: str = "auto"  # auto: online with WANDB_API_KEY, else offline; or online/offline/disabled
    dir: str = "runs"
    table_every: int = 5  # a W&B table of sample programs and verdicts every N steps
    progress: bool = True


@dataclass
class ClusterConfig:
    address: Optional[str] = None  # None: RAY_ADDRESS if set (Ray jobs), else a local Ray
    name: str = "laptop"  # the preset's name, recorded with the run


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutGroupConfig = field(default_factory=RolloutGroupConfig)
    executor: ExecutorGroupConfig = field(default_factory=ExecutorGroupConfig)
    learner: LearnerGroupConfig = field(default_factory=LearnerGroupConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    data: DataConfig = field(default_factory=DataConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    seed: int = 0


def to_dict(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg))


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
