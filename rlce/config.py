"""The typed configuration of a run: one dataclass per part. Hydra composes
``conf/config.yaml`` over this schema; any option can be overridden on the command line
(``rlce train algo.steps=50 rollout.engines=2``) and unknown keys fail at once.

An option that a part's own config also has takes its default from there (``LearnerConfig.lr``
and so on), so each default lives in one place; the ones set here are the run's own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from actors.models import DEFAULT_MODEL
from actors.rollout import RolloutConfig
from learner.learner import LearnerConfig
from rlce.controller import LoopConfig


@dataclass
class ModelConfig:
    name: str = DEFAULT_MODEL  # alias, local Hugging Face folder or hub id


@dataclass
class RolloutGroupConfig:
    engines: int = 1
    backend: str = RolloutConfig.backend
    max_model_len: int = RolloutConfig.max_model_len
    kv_cache_gb: float = RolloutConfig.kv_cache_gb
    inflight_update: str = RolloutConfig.inflight_update
    tensor_parallel_size: int = RolloutConfig.tensor_parallel_size
    num_cpus: float = 1.0
    num_gpus: float = 0.0


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


@dataclass
class AlgoConfig:
    steps: int = LoopConfig.steps
    groups_per_step: int = LoopConfig.groups_per_step
    n: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    estimator: str = LearnerConfig.estimator
    clip_low: float = LearnerConfig.clip_low
    clip_high: float = LearnerConfig.clip_high
    aggregation: str = LearnerConfig.aggregation
    kl_coef: float = LearnerConfig.kl_coef
    kl_kind: str = LearnerConfig.kl_kind
    tis_cap: Optional[float] = LearnerConfig.tis_cap
    drop_uniform_groups: bool = LoopConfig.drop_uniform_groups


@dataclass
class DataConfig:
    source: str = "generator"  # or "jsonl"
    path: Optional[str] = None
    seed: int = 0


@dataclass
class RewardConfig:
    name: str = "binary"


@dataclass
class LoggingConfig:
    project: str = "rlce"
    mode: str = "auto"  # auto: online with WANDB_API_KEY, else offline
    dir: str = "runs"


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutGroupConfig = field(default_factory=RolloutGroupConfig)
    executor: ExecutorGroupConfig = field(default_factory=ExecutorGroupConfig)
    learner: LearnerGroupConfig = field(default_factory=LearnerGroupConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    data: DataConfig = field(default_factory=DataConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    seed: int = 0


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
