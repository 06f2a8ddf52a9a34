"""One control group per sandbox slot: CPU, memory and process limits shared by everything in it.

Per-process rlimits do not bound a slot: a program that starts many processes (each in its own
session, each with its own ``RLIMIT_CPU``) takes many cores from its neighbours, and tmpfs
files, the judge, the compiler and IPC memory are charged to no rlimit at all. A slot's cgroup
bounds all of them together: ``cpus`` cores, ``memory_mb`` of RAM (no swap), ``pids`` tasks.

Two layouts are supported, picked by :func:`detect` from ``/proc/self/mountinfo`` and
``/proc/self/cgroup``: cgroup v2 (preferred: the executor's own cgroup offers ``cpu``,
``memory`` and ``pids``) and cgroup v1 (``cpu``, ``memory`` and ``pids`` hierarchies, as on
hybrid hosts). Slot cgroups are made below the executor's own cgroup in each hierarchy, so the
node's own limits (a Kubernetes pod's) still cover them; the host's layout is never changed.

Inside a slot the CPU is split in two child groups: ``infra`` (the fork server and judge) and
``run`` (the template and every process a job starts). Without the split the fork server is
one task among the hundreds a fork bomb makes, so it gets a few hundredths of the slot's CPU
and cannot end the run in time; with it, the fork server's group outweighs the run's
``INFRA_WEIGHT`` to one whenever both want the CPU, and the run has all of it otherwise.
Memory and tasks stay bounded on the slot as a whole.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("cpu", "memory", "pids")
PERIOD_US = 100_000
KILL_WAIT_S = 30.0  # how long killed processes of a slot may take to be gone
INFRA_WEIGHT = 8  # the infra group's CPU weight against the run group's, inside a slot
V1_SHARES, V2_WEIGHT = 1024, 100  # the run group's weight: each version's default


class CgroupUnavailable(RuntimeError):
    """No usable cgroup layout: slots cannot be bounded, so no job may run."""


@dataclass(frozen=True)
class SlotLimits:
    cpus: float  # cores the whole slot may use (cpu.max / cfs quota)
    memory_mb: int  # RAM of the whole slot at start (processes, tmpfs, IPC; no swap)
    pids: int  # tasks (processes and threads) of the whole slot


@dataclass(frozen=True)
class Layout:
    """Where this process's cgroups live: ``version`` 2 has one directory for all controllers,
    version 1 one per controller."""

    version: int
    dirs: dict[str, Path]  # controller -> the executor's own cgroup directory


def _mounts() -> list[tuple[str, Path, str, set[str]]]:
    """(fstype, mount point, mount root, super options) of every cgroup mount."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if tail and tail[0] in ("cgroup", "cgroup2"):
            out.append((tail[0], Path(fields[4]), fields[3], set(tail[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            paths[c] = path
    return paths


def _join(mount: Path, root: str, path: str) -> Path:
    rel = path[len(root):] if root != "/" and path.startswith(root) else path
    return mount / rel.lstrip("/")


def _v2(mounts: list, paths: dict[str, str]) -> tuple[Layout | None, str]:
    for fstype, mount, root, _ in mounts:
        if fstype != "cgroup2" or "" not in paths:
            continue
        own = _join(mount, root, paths[""])
        have = set((own / "cgroup.controllers").read_text().split())
        missing = [c for c in CONTROLLERS if c not in have]
        if missing:
            return None, f"cgroup v2 at {own} offers no {', '.join(missing)} controller"
        try:
            (own / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in CONTROLLERS))
        except OSError as e:
            return None, f"cgroup v2 at {own}: cannot delegate controllers to slots ({e})"
        return Layout(2, {c: own for c in CONTROLLERS}), ""
    return None, "no cgroup v2 mount"


def _v1(mounts: list, paths: dict[str, str]) -> tuple[Layout | None, str]:
    dirs = {}
    for fstype, mount, root, opts in mounts:
        for c in CONTROLLERS:
            if fstype == "cgroup" and c in opts and c in paths:
                dirs[c] = _join(mount, root, paths[c])
    missing = [c for c in CONTROLLERS if c not in dirs]
    if missing:
        return None, f"no cgroup v1 hierarchy for {', '.join(missing)}"
    unwritable = [str(d) for d in dirs.values() if not os.access(d, os.W_OK)]
    if unwritable:
        return None, f"cgroup v1 directories not writable: {', '.join(unwritable)}"
    return Layout(1, dirs), ""


def detect() -> Layout:
    """The usable cgroup layout (v2 preferred, else v1); CgroupUnavailable says why neither."""
    mounts, paths = _mounts(), _own_paths()
    layout, why2 = _v2(mounts, paths)
    if layout is None:
        layout, why1 = _v1(mounts, paths)
        if layout is None:
            raise CgroupUnavailable(f"{why2}; {why1}")
    return layout


class SlotCgroup:
    """The cgroup(s) of one slot. ``create`` makes them with their limits, ``wrap`` prefixes a
    command so that it starts inside them, ``remove`` kills what is left and deletes them."""

    def __init__(self, layout: Layout, name: str, limits: SlotLimits) -> None:
        self.layout = layout
        self.limits = limits
        self.dirs = {c: d / name for c, d in layout.dirs.items()}
        self.infra = self.dirs["cpu"] / "infra"  # the fork server and judge
        self.run = self.dirs["cpu"] / "run"  # the template and every process of a job
        self.memory_mb: int | None = None  # the memory bound in force; None: none yet

    def _unique_dirs(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    def create(self) -> None:
        """(Re)make the slot's cgroups; one left by a runner that died is emptied first."""
        self.remove()
        for d in self._unique_dirs():
            d.mkdir()
        self.memory_mb = None
        if self.layout.version == 2:
            self._limit_v2()
        else:
            self._limit_v1()
        self._split_cpu()

    def _split_cpu(self) -> None:
        """The infra and run groups under the slot's cpu cgroup, weighted INFRA_WEIGHT : 1.
        On v2 the slot itself then holds no process (its children do)."""
        if self.layout.version == 2:
            (self.dirs["cpu"] / "cgroup.subtree_control").write_text("+cpu")
        for d, weight in ((self.infra, INFRA_WEIGHT), (self.run, 1)):
            d.mkdir()
            if self.layout.version == 2:
                (d / "cpu.weight").write_text(str(weight * V2_WEIGHT))
            else:
                (d / "cpu.shares").write_text(str(weight * V1_SHARES))

    def _limit_v2(self) -> None:
        d, lim = self.dirs["cpu"], self.limits
        (d / "cpu.max").write_text(f"{int(lim.cpus * PERIOD_US)} {PERIOD_US}")
        if (d / "memory.swap.max").exists():
            (d / "memory.swap.max").write_text("0")
        (d / "pids.max").write_text(str(lim.pids))
        self.set_memory(lim.memory_mb)

    def _limit_v1(self) -> None:
        lim, cpu = self.limits, self.dirs["cpu"]
        (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(int(lim.cpus * PERIOD_US)))
        (self.dirs["pids"] / "pids.max").write_text(str(lim.pids))
        self.set_memory(lim.memory_mb)

    def set_memory(self, mb: int) -> None:
        """Bound the slot's RAM (processes, tmpfs, IPC; no swap) at ``mb``; a write only when
        it changes. v1 keeps memsw >= limit: raise memsw first, lower it last."""
        if mb == self.memory_mb:
            return
        mem, value = self.dirs["memory"], str(mb << 20)
        if self.layout.version == 2:
            (mem / "memory.max").write_text(value)
        else:
            files = [mem / "memory.limit_in_bytes"]
            if (mem / "memory.memsw.limit_in_bytes").exists():  # swap accounting on: no swap
                files.append(mem / "memory.memsw.limit_in_bytes")
            lower = self.memory_mb is None or mb < self.memory_mb
            for f in files if lower else reversed(files):
                f.write_text(value)
        self.memory_mb = mb

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` run through a shell that first moves itself into the slot's cgroups (the
        infra group for the CPU), so that no process of the sandbox ever runs outside them."""
        dirs = [self.infra if d == self.dirs["cpu"] else d for d in self._unique_dirs()]
        moves = " && ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in dirs)
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "rlce-slot", *cmd]

    def move_to_run(self, pid: int) -> None:
        """Put ``pid`` (the template, before any job) in the run group: all it starts follow."""
        (self.run / "cgroup.procs").write_text(str(pid))

    @staticmethod
    def _read_procs(d: Path) -> list[int]:
        try:
            return [int(p) for p in (d / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def infra_procs(self) -> list[int]:
        return self._read_procs(self.infra)

    def run_procs(self) -> list[int]:
        return self._read_procs(self.run)

    def procs(self) -> list[int]:
        """Processes in the slot: on v1 the pids hierarchy holds all of them; on v2 the
        slot's processes are in its two CPU groups."""
        if self.layout.version == 2:
            return self.infra_procs() + self.run_procs() + self._read_procs(self.dirs["pids"])
        return self._read_procs(self.dirs["pids"])

    def kill(self) -> None:
        """SIGKILL every process in the slot until none is left (a fork bomb included: it is
        bounded by pids.max, and killed processes fork no more). Killed processes that free a
        lot of memory on a loaded node take a while to go: they get KILL_WAIT_S."""
        kill_file = self.dirs["pids"] / "cgroup.kill"
        if kill_file.exists():
            kill_file.write_text("1")
        deadline = time.monotonic() + KILL_WAIT_S
        pause = 0.0005
        while True:
            pids = self.procs()
            if not pids:
                return
            if time.monotonic() > deadline:
                raise CgroupUnavailable(f"processes in {self.dirs['pids']} survive SIGKILL for "
                                        f"{KILL_WAIT_S:.0f} s: {pids[:20]}")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def remove(self) -> None:
        """Kill everything in the slot and delete its cgroups (nothing if they do not exist)."""
        if not any(d.exists() for d in self._unique_dirs()):
            return
        self.kill()
        for d in (self.infra, self.run, *self._unique_dirs()):
            if d.exists():
                _rmdir_when_empty(d)

    def describe(self) -> dict[str, object]:
        """What the self-check reports: the layout and the slot's limits."""
        return {"cgroup_version": self.layout.version, "cgroup": str(self.dirs["pids"]),
                "slot_cpus": self.limits.cpus, "slot_memory_mb": self.limits.memory_mb,
                "slot_pids": self.limits.pids}


def _rmdir_when_empty(d: Path) -> None:
    """rmdir a cgroup whose processes were killed; exiting tasks may hold it a moment."""
    deadline = time.monotonic() + KILL_WAIT_S
    pause = 0.0005
    while True:
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY until the killed tasks are fully gone
            if time.monotonic() > deadline:
                raise  # still busy: let the OSError name the cgroup
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
