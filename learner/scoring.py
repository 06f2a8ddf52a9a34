"""Scoring completions under a causal LM: each completion token's logprob and the policy's
entropy at that position.

The output layer is applied a chunk of tokens at a time, in the forward pass and again in the
backward pass, so that [tokens, vocabulary] logits never exist for more than one chunk. Only
the last hidden states and one log-normaliser per token are kept for the backward pass.
"""

from __future__ import annotations

import torch


def _logits(hidden_N_H: torch.Tensor, weight_V_H: torch.Tensor, temperature: float
            ) -> torch.Tensor:
    """Float32 logits, the matmul in ``weight_V_H``'s dtype."""
    return (hidden_N_H.to(weight_V_H.dtype) @ weight_V_H.T).float() / temperature


def _add_matmul(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """acc += a @ b, the product in a's dtype and accumulated in acc's."""
    if a.dtype == acc.dtype:
        acc.addmm_(a, b)  # no [V, H] temporary
    else:
        acc.add_((a @ b).to(acc.dtype))


class _ChunkedOutputLayer(torch.autograd.Function):
    """z_n = W h_n / T;  logp_n = z_n[y_n] - logsumexp(z_n);  H_n = -sum_v p_nv log p_nv.

    The entropy is a statistic, not differentiated. Backward recomputes each chunk's logits
    and uses d logp_n / d z_n = onehot(y_n) - softmax(z_n)."""

    @staticmethod
    def forward(ctx, hidden_N_H, weight_V_H, targets_N, temperature, chunk, dtype,
                with_entropy):
        n = hidden_N_H.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=hidden_N_H.device)
        lse = torch.empty_like(logp)
        entropy = torch.empty_like(logp) if with_entropy else torch.empty(0)
        w = weight_V_H.to(dtype)
        for s in range(0, n, chunk):
            z = _logits(hidden_N_H[s:s + chunk], w, temperature)
            lse_c = torch.logsumexp(z, dim=-1)
            logp[s:s + chunk] = z.gather(1, targets_N[s:s + chunk, None]).squeeze(1) - lse_c
            lse[s:s + chunk] = lse_c
            if with_entropy:
                log_p = z.sub_(lse_c[:, None])
                entropy[s:s + chunk] = -log_p.exp().mul_(log_p).sum(-1)
        ctx.save_for_backward(hidden_N_H, weight_V_H, targets_N, lse)
        ctx.temperature, ctx.chunk, ctx.dtype = temperature, chunk, dtype
        ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp_N, _grad_entropy):
        hidden, weight, targets, lse = ctx.saved_tensors
        want_h, want_w = ctx.needs_input_grad[:2]
        grad_h = torch.empty_like(hidden) if want_h else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if want_w else None
        w = weight.to(ctx.dtype)
        for s in range(0, hidden.shape[0], ctx.chunk):
            h = hidden[s:s + ctx.chunk]
            g_T = grad_logp_N[s:s + ctx.chunk, None].float() / ctx.temperature
            z = _logits(h, w, ctx.temperature)
            # dL/d(W h) = g * (onehot(y) - p) / T
            grad_z = z.sub_(lse[s:s + ctx.chunk, None]).exp_().mul_(-g_T)
            grad_z = grad_z.scatter_add_(1, targets[s:s + ctx.chunk, None], g_T).to(ctx.dtype)
            if want_h:
                grad_h[s:s + ctx.chunk] = (grad_z @ w).to(h.dtype)
            if want_w:
                _add_matmul(grad_w, grad_z.T, h.to(ctx.dtype))
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        return grad_h, grad_w, None, None, None, None, None


def token_logprobs(hidden_N_H: torch.Tensor, weight_V_H: torch.Tensor, targets_N: torch.Tensor,
                   *, temperature: float, chunk_tokens: int, with_entropy: bool,
                   dtype: torch.dtype = torch.float32
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(W h_n / T)[y_n] for each of N hidden states (float32, differentiable in
    ``hidden`` and ``weight``) and, with ``with_entropy``, the softmax's entropy (detached).
    ``dtype`` is the one the matmuls run in (bfloat16 where the model runs under autocast);
    the softmax is always float32."""
    logp, entropy = _ChunkedOutputLayer.apply(hidden_N_H, weight_V_H, targets_N, temperature,
                                              chunk_tokens, dtype, with_entropy)
    return logp, (entropy if with_entropy else None)


class TokenScores(torch.nn.Module):
    """The causal LM scoring given tokens: for each (row, position) pair, the logprob of the
    token at position + 1 and the entropy there. A module of its own so that FSDP2's root hooks
    run around the whole computation, the output layer's weight included."""

    def __init__(self, lm: torch.nn.Module, *, temperature: float, chunk_tokens: int) -> None:
        super().__init__()
        self.lm = lm
        self.temperature, self.chunk_tokens = temperature, chunk_tokens

    def forward(self, ids_B_L: torch.Tensor, attn_B_L: torch.Tensor, rows_N: torch.Tensor,
                cols_N: torch.Tensor, with_entropy: bool, temperature: float | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``temperature`` replaces the module's own (the sampler's) for this call."""
        hidden = self.lm.get_decoder()(input_ids=ids_B_L, attention_mask=attn_B_L)
        head = self.lm.get_output_embeddings()
        if getattr(head, "bias", None) is not None:
            raise ValueError(f"{type(self.lm).__name__}'s output layer has a bias; "
                             "scoring supports output layers without one")
        device = ids_B_L.device.type
        dtype = (torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device)
                 else torch.float32)
        with torch.autocast(device, enabled=False):  # the matmul dtype is set explicitly
            return token_logprobs(hidden.last_hidden_state[rows_N, cols_N], head.weight,
                                  ids_B_L[rows_N, cols_N + 1],
                                  temperature=temperature or self.temperature,
                                  chunk_tokens=self.chunk_tokens, with_entropy=with_entropy,
                                  dtype=dtype)
