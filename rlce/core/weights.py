"""What a full weight update must look like for a model folder, checked before anything is
sent to an engine, so that a bad update is rejected whole and the engine stays unchanged."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


class WeightUpdateError(ValueError):
    """A weight update was rejected; the engine was not touched."""


def tensor_meta(named: dict[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], bool]]:
    """``{name: (shape, is_float)}``: what ``WeightSpec.check_meta`` compares."""
    return {k: (tuple(t.shape), t.is_floating_point()) for k, t in named.items()}


def nonfinite_names(named: dict[str, torch.Tensor]) -> list[str]:
    """Names of the tensors holding a NaN or an infinity."""
    return [k for k, t in named.items() if not bool(torch.isfinite(t).all())]


@dataclass(frozen=True)
class WeightSpec:
    """Hugging Face parameter names and shapes of a model, read from its safetensors headers.
    ``optional`` names (a tied ``lm_head.weight``) may be present or absent."""

    shapes: dict[str, tuple[int, ...]]
    optional: dict[str, tuple[int, ...]]

    @classmethod
    def from_folder(cls, folder: str | Path) -> WeightSpec:
        from safetensors import safe_open

        folder = Path(folder)
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise WeightUpdateError(f"{folder} has no safetensors files to take names from")
        shapes: dict[str, tuple[int, ...]] = {}
        for f in files:
            with safe_open(str(f), framework="pt") as st:
                for k in st.keys():
                    shapes[k] = tuple(st.get_slice(k).get_shape())
        optional: dict[str, tuple[int, ...]] = {}
        cfg = json.loads((folder / "config.json").read_text())
        if cfg.get("tie_word_embeddings") and "model.embed_tokens.weight" in shapes:
            optional["lm_head.weight"] = shapes["model.embed_tokens.weight"]
            shapes.pop("lm_head.weight", None)
        return cls(shapes, optional)

    def check_meta(self, meta: dict[str, tuple[tuple[int, ...], bool]]) -> None:
        """Names, shapes and float-ness (``{name: (shape, is_float)}``) against the model;
        raise WeightUpdateError naming every problem."""
        if not isinstance(meta, dict) or not meta:
            raise WeightUpdateError("a weight update must be a non-empty dict of name -> tensor")
        problems: list[str] = []
        missing = sorted(set(self.shapes) - set(meta))
        unknown = sorted(set(meta) - set(self.shapes) - set(self.optional))
        if missing:
            problems.append(f"missing {len(missing)} tensors (first: {missing[:3]})")
        if unknown:
            problems.append(f"unknown names {unknown[:5]}")
        for name, (shape, is_float) in meta.items():
            want = self.shapes.get(name) or self.optional.get(name)
            if want is not None and tuple(shape) != want:
                problems.append(f"{name}: shape {tuple(shape)}, expected {want}")
            elif not is_float:
                problems.append(f"{name}: not a floating-point tensor")
        if problems:
            raise WeightUpdateError("weight update rejected, engine unchanged: "
                                    + "; ".join(problems[:10]))

    def check(self, named: dict) -> int:
        """Check tensors (or numpy arrays) handed in directly, values included (no NaN or inf);
        return the payload size in bytes."""
        if not isinstance(named, dict) or not named:
            raise WeightUpdateError("a weight update must be a non-empty dict of name -> tensor")
        bad = [f"{k}: not a tensor but {type(v).__name__}" for k, v in named.items()
               if not isinstance(v, (torch.Tensor, np.ndarray))]
        if bad:
            raise WeightUpdateError("weight update rejected, engine unchanged: " + "; ".join(bad))
        tensors = {k: torch.as_tensor(v) for k, v in named.items()}
        self.check_meta(tensor_meta(tensors))
        nonfinite = nonfinite_names(tensors)
        if nonfinite:
            raise WeightUpdateError("weight update rejected, engine unchanged: "
                                    f"NaN or inf in {nonfinite[:5]}")
        return sum(t.numel() * t.element_size() for t in tensors.values())

    def check_file(self, path: str | Path) -> int:
        """Check a safetensors file's header (names, shapes, dtypes; values are the
        publisher's to check); return the payload size in bytes."""
        from safetensors import safe_open

        meta, nbytes = {}, 0
        with safe_open(str(path), framework="pt") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                shape, dtype = tuple(sl.get_shape()), sl.get_dtype()
                meta[k] = (shape, dtype.startswith(("F", "BF")))
                nbytes += int(np.prod(shape)) * {"F32": 4, "F16": 2, "BF16": 2,
                                                 "F64": 8}.get(dtype, 4)
        self.check_meta(meta)
        return nbytes


def shm_dir() -> Path:
    """Shared memory where the machine has it (weights are written once and memory-mapped
    by every engine on the node), else the temporary directory."""
    d = Path(os.environ.get("RLCE_SHM_DIR") or "/dev/shm")
    return d if d.is_dir() and os.access(d, os.W_OK) else Path(tempfile.gettempdir())


def write_shm_safetensors(named: dict[str, Any], tag: str = "") -> Path:
    """Write tensors (or numpy arrays) to a fresh safetensors file in shared memory."""
    from safetensors.torch import save_file

    tensors = {k: (torch.from_numpy(v) if not isinstance(v, torch.Tensor) else v)
               .detach().to("cpu").contiguous() for k, v in named.items()}
    path = shm_dir() / f"rlce-weights-{tag or uuid.uuid4().hex}.safetensors"
    save_file(tensors, str(path))
    return path
