"""Joining Ray the same way everywhere on the driver side: the executor package's helper
(``executors`` stands alone, so the one copy lives there)."""

from executors.fleet import ensure_ray

__all__ = ["ensure_ray"]
