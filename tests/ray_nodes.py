"""Ray nodes started with `ray start --block` on loopback for multi-node tests, each in its
own process group so that the test ends exactly the nodes it started (by pid).

Several nodes on one host, beside the test session's own Ray, must not share a port: each node
gets free ports for its dashboard agent (whose default 52365 the session's Ray already holds,
and without which the head never offers a job agent), runtime-env agent, metrics exporter and
node and object managers, and the head its Ray client server.

Nor may they share a temp dir. In one, nodes that start together name their socket files
(raylet.1, plasma_store.1) after the ones that exist, can pick the same name, and one raylet
dies with "bind: Address already in use"; and they share the job's working_dir copy in
runtime_resources, which a node may delete while the job's driver still imports
from it (a module then comes from wherever else it is installed). So each node gets its own.

Every wait here is for an event (a port that answers, a node count), with a generous bound,
never a fixed delay: on a busy machine a node takes as long as it takes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
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


def wait_until(condition, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.2)


def accepts_tcp(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def head_up(head: subprocess.Popen, port: int) -> bool:
    if head.poll() is not None:
        raise RuntimeError(f"`ray start --head --port={port}` exited with {head.returncode}")
    return accepts_tcp(port)


def answers_http(url: str) -> bool:
    """Whether an HTTP server answers at ``url``, with any status (an auth error too)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy from env
    try:
        direct.open(url, timeout=5).close()
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def wait_for_http(url: str, timeout_s: float = 300.0) -> None:
    wait_until(lambda: answers_http(url), f"no answer from {url}", timeout_s)


ALIVE_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1])
want, deadline = int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while sum(n["Alive"] for n in ray.nodes()) < want and time.monotonic() < deadline:
    time.sleep(0.2)
sys.exit(0 if sum(n["Alive"] for n in ray.nodes()) >= want else 1)
"""


def temp_dir(port: int, node: int) -> Path:
    # short: a socket path in it (session_<date>_<pid>/sockets/plasma_store) must fit 107 bytes
    return Path(f"/tmp/rlce-ray-{port}-{node}")


def start_nodes(nodes: list[list[str]], env: dict[str, str],
                timeout_s: float = 300.0) -> list[subprocess.Popen]:
    """Start each node (the first is the head, with ``--port=``; the others once its GCS port
    answers) and return once all are alive in the cluster. The caller must `stop_nodes` them;
    if they do not come up, this stops them and raises."""
    port = int(next(a for a in nodes[0] if a.startswith("--port=")).split("=", 1)[1])
    procs = []
    try:
        for i, args in enumerate(nodes):
            procs.append(subprocess.Popen([RAY, "start", *args, *port_args(i == 0),
                                           f"--temp-dir={temp_dir(port, i)}", *COMMON],
                                          env=env, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            if i == 0:
                wait_until(lambda: head_up(procs[0], port), f"the head's GCS port {port}",
                           timeout_s)
        alive = subprocess.run([sys.executable, "-c", ALIVE_NODES, f"127.0.0.1:{port}",
                                str(len(nodes)), str(timeout_s)], env=env, capture_output=True,
                               text=True, timeout=timeout_s + 60, check=False)
        if alive.returncode:
            raise TimeoutError(f"fewer than {len(nodes)} Ray nodes alive after {timeout_s:.0f} s"
                               f": {alive.stderr[-2000:]}")
    except BaseException:
        stop_nodes(procs, port)
        raise
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
    for node in range(len(procs)):  # logs, sockets, the head's ray_current_cluster
        shutil.rmtree(temp_dir(port, node), ignore_errors=True)  # may be partly written


def kill_node(pid: int) -> None:
    """Lose a node as a machine would be lost: every process below its `ray start` process
    (``pid``: raylet, agents, the workers hosting its actors, their children) is frozen, so
    that none can start another meanwhile, then all are SIGKILLed at once. (`stop_nodes`
    still reaps it.)"""
    import psutil

    frozen: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        while True:
            new = [p for p in [root, *root.children(recursive=True)] if p.pid not in frozen]
            if not new:
                break
            for p in new:
                try:
                    p.suspend()
                except psutil.NoSuchProcess:
                    pass
                frozen[p.pid] = p
    except psutil.NoSuchProcess:
        pass
    for p in frozen.values():
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def actor_pids(pid: int, cls: str) -> list[int]:
    """The worker processes below process ``pid`` (a node's `ray start`, or a driver that
    started its own Ray) that host an actor of class ``cls`` (a Ray worker's title is
    ``ray::<Class>``, then ``.<method>`` while it runs one)."""
    import psutil

    out = []
    for p in psutil.Process(pid).children(recursive=True):
        try:
            title = p.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue  # (sandboxes come and go)
        if title and title[0].split()[0].split(".")[0] == f"ray::{cls}":
            out.append(p.pid)
    return out
