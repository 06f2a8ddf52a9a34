"""The executor fleet's options (``executor.*`` in ``rlce train``), in a module of their own so
that a config schema can name them without importing Ray."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import Limits


@dataclass
class FleetConfig:
    """``resource``: a custom Ray resource each executor actor asks one unit of (give it only
    to the CPU node type that should run sandboxes); None places actors anywhere."""

    min_actors: int = 1
    max_actors: int = 4
    workers_per_actor: int | None = None  # None: the node's cores
    actor_cpus: float = 1.0
    resource: str | None = None
    max_in_flight_per_actor: int | None = None  # None: 16 per worker
    max_pending: int = 10_000
    max_retries: int = 2
    dedup: bool = True
    dedup_window: int = 4096
    idle_shrink_s: float = 30.0
    request_resources: bool = True
    sandbox: dict[str, Any] = field(default_factory=dict)  # SandboxConfig fields, every actor
    # the time limit of jobs that set none (per test for io, per job otherwise); None: the
    # job schema's own default (``Limits.timeout_s``)
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.min_actors <= self.max_actors or self.max_actors < 1:
            raise ValueError(f"executor fleet needs 0 <= min_actors <= max_actors and "
                             f"max_actors >= 1, got {self.min_actors}..{self.max_actors}")
        if self.max_pending < 1:
            raise ValueError(f"executor.max_pending must be >= 1, got {self.max_pending}")
        if self.timeout_s is not None and not 0 < self.timeout_s <= Limits.MAX_TIMEOUT_S:
            raise ValueError(f"executor.timeout_s must lie in (0, {Limits.MAX_TIMEOUT_S}], "
                             f"got {self.timeout_s}")
