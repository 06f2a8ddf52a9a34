"""Host side of one warm firejail sandbox: start it, talk to its fork server, check it, end it.

A :class:`Sandbox` is one long-lived ``firejail`` process running ``inbox.py`` (the zygote).
When the executor runs as root, each worker slot gets its own unprivileged system user
(``rlce-sbx-<slot>``), so sandboxes of different slots cannot signal each other and the
per-user process limit is per slot; otherwise every sandbox runs as the calling user.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import secrets
import select
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inbox import frame, reply_cap

INBOX = (Path(__file__).parent / "inbox.py").read_bytes()
BOOT = (
    "import os\n"
    "def r(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(0,n-len(b))\n"
    "  if not c: raise SystemExit(2)\n"
    "  b+=c\n"
    " return b\n"
    "src=r(int.from_bytes(r(4),'big'))\n"
    "exec(compile(src,'inbox.py','exec'),{'__name__':'__main__'})\n"
)
# environment variables firejail itself puts into a sandbox; anything else is a leak
FIREJAIL_ENV = {"container", "FIREJAIL_QUIET", "QT_X11_NO_MITSHM", "QML_DISABLE_DISK_CACHE",
                "KDE_FORK_SLAVES", "PROMPT_COMMAND", "PWD", "SHLVL", "_", "HOME", "USER",
                "LOGNAME", "SHELL", "TERM", "LC_CTYPE", "PATH",
                "DBUS_SESSION_BUS_ADDRESS", "DBUS_SYSTEM_BUS_ADDRESS"}


class SandboxError(RuntimeError):
    """The sandbox infrastructure failed (never the candidate's doing alone)."""


class IsolationError(SandboxError):
    """Isolation is not really in force; the executor must refuse to run jobs."""


@dataclass(frozen=True)
class SandboxConfig:
    firejail: str = "/usr/bin/firejail"
    python: str = "/usr/bin/python3"
    user_prefix: str = "rlce-sbx"
    start_timeout_s: float = 20.0


def firejail_args(cfg: SandboxConfig) -> list[str]:
    """The isolation every sandbox gets (see executors/README.md, 'What the sandbox covers')."""
    return [
        cfg.firejail,
        "--quiet",
        "--noprofile",  # everything below is explicit; no profile from the host can loosen it
        "--net=none",
        "--read-only=/",
        "--private-tmp",
        "--private-dev",
        "--caps.drop=all",
        "--nonewprivs",
        "--noroot",
        "--seccomp",
        "--nogroups",
        "--nosound",
        "--no3d",
        "--novideo",
        "--notv",
        "--nou2f",
        "--dbus-user=none",
        "--dbus-system=none",
        "--blacklist=/run/user",
        "--blacklist=/var/run/user",
        "--blacklist=/root",
        "--blacklist=/home",
        "--blacklist=/work",
        "--blacklist=/proc/kcore",
        "--machine-id",
        "--hostname=sandbox",
        "--rlimit-nproc=512",
        "--rlimit-nofile=1024",
    ]


SLOT_DIR = Path(os.environ.get("RLCE_SLOT_DIR", "/run/rlce-slots"))


def claim_slots(count: int) -> tuple[list[int], list[int]]:
    """Claim ``count`` sandbox slot numbers unique on this node, so that runners in several
    processes (executor actors of a fleet) never share a slot's uid. A slot is held by an
    exclusive lock on ``SLOT_DIR/<n>.lock`` for as long as the returned fds stay open; the
    kernel releases it when the process dies. Returns (slots, fds)."""
    d = SLOT_DIR
    try:
        d.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        d = Path(tempfile.gettempdir()) / "rlce-slots"
        d.mkdir(parents=True, exist_ok=True)
    slots: list[int] = []
    fds: list[int] = []
    n = 0
    while len(slots) < count:
        fd = os.open(d / f"{n}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
        else:
            slots.append(n)
            fds.append(fd)
        n += 1
    return slots, fds


def release_slots(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def slot_user(cfg: SandboxConfig, slot: int) -> tuple[int, int] | None:
    """(uid, gid) of the slot's sandbox user, creating it if we are root; None if not root."""
    if os.geteuid() != 0:
        return None
    name = f"{cfg.user_prefix}-{slot}"
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--user-group", name],
            check=True, capture_output=True,
        )
        pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


class Sandbox:
    """One warm sandbox with a fork server inside. Not thread-safe: one slot owns it."""

    def __init__(self, slot: int, cfg: SandboxConfig | None = None) -> None:
        self.slot = slot
        self.cfg = cfg or SandboxConfig()
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.probe: dict[str, Any] = {}
        self._log = None

    # -- lifecycle
    def start(self) -> None:
        ids = slot_user(self.cfg, self.slot)
        cmd = firejail_args(self.cfg) + [self.cfg.python, "-I", "-S", "-c", BOOT]
        if ids is not None:
            uid, gid = ids
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd]
        self._log = tempfile.TemporaryFile()  # the sandbox's own stderr, for error messages
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={},  # nothing of the executor's environment enters the sandbox
            cwd="/",
            start_new_session=True,
        )
        self.proc.stdin.write(struct.pack(">I", len(INBOX)) + INBOX)
        self.proc.stdin.flush()
        self.runs = 0
        reply = self.request({"op": "ping"}, self.cfg.start_timeout_s)
        self.probe = reply["probe"]
        check_isolation(self.probe, expect_uid=ids[0] if ids else os.getuid())

    def close(self) -> None:
        """End the sandbox and everything in it."""
        p, self.proc = self.proc, None
        if p is None:
            return
        for stream in (p.stdin, p.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            os.killpg(p.pid, signal.SIGTERM)  # firejail tears the namespace down on TERM
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=2)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)

    def restart(self) -> None:
        self.close()
        self.start()

    def log_tail(self, n: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-n:].strip()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- protocol
    def request(self, msg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one framed request and wait for its answer; SandboxError if the sandbox dies
        or does not answer within ``timeout_s`` (the caller then restarts it)."""
        if not self.alive:
            raise SandboxError("sandbox is not running")
        rid = secrets.token_hex(8)
        msg = {**msg, "rid": rid}
        try:
            self.proc.stdin.write(frame(msg))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise SandboxError(f"sandbox stopped taking requests: {e}") from None
        deadline = time.monotonic() + timeout_s
        (n,) = struct.unpack(">I", self._read(4, deadline))
        cap = reply_cap(msg)
        if n > cap:
            raise SandboxError(f"sandbox sent a {n}-byte reply; a {msg['op']!r} request's "
                               f"replies are capped at {cap} bytes")
        reply = json.loads(self._read(n, deadline))
        self.runs += 1
        if reply.get("rid") != rid:  # a stale or forged frame: everything after it is suspect
            raise SandboxError(f"sandbox answered request {reply.get('rid')!r} while request "
                               f"{rid!r} was waiting: its channel is out of step")
        if not reply.get("ok"):
            raise SandboxError(f"sandbox failed: {reply.get('error')}")
        return reply

    def _read(self, n: int, deadline: float) -> bytearray:
        """Read exactly ``n`` bytes into one preallocated buffer (linear in ``n``)."""
        fd = self.proc.stdout.fileno()
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError("sandbox did not answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            k = os.readv(fd, [view[got:]])
            if not k:
                raise SandboxError(
                    f"sandbox exited (code {self.proc.poll()}): {self.log_tail()}"
                )
            got += k
        return buf


def check_isolation(probe: dict[str, Any], expect_uid: int) -> None:
    """Refuse to run if the sandbox is not what firejail should have made it.

    Firejail silently runs with no sandbox when it cannot see kernel threads (as inside many
    containers); every property below is measured from inside the sandbox, so that case and
    any other weakening is caught before a single job runs.
    """
    problems = []
    if probe.get("uid") == 0 or probe.get("euid") == 0:
        problems.append("the sandboxed process runs as root")
    if probe.get("uid") != expect_uid:
        problems.append(f"uid is {probe.get('uid')}, expected {expect_uid}")
    if probe.get("CapEff") != "0000000000000000" or probe.get("CapPrm") != "0000000000000000":
        problems.append(f"capabilities are not dropped (CapEff={probe.get('CapEff')})")
    if probe.get("NoNewPrivs") != "1":
        problems.append("no_new_privs is not set")
    if probe.get("Seccomp") != "2":
        problems.append(f"no seccomp filter (Seccomp={probe.get('Seccomp')})")
    if probe.get("pid", 0) > 64 or len(probe.get("pids", [])) > 16:
        problems.append(
            f"no private PID namespace (sandbox sees {len(probe.get('pids', []))} processes)"
        )
    if [i for i in probe.get("ifaces", []) if i != "lo"]:
        problems.append(f"network interfaces visible: {probe['ifaces']}")
    if probe.get("internet"):
        problems.append("the network is reachable")
    if probe.get("host_writable"):
        problems.append("the host filesystem is writable")
    if not probe.get("tmp_writable"):
        problems.append("no private writable /tmp")
    leaked = set(probe.get("env", [])) - FIREJAIL_ENV
    if leaked:
        problems.append(f"environment variables leak into the sandbox: {sorted(leaked)}")
    if problems:
        raise IsolationError(
            "firejail isolation is not in force, refusing to run jobs: " + "; ".join(problems)
            + ". Firejail disables itself where it cannot see kernel threads (many containers):"
            " run executors on a VM or a privileged pod (see cluster/ and executors/README.md)."
        )
