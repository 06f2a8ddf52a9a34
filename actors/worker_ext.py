"""The receiving end of weight updates, mixed into every vLLM worker process through vLLM's
``worker_extension_cls`` and called with ``collective_rpc``: the engine keeps running, only
its parameters change."""

from __future__ import annotations

import torch


class WeightLoader:
    """Methods added to vLLM's worker class (``self.model_runner`` is the worker's runner)."""

    def rlce_load_weights(self, blob: bytes) -> int:
        """Load Hugging Face-named tensors (serialised with ``safetensors.torch.save``: the
        RPC's own encoding turns bare tensors inside a dict into lists) through the model's
        own ``load_weights``, which fuses q/k/v and gate/up and shards for tensor parallelism.
        Returns the number of tensors. The caller has checked names and shapes already."""
        from safetensors.torch import load

        named = load(blob)
        # vLLM's in-place reload: restores each layer's checkpoint-format parameters, loads,
        # then re-runs the post-load processing (repacking for the CPU kernels, for example)
        model = self.model_runner.get_model()
        self.model_runner.reload_weights(weights_iterator=iter(named.items()))
        # A tied lm_head shares the embedding's storage but is not itself in the loaded set,
        # so the reload does not redo its post-load step; on CPU that step keeps a packed copy
        # of the weight for the GEMM kernel, which would otherwise stay at the old values.
        lm_head = getattr(model, "lm_head", None)
        if lm_head is not None and getattr(model.config, "tie_word_embeddings", False):
            method = getattr(lm_head, "quant_method", None)
            if method is not None:
                method.process_weights_after_loading(lm_head)
        return len(named)

    def rlce_weight_digest(self) -> float:
        """A cheap fingerprint of the loaded weights (sum of every parameter), for tests that
        check an update reached the worker."""
        with torch.no_grad():
            return float(sum(p.detach().double().sum() for p in
                             self.model_runner.get_model().parameters()))

