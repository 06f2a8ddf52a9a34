"""What a full weight update must look like for a model folder, checked before anything is
sent to an engine, so that a bad update is rejected whole and the engine stays unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch


class WeightUpdateError(ValueError):
    """A weight update was rejected; the engine was not touched."""


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

    def check(self, named: dict[str, torch.Tensor]) -> int:
        """Raise WeightUpdateError naming every problem; return the payload size in bytes."""
        if not isinstance(named, dict) or not named:
            raise WeightUpdateError("a weight update must be a non-empty dict of name -> tensor")
        problems: list[str] = []
        missing = sorted(set(self.shapes) - set(named))
        unknown = sorted(set(named) - set(self.shapes) - set(self.optional))
        if missing:
            problems.append(f"missing {len(missing)} tensors (first: {missing[:3]})")
        if unknown:
            problems.append(f"unknown names {unknown[:5]}")
        nbytes = 0
        for name, t in named.items():
            want = self.shapes.get(name) or self.optional.get(name)
            if not isinstance(t, torch.Tensor):
                problems.append(f"{name}: not a tensor but {type(t).__name__}")
                continue
            nbytes += t.numel() * t.element_size()
            if want is not None and tuple(t.shape) != want:
                problems.append(f"{name}: shape {tuple(t.shape)}, expected {want}")
            elif not t.is_floating_point():
                problems.append(f"{name}: dtype {t.dtype} is not floating point")
            elif want is not None and not bool(torch.isfinite(t).all()):
                problems.append(f"{name}: contains NaN or inf")
        if problems:
            raise WeightUpdateError("weight update rejected, engine unchanged: "
                                    + "; ".join(problems[:10]))
        return nbytes
