"""The receiving end of weight updates, mixed into every vLLM worker process through vLLM's
``worker_extension_cls`` and called with ``collective_rpc``: the engine keeps running, only
its parameters change."""

from __future__ import annotations

import torch

from rlce.core.weights import release_free_heap


class WeightLoader:
    """Methods added to vLLM's worker class (``self.model_runner`` is the worker's runner)."""

    def rlce_load_weights_file(self, path: str) -> int:
        """Load Hugging Face-named tensors from a safetensors file (memory-mapped; on the same
        node this is shared memory written once by the publisher) through vLLM's in-place
        reload, which restores each layer's checkpoint-format parameters, runs the model's own
        ``load_weights`` (q/k/v and gate/up fusion, tensor-parallel sharding), then redoes the
        post-load processing. The caller has checked names and shapes. Returns the count."""
        from safetensors import safe_open

        model = self.model_runner.get_model()
        with safe_open(path, framework="pt") as f:
            names = list(f.keys())
            self.model_runner.reload_weights(
                weights_iterator=((k, f.get_tensor(k)) for k in names))
        # A tied lm_head shares the embedding's storage but is not itself in the loaded set,
        # so the reload does not redo its post-load step; on CPU that step keeps a packed copy
        # of the weight for the GEMM kernel, which would otherwise stay at the old values.
        lm_head = getattr(model, "lm_head", None)
        if lm_head is not None and getattr(model.config, "tie_word_embeddings", False):
            method = getattr(lm_head, "quant_method", None)
            if method is not None:
                method.process_weights_after_loading(lm_head)
        release_free_heap()  # once a step, after the update (the old weights are free now)
        return len(names)

    def rlce_weight_digest(self) -> float:
        """A cheap fingerprint of the loaded weights (sum of every parameter), for tests that
        check an update reached the worker."""
        with torch.no_grad():
            return float(sum(p.detach().double().sum() for p in
                             self.model_runner.get_model().parameters()))

