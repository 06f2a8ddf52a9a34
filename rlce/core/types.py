"""Messages that cross actor boundaries: small frozen dataclasses, spoken by every actor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class Prompt:
    """One problem's prompt, ready for an engine.

    Give either ``messages`` (chat turns, rendered with the model's chat template) or
    ``token_ids`` (already templated and tokenized). ``problem_id`` travels with every sample.
    """

    problem_id: str
    messages: tuple[dict[str, str], ...] | None = None
    token_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.token_ids is None):
            raise ValueError(f"Prompt {self.problem_id!r}: give exactly one of messages or "
                             "token_ids")


def prompt_token_ids(tokenizer: Any, prompt: Prompt) -> list[int]:
    """A prompt's token ids: given as they are, or its chat turns rendered with the model's
    chat template and a generation prompt."""
    if prompt.token_ids is not None:
        return list(prompt.token_ids)
    return list(tokenizer.apply_chat_template(list(prompt.messages), add_generation_prompt=True,
                                              tokenize=True, return_dict=False))


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample: ``n`` completions per prompt. ``seed`` makes a request reproducible
    (completion ``i`` of a prompt uses ``seed + i``)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"stop strings must be non-empty strings, got {list(self.stop)!r}")


@dataclass(frozen=True)
class Sample:
    """One finished completion with the evidence the learner needs.

    ``logprobs[i]`` is the sampling policy's log-probability of ``completion_ids[i]`` (after
    temperature; with ``top_p < 1`` it is renormalised over the kept tokens).
    ``policy_version`` is the oldest weight version that may have produced a token of this
    sample and ``policy_version_last`` the version that produced its last token; they differ
    only when weights were swapped while the request was in flight.
    """

    problem_id: str
    index: int
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    text: str
    finish_reason: FinishReason
    policy_version: int
    policy_version_last: int
    request_id: str = ""
    engine: str = ""
    latency_s: float = 0.0


@dataclass(frozen=True)
class ScoredSample:
    """A sample with its reward, as the learner takes it."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    behaviour_logprobs: tuple[float, ...]
    reward: float
    policy_version: int = 0


@dataclass(frozen=True)
class TrainGroup:
    """The ``n`` scored samples of one problem. ``advantages``, when given, are used as they
    are; otherwise the learner computes them from the rewards with its estimator."""

    problem_id: str
    samples: tuple[ScoredSample, ...]
    advantages: tuple[float, ...] | None = None


class LearnerLost(RuntimeError):
    """A learner actor died (its process was killed, its node was lost): the model's state in
    the group is gone, and the run can only go on from a checkpoint. (Here, not in
    ``learner.group``, so that the CLI can catch it without importing torch and Ray.)"""
