"""Ray nodes started with `ray start --block` on loopback for multi-node tests, each in its
own process group so that the test ends exactly the nodes it started (by pid)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
COMMON = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]


def start_nodes(nodes: list[list[str]], env: dict[str, str], head_wait_s: float = 8.0,
                node_wait_s: float = 2.0) -> list[subprocess.Popen]:
    """Start each node (the first is the head); the caller must `stop_nodes` them."""
    procs = []
    for i, args in enumerate(nodes):
        procs.append(subprocess.Popen([RAY, "start", *args, *COMMON], env=env,
                                      start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        time.sleep(head_wait_s if i == 0 else node_wait_s)
    return procs


def stop_nodes(procs: list[subprocess.Popen], port: int) -> None:
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    # `ray start --head` leaves its address for later plain ray.init() calls; remove ours
    current = Path("/tmp/ray/ray_current_cluster")
    if current.exists() and str(port) in current.read_text():
        current.unlink()
