"""RLCE's method in one file and one process: the reference the distributed loop is checked
against (tests/rlce/test_minimal.py), and the place to read the algorithm top to bottom.

Every step:

1. draw problems in the controller's order (``ProblemStream``);
2. sample ``n`` completions per problem with transformers, one ``generate`` call per
   completion with the torch RNG seeded ``seed + i``, exactly as
   ``actors.backends.TransformersBackend`` does, so the same seed gives the same tokens;
3. extract each program, judge it in the firejail sandbox (``executors.Runner``) and turn the
   verdict into a reward (``rlce.rewards``);
4. GRPO advantages within each group; a group whose rewards are all equal carries no signal
   and is dropped, and more problems are drawn until ``groups_per_step`` groups are kept (at
   most ``max_draws_per_step`` rounds);
5. the policy-gradient loss, per completion token
   ``-A * w * pi / pi_old``, ``w = min(pi_old / mu, tis_cap)``, averaged over every token of
   the batch (token mean). ``mu`` is the sampler's probability, ``pi_old`` the policy before
   the step: the truncated importance weight corrects for the sampler being a numerically
   different engine. With one optimiser step per batch ``pi_old`` *is* ``pi``, so the PPO
   ratio is 1, its clip never acts, and the gradient is REINFORCE's ``A * w * grad log pi``;
6. one AdamW step after clipping the gradient norm, at a constant learning rate;
7. "publish" by keeping the model: the next step samples from the updated weights.

What it leaves out, on purpose: Ray (no actors), vLLM (transformers generates one completion
at a time), asynchrony and the staleness bound (every sample comes from the current policy),
FSDP, mini-batches and micro-batch packing (one forward pass per completion), a KL term,
estimators other than GRPO and aggregations other than token mean, over-long filtering or
penalties, checkpoints and resuming, W&B, evaluation, and replacing dead engines. The full
loop is ``rlce.controller`` with ``actors``, ``executors.fleet`` and ``learner``.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from actors.backends import Completion
from executors import Runner
from executors.schema import Verdict
from learner import losses
from rlce.core.config import AlgoConfig, LearnerConfig
from rlce.core.models import TINY_MODEL, resolve_model
from rlce.core.types import SamplingSettings, ScoredSample, TrainGroup
from rlce.data import Problem, ProblemStream
from rlce.prompts import program_for, prompt_for
from rlce.rewards import RewardFn, get_reward

logger = logging.getLogger(__name__)


def prompt_ids_for(tokenizer: Any, problem: Problem) -> list[int]:
    """The controller's prompt rendered with the model's chat template, as a rollout engine
    renders it."""
    return list(tokenizer.apply_chat_template(list(prompt_for(problem).messages),
                                              add_generation_prompt=True, tokenize=True,
                                              return_dict=False))


def draw(stream: ProblemStream, tokenizer: Any, count: int, max_model_len: int
         ) -> list[tuple[Problem, list[int]]]:
    """The next ``count`` problems whose prompt leaves room to generate (as the controller
    draws them: a prompt as long as the context is skipped)."""
    out: list[tuple[Problem, list[int]]] = []
    skipped = 0
    while len(out) < count:
        problem = next(stream)
        ids = prompt_ids_for(tokenizer, problem)
        if 0 < len(ids) < max_model_len:
            out.append((problem, ids))
        else:
            skipped += 1
            if skipped > 100:
                raise ValueError(f"no prompt fits the context of {max_model_len} tokens")
    return out


@torch.no_grad()
def sample(model: Any, tokenizer: Any, prompt_ids: list[int], index: int,
           settings: SamplingSettings, max_model_len: int) -> Completion:
    """Completion ``index`` of a prompt. One ``generate`` call per completion, the global
    torch RNG seeded ``seed + index`` just before it: a batched call (``num_return_sequences``)
    would draw all ``n`` completions from one random stream and give other tokens."""
    max_new = min(settings.max_tokens, max_model_len - len(prompt_ids))
    torch.manual_seed(settings.seed + index)
    ids = torch.tensor([prompt_ids], device=model.device)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                         temperature=settings.temperature, top_p=settings.top_p, top_k=0,
                         max_new_tokens=max_new, output_scores=True,
                         return_dict_in_generate=True, stop_strings=list(settings.stop) or None,
                         tokenizer=tokenizer, pad_token_id=tokenizer.eos_token_id)
    new = out.sequences[0, len(prompt_ids):]
    # the scores are the logits after temperature and top-p: these are the sampler's logprobs
    mu_T_V = torch.stack([s[0] for s in out.scores]).float().log_softmax(-1)
    mu_T = mu_T_V.gather(1, new[: len(mu_T_V)].unsqueeze(1)).squeeze(1)
    token_ids = tuple(int(t) for t in new[: len(mu_T_V)])
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    stopped = (token_ids and token_ids[-1] in eos) or len(token_ids) < max_new
    return Completion(token_ids, tuple(float(x) for x in mu_T),
                      tokenizer.decode(token_ids, skip_special_tokens=True),
                      "stop" if stopped else "length")


def rollout_group(model: Any, tokenizer: Any, runner: Runner, problem: Problem,
                  prompt_ids: list[int], settings: SamplingSettings, reward: RewardFn,
                  max_model_len: int, version: int
                  ) -> tuple[list[ScoredSample], list[dict[str, Any]]]:
    """Sample ``n`` completions of one problem, judge their programs, score them. A sample
    the sandbox failed on (``sandbox_error``: the executor broke, not the program) is left
    out rather than scored as a failure."""
    completions = [sample(model, tokenizer, prompt_ids, i, settings, max_model_len)
                   for i in range(settings.n)]
    futures = [runner.submit(problem.job(program_for(problem, c.text), f"{problem.id}#{i}"))
               for i, c in enumerate(completions)]
    scored, records = [], []
    for i, (c, fut) in enumerate(zip(completions, futures)):
        verdict = Verdict.from_dict(fut.result())
        if verdict.status == "sandbox_error":
            logger.warning("sandbox error for %s#%d, left out: %s", problem.id, i,
                           verdict.message or "(no message)")
            continue
        r = float(reward(verdict, c.text))
        scored.append(ScoredSample(tuple(prompt_ids), c.token_ids, c.logprobs, r, version))
        records.append({"problem": problem.id, "index": i, "status": verdict.status,
                        "reward": r, "tokens": len(c.token_ids), "text": c.text})
    return scored, records


def token_logprobs(model: Any, prompt_ids: Sequence[int], completion_ids: Sequence[int],
                   temperature: float) -> torch.Tensor:
    """``log pi(y_t | x, y_<t)`` of each completion token at the sampling temperature,
    shape [1, T]. A full softmax, as the learner's: with ``top_p < 1`` the sampler's logprobs
    are renormalised over the kept tokens, and the importance weights carry that bias."""
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)], device=model.device)
    logits_1_T_V = model(ids).logits[:, len(prompt_ids) - 1: -1].float() / temperature
    return logits_1_T_V.log_softmax(-1).gather(-1, ids[:, len(prompt_ids):, None]).squeeze(-1)


def train_step(model: Any, optimizer: torch.optim.Optimizer, groups: list[TrainGroup],
               algo: AlgoConfig, max_grad_norm: float) -> dict[str, float]:
    """One optimiser step on the kept groups: GRPO advantages, the token-mean policy-gradient
    loss with truncated importance weights, gradient clipping, AdamW."""
    rows: list[tuple[ScoredSample, float]] = []
    for g in groups:
        rewards_1_N = torch.tensor([[s.reward for s in g.samples]], dtype=torch.float64)
        advantages_N = losses.grpo_advantages(rewards_1_N)[0]
        rows += [(s, float(a)) for s, a in zip(g.samples, advantages_N)]
    total_tokens = float(sum(len(s.completion_ids) for s, _ in rows))
    model.train()
    loss_sum = 0.0
    for s, advantage in rows:
        logp_1_T = token_logprobs(model, s.prompt_ids, s.completion_ids, algo.temperature)
        old_1_T = logp_1_T.detach()  # pi_old: the policy before the step, i.e. pi itself
        mu_1_T = torch.tensor([s.behaviour_logprobs], device=logp_1_T.device)
        loss, _ = losses.policy_loss(
            logp_1_T, old_1_T, mu_1_T, torch.tensor([advantage], device=logp_1_T.device),
            torch.ones_like(logp_1_T), clip_low=algo.clip_low, clip_high=algo.clip_high,
            tis_cap=algo.tis_cap, aggregation="token_mean", norm_tokens=None, kl_coef=0.0,
            kl_kind=algo.kl_kind, total_tokens=total_tokens)
        # every completion's share of the batch's token mean: the gradients add up to it
        loss.backward()
        loss_sum += float(loss.detach())
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm))
    if not math.isfinite(grad_norm):
        optimizer.zero_grad(set_to_none=True)
        raise FloatingPointError(f"non-finite gradient norm {grad_norm}; no step taken")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    advantages = [a for _, a in rows]
    return {"loss": loss_sum, "grad_norm": grad_norm, "samples": float(len(rows)),
            "completion_tokens": total_tokens,
            "advantage_std": float(torch.tensor(advantages).std()) if len(rows) > 1 else 0.0}


def weights_digest(model: Any) -> float:
    """The sum of every weight in float64, as a rollout engine's ``weight_digest``."""
    with torch.no_grad():
        return float(sum(p.double().sum() for p in model.parameters()))


def run(model: str | torch.nn.Module, problems: Sequence[Problem], algo: AlgoConfig,
        learner: LearnerConfig, reward: RewardFn, *, seed: int, workers: int | None = None
        ) -> list[dict[str, Any]]:
    """Train ``model`` on ``problems`` for ``algo.steps`` steps with the run's own options
    (``algo``: sampling, groups, the importance-weight cap; ``learner``: AdamW and gradient
    clipping). ``model`` is a name ``resolve_model`` knows, or a transformers causal LM loaded
    in float32, which is trained in place (so the caller can read its weights afterwards).
    Returns one dict of metrics per step: ``loss`` and ``grad_norm`` (absent in a step with no
    informative group), ``weights_digest`` after the step, and under ``_groups`` and
    ``_samples`` what was trained on and every judged sample."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    policy = (AutoModelForCausalLM.from_pretrained(resolve_model(model), dtype=torch.float32)
              if isinstance(model, str) else model).to(device)
    tokenizer = AutoTokenizer.from_pretrained(policy.name_or_path)
    max_model_len = policy.config.max_position_embeddings
    optimizer = torch.optim.AdamW(policy.parameters(), lr=learner.lr,
                                  betas=(learner.beta1, learner.beta2),
                                  weight_decay=learner.weight_decay)
    settings = algo.sampling(seed)
    stream = ProblemStream(list(problems), seed=seed)
    history = []
    with Runner(workers) as runner:
        for step in range(1, algo.steps + 1):
            t0 = time.perf_counter()
            policy.eval()
            kept: list[TrainGroup] = []
            records: list[dict[str, Any]] = []
            dropped = draws = 0
            while len(kept) < algo.groups_per_step and draws < algo.max_draws_per_step:
                draws += 1
                count = max(algo.groups_per_step - len(kept), algo.problems_per_draw)
                for problem, ids in draw(stream, tokenizer, count, max_model_len):
                    scored, recs = rollout_group(policy, tokenizer, runner, problem, ids,
                                                 settings, reward, max_model_len, step - 1)
                    records += recs
                    if len(scored) < 2:  # sandbox errors left no group to compare within
                        continue
                    if len({s.reward for s in scored}) == 1:  # no signal: every reward equal
                        dropped += 1
                        continue
                    kept.append(TrainGroup(problem.id, tuple(scored)))
            m: dict[str, Any] = {
                "step": step, "groups_kept": len(kept), "groups_dropped": dropped,
                "draws": draws,
                "reward_mean": sum(r["reward"] for r in records) / max(1, len(records))}
            if kept:
                m.update(train_step(policy, optimizer, kept, algo, learner.max_grad_norm))
            m["weights_digest"] = weights_digest(policy)
            m["step_s"] = time.perf_counter() - t0
            m["_groups"], m["_samples"] = kept, records
            history.append(m)
    return history


def length_parity(verdict: Verdict, text: str) -> float:
    """A stand-in reward for the random tiny model, which never passes a test: 1 for a
    completion of odd length. It varies within a group, so the loop has groups to train on."""
    return float(len(text) % 2)


def main(argv: list[str] | None = None) -> None:
    from rlce.problems import shipped

    p = argparse.ArgumentParser(prog="python -m rlce.minimal", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=TINY_MODEL)
    p.add_argument("--problems", type=int, default=8, help="the first N shipped Python problems")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--n", type=int, default=4, help="completions per problem")
    p.add_argument("--groups-per-step", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--stop", action="append", default=[],
                   help="a stop string (repeatable). With the ratio at 1 the loss is "
                        "-sum_i A_i T_i / T, zero when every completion runs to --max-tokens; "
                        "for the tiny model --stop z gives varied lengths")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reward", default=None,
                   help="a registered reward (default: binary; for the tiny model, whose random "
                        "weights never pass a test, length_parity)")
    a = p.parse_args(argv)
    name = a.reward or ("length_parity" if a.model == TINY_MODEL else "binary")
    reward = length_parity if name == "length_parity" else get_reward(name)
    problems = shipped(languages=["python"])[: a.problems]
    algo = AlgoConfig(steps=a.steps, n=a.n, temperature=a.temperature,
                      max_tokens=a.max_tokens, stop=list(a.stop),
                      groups_per_step=a.groups_per_step, problems_per_draw=0)
    history = run(a.model, problems, algo, LearnerConfig(lr=a.lr), reward, seed=a.seed)
    for m in history:
        trained = (f"loss {m['loss']:+.4g}  grad_norm {m['grad_norm']:.4f}" if "loss" in m
                   else "no informative group: no update")
        print(f"step {m['step']}  groups kept {m['groups_kept']} dropped {m['groups_dropped']}"
              f"  reward {m['reward_mean']:.3f}  {trained}  digest {m['weights_digest']:.6f}"
              f"  {m['step_s']:.1f} s")


if __name__ == "__main__":
    main()
