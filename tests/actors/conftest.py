"""Reference computations with transformers for the rollout tests."""

from __future__ import annotations

import torch


def reference_model(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def forward_logprobs(model, prompt_ids, completion_ids, temperature: float = 1.0) -> torch.Tensor:
    """transformers' log-probabilities of ``completion_ids`` after ``prompt_ids``."""
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1: -1].float()
    lp = (logits / temperature).log_softmax(-1)
    return lp.gather(1, torch.tensor(completion_ids).unsqueeze(1)).squeeze(1)


def greedy_transformers(model, prompt_ids, max_tokens: int) -> list[int]:
    ids = torch.tensor([list(prompt_ids)])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_tokens, pad_token_id=2)
    return out[0, len(prompt_ids):].tolist()
