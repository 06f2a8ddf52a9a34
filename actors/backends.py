"""Generation backends behind a RolloutActor: vLLM (the default) and transformers (for
debugging, and for machines where vLLM will not run). Both take token ids and return one
finished completion with the sampling policy's per-token logprobs."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

from rlce.core.config import RolloutConfig
from rlce.core.types import SamplingSettings
from rlce.core.weights import write_shm_safetensors

InflightMode = Literal["keep", "wait", "abort"]


@dataclass(frozen=True)
class Completion:
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    text: str
    finish_reason: str


class Backend(Protocol):
    name: str
    max_model_len: int
    details: dict[str, Any]  # how the engine runs (executor, threads), for the actor's info()

    async def start(self) -> None: ...

    async def complete(self, prompt_ids: list[int], settings: SamplingSettings, index: int,
                       request_id: str) -> Completion | None: ...

    async def load_weights(self, named: dict[str, torch.Tensor], inflight: InflightMode
                           ) -> None: ...

    async def load_weights_file(self, path: str, inflight: InflightMode) -> None: ...

    async def weight_digest(self) -> float: ...

    async def shutdown(self) -> None: ...


def completion_seed(settings: SamplingSettings, index: int) -> int | None:
    return None if settings.seed is None else settings.seed + index


def cpu_thread_count(threads: int) -> int:
    """Torch threads for a CPU engine: ``threads`` itself, or every core this process may
    run on for 0 or less."""
    if threads > 0:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class VLLMBackend:
    """One vLLM ``AsyncLLM`` engine (engine core in its own process). Weights are swapped in
    place through the ``actors.worker_ext.WeightLoader`` worker extension.

    Without CUDA and with one tensor-parallel rank, the model runs inside the engine-core
    process (vLLM's ``uni`` executor) on ``cpu_threads`` torch threads. vLLM's CPU default
    runs it in a worker process of its own and keeps a core for the engine core, which
    busy-polls that worker while requests run, so on 2 cores the model would get one thread
    (README: "vLLM on CPU" has the measurements)."""

    name = "vllm"

    def __init__(self, model: str, cfg: RolloutConfig, seed: int) -> None:
        self.model = model
        self.cpu_threads = cfg.cpu_threads
        self.kwargs = dict(model=model, dtype=cfg.dtype, max_model_len=cfg.max_model_len,
                           tensor_parallel_size=cfg.tensor_parallel_size, seed=seed,
                           gpu_memory_utilization=cfg.gpu_memory_utilization,
                           enforce_eager=cfg.enforce_eager, logprobs_mode="processed_logprobs",
                           worker_extension_cls="actors.worker_ext.WeightLoader")
        self.kv_cache_gb = cfg.kv_cache_gb
        self.engine = None
        self.details: dict[str, Any] = {}  # how the engine runs, once started
        self.max_model_len = 0

    async def start(self) -> None:
        # vLLM's CPU build sizes its KV cache from this variable, not from memory utilisation
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(self.kv_cache_gb))))
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        kwargs = {k: v for k, v in self.kwargs.items() if v is not None}
        if not torch.cuda.is_available():
            # vLLM 0.32 on CPU: when a seeded request's prefill is split over steps, the worker
            # rewinds the request's torch.Generator with set_offset, which CPU generators do not
            # support, and the engine dies. Unsplit prefills never rewind.
            kwargs.setdefault("enable_chunked_prefill", False)
            kwargs.setdefault("max_num_batched_tokens", max(self.kwargs["max_model_len"] or 8192,
                                                            4096))
            if kwargs.get("tensor_parallel_size", 1) == 1:
                # vLLM's CPU platform turns "uni" back into "mp" unless V1 multiprocessing is
                # off; AsyncLLM still runs its engine core in a process of its own, which
                # inherits the thread count set here
                os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
                os.environ["OMP_NUM_THREADS"] = str(cpu_thread_count(self.cpu_threads))
                kwargs.setdefault("distributed_executor_backend", "uni")
        args = AsyncEngineArgs(**kwargs)
        self.engine = AsyncLLM.from_engine_args(args)
        self.max_model_len = self.engine.model_config.max_model_len
        executor = self.engine.vllm_config.parallel_config.distributed_executor_backend
        self.details = {"executor": executor if isinstance(executor, str) else str(executor)}
        if not torch.cuda.is_available():
            self.details["cpu_threads"] = int(os.environ.get("OMP_NUM_THREADS", "0"))

    def sampling_params(self, settings: SamplingSettings, index: int):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            n=1, temperature=settings.temperature, top_p=settings.top_p,
            max_tokens=settings.max_tokens, stop=list(settings.stop) or None,
            # the text keeps the stop string, as the token ids do (and as the transformers
            # backend's text does), so that a block ended by "```" still reads as closed
            include_stop_str_in_output=True,
            seed=completion_seed(settings, index), logprobs=0,
            output_kind=RequestOutputKind.FINAL_ONLY)

    async def complete(self, prompt_ids: list[int], settings: SamplingSettings, index: int,
                       request_id: str) -> Completion | None:
        final = None
        # cancelling the task that awaits this aborts the request inside vLLM
        async for out in self.engine.generate({"prompt_token_ids": prompt_ids},
                                              self.sampling_params(settings, index), request_id):
            final = out
        if final is None or not final.finished:
            return None
        o = final.outputs[0]
        if o.finish_reason not in ("stop", "length"):
            return None  # aborted
        logprobs = tuple(float(step[tok].logprob) for tok, step in zip(o.token_ids, o.logprobs))
        return Completion(tuple(o.token_ids), logprobs, o.text, o.finish_reason)

    async def load_weights(self, named: dict[str, torch.Tensor], inflight: InflightMode) -> None:
        # vLLM's RPC encodes a dict of tensors as lists and moves bytes slowly (about 10 s for
        # 540 MB here), so tensors handed in directly go through a shared-memory file as well
        path = write_shm_safetensors(named)
        try:
            await self.load_weights_file(str(path), inflight)
        finally:
            path.unlink(missing_ok=True)

    async def load_weights_file(self, path: str, inflight: InflightMode) -> None:
        await self.engine.pause_generation(mode=inflight, clear_cache=False)
        try:
            await self.engine.collective_rpc("rlce_load_weights_file", args=(path,))
            # cached prefixes hold keys and values of the old weights; running requests are
            # preempted so that their KV is recomputed with the new ones
            await self.engine.reset_prefix_cache(reset_running_requests=True)
        finally:
            await self.engine.resume_generation()

    async def weight_digest(self) -> float:
        return (await self.engine.collective_rpc("rlce_weight_digest"))[0]

    async def shutdown(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None


class TransformersBackend:
    """A transformers model generating one request at a time in a thread. Slow, simple, and
    the reference that vLLM's numbers are checked against. Weight updates wait for the request
    in progress (``inflight`` has no other meaning here)."""

    name = "transformers"

    def __init__(self, model: str, cfg: RolloutConfig, seed: int) -> None:
        self.model_path = model
        self.dtype = getattr(torch, cfg.dtype) if cfg.dtype != "auto" else torch.float32
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.seed = seed
        self.requested_len = cfg.max_model_len
        self.lock = threading.Lock()
        self.cancelled: set[str] = set()
        self.model = None
        self.tokenizer = None
        self.max_model_len = 0
        self.details: dict[str, Any] = {}

    async def start(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)
        self.model.to(self.device).eval()
        limit = self.model.config.max_position_embeddings
        self.max_model_len = min(self.requested_len or limit, limit)

    def _generate(self, prompt_ids: list[int], settings: SamplingSettings, index: int,
                  request_id: str) -> Completion | None:
        from transformers import StoppingCriteria, StoppingCriteriaList

        backend = self

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), request_id in backend.cancelled,
                                  dtype=torch.bool, device=input_ids.device)

        max_new = min(settings.max_tokens, self.max_model_len - len(prompt_ids))
        greedy = settings.temperature == 0
        seed = completion_seed(settings, index)
        with self.lock:
            if request_id in self.cancelled:
                return None
            torch.manual_seed(self.seed if seed is None else seed)
            ids = torch.tensor([prompt_ids], device=self.device)
            kw = {} if greedy else dict(temperature=settings.temperature, top_p=settings.top_p,
                                        top_k=0)
            out = self.model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=not greedy,
                max_new_tokens=max_new, output_scores=True, return_dict_in_generate=True,
                stop_strings=list(settings.stop) or None, tokenizer=self.tokenizer,
                pad_token_id=self.tokenizer.eos_token_id,
                stopping_criteria=StoppingCriteriaList([Cancelled()]), **kw)
        if request_id in self.cancelled:
            return None
        new = out.sequences[0, len(prompt_ids):]
        steps = torch.stack([s[0] for s in out.scores]).float().log_softmax(-1)
        logprobs = steps.gather(1, new[: len(steps)].unsqueeze(1)).squeeze(1)
        token_ids = tuple(int(t) for t in new[: len(steps)])
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True)
        stopped = (token_ids and token_ids[-1] in eos) or len(token_ids) < max_new
        return Completion(token_ids, tuple(float(x) for x in logprobs), text,
                          "stop" if stopped else "length")

    async def complete(self, prompt_ids: list[int], settings: SamplingSettings, index: int,
                       request_id: str) -> Completion | None:
        thread = asyncio.ensure_future(asyncio.to_thread(self._generate, prompt_ids, settings,
                                                         index, request_id))
        try:
            return await asyncio.shield(thread)
        except asyncio.CancelledError:
            self.cancelled.add(request_id)
            # forget the id once the thread has seen it, so the set does not grow for ever
            thread.add_done_callback(lambda _: self.cancelled.discard(request_id))
            raise

    async def load_weights(self, named: dict[str, torch.Tensor], inflight: InflightMode) -> None:
        def load() -> None:
            with self.lock, torch.no_grad():
                params = dict(self.model.named_parameters())
                for name, t in named.items():
                    if name in params:
                        params[name].copy_(torch.as_tensor(t).to(params[name].dtype))

        await asyncio.to_thread(load)

    async def load_weights_file(self, path: str, inflight: InflightMode) -> None:
        from safetensors.torch import load_file

        await self.load_weights(load_file(path), inflight)

    async def weight_digest(self) -> float:
        with torch.no_grad():
            return float(sum(p.double().sum() for p in self.model.parameters()))

    async def shutdown(self) -> None:
        self.model = None
