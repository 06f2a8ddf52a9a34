"""Chunked scoring against the full [tokens, vocabulary] logits, on the tiny model."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from learner.losses import entropy_from_logits
from learner.scoring import TokenScores

TEMPERATURE = 0.7


def batch():
    """Three rows of 20 tokens (the last padded after 15) and the positions scored: 4..18 of
    rows 0 and 1, 4..13 of row 2 (38 tokens); upstream gradients for each."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(50, 5000, (3, 20), generator=g)
    attn = torch.ones_like(ids)
    attn[2, 15:] = 0
    spans = [(0, range(4, 19)), (1, range(4, 19)), (2, range(4, 14))]
    rows = torch.tensor([b for b, cs in spans for _ in cs])
    cols = torch.tensor([c for _, cs in spans for c in cs])
    return ids, attn, rows, cols, torch.randn(len(rows), generator=g)


def full_logits_scores(lm, ids, attn, rows, cols):
    hidden = lm.get_decoder()(input_ids=ids, attention_mask=attn).last_hidden_state[rows, cols]
    logits = lm.get_output_embeddings()(hidden) / TEMPERATURE
    logp = logits.log_softmax(-1).gather(1, ids[rows, cols + 1][:, None]).squeeze(1)
    return logp, entropy_from_logits(logits.detach())


def scores_and_grads(tiny_model, chunk_tokens):
    lm = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    ids, attn, rows, cols, upstream = batch()
    if chunk_tokens is None:
        logp, entropy = full_logits_scores(lm, ids, attn, rows, cols)
    else:
        scores = TokenScores(lm, temperature=TEMPERATURE, chunk_tokens=chunk_tokens)
        logp, entropy = scores(ids, attn, rows, cols, True)
    (upstream * logp).sum().backward()
    return logp.detach(), entropy, {n: p.grad for n, p in lm.named_parameters()}


@pytest.mark.parametrize("chunk_tokens", [7, 1024])  # chunks of 7 (the last of 3), one chunk
def test_chunked_scores_and_gradients_match_the_full_logits(tiny_model, chunk_tokens):
    want_logp, want_entropy, want_grads = scores_and_grads(tiny_model, None)
    logp, entropy, grads = scores_and_grads(tiny_model, chunk_tokens)
    # Both sides evaluate the same sums in float32 in different orders: log-sum-exp against
    # log_softmax over V = 49,152 logits, and chunks whose partial sums are added against one
    # matmul over all N = 38 tokens. Reordering a sum of n terms moves it by at most about
    # n * eps times the sum of the terms' magnitudes (eps = 2^-23). Sums over the vocabulary
    # run in blocks (about log2(V) = 16 roundings deep), so logprobs and entropies may differ
    # by 64 eps of their largest magnitude; a gradient entry sums over the N tokens, and its
    # terms' magnitudes can add up to a few times the tensor's largest entry, so gradients may
    # differ by 8 * N * eps of it. A real fault (a chunk boundary off by one, a dropped chunk,
    # a missing 1/T) moves values and gradients by a large fraction of their size.
    eps = torch.finfo(torch.float32).eps
    for got, want in ((logp, want_logp), (entropy, want_entropy)):
        assert (got - want).abs().max() <= 64 * eps * want.abs().max()
    assert grads.keys() == want_grads.keys()
    for name, want in want_grads.items():
        err = (grads[name] - want).abs().max()
        assert err <= 8 * len(want_logp) * eps * want.abs().max(), name


def test_scores_without_gradients_or_entropy(tiny_model):
    lm = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    ids, attn, rows, cols, _ = batch()
    with torch.no_grad():
        want, _ = full_logits_scores(lm, ids, attn, rows, cols)
        logp, entropy = TokenScores(lm, temperature=TEMPERATURE, chunk_tokens=5)(
            ids, attn, rows, cols, False)
    assert entropy is None and not logp.requires_grad
    assert (logp - want).abs().max() <= 64 * torch.finfo(torch.float32).eps * want.abs().max()
