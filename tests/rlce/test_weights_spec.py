"""WeightSpec: a weight update is checked whole before anything reaches an engine."""

import pytest
import torch
from safetensors.torch import load_file

from rlce.core.weights import WeightSpec, WeightUpdateError


@pytest.fixture(scope="module")
def spec_and_sd(tiny_model):
    return WeightSpec.from_folder(tiny_model), load_file(f"{tiny_model}/model.safetensors")


def test_full_set_passes_and_counts_bytes(spec_and_sd):
    spec, sd = spec_and_sd
    assert spec.check(sd) == sum(t.numel() * 4 for t in sd.values())
    assert "lm_head.weight" in spec.optional  # tied embeddings: may be sent or not
    sd2 = dict(sd, **{"lm_head.weight": sd["model.embed_tokens.weight"]})
    spec.check(sd2)


@pytest.mark.parametrize("mutate, message", [
    (lambda sd: sd.pop("model.norm.weight"), "missing 1 tensors"),
    (lambda sd: sd.__setitem__("model.layers.9.mlp.up_proj.weight", torch.zeros(2)),
     "unknown names"),
    (lambda sd: sd.__setitem__("model.norm.weight", torch.zeros(7)), "shape (7,)"),
    (lambda sd: sd.__setitem__("model.norm.weight", sd["model.norm.weight"].long()),
     "not a floating-point tensor"),
    (lambda sd: sd["model.norm.weight"].__setitem__(0, float("nan")), "NaN"),
    (lambda sd: sd.__setitem__("model.norm.weight", [1.0]), "not a tensor"),
])
def test_bad_updates_are_rejected_with_the_reason(spec_and_sd, mutate, message):
    spec, sd = spec_and_sd
    sd = {k: v.clone() for k, v in sd.items()}
    mutate(sd)
    with pytest.raises(WeightUpdateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec.check(sd)


def test_empty_update_is_rejected(spec_and_sd):
    with pytest.raises(WeightUpdateError, match="non-empty"):
        spec_and_sd[0].check({})
