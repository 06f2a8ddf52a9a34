"""RolloutActor: a Ray actor that owns one generation engine, streams finished samples and
takes new weights without a restart.

In-flight requests during ``update_weights`` (``RolloutConfig.inflight_update``):
  keep  (default) generation pauses, weights are swapped, running requests are preempted and
        their KV recomputed with the new weights, then they continue. A sample that spanned
        the swap reports ``policy_version`` (the oldest version that may have produced one of
        its tokens) < ``policy_version_last``; its per-token logprobs are still the exact
        sampling probabilities, so the learner's importance weights correct for the mix.
  wait  the update waits until running requests finish on the old weights.
  abort running requests are dropped (their samples never arrive) and the update is at once.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import ray

from rlce.core.config import RolloutConfig
from rlce.core.models import resolve_model
from rlce.core.types import Prompt, Sample, SamplingSettings, prompt_token_ids
from rlce.core.weights import WeightSpec

from .backends import Backend, TransformersBackend, VLLMBackend


class PromptError(ValueError):
    """A prompt cannot be generated from (empty, or too long for the model's context)."""


class Rollout:
    """The actor's body, also usable in-process (``asyncio``) without Ray."""

    def __init__(self, cfg: RolloutConfig, model: str, seed: int, name: str) -> None:
        self.cfg = cfg
        self.name = name
        self.seed = seed
        self.version = 0
        self.model_path = resolve_model(model)
        self.spec = WeightSpec.from_folder(self.model_path)
        self.tokenizer = None
        self.backend: Backend = self._make_backend()
        self.batches: dict[str, set[asyncio.Task]] = {}
        self.counter = itertools.count()
        self.started = False
        self.stats = {"samples": 0, "completion_tokens": 0, "aborted": 0, "updates": 0}

    def _make_backend(self) -> Backend:
        c = self.cfg
        if c.backend == "transformers":
            return TransformersBackend(self.model_path, c, self.seed)
        return VLLMBackend(self.model_path, c, self.seed)

    async def start(self) -> dict[str, Any]:
        """Load the tokenizer and start the engine (about half a minute for vLLM on CPU)."""
        if not self.started:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            await self.backend.start()
            self.started = True
        return self.info()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend.name, "model": self.model_path,
                "max_model_len": self.backend.max_model_len, "version": self.version,
                "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized()
                else None, **self.backend.details}

    def get_version(self) -> int:
        return self.version

    def get_stats(self) -> dict[str, int]:
        return dict(self.stats, version=self.version,
                    in_flight=sum(len(t) for t in self.batches.values()))

    # prompts

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        return prompt_token_ids(self.tokenizer, prompt)

    def _prepare(self, prompts: list[Prompt]) -> tuple[list[list[int]], list[tuple[str, str]]]:
        """Each prompt's token ids (empty for a bad one) and ``(problem_id, reason)`` for
        every prompt that cannot be generated from."""
        all_ids, bad = [], []
        for p in prompts:
            try:
                ids = self.prompt_ids(p)
            except Exception as e:  # a malformed chat turn: reported, not raised
                bad.append((p.problem_id, f"chat template failed: {e}"))
                all_ids.append([])
                continue
            all_ids.append(ids)
            if not ids:
                bad.append((p.problem_id, "empty prompt"))
            elif len(ids) >= self.backend.max_model_len:
                bad.append((p.problem_id, f"prompt has {len(ids)} tokens, the context is "
                                          f"{self.backend.max_model_len}"))
        return all_ids, bad

    def check_prompts(self, prompts: list[Prompt]) -> list[tuple[str, str]]:
        """``(problem_id, reason)`` for every prompt that cannot be generated from."""
        return self._prepare(prompts)[1]

    # generation

    async def generate(self, prompts: list[Prompt], settings: SamplingSettings,
                       batch_id: str | None = None) -> AsyncIterator[Sample]:
        """Yield each of the ``n * len(prompts)`` samples as soon as it is finished.
        Raises PromptError, before generating anything, if any prompt is unusable."""
        all_ids, bad = self._prepare(prompts)
        if bad:
            raise PromptError(f"{len(bad)} of {len(prompts)} prompts rejected: "
                              + "; ".join(f"{pid}: {why}" for pid, why in bad[:5]))
        batch_id = batch_id or uuid.uuid4().hex[:12]
        queue: asyncio.Queue = asyncio.Queue()
        tasks: set[asyncio.Task] = set()
        self.batches.setdefault(batch_id, set())
        for p, ids in zip(prompts, all_ids):
            for i in range(settings.n):
                rid = f"{self.name}/{batch_id}/{next(self.counter)}"
                t = asyncio.create_task(self._one(p.problem_id, ids, settings, i, rid))
                t.add_done_callback(queue.put_nowait)
                tasks.add(t)
        self.batches[batch_id] |= tasks
        try:
            for _ in range(len(tasks)):
                done: asyncio.Task = await queue.get()
                if done.cancelled():
                    self.stats["aborted"] += 1
                    continue
                sample = done.result()  # an engine failure propagates to the caller
                if sample is None:
                    self.stats["aborted"] += 1
                    continue
                yield sample
        finally:
            for t in tasks:
                t.cancel()
            self.batches.get(batch_id, set()).difference_update(tasks)
            if not self.batches.get(batch_id):
                self.batches.pop(batch_id, None)

    async def _one(self, problem_id: str, prompt_ids: list[int], settings: SamplingSettings,
                   index: int, request_id: str) -> Sample | None:
        v0, t0 = self.version, time.perf_counter()
        c = await self.backend.complete(prompt_ids, settings, index, request_id)
        if c is None:
            return None
        self.stats["samples"] += 1
        self.stats["completion_tokens"] += len(c.token_ids)
        return Sample(problem_id=problem_id, index=index, prompt_ids=tuple(prompt_ids),
                      completion_ids=c.token_ids, logprobs=c.logprobs, text=c.text,
                      finish_reason=c.finish_reason, policy_version=v0,
                      policy_version_last=self.version, request_id=request_id,
                      engine=self.name, latency_s=time.perf_counter() - t0)

    async def abort(self, batch_id: str) -> int:
        """Abort every unfinished request of a batch; returns how many were cancelled. Their
        samples never arrive; the stream of that batch ends when the rest are done."""
        tasks = [t for t in self.batches.get(batch_id, ()) if not t.done()]
        for t in tasks:
            t.cancel()
        return len(tasks)

    async def abort_all(self) -> int:
        return sum([await self.abort(b) for b in list(self.batches)])

    # weights

    def _next_version(self, version: int | None) -> int:
        new_version = self.version + 1 if version is None else int(version)
        if new_version <= self.version:
            raise ValueError(f"policy version must increase: at {self.version}, "
                             f"got {new_version}")
        return new_version

    async def update_weights(self, named: dict, version: int | None = None) -> dict[str, Any]:
        """Load a full set of Hugging Face-named tensors (torch or numpy) into the running
        engine and bump the policy version (to ``version`` when given, else by one). A set
        with a wrong name, shape or dtype, or a NaN, is rejected whole (WeightUpdateError)
        and the engine is unchanged."""
        return await self._update(self.spec.check(named), version, lambda: self.backend
                                  .load_weights(named, self.cfg.inflight_update))

    async def update_weights_from_file(self, path: str, version: int | None = None
                                       ) -> dict[str, Any]:
        """The same from a safetensors file on this node (a publisher's shared-memory file)."""
        return await self._update(self.spec.check_file(path), version, lambda: self.backend
                                  .load_weights_file(path, self.cfg.inflight_update))

    def check_weight_meta(self, meta: dict[str, tuple[tuple[int, ...], bool]],
                          version: int) -> None:
        """Phase one of a publish: would this update (names, shapes, version) be taken?"""
        self.spec.check_meta(meta)
        self._next_version(version)

    async def _update(self, nbytes: int, version: int | None,
                      load: Callable[[], Awaitable[None]]) -> dict[str, Any]:
        """Load an update whose payload passed its check, and move to the new version."""
        new_version = self._next_version(version)
        t0 = time.perf_counter()
        await load()
        self.version = new_version
        self.stats["updates"] += 1
        return {"version": self.version, "seconds": time.perf_counter() - t0, "bytes": nbytes,
                "engine": self.name}

    async def weight_digest(self) -> float:
        return await self.backend.weight_digest()

    async def shutdown(self) -> None:
        await self.abort_all()
        await self.backend.shutdown()


RolloutActor = ray.remote(Rollout)


def launch_rollout_actors(cfg: RolloutConfig, model: str, seed: int, count: int
                          ) -> tuple[list[Any], list[Any]]:
    """Start ``count`` RolloutActors of ``model`` placed by ``cfg``'s Ray resources, side by
    side, without waiting: the actors and the refs that resolve once each engine is up (or
    raise its start-up error), so a caller can do other work while engines load."""
    opts = cfg.actor_options()
    if cfg.backend == "vllm":
        # vLLM starts its engine core with multiprocessing; spawn is safe inside Ray workers
        opts["runtime_env"] = {"env_vars": {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}}
    tag = uuid.uuid4().hex[:4]
    actors = [RolloutActor.options(**opts).remote(cfg, model, seed, f"{cfg.backend}-{tag}-{i}")
              for i in range(count)]
    return actors, [a.start.remote() for a in actors]


def spawn_rollout_actors(cfg: RolloutConfig, model: str, seed: int, count: int) -> list[Any]:
    """``launch_rollout_actors``, waiting until the engines are up."""
    actors, starting = launch_rollout_actors(cfg, model, seed, count)
    ray.get(starting)
    return actors


class RolloutPool:
    """Several RolloutActors used as one: prompts are spread over them and their sample
    streams merged in the order samples finish, so no caller waits on the slowest engine."""

    def __init__(self, actors: list[Any]) -> None:
        if not actors:
            raise ValueError("a RolloutPool needs at least one actor")
        self.actors = actors

    def generate(self, prompts: list[Prompt], settings: SamplingSettings) -> Iterator[Sample]:
        parts = [prompts[i::len(self.actors)] for i in range(len(self.actors))]
        streams = [a.generate.options(num_returns="streaming").remote(part, settings)
                   for a, part in zip(self.actors, parts) if part]
        while streams:
            ready, _ = ray.wait(streams, num_returns=1)
            gen = ready[0]
            try:
                ref = next(gen)
            except StopIteration:
                streams.remove(gen)
                continue
            yield ray.get(ref)

    def update_weights(self, named: dict, version: int) -> list[dict[str, Any]]:
        """Put the tensors in the object store once; every engine reads them from there.
        (``learner.publish`` is the learner's faster, two-phase path.)"""
        ref = ray.put(named)
        return ray.get([a.update_weights.remote(ref, version) for a in self.actors])
