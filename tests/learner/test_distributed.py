"""Two LearnerActors with FSDP2 over gloo train one model exactly like one learner."""

from __future__ import annotations

import pytest
import torch

from learner.group import LearnerGroup
from learner.learner import Learner

from .conftest import configs, fixed_groups

pytestmark = pytest.mark.slow  # an FSDP group of Ray actors


def test_fsdp_group_matches_a_single_learner(ray_local, tiny_model, tmp_path):
    cfg, algo = configs(actors=2)
    single = Learner(cfg, algo, tiny_model, seed=0)
    groups = fixed_groups(single, n_groups=4)
    group = LearnerGroup(cfg, algo, tiny_model, seed=0)
    try:
        # ranks get different numbers of micro-batches: rank 1 must not hang
        ref = single.step(groups)
        got = group.step(groups)
        assert got["loss"] == pytest.approx(ref["loss"], rel=1e-4, abs=1e-6)
        assert got["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-4)
        assert got["completion_tokens"] == ref["completion_tokens"]
        sd = group.full_state_dict()
        mine = single.full_state_dict()
        assert sd.keys() == mine.keys()
        for k in sd:
            assert torch.allclose(sd[k], mine[k], atol=1e-5), k
        path = group.save_checkpoint(str(tmp_path / "fsdp"))
        from transformers import AutoModelForCausalLM

        loaded = AutoModelForCausalLM.from_pretrained(path)
        assert torch.allclose(loaded.model.norm.weight, mine["model.norm.weight"], atol=1e-5)
    finally:
        group.shutdown()
