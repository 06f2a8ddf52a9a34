"""The vLLM RolloutActor on a real local Ray instance: logprob parity with transformers,
weight updates, streaming order, abort and bad input. One engine for the whole session."""

from __future__ import annotations

import time

import pytest
import ray
import torch
from safetensors.torch import load_file

from actors.rollout import PromptError
from rlce.core.types import Prompt, SamplingSettings
from rlce.core.weights import WeightUpdateError

from .conftest import forward_logprobs, greedy_transformers, reference_model

pytestmark = pytest.mark.slow  # a vLLM engine on Ray

MAX_ABS_LOGPROB_ERR = 2e-3   # fp32 on both sides: kernels differ, not the maths
MEAN_ABS_LOGPROB_ERR = 2e-4


def collect(actor, prompts, settings, batch_id=None):
    gen = actor.generate.options(num_returns="streaming").remote(prompts, settings, batch_id)
    return [ray.get(ref) for ref in gen]


def chat(pid: str, text: str) -> Prompt:
    return Prompt(pid, messages=({"role": "user", "content": text},))


def test_samples_carry_the_evidence(vllm_actor):
    prompts = [chat("p0", "Write a function that adds two numbers."),
               Prompt("p1", token_ids=(1, 2, 3))]
    samples = collect(vllm_actor, prompts, SamplingSettings(n=3, max_tokens=16, seed=7))
    assert sorted((s.problem_id, s.index) for s in samples) == [
        (p, i) for p in ("p0", "p1") for i in range(3)]
    for s in samples:
        assert len(s.completion_ids) == len(s.logprobs) == 16
        assert s.finish_reason == "length"
        assert all(lp <= 0 for lp in s.logprobs)
        assert s.policy_version == s.policy_version_last == ray.get(vllm_actor.get_version.remote())
        assert s.text
    p0 = [s for s in samples if s.problem_id == "p0"]
    assert p0[0].prompt_ids[-3:] != (1, 2, 3) and len(p0[0].prompt_ids) > 10  # chat-templated
    assert len({s.completion_ids for s in p0}) == 3  # n distinct samples
    again = collect(vllm_actor, prompts[:1], SamplingSettings(n=3, max_tokens=16, seed=7))
    assert {s.completion_ids for s in again} == {s.completion_ids for s in p0}  # seeded


@pytest.mark.skipif(torch.cuda.is_available(), reason="how vLLM runs on a machine without CUDA")
def test_on_cpu_the_model_runs_in_the_engine_core_on_every_core(vllm_actor):
    # vLLM's CPU default puts the model in a worker process on one core and keeps the other
    # busy-polling it; the engine runs it in-process on every core this machine gives it
    import os

    info = ray.get(vllm_actor.info.remote())
    assert info["executor"] == "uni"
    assert info["cpu_threads"] == len(os.sched_getaffinity(0))


def test_stop_string_ends_the_completion_and_stays_in_its_text(vllm_actor):
    prompt = [chat("p0", "Write a function that adds two numbers.")]
    settings = SamplingSettings(n=1, max_tokens=24, seed=11)
    (full,) = collect(vllm_actor, prompt, settings)
    assert full.finish_reason == "length"
    stop = full.text[len(full.text) // 3: len(full.text) // 3 + 3]  # occurs a third of the way in
    assert stop.strip(), full.text
    (cut,) = collect(vllm_actor, prompt, SamplingSettings(n=1, max_tokens=24, seed=11,
                                                          stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert cut.text.endswith(stop) and full.text.startswith(cut.text)
    assert stop not in cut.text[:-1]  # ended at the first occurrence
    assert len(cut.completion_ids) == len(cut.logprobs) < len(full.completion_ids)
    assert full.completion_ids[: len(cut.completion_ids)] == cut.completion_ids


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprob_parity_with_transformers(vllm_actor, tiny_model, temperature):
    ref = reference_model(tiny_model)
    prompts = [chat(f"q{i}", f"Problem {i}: reverse a list.") for i in range(3)]
    samples = collect(vllm_actor, prompts,
                      SamplingSettings(n=2, max_tokens=24, temperature=temperature, seed=1))
    diffs = torch.cat([
        (forward_logprobs(ref, s.prompt_ids, s.completion_ids, temperature)
         - torch.tensor(s.logprobs)).abs() for s in samples])
    print(f"logprob parity T={temperature}: max {diffs.max():.2e} mean {diffs.mean():.2e} "
          f"over {diffs.numel()} tokens")
    assert diffs.max() < MAX_ABS_LOGPROB_ERR
    assert diffs.mean() < MEAN_ABS_LOGPROB_ERR


@pytest.mark.usefixtures("restores_vllm_actor")
def test_update_weights_then_greedy_matches_transformers(vllm_actor, tiny_model):
    original = load_file(f"{tiny_model}/model.safetensors")
    gen = torch.Generator().manual_seed(3)
    changed = {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in original.items()}
    prompt = chat("g", "Sort a list of integers.")
    greedy = SamplingSettings(n=1, temperature=0.0, max_tokens=20)
    before = collect(vllm_actor, [prompt], greedy)[0]
    v0 = ray.get(vllm_actor.get_version.remote())
    t0 = time.perf_counter()
    report = ray.get(vllm_actor.update_weights.remote(changed))
    print(f"update_weights of {report['bytes'] / 1e6:.1f} MB: engine {report['seconds']:.3f}s,"
          f" call {time.perf_counter() - t0:.3f}s")
    assert report["version"] == v0 + 1 == ray.get(vllm_actor.get_version.remote())
    after = collect(vllm_actor, [prompt], greedy)[0]
    assert after.policy_version == v0 + 1
    assert after.completion_ids != before.completion_ids
    ref = reference_model(tiny_model)
    ref.load_state_dict(changed, strict=False)
    assert list(after.completion_ids) == greedy_transformers(ref, after.prompt_ids, 20)
    diffs = (forward_logprobs(ref, after.prompt_ids, after.completion_ids)
             - torch.tensor(after.logprobs)).abs()
    assert diffs.max() < MAX_ABS_LOGPROB_ERR
    # and back: nothing of the changed weights (no cached prefix) outlives the next update
    ray.get(vllm_actor.update_weights.remote(original))
    restored = collect(vllm_actor, [prompt], greedy)[0]
    assert restored.completion_ids == before.completion_ids


@pytest.mark.usefixtures("restores_vllm_actor")  # in case the engine takes a bad update
@pytest.mark.parametrize("bad", ["shape", "name", "missing", "nan"])
def test_bad_update_is_rejected_whole_and_engine_unchanged(vllm_actor, tiny_model, bad):
    sd = {k: v.clone() for k, v in load_file(f"{tiny_model}/model.safetensors").items()}
    key = "model.layers.1.mlp.down_proj.weight"
    if bad == "shape":
        sd[key] = sd[key][:, :-1].contiguous()
    elif bad == "name":
        sd["model.layers.1.mlp.down.weight"] = sd.pop(key)
    elif bad == "missing":
        sd.pop(key)
    else:
        sd[key][0, 0] = float("nan")
    for k in sd:  # all other tensors are changed: none of them may land
        if k != key:
            sd[k] += 1.0
    version = ray.get(vllm_actor.get_version.remote())
    digest = ray.get(vllm_actor.weight_digest.remote())
    with pytest.raises(WeightUpdateError, match="rejected, engine unchanged"):
        ray.get(vllm_actor.update_weights.remote(sd))
    assert ray.get(vllm_actor.get_version.remote()) == version
    assert ray.get(vllm_actor.weight_digest.remote()) == digest
    assert len(collect(vllm_actor, [Prompt("ok", token_ids=(5, 6))],
                       SamplingSettings(max_tokens=4))) == 1


def test_short_requests_arrive_before_a_long_one(vllm_actor):
    long_gen = vllm_actor.generate.options(num_returns="streaming").remote(
        [Prompt("long", token_ids=(1, 2, 3, 4))], SamplingSettings(max_tokens=400, seed=0))
    short_gen = vllm_actor.generate.options(num_returns="streaming").remote(
        [Prompt(f"short{i}", token_ids=(7, 8, 9, i + 10)) for i in range(4)],
        SamplingSettings(max_tokens=8, seed=0))
    order, streams = [], [long_gen, short_gen]
    while streams:
        ready, _ = ray.wait(streams, num_returns=1)
        try:
            order.append(ray.get(next(ready[0])))
        except StopIteration:
            streams.remove(ready[0])
    ids = [s.problem_id for s in order]
    assert ids[-1] == "long" and sorted(ids[:-1]) == [f"short{i}" for i in range(4)]
    assert order[-1].finish_reason == "length" and len(order[-1].completion_ids) == 400


def test_abort_drops_a_batch_and_the_actor_keeps_serving(vllm_actor):
    gen = vllm_actor.generate.options(num_returns="streaming").remote(
        [Prompt(f"a{i}", token_ids=(3, 4, i + 5)) for i in range(4)],
        SamplingSettings(max_tokens=450), "doomed")
    time.sleep(1.0)
    cancelled = ray.get(vllm_actor.abort.remote("doomed"))
    got = [ray.get(r) for r in gen]
    assert cancelled == 4 and got == []
    stats = ray.get(vllm_actor.get_stats.remote())
    assert stats["in_flight"] == 0 and stats["aborted"] >= 4
    assert len(collect(vllm_actor, [Prompt("after", token_ids=(5,))],
                       SamplingSettings(max_tokens=4))) == 1


def test_bad_prompts_get_clear_errors_and_the_actor_keeps_serving(vllm_actor):
    with pytest.raises(PromptError, match="empty: empty prompt"):
        collect(vllm_actor, [Prompt("empty", token_ids=())], SamplingSettings(max_tokens=4))
    with pytest.raises(PromptError, match="huge: prompt has 600 tokens, the context is 512"):
        collect(vllm_actor, [Prompt("fine", token_ids=(1,)), Prompt("huge", token_ids=(5,) * 600)],
                SamplingSettings(max_tokens=4))
    bad = ray.get(vllm_actor.check_prompts.remote([Prompt("huge", token_ids=(5,) * 600),
                                                   Prompt("fine", token_ids=(1,))]))
    assert [pid for pid, _ in bad] == ["huge"]
    assert len(collect(vllm_actor, [Prompt("fine", token_ids=(1,))],
                       SamplingSettings(max_tokens=4))) == 1


@pytest.mark.usefixtures("restores_vllm_actor")
def test_update_during_a_request_keeps_it_and_reports_both_versions(vllm_actor, tiny_model):
    """inflight_update="keep": the running requests survive the swap and say so."""
    # 16 requests of 450 tokens take about 2.6 s on the tiny model here (one takes about 1 s,
    # which a 1 s wait before the update could outlast), so the update at 0.5 s lands mid-way
    gen = vllm_actor.generate.options(num_returns="streaming").remote(
        [Prompt(f"spanning-{i}", token_ids=(2, 3, 4)) for i in range(16)],
        SamplingSettings(max_tokens=450, seed=0))
    v0 = ray.get(vllm_actor.get_version.remote())
    time.sleep(0.5)
    ray.get(vllm_actor.update_weights.remote(load_file(f"{tiny_model}/model.safetensors")))
    samples = [ray.get(r) for r in gen]
    assert len(samples) == 16
    for sample in samples:
        assert len(sample.completion_ids) == 450
        assert (sample.policy_version, sample.policy_version_last) == (v0, v0 + 1)
