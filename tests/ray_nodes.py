"""Ray nodes started with `ray start --block` on loopback for multi-node tests, each in its
own process group so that the test ends exactly the nodes it started (by pid).

Several nodes on one host, beside the test session's own Ray, must not share a port: each node
gets free ports for its dashboard agent (whose default 52365 the session's Ray already holds,
and without which the head never offers a job agent), runtime-env agent, metrics exporter and
node and object managers, and the head its Ray client server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
COMMON = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]


PER_NODE_PORTS = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                  "--runtime-env-agent-port", "--metrics-export-port", "--node-manager-port",
                  "--object-manager-port")


def free_ports(n: int) -> list[int]:
    """n distinct ports free on loopback now (all held open together, so no repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_args(head: bool) -> list[str]:
    names = PER_NODE_PORTS + (("--ray-client-server-port",) if head else ())
    return [f"{name}={port}" for name, port in zip(names, free_ports(len(names)))]


def start_nodes(nodes: list[list[str]], env: dict[str, str], head_wait_s: float = 8.0,
                node_wait_s: float = 2.0) -> list[subprocess.Popen]:
    """Start each node (the first is the head); the caller must `stop_nodes` them."""
    procs = []
    for i, args in enumerate(nodes):
        procs.append(subprocess.Popen([RAY, "start", *args, *port_args(i == 0), *COMMON],
                                      env=env,
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
