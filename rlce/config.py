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
from rlce.core.config import AlgoConfig, LearnerConfig, ModelConfig, RolloutConfig, one_of
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

    def __post_init__(self) -> None:
        one_of("data.source", self.source, SOURCES)
        one_of("data.on_error", self.on_error, ("skip", "raise"))
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

    def __post_init__(self) -> None:
        one_of("eval.set", self.set, EVAL_SETS)
        if self.set == "jsonl" and not (self.path and Path(self.path).expanduser().is_file()):
            raise ValueError(f"eval.set=jsonl needs eval.path to be a file, got {self.path!r}")
        if self.n < 1 or not self.k or any(k < 1 or k > self.n for k in self.k):
            raise ValueError(f"eval.k={list(self.k)} must lie between 1 and eval.n={self.n}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"eval.limit must be >= 1 or null, got {self.limit}")


@dataclass
class CheckpointConfig:
    every: int = 0  # also every N steps (0: only at the end)
    resume: Optional[str] = None  # a checkpoint folder of an earlier run: continue from it

    def __post_init__(self) -> None:
        if self.resume and not (Path(self.resume).expanduser() / CONTROLLER_STATE).is_file():
            raise ValueError(f"checkpoint.resume={self.resume}: {CONTROLLER_STATE} is missing, "
                             "so it is not a checkpoint of rlce train")


CONTROLLER_STATE = "controller.json"


@dataclass
class RewardConfig:
    name: str = "binary"  # a reward registered in rlce.rewards

    def __post_init__(self) -> None:
        one_of("reward.name", self.name, tuple(sorted(REWARDS)))


@dataclass
class LoggingConfig:
    project: str = "rlce"
    # auto: online with WANDB_API_KEY, else offline; or online, offline, disabled
    mode: str = "auto"
    dir: str = "runs"  # run folders go here (hydra.run.dir is ${logging.dir}/<time>)
    table_every: int = 5  # a W&B table of sample programs and verdicts every N steps
    samples_per_step: int = 16  # sample records per step kept for that table
    progress: bool = True

    def __post_init__(self) -> None:
        one_of("logging.mode", self.mode, ("auto", "online", "offline", "disabled"))

    def wandb_mode(self) -> str:
        if self.mode == "auto":
            return "online" if os.environ.get("WANDB_API_KEY") else "offline"
        return self.mode


@dataclass
class ClusterConfig:
    address: Optional[str] = None  # null: RAY_ADDRESS if set (Ray jobs), else a local Ray
    name: str = "laptop"  # the preset's name, recorded with the run


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
    seed: int = 0  # sampling, the learner's initialisation of its RNGs, evaluation draws

    @property
    def start_model(self) -> str:
        """What the engines and the learner load: the checkpoint a run resumes from, else
        ``model.name`` (which the KL reference always is)."""
        return self.checkpoint.resume or self.model.name


def to_dict(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg))


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
