"""The typed configuration of a run: one dataclass per part, one default per option, here.
Hydra composes ``conf/config.yaml`` over this schema; any option can be overridden on the
command line (``rlce train algo.steps=50 rollout.engines=2``) and unknown keys fail at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class ModelConfig:
    name: str = "smollm2-135m-instruct"  # alias, local Hugging Face folder or hub id


@dataclass
class RolloutGroupConfig:
    engines: int = 1
    backend: str = "vllm"
    max_model_len: int = 2048
    kv_cache_gb: float = 2.0
    inflight_update: str = "keep"
    tensor_parallel_size: int = 1
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
    lr: float = 1e-6
    warmup_steps: int = 0
    schedule: str = "constant"
    max_grad_norm: float = 1.0
    micro_batch_tokens: int = 4096
    gradient_checkpointing: bool = False


@dataclass
class AlgoConfig:
    steps: int = 20
    groups_per_step: int = 8
    n: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    estimator: str = "grpo"
    clip_low: float = 0.2
    clip_high: float = 0.28
    aggregation: str = "token_mean"
    kl_coef: float = 0.0
    kl_kind: str = "k3"
    tis_cap: Optional[float] = 2.0
    drop_uniform_groups: bool = True


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
