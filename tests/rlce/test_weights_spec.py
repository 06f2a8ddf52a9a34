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


@pytest.fixture
def small_disks(tmp_path):
    """Two 64 KB tmpfs folders (real ENOSPC), unmounted after the test."""
    import subprocess

    disks = [tmp_path / "shm", tmp_path / "tmp"]
    mounted = []
    try:
        for d in disks:
            d.mkdir()
            out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)],
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                pytest.skip(f"cannot mount a small tmpfs here (needs root): {out.stderr}")
            mounted.append(d)
        yield disks
    finally:
        for d in mounted:
            subprocess.run(["umount", str(d)], check=True)


def test_a_full_shared_memory_falls_back_and_a_full_machine_says_where(small_disks, tmp_path,
                                                                        monkeypatch):
    import tempfile

    from rlce.core.weights import WeightsNotWritten, write_shm_safetensors

    shm, tmp = small_disks
    big = {"w": torch.zeros(64, 1024)}  # 256 KB: more than either disk holds
    monkeypatch.setenv("RLCE_SHM_DIR", str(shm))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a folder with room
    path = write_shm_safetensors(big, "fallback")
    assert path.parent == tmp_path and path.stat().st_size > 256 * 1024
    assert list(shm.iterdir()) == []  # the short write in shared memory was removed
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    with pytest.raises(WeightsNotWritten) as e:
        write_shm_safetensors(big, "nowhere")
    assert f"{shm} failed" in str(e.value) and f"{tmp} failed" in str(e.value)
    assert "RLCE_SHM_DIR" in str(e.value) and "MB free" in str(e.value)
    assert list(shm.iterdir()) == [] and list(tmp.iterdir()) == []
