"""Host side of one warm firejail sandbox: start it, talk to its fork server, check it, end it.

A :class:`Sandbox` is one long-lived ``firejail`` process running the
``executors/sandboxed`` package (the zygote).
When the executor runs as root, each worker slot gets its own unprivileged system user
(``rlce-sbx-<slot>``), so sandboxes of different slots cannot signal each other and the
per-user process limit is per slot; otherwise every sandbox runs as the calling user.
"""

from __future__ import annotations

import fcntl
import fnmatch
import functools
import glob
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

from .cgroups import CgroupUnavailable, Layout, SlotCgroup, SlotLimits, detect
from .sandboxed import bundle
from .sandboxed.hygiene import SWEEP_WAIT_S
from .sandboxed.wire import BASE_REPLY_BYTES, frame, reply_cap

PROGRAM = bundle()  # the sandbox's modules, sent on its stdin (see executors/sandboxed)
BOOT = (
    "import json,os,sys\n"
    "def r(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(0,n-len(b))\n"
    "  if not c: raise SystemExit(2)\n"
    "  b+=c\n"
    " return b\n"
    "pkg=type(sys)('sandboxed')\n"
    "pkg.__path__=[]\n"
    "sys.modules['sandboxed']=pkg\n"
    "for name,src in json.loads(r(int.from_bytes(r(4),'big'))).items():\n"
    " m=type(sys)('sandboxed.'+name)\n"
    " m.__package__='sandboxed'\n"
    " sys.modules[m.__name__]=m\n"
    " setattr(pkg,name,m)\n"
    " exec(compile(src,f'sandboxed/{name}.py','exec'),m.__dict__)\n"
    "pkg.zygote.main()\n"
)
# How the sandboxed interpreter starts. Its str/bytes hash secret is fixed (PYTHONHASHSEED=0):
# every candidate is forked from the template and inherits the secret the interpreter drew at
# start-up, so with randomisation on, a program whose output follows set or dict-of-str order
# (`return list(set(words))`) passed or failed depending on which sandbox judged it. There is
# no command-line switch for the seed, so the environment carries it, and the interpreter must
# read its environment: `-I` (isolated) is `-E -P -s`, and -E would ignore PYTHONHASHSEED, so
# it runs with `-P -s` (no script or working directory on sys.path, no user site) and `-S`.
# Dropping -E is safe because the environment is ours: the host starts the sandbox with
# SANDBOX_ENV and nothing else (`env=`), the wrappers and firejail add only the names in
# FIREJAIL_ENV, and check_isolation refuses a sandbox whose interpreter sees any other name,
# any PYTHON* variable but PYTHONHASHSEED=0, or hash randomisation on. (-E also covers the
# few non-PYTHON names the standard library reads only without it, SSLKEYLOGFILE and
# PY_SAX_PARSER: neither is in FIREJAIL_ENV, so they too are refused.)
PYTHON_FLAGS = ("-P", "-s", "-S")
SANDBOX_ENV = {"PYTHONHASHSEED": "0"}
# the sandboxed interpreter's sys.flags that check_isolation requires (fail closed)
PYTHON_SYS_FLAGS = {"hash_randomization": 0, "safe_path": True, "no_user_site": 1, "no_site": 1}
# environment variables firejail itself puts into a sandbox; anything else is a leak
FIREJAIL_ENV = {"container", "FIREJAIL_QUIET", "QT_X11_NO_MITSHM", "QML_DISABLE_DISK_CACHE",
                "KDE_FORK_SLAVES", "PROMPT_COMMAND", "PWD", "SHLVL", "_", "HOME", "USER",
                "LOGNAME", "SHELL", "TERM", "LC_CTYPE", "PATH",
                "DBUS_SESSION_BUS_ADDRESS", "DBUS_SYSTEM_BUS_ADDRESS"}


class SandboxError(RuntimeError):
    """The sandbox infrastructure failed (never the candidate's doing alone)."""


class SandboxBroken(SandboxError):
    """The sandbox failed while a job's program ran, in a way the program can cause (it
    exited, was stopped, or answered wrongly): the job is not retried, which would let a
    program that sees it is failing throw the result away and try again."""


class IsolationError(SandboxError):
    """Isolation is not really in force; the executor must refuse to run jobs."""


@dataclass(frozen=True)
class SandboxConfig:
    firejail: str = "/usr/bin/firejail"
    python: str = "/usr/bin/python3"
    user_prefix: str = "rlce-sbx"
    start_timeout_s: float = 20.0
    # cores, memory and tasks of a whole slot (see executors/cgroups.py). A quarter core
    # beyond the program's one is for the fork server and judge working beside it: at
    # exactly 1.0 the slot's own overlap was throttled and cost 12% of judged runs/s
    slot_cpus: float = 1.25
    slot_memory_mb: int = 4096
    slot_pids: int = 512


# The sandbox's view of the host, as a whitelist: in each directory below, only the names
# listed stay visible (read-only); everything else there, now or in any deployment (the
# checkout with reference solutions in /opt/rlce, service-account tokens under /run/secrets,
# /home, /root, /work, data mounts), is blacklisted. The toolchains: python3, node, g++ (with
# /etc/alternatives for cc), rustc (/usr/lib/rustlib) and Debian's Go (/usr/share/go-*).
VIEW: dict[str, tuple[str, ...]] = {
    "/": ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc", "sys",
          "tmp", "var", "run"),
    "/usr": ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "libexec", "include", "share",
             "local"),
    "/usr/local": ("include",),  # on g++'s include path: denied there, it is an error
    "/var": ("tmp", "lock", "run"),
    "/run": ("lock", "shm", "firejail"),  # firejail fails to start without its own
}
# /usr/share has too many entries to blacklist one by one (firejail takes 128 arguments): it
# is a firejail whitelist, a tmpfs holding only these
USR_SHARE_VIEW = ("go", "go-*", "zoneinfo")
# /etc is rebuilt from these alone (firejail --private-etc): the dynamic linker's cache and
# the alternatives links compilers go through; no passwd, hosts or host configuration
ETC_VIEW = ("alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime")


def hidden_paths() -> list[str]:
    """Every path the sandbox must not see: the entries of each VIEW directory not kept."""
    hidden = []
    for top, keep in VIEW.items():
        for name in sorted(os.listdir(top)) if os.path.isdir(top) else []:
            if not any(fnmatch.fnmatchcase(name, k) for k in keep):
                hidden.append(os.path.join(top, name))
    return hidden


MAX_FIREJAIL_ARGS = 127  # firejail refuses argc >= 128


def firejail_args(cfg: SandboxConfig) -> list[str]:
    """The isolation every sandbox gets (see executors/README.md, 'What the sandbox covers')."""
    args = _firejail_args(cfg)
    if len(args) > MAX_FIREJAIL_ARGS - 8:  # the interpreter's own arguments follow
        raise IsolationError(
            f"this node has too many entries beside the sandbox's view ({len(args)} firejail "
            f"arguments; firejail takes {MAX_FIREJAIL_ARGS}): hidden would be "
            f"{hidden_paths()}")
    return args


def _firejail_args(cfg: SandboxConfig) -> list[str]:
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
        # io_uring does file and socket I/O without the syscalls seccomp and rlimits watch
        "--seccomp=io_uring_setup,io_uring_enter,io_uring_register",
        "--ipc-namespace",  # SysV IPC and POSIX message queues of its own, gone with it
        "--nogroups",
        "--nosound",
        "--no3d",
        "--novideo",
        "--notv",
        "--nou2f",
        "--dbus-user=none",
        "--dbus-system=none",
        "--blacklist=/proc/kcore",
        f"--private-etc={','.join(ETC_VIEW)}",
        *(f"--blacklist={p}" for p in hidden_paths()),
        *(f"--whitelist={p}" for k in USR_SHARE_VIEW for p in sorted(glob.glob(f"/usr/share/{k}"))),
        "--machine-id",
        "--hostname=sandbox",
        "--rlimit-nproc=512",
        "--rlimit-nofile=1024",
    ]


STOP_POLL_S = 0.5  # while a request waits, how often the host checks the fork server is not stopped
# How long the host waits, after a job's reply, for the fork server's ready frame: the sweep of
# what the job left running (SWEEP_WAIT_S at most, for a process that will not die) and the
# wipe of what it wrote, which the program chooses (a tree 100,000 directories deep takes
# seconds). A sandbox that misses it is replaced; the job's verdict, already given, stands.
READY_WAIT_S = SWEEP_WAIT_S + 10
SLOT_OVERHEAD_MB = 1024  # slot memory beyond a job's own: fork server, judge, tmpfs files

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


@functools.cache
def cgroup_layout() -> Layout:
    """The node's cgroup layout, detected once; IsolationError where slots cannot be bounded."""
    try:
        return detect()
    except (CgroupUnavailable, OSError) as e:
        raise IsolationError(
            f"no usable cgroup to bound each sandbox slot's CPU, memory and tasks ({e}); "
            "refusing to run jobs. Run the executor as root (or with a delegated cgroup v2 "
            "subtree offering cpu, memory and pids)") from None


def slot_cgroup(cfg: SandboxConfig, slot: int) -> SlotCgroup:
    limits = SlotLimits(cfg.slot_cpus, cfg.slot_memory_mb, cfg.slot_pids)
    return SlotCgroup(cgroup_layout(), f"{cfg.user_prefix}-slot-{slot}", limits)


def descendants(pid: int) -> list[int]:
    """Host pids of every process below ``pid`` (through /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
            except FileNotFoundError:
                continue
            out += map(int, kids)
            todo += map(int, kids)
    return out


def infrastructure_pids(root: int, probe: dict[str, Any]) -> list[int]:
    """Host pids of the fork server and then the template, found by their pids inside the
    sandbox (the last NSpid entry) among the descendants of the firejail process ``root``."""
    want = [probe["pid"], *probe["children"]]
    found = {}
    for pid in descendants(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        nspids = next(ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:"))
        if len(nspids) > 1 and int(nspids[-1]) in want:
            found[int(nspids[-1])] = pid
    if len(found) != len(want):
        raise SandboxError(f"could not find the sandbox's fork server and template on the "
                           f"host (found {sorted(found.values())} for sandbox pids {want})")
    return [found[p] for p in want]


def is_stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped (SIGSTOP) or in a tracing stop, from /proc/<pid>/stat."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("T", "t")


def infra_state(pid: int) -> dict[str, object]:
    """What a same-uid process could change about ``pid`` to cripple later jobs: its rlimits,
    nice value, scheduling policy and priority, CPU affinity, OOM score adjustment, and
    whether it is stopped (SIGSTOP: the next job's spawn would wait on it until the host gives
    up)."""
    return {
        "run state (stopped)": is_stopped(pid),
        "rlimits": Path(f"/proc/{pid}/limits").read_text(),
        "nice": os.getpriority(os.PRIO_PROCESS, pid),
        "scheduling policy": (os.sched_getscheduler(pid), os.sched_getparam(pid).sched_priority),
        "CPU affinity": os.sched_getaffinity(pid),
        "OOM score": Path(f"/proc/{pid}/oom_score_adj").read_text(),
    }


def _end(p: subprocess.Popen) -> None:
    """Stop a sandbox's firejail process: TERM (firejail tears the namespace down), then KILL."""
    for stream in (p.stdin, p.stdout):
        try:
            stream.close()
        except OSError:
            pass
    _signal_group(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=2)
    except subprocess.TimeoutExpired:
        _signal_group(p.pid, signal.SIGKILL)
        p.wait(timeout=5)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


class Sandbox:
    """One warm sandbox with a fork server inside. Not thread-safe: one slot owns it."""

    def __init__(self, slot: int, cfg: SandboxConfig | None = None) -> None:
        self.slot = slot
        self.cfg = cfg or SandboxConfig()
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.probe: dict[str, Any] = {}
        self._log = None
        self.cgroup: SlotCgroup | None = None
        self._infra: list[int] = []
        self._baseline: dict[int, dict[str, object]] = {}
        self._unready: str | None = None  # id of the request whose ready frame is still owed

    # -- lifecycle
    def start(self) -> None:
        self._infra, self._baseline = [], {}  # a restarted sandbox's are found again below
        self._unready = None
        ids = slot_user(self.cfg, self.slot)
        cmd = firejail_args(self.cfg) + [self.cfg.python, *PYTHON_FLAGS, "-c", BOOT]
        if ids is not None:
            uid, gid = ids
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd]
        # no POSIX message queue can be made (its memory is charged to no limit we set)
        cmd = ["prlimit", "--msgqueue=0:0", *cmd]
        self.cgroup = slot_cgroup(self.cfg, self.slot)
        try:
            self.cgroup.create()
        except (OSError, CgroupUnavailable) as e:
            raise IsolationError(f"cannot make the cgroup of sandbox slot {self.slot}, so its "
                                 f"CPU, memory and tasks would be unbounded: {e}") from None
        self._log = tempfile.TemporaryFile()  # the sandbox's own stderr, for error messages
        self.proc = subprocess.Popen(
            self.cgroup.wrap(cmd),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=dict(SANDBOX_ENV),  # nothing of the executor's environment enters the sandbox
            cwd="/",
            start_new_session=True,
        )
        self.proc.stdin.write(struct.pack(">I", len(PROGRAM)) + PROGRAM)
        self.proc.stdin.flush()
        self.runs = 0
        try:
            reply = self.request({"op": "ping"}, self.cfg.start_timeout_s)
        except SandboxBroken as e:  # no job's program has run in it: not one's doing
            raise SandboxError(f"the sandbox failed to start: {e}") from None
        self.probe = reply["probe"]
        check_isolation(self.probe, expect_uid=ids[0] if ids else os.getuid())
        self._infra = infrastructure_pids(self.proc.pid, self.probe)
        self._baseline = {pid: infra_state(pid) for pid in self._infra}
        outside = [pid for pid in self._infra if pid not in self.cgroup.procs()]
        if outside:
            raise IsolationError(f"sandbox processes {outside} run outside the slot's cgroup "
                                 f"{self.cgroup.dirs['pids']}")
        if len(self._infra) != 2:
            raise SandboxError(f"sandbox slot {self.slot} started with {len(self._infra)} "
                               f"processes where a fork server and a template were expected")
        zygote, template = self._infra
        try:
            self.cgroup.move_to_run(template)
        except OSError as e:
            raise IsolationError(f"cannot move the template of sandbox slot {self.slot} into "
                                 f"its run group: {e}") from None
        if zygote not in self.cgroup.infra_procs() or template not in self.cgroup.run_procs():
            raise IsolationError(f"the fork server and template of sandbox slot {self.slot} "
                                 f"are not in the slot's infra and run groups")
        self.probe.update(self.cgroup.describe())

    def fit_memory(self, job_memory_mb: int) -> None:
        """Size the slot's memory bound for a job: the configured bound, or the job's own
        memory plus SLOT_OVERHEAD_MB (fork server, judge, tmpfs) where that is more."""
        mb = max(self.cfg.slot_memory_mb, job_memory_mb + SLOT_OVERHEAD_MB)
        try:
            self.cgroup.set_memory(mb)
        except OSError as e:
            raise SandboxError(f"cannot set the slot's memory bound to {mb} MiB: {e}") from None

    def infrastructure_changed(self) -> str | None:
        """What a job changed in the fork server or template (limits, priority, scheduling,
        affinity, OOM score), or None. They run as the candidate's uid, so a candidate can
        ``prlimit``, renice or re-pin them; a changed sandbox must be restarted before the next
        job, or every later job of the slot would run crippled."""
        for pid, before in self._baseline.items():
            try:
                now = infra_state(pid)
            except OSError as e:
                return f"sandbox process {pid} is gone ({e})"
            changed = [k for k in before if now[k] != before[k]]
            if changed:
                return f"a job changed the {', '.join(changed)} of sandbox process {pid}"
        return None

    def _stopped_infrastructure(self) -> int | None:
        """The fork server, if a job has stopped it (the host pid), else None. (A stopped
        template is the fork server's to resume: it does once the run's processes are gone.)"""
        if not self._infra:  # still starting: its processes are not known yet
            return None
        pid = self._infra[0]
        try:
            return pid if is_stopped(pid) else None
        except (OSError, IndexError):
            return None  # gone: the channel's end of file says so

    def close(self) -> None:
        """End the sandbox and everything in it, and remove its slot cgroup. SandboxError if
        the slot's processes could not be ended (the slot cannot be reused)."""
        p, self.proc = self.proc, None
        self._unready = None
        if p is not None:
            _end(p)
        if self.cgroup is not None:
            try:
                self.cgroup.remove()
            except (CgroupUnavailable, OSError) as e:
                raise SandboxError(f"the processes of sandbox slot {self.slot} could not be "
                                   f"ended: {e}") from None

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

    @property
    def unready(self) -> bool:
        """Whether a job's reply came and its ready frame is still owed (see ``settle``)."""
        return self._unready is not None

    # -- protocol
    def request(self, msg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one framed request and wait for its answer; SandboxError if the sandbox dies
        or does not answer within ``timeout_s`` (the caller then restarts it).

        After a job's reply (any request but ``ping``) the fork server cleans up and then
        sends a ready frame, which ``settle`` reads; a request made before that settles first
        (the runner settles on its own, so that a failure there is charged to no job)."""
        if not self.alive:
            raise SandboxError("sandbox is not running")
        self.settle()
        rid = secrets.token_hex(8)
        msg = {**msg, "rid": rid}
        try:
            self.proc.stdin.write(frame(msg))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise SandboxError(f"sandbox stopped taking requests: {e}") from None
        deadline = time.monotonic() + timeout_s
        reply = self._frame(deadline, reply_cap(msg), f"reply to a {msg['op']!r} request")
        self.runs += 1
        if reply.get("rid") != rid:  # a stale or forged frame: everything after it is suspect
            raise SandboxBroken(f"sandbox answered request {reply.get('rid')!r} while request "
                               f"{rid!r} was waiting: its channel is out of step")
        if msg["op"] != "ping":
            self._unready = rid
        if not reply.get("ok"):
            raise SandboxBroken(f"sandbox failed: {reply.get('error')}")
        return reply

    def settle(self, timeout_s: float | None = None) -> None:
        """Wait for the ready frame that follows a job's reply: the fork server has ended
        what the job left running and removed what it wrote. Nothing if none is owed.
        SandboxError if it does not come within ``timeout_s`` (default READY_WAIT_S), or says
        the sandbox could not be cleaned, or is not the owed request's; the caller then
        replaces the sandbox, and the job's reply, already given, stands."""
        rid, self._unready = self._unready, None
        if rid is None:
            return
        if not self.alive:
            raise SandboxError("sandbox is not running")
        timeout_s = READY_WAIT_S if timeout_s is None else timeout_s
        ready = self._frame(time.monotonic() + timeout_s, BASE_REPLY_BYTES, "ready frame",
                            late=f"sandbox was not ready {timeout_s:g} s after its last reply")
        if ready.get("rid") != rid or ready.get("ready") is not True:
            raise SandboxBroken(f"sandbox sent something else where the ready frame of request "
                               f"{rid!r} was due: its channel is out of step")
        if not ready.get("ok"):
            raise SandboxBroken(f"sandbox could not clean up after a job: {ready.get('error')}")

    def _frame(self, deadline: float, cap: int, what: str,
               late: str = "sandbox did not answer in time") -> dict[str, Any]:
        """One frame from the sandbox, a JSON object of at most ``cap`` bytes, by
        ``deadline``. The sandbox is untrusted: a frame over its cap (refused unread), an
        unreadable one or one that is not an object is its failure (SandboxBroken), never
        ours; SandboxError(``late``) at the deadline."""
        (n,) = struct.unpack(">I", self._read(4, deadline, late))
        if n > cap:
            raise SandboxBroken(f"sandbox sent a {n}-byte {what}; it is capped at {cap} bytes")
        try:
            obj = json.loads(self._read(n, deadline, late))
        except (ValueError, RecursionError) as e:
            raise SandboxBroken(f"sandbox sent an unreadable {what}: {type(e).__name__}: "
                               f"{str(e)[:200]}") from None
        if not isinstance(obj, dict):
            raise SandboxBroken(f"sandbox sent a {type(obj).__name__} as its {what}, not an "
                               "object")
        return obj

    def _read(self, n: int, deadline: float,
              late: str = "sandbox did not answer in time") -> bytearray:
        """Read exactly ``n`` bytes into one preallocated buffer (linear in ``n``);
        SandboxError(``late``) at ``deadline``."""
        fd = self.proc.stdout.fileno()
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError(late)
            ready, _, _ = select.select([fd], [], [], min(left, STOP_POLL_S))
            if not ready:
                stopped = self._stopped_infrastructure()
                if stopped:  # it can never answer: fail now, not at the deadline
                    raise SandboxBroken(f"sandbox process {stopped} was stopped (SIGSTOP) "
                                       "during the job")
                continue
            k = os.readv(fd, [view[got:]])
            if not k:
                raise SandboxBroken(
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
    if probe.get("ipc_ns") in (None, os.readlink("/proc/self/ns/ipc")):
        problems.append("no private IPC namespace (SysV IPC and message queues are the host's)")
    if probe.get("io_uring") is not False:
        problems.append("io_uring is not blocked by the seccomp filter")
    leaked = set(probe.get("env", [])) - FIREJAIL_ENV - set(SANDBOX_ENV)
    if leaked:
        problems.append(f"environment variables leak into the sandbox: {sorted(leaked)}")
    problems += interpreter_problems(probe.get("python"))
    if problems:
        raise IsolationError(
            "firejail isolation is not in force, refusing to run jobs: " + "; ".join(problems)
            + ". Firejail disables itself where it cannot see kernel threads (many containers):"
            " run executors on a VM or a privileged pod (see cluster/ and executors/README.md)."
        )


def interpreter_problems(seen: Any) -> list[str]:
    """What is wrong with the sandboxed interpreter's PYTHON* environment and flags, as the
    probe saw them from inside (see PYTHON_FLAGS): exactly SANDBOX_ENV, hash randomisation
    off, and the flags of `-P -s -S`. A probe that reports neither fails."""
    seen = seen if isinstance(seen, dict) else {}
    env, flags = seen.get("env"), seen.get("flags")
    env = env if isinstance(env, dict) else {}
    flags = flags if isinstance(flags, dict) else {}
    problems = []
    if env != SANDBOX_ENV:
        extra = sorted(set(env) - set(SANDBOX_ENV))
        problems.append(
            f"the sandboxed interpreter's PYTHON* environment is not exactly {SANDBOX_ENV} "
            f"(PYTHONHASHSEED={env.get('PYTHONHASHSEED')!r}"
            + (f"; also {extra}" if extra else "") + ")")
    randomised = flags.get("hash_randomization")
    if type(randomised) is not int or randomised != 0:  # exactly 0: not missing, None or False
        problems.append("hash randomisation is on in the sandbox (sys.flags.hash_randomization="
                        f"{flags.get('hash_randomization')!r}): a verdict on a program that "
                        "follows set order would depend on the sandbox that gave it")
    wrong = {k: flags.get(k) for k, want in PYTHON_SYS_FLAGS.items()
             if k != "hash_randomization" and flags.get(k) != want}
    if wrong:
        problems.append(f"the sandboxed interpreter's sys.flags are {wrong}, not those of "
                        f"{' '.join(PYTHON_FLAGS)}")
    return problems
