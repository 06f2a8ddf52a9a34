"""What a full weight update must look like for a model folder, checked before anything is
sent to an engine, so that a bad update is rejected whole and the engine stays unchanged."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


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


class WeightsNotWritten(OSError):
    """Neither shared memory nor the temporary directory could take a weights file."""


def write_shm_safetensors(named: dict[str, Any], tag: str = "") -> Path:
    """Write tensors (or numpy arrays) to a fresh safetensors file in shared memory; when
    that is full, in the temporary directory (slower, but the run goes on). A file that
    could not be written whole is removed."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tensors = {k: (torch.from_numpy(v) if not isinstance(v, torch.Tensor) else v)
               .detach().to("cpu").contiguous() for k, v in named.items()}
    name = f"rlce-weights-{tag or uuid.uuid4().hex}.safetensors"
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    tried = []
    for folder in dict.fromkeys([shm_dir(), Path(tempfile.gettempdir())]):
        path = folder / name
        try:
            save_file(tensors, str(path))
            if tried:
                logger.warning("weights written to %s: %s", path, "; ".join(tried))
            return path
        except (OSError, SafetensorError) as e:  # a short write is the latter
            path.unlink(missing_ok=True)
            free = shutil.disk_usage(folder).free
            tried.append(f"{folder} failed ({type(e).__name__}: {str(e)[:200]}; "
                         f"{size / 2**20:.1f} MB needed, {free / 2**20:.1f} MB free)")
    raise WeightsNotWritten(f"the weights could not be written for the engines: "
                            f"{'; '.join(tried)}. Free space there, or point RLCE_SHM_DIR "
                            "at a folder with room")


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``), once a step
    (a rollout engine after a weight load, the learner after a publish). Generation and
    weight reloads on CPU free many large blocks that glibc keeps: measured with
    ``rlce bench soak``, an engine core's heap grew from 0.3 to 2.0 GB over 130 tiny-model
    steps, and 1.4 GB of it was free memory that ``malloc_trim`` returned at once."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
