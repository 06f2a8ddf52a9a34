"""Process hygiene inside the sandbox: no process is dumpable, and between jobs every process a
job left behind is killed (``sweep``), everything it wrote is removed (``wipe``) and every SysV
IPC object it made is removed (``remove_ipc``), so nothing of one job reaches the next. Also
the in-memory files (``memfd``) a run's stdin, stdout, stderr and source travel in.

What ``wipe`` and ``remove_ipc`` cost is the program's to choose (a tree 100,000 directories
deep takes five times longer to remove than to make), so between the cases
of an ``io`` job they run under a ``CleanupCap`` (``Overrun`` past it); after a job's reply
they run uncapped, and the host bounds its wait for them on its own.
"""

import ctypes
import itertools
import os
import signal
import stat
import time

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


def no_dump():
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


SWEEP_WAIT_S = 10.0  # killed processes exit on their own; this only catches an unkillable one


def others(keep):
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in keep and p != "1"}


def running(pids):
    """Those of ``pids`` that are not zombies. A zombie runs nothing; one whose parent is the
    template (a candidate can make siblings of itself with CLONE_PARENT) is reaped by it."""
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] != "Z":
                    out.add(pid)
        except OSError:
            continue  # gone
    return out


def sweep(keep):
    """SIGKILL every process of the sandbox except ``keep`` and init, and wait until they are
    gone; reap what is ours. False if one survives (the sandbox must then be thrown away).

    Each round kills the processes not killed before. A round that finds none new means every
    process left has a SIGKILL pending, and such a process can no longer fork: from there the
    set only shrinks. (A fixed number of quick rounds is not enough: on a loaded node a fork
    bomb's 64 processes take longer than that to die, and the sweep failed at random.)"""
    killed = set()
    while True:
        new = others(keep) - killed
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed |= new
        reap()
    deadline = time.monotonic() + SWEEP_WAIT_S
    while True:
        reap()
        left = others(keep)
        if not left or not (left := running(left)):
            return True
        if time.monotonic() > deadline:
            return False
        for pid in left:  # dying already; a pid reused by a new process is killed too
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.0005)


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# What the cleanup between two cases of an io job may cost (the case's program chooses it):
# the host sends these figures with each io job and adds the time to its wait for the reply
# (executors/runner.py: wall_budget). An honest case leaves a few files, removed in
# milliseconds; the entry cap decides a case's fate the same way on every node, and the time
# cap holds where a loaded node makes even that many entries slow.
CASE_CLEAN_ENTRIES = 10_000
CASE_CLEAN_S = 5.0
LIST_CHUNK = 1024  # names read from a directory at a time (it may hold millions)


class Overrun(Exception):
    """A run left more to clean than its ``CleanupCap`` allows."""


class CleanupCap:
    """At most ``entries`` directory entries (files, directories, links, IPC objects) and
    ``seconds`` of time for one cleanup; ``charge`` raises Overrun past either."""

    def __init__(self, entries, seconds):
        self.entries, self.seconds = entries, seconds
        self.left = entries
        self.deadline = time.monotonic() + seconds

    def charge(self, n=0):
        self.left -= n
        if self.left < 0:
            raise Overrun(f"more than {self.entries:,} files, directories and IPC objects")
        if time.monotonic() > self.deadline:
            raise Overrun(f"more than {self.seconds:g} s of cleanup")


def first_names(path, n=LIST_CHUNK):
    """Up to ``n`` names in directory ``path`` (never the whole of a huge one at once)."""
    with os.scandir(path) as it:
        return [e.name for e in itertools.islice(it, n)]


def wipe(cap=None):
    """Remove everything a job wrote anywhere it could write; Overrun past ``cap``."""
    for top in WRITABLE:
        while True:
            try:
                names = first_names(top)
            except OSError:
                break
            if not names:
                break
            if cap:
                cap.charge(len(names))
            for name in names:
                remove_tree(os.path.join(top, name), cap)


def remove_tree(path, cap=None):
    """Remove ``path`` and everything below it. A job can nest directories deeper than
    Python's recursion limit and than PATH_MAX (by ``chdir`` into each new one), so the walk
    keeps an explicit stack and works relative to the directory it is in."""
    parent, name = os.path.split(path)
    os.chdir(parent)
    try:
        remove_here(name, cap)
    finally:
        os.chdir("/")


def remove_here(name, cap=None):
    """Remove ``name`` (relative to the current directory) and everything below it. A
    directory is read ``LIST_CHUNK`` names at a time and read again once those are gone."""
    stack = [name]  # names relative to the current directory; None: go back up one level
    while stack:
        if cap:
            cap.charge()
        entry = stack[-1]
        if stat.S_ISDIR(os.lstat(entry).st_mode):
            try:
                os.chmod(entry, 0o700)
            except OSError:
                pass
            names = first_names(entry)
            if names:
                if cap:
                    cap.charge(len(names))
                os.chdir(entry)
                stack.append(None)
                stack.extend(names)
                continue
            os.rmdir(entry)
        else:
            os.unlink(entry)
        stack.pop()
        while stack and stack[-1] is None:
            stack.pop()
            os.chdir("..")


IPC_RMID = 0
IPC_KINDS = (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl"))


def remove_ipc(cap=None):
    """Remove every SysV shared memory segment, message queue and semaphore set of the
    sandbox's IPC namespace, so none reaches the next job (the namespace outlives jobs);
    Overrun past ``cap``."""
    for kind, ctl in IPC_KINDS:
        with open(f"/proc/sysvipc/{kind}") as f:
            rows = f.read().splitlines()[1:]
        for row in rows:
            if cap:
                cap.charge(1)
            ipc_id = int(row.split()[1])
            args = (ipc_id, 0, IPC_RMID, None) if kind == "sem" else (ipc_id, IPC_RMID, None)
            if getattr(LIBC, ctl)(*args) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"cannot remove SysV {kind} {ipc_id}: {os.strerror(err)}")


def memfd(name, data=b""):
    fd = os.memfd_create(name, 0)
    if data:
        os.write(fd, data)
        os.lseek(fd, 0, 0)
    return fd


def read_capped(fd, cap):
    """Up to ``cap`` bytes of the in-memory file ``fd`` from its start, and its whole size."""
    size = os.fstat(fd).st_size
    return (os.pread(fd, min(cap, size), 0) if size else b""), size
