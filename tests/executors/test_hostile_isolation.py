"""Hostile programs against the sandbox's isolation from its host and from other jobs
(issue 15, classes 3, 4, 5, 6 and 13): the fork server's limits, IPC, the compiler's memory,
the slot's cgroup, and what a candidate can read in the documented deployment."""

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from executors import Runner
from executors.sandbox import PYTHON_FLAGS
from tests.executors.conftest import asserts_job, io_job, run

pytestmark = pytest.mark.slow  # every test starts or uses real sandboxes

LIBC = ctypes.CDLL(None, use_errno=True)
IPC_CREAT, IPC_RMID = 0o1000, 0
KEY = 0x524C4345  # "RLCE"
OK_PRINT = "print('ok')\n"


def py_io(src, want="ok", timeout=5):
    return io_job(src, [("", want)], limits={"timeout_s": timeout})


def honest_jobs_pass(runner):
    """An io job and a judged job both pass, at the first try."""
    for job in (py_io(OK_PRINT), asserts_job("def f():\n    return 1\n", ["assert f() == 1"])):
        v = run(runner, job)
        assert v["status"] == "passed" and v["retries"] == 0, v


def host_sysv_keys(kind):
    rows = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
    return {int(r.split()[0]) for r in rows}


# --------------------------------------------------------------------------- class 3

TAMPER = {
    # a hard limit below what the next candidate sets: its setrlimit fails, every job would
    "prlimit": "os.prlimit(pid, resource.RLIMIT_NOFILE, (64, 64))",
    "renice": "os.setpriority(os.PRIO_PROCESS, pid, 19)",
    "affinity": "os.sched_setaffinity(pid, {0})",
    "sched_idle": "os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))",
    "oom_score": "open(f'/proc/{pid}/oom_score_adj', 'w').write('1000')",
}


def below(pid):
    """Host pids of the processes below ``pid``."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for t in os.listdir(f"/proc/{p}/task"):
            kids = [int(k) for k in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
            out += kids
            todo += kids
    return out


def infra_processes(runner):
    """(pid, nice, policy, affinity, oom_score_adj, rlimits) of each fork server and template
    of ``runner``'s sandboxes: the python3 -P -s -S processes below their firejail processes."""
    out = []
    for box in runner._sandboxes:
        interpreter = "\0".join([box.cfg.python, *PYTHON_FLAGS]).encode()
        for pid in below(box.proc.pid):
            if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(interpreter):
                continue
            stat = Path(f"/proc/{pid}/stat").read_text()
            f = stat[stat.rindex(")") + 2:].split()
            out.append((pid, f[16], f[38], os.sched_getaffinity(pid),
                        Path(f"/proc/{pid}/oom_score_adj").read_text().strip(),
                        Path(f"/proc/{pid}/limits").read_text()))
    assert len(out) == 2 * len(runner._sandboxes), out
    return out


@pytest.mark.parametrize("attack", sorted(TAMPER))
def test_candidate_cannot_cripple_the_fork_server(solo, attack):
    src = ("import os, resource\nfor p in os.listdir('/proc'):\n"
           "    if not p.isdigit() or int(p) in (1, os.getpid()):\n        continue\n"
           f"    pid = int(p)\n    try:\n        {TAMPER[attack]}\n"
           "    except OSError:\n        pass\nprint('ok')\n")
    run(solo, py_io(src))
    honest_jobs_pass(solo)
    cpus = os.sched_getaffinity(0)
    for pid, nice, policy, affinity, oom, limits in infra_processes(solo):
        assert (nice, policy, oom) == ("0", "0", "0"), (attack, pid, nice, policy, oom)
        assert affinity == cpus and "Max open files            1024" in limits, (attack, pid)


# the fork server is the process whose parent is the sandbox's init (pid 1), found by walking
# up from us (our parent is the template, or the judge's candidate's)
FIND_FORK_SERVER = (
    "import os, signal\n"
    "def parent(p):\n"
    "    return int(open(f'/proc/{p}/stat').read().rpartition(')')[2].split()[1])\n"
    "def fork_server():\n"
    "    while True:\n        try:\n            p = os.getppid()\n"
    "            while parent(p) != 1:\n                p = parent(p)\n            return p\n"
    "        except FileNotFoundError:  # the middle process went while we walked\n"
    "            pass\n")
STOP_TEMPLATE = FIND_FORK_SERVER + (
    "zygote = fork_server()\n"
    "children = [int(p) for p in os.listdir('/proc') if p.isdigit() and p != str(os.getpid())\n"
    "            and int(p) != zygote and parent(p) == zygote]\n"
    "os.kill(min(children), signal.SIGSTOP)  # the oldest: the template\n"
    "def f():\n    return 1\n")


def test_a_stopped_template_is_replaced_before_the_next_job(solo):
    """SIGSTOP on the template (same uid) used to leave it stopped for the next job of the
    slot, whose spawn then waited until the host gave up and retried it. The fork server
    resumes it once the run's processes are gone, and the sandbox is not restarted."""
    v = run(solo, asserts_job(STOP_TEMPLATE, ["assert f() == 1"], limits={"timeout_s": 3}))
    assert (v["status"], v["retries"]) == ("passed", 0), v  # it stopped nothing of its own job
    honest_jobs_pass(solo)


# when the judge stops asking (a test failed), kill the fork server on the way out, so that
# the job's failing result is lost: a retry would be a second chance at passing
VETO = FIND_FORK_SERVER + (
    "zygote, real_exit = fork_server(), os._exit\n"
    "def veto(code):\n    os.kill(zygote, signal.SIGKILL)\n    real_exit(code)\n"
    "os._exit = veto\n"
    "def f():\n    return 2\n")


def test_a_program_that_brings_its_sandbox_down_gets_no_second_try(solo):
    v = run(solo, asserts_job(VETO, ["assert f() == 1", "assert f() == 1"]))
    assert (v["status"], v["retries"]) == ("runtime_error", 0), v
    assert "brought its sandbox down" in v["message"], v
    honest_jobs_pass(solo)


CLONE_PARENT = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                # clone(CLONE_PARENT | SIGCHLD): a sibling, the template's child
                "for _ in range(3):\n"
                "    if libc.syscall(56, 0x8000 | 17, 0, 0, 0, 0) == 0:\n"
                "        os._exit(0)\n")


def test_siblings_made_with_clone_parent_are_reaped_not_waited_for(solo):
    """A candidate is the template's child, so clone(CLONE_PARENT) gives the template
    children it did not start; their zombies made the sweep wait 10 s and fail, and the
    job was retried until it was judged runtime_error (65 s for a 2 s job)."""
    io = run(solo, io_job(CLONE_PARENT + "print('ok')\n", [("", "ok\n")],
                          limits={"timeout_s": 2}))
    judged = run(solo, asserts_job(CLONE_PARENT + "def f():\n    return 1\n",
                                   ["assert f() == 1"], limits={"timeout_s": 2}))
    for v in (io, judged):
        assert (v["status"], v["retries"]) == ("passed", 0), v
    honest_jobs_pass(solo)


def test_a_program_that_stops_its_template_gets_no_exit_status(solo):
    """The template reaps each candidate and reports its exit status; one that stopped it
    cannot be reported as having ended, so its run lasts until its time is up."""
    src = STOP_TEMPLATE + "print('ok')\n"
    v = run(solo, io_job(src, [("", "ok\n")], limits={"timeout_s": 1}))
    assert (v["status"], v["retries"]) == ("timeout", 0), v
    honest_jobs_pass(solo)


# --------------------------------------------------------------------------- class 4

SHMGET = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
          f"KEY = {KEY}\n")


def test_sysv_objects_do_not_reach_the_host(runner):
    before = {k: host_sysv_keys(k) for k in ("shm", "msg", "sem")}
    src = SHMGET + ("assert libc.shmget(KEY, 1 << 20, 0o1666) >= 0\n"
                    "assert libc.msgget(KEY, 0o1666) >= 0\n"
                    "assert libc.semget(KEY, 1, 0o1666) >= 0\n" + OK_PRINT)
    v = run(runner, py_io(src))
    assert v["status"] == "passed", v
    for kind, keys in before.items():
        assert KEY not in host_sysv_keys(kind) - keys, kind


def test_sysv_objects_do_not_survive_into_the_next_job(solo):
    make = SHMGET + ("i = libc.shmget(KEY, 4096, 0o1666)\nassert i >= 0\n"
                     "assert libc.msgget(KEY, 0o1666) >= 0 and libc.semget(KEY, 1, 0o1666) >= 0\n"
                     "libc.shmat.restype = ctypes.c_void_p\n"
                     "ctypes.memmove(libc.shmat(i, None, 0), b'secret', 6)\n" + OK_PRINT)
    look = SHMGET + ("left = [f for f in ('shmget', 'msgget') if getattr(libc, f)(KEY, 0, 0) >= 0]"
                     "\nleft += ['semget'] if libc.semget(KEY, 0, 0) >= 0 else []\n"
                     "print('ok' if not left else left)\n")
    assert run(solo, py_io(make))["status"] == "passed"
    v = run(solo, py_io(look))
    assert v["status"] == "passed", v


def test_concurrent_slots_cannot_talk_over_sysv_ipc(runner):
    """One job makes a segment and waits; the other, in the other slot, looks for it until its
    time runs out: it must never find it (the old executor shared the host's namespace)."""
    make = SHMGET + ("assert libc.shmget(KEY + 2, 4096, 0o1666) >= 0\nimport time\n"
                     "time.sleep(4)\n")
    look = SHMGET + ("while libc.shmget(KEY + 2, 0, 0) < 0:\n    pass\nprint('LEAK')\n")
    maker = runner.submit(io_job(make, [("", "")], id="maker", limits={"timeout_s": 3}))
    looker = runner.submit(io_job(look, [("", "")], id="looker", limits={"timeout_s": 2}))
    v = looker.result(timeout=120)
    maker.result(timeout=120)
    assert v["status"] == "timeout" and "LEAK" not in v["stdout"], v


@pytest.fixture
def host_segment():
    """A host SysV segment anyone may read (mode 0666), as some host software makes them."""
    shm = LIBC.shmget(KEY + 1, 4096, IPC_CREAT | 0o666)
    assert shm >= 0, os.strerror(ctypes.get_errno())
    yield KEY + 1
    LIBC.shmctl(shm, IPC_RMID, None)


def test_host_segments_are_not_reachable(runner, host_segment):
    src = SHMGET + f"print('ok' if libc.shmget({host_segment}, 0, 0) < 0 else 'LEAK')\n"
    v = run(runner, py_io(src))
    assert v["status"] == "passed", v


def test_posix_message_queues_cannot_be_made(runner):
    src = ("import ctypes, os\nrt = ctypes.CDLL('librt.so.1', use_errno=True)\n"
           "q = rt.mq_open(b'/rlce-isolation', os.O_CREAT | os.O_RDWR, 0o666, None)\n"
           "print('ok' if q < 0 else 'LEAK')\n")
    try:
        v = run(runner, py_io(src))
        assert v["status"] == "passed", v
    finally:  # the old executor made it in the host's namespace
        ctypes.CDLL("librt.so.1").mq_unlink(b"/rlce-isolation")


# --------------------------------------------------------------------------- class 5


@pytest.mark.parametrize("language, source", [
    ("cpp", '#include "/dev/zero"\nint main(){}\n'),
    ("rust", 'static Z: &[u8] = include_bytes!("/dev/zero");\nfn main(){print!("{}", Z.len());}\n'),
])
def test_compiler_memory_is_bounded(runner, language, source):
    v = run(runner, io_job(source, [("", "")], language=language))
    assert v["status"] == "compile_error", v
    # the compiler ran out of memory; it did not run until the compile time limit
    assert "timed out" not in v["stderr"], v
    assert any(m in v["stderr"] for m in ("memory exhausted", "out of memory",
                                          "memory allocation of")), v


# --------------------------------------------------------------------------- class 6


def slot_cgroups(runner, **limits):
    """controller -> the host cgroup directory a candidate of ``runner`` runs in (v1 names)."""
    v = run(runner, io_job("print(open('/proc/self/cgroup').read())", [("", "")],
                           limits=limits))
    out = {}
    for line in filter(None, v["stdout"].splitlines()):
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            c = c.removeprefix("name=")
            out[c or "unified"] = Path("/sys/fs/cgroup") / (c or "unified") / path.lstrip("/")
    return out


def test_each_slot_is_bounded_by_its_own_cgroup(runner):
    dirs = slot_cgroups(runner)
    run_group, mem, pids = dirs["cpu"], dirs["memory"], dirs["pids"]
    # a job's processes run in the slot's run group, beside the infra group that holds the
    # fork server; the slot's quota bounds both
    assert run_group.name == "run", run_group
    cpu = run_group.parent
    assert cpu != Path("/sys/fs/cgroup/cpu"), "candidates run in the host's root cpu cgroup"
    assert (int((cpu / "infra" / "cpu.shares").read_text())
            == 8 * int((run_group / "cpu.shares").read_text()))
    quota = int((cpu / "cpu.cfs_quota_us").read_text())
    period = int((cpu / "cpu.cfs_period_us").read_text())
    # the slot's cores: the program's one and a quarter for the fork server and judge
    assert 0 < quota <= 1.25 * period, (quota, period)
    assert int((mem / "memory.limit_in_bytes").read_text()) <= 4096 << 20
    assert int((pids / "pids.max").read_text()) <= 512
    other = {p for p in Path(pids).parent.glob("rlce-sbx-slot-*")} - {pids}
    assert other, "the runner's second slot has no cgroup of its own"


def test_slot_memory_bound_follows_the_job(solo):
    """A job may ask for more memory than the slot's default bound: the slot grows for it
    (its memory plus 1 GiB for the fork server, judge and tmpfs), and shrinks back after.
    (The bound stays as the job left it until the next job; the host reads it then.)"""
    def bound_mb(**limits):
        mem = slot_cgroups(solo, **limits)["memory"]
        return int((mem / "memory.limit_in_bytes").read_text()) >> 20

    assert (bound_mb(memory_mb=6000), bound_mb()) == (7024, 4096)


def test_spinners_in_many_sessions_stay_in_the_slot(runner):
    """Each spinner reports its cpu cgroup before it spins: all of them are the slot's, whose
    quota bounds them together (per-process RLIMIT_CPU would give each its own second)."""
    slot = slot_cgroups(runner)["cpu"]
    src = ("import os, sys\nfor _ in range(8):\n    if os.fork() == 0:\n        os.setsid()\n"
           "        line = [l for l in open('/proc/self/cgroup') if ':cpu:' in l][0]\n"
           "        os.write(1, line.encode())\n        while True:\n            pass\n"
           "while True:\n    pass\n")
    v = run(runner, io_job(src, [("", "")], limits={"timeout_s": 1}))
    assert v["status"] == "timeout", v
    seen = {Path("/sys/fs/cgroup/cpu") / ln.split(":", 2)[2].lstrip("/")
            for ln in v["stdout"].splitlines() if ln}
    assert seen and all(d.name == "run" and d.parent.parent == slot.parent.parent
                        and d.parent.name.startswith("rlce-sbx-slot-")
                        for d in seen), (seen, slot)
    honest_jobs_pass(runner)


def test_fork_bomb_stays_inside_the_slot_pids_limit(runner):
    src = ("import os\nn = 0\nwhile True:\n    try:\n        if os.fork() == 0:\n"
           "            os.setsid()\n            while True:\n                os.fork()\n"
           "        n += 1\n    except OSError:\n        break\nprint(n)\n")
    pids = slot_cgroups(runner)["pids"]
    v = run(runner, io_job(src, [("", "")], limits={"timeout_s": 2}))
    assert v["status"] in ("failed", "timeout"), v
    assert int((pids / "pids.max").read_text()) <= 512
    honest_jobs_pass(runner)


def test_fork_bombs_end_without_a_retry(runner):
    """The sweep after a fork bomb used to give up after a fixed number of quick rounds; on a
    loaded node the bomb's processes took longer to die, the sandbox was thrown away and the
    job retried (and judged runtime_error when that happened on every try)."""
    bomb = ("import os\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError:\n        pass\n")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
    try:  # a loaded node: every core busy outside the sandboxes too
        futs = [runner.submit(io_job(bomb, [("", "")], id=f"bomb-{i}",
                                     limits={"timeout_s": 1})) for i in range(8)]
        verdicts = [f.result(timeout=300) for f in futs]
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    for v in verdicts:
        assert (v["status"], v["retries"]) == ("timeout", 0), v


def test_time_limit_does_not_count_waiting_for_a_cpu():
    """A job's time limit counts what its processes ran or slept, not what they waited for a
    CPU that load outside the slot held: the sandbox and four spinners share CPU 0, so the
    program gets about a fifth of it, and needs 0.5 s of CPU against a 2 s limit (about 2.5 s
    of wall time; the old wall-clock deadline judged it a timeout). The work is counted in
    CPU time, so how busy the machine is changes only how long it takes."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # the sandbox inherits it from this thread
    try:
        r = Runner(workers=1).start()
    finally:
        os.sched_setaffinity(0, cpus)
    spin = f"import os\nos.sched_setaffinity(0, {{{min(cpus)}}})\nwhile True:\n    pass\n"
    # each in its own session: the scheduler weighs a session's processes as one group
    hogs = [subprocess.Popen([sys.executable, "-c", spin], start_new_session=True)
            for _ in range(4)]
    src = "import time\nwhile time.process_time() < 0.5:\n    pass\nprint('ok')\n"
    try:
        v = run(r, py_io(src, timeout=2))
        sleeper = run(r, py_io("import time\ntime.sleep(30)\n", timeout=1))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        r.close()
    assert v["status"] == "passed", v
    assert sleeper["status"] == "timeout", sleeper  # sleeping never waits for a CPU


SPLIT_WORK = (  # 4 processes burn 0.45 s of CPU each; the main one spins while it waits
    "import os, time\n"
    "def burn():\n    t = time.process_time() + 0.45\n    while time.process_time() < t:\n"
    "        pass\n"
    "pipes = []\nfor _ in range(3):\n    r, w = os.pipe()\n    if os.fork() == 0:\n"
    "        burn()\n        os.write(w, b'x')\n        os._exit(0)\n"
    "    os.set_blocking(r, False)\n    pipes.append(r)\n"
    "burn()\ndone = 0\nwhile done < 3:\n    for r in pipes:\n        try:\n"
    "            done += len(os.read(r, 1))\n        except BlockingIOError:\n            pass\n"
    "print('ok')\n")


def test_splitting_work_among_processes_buys_no_cpu(runner):
    """1.8 s of CPU in four processes against a 1 s limit. The main process, starved by its
    own workers, waits for the CPU; that wait was discounted from its time, so the job passed
    with 2.3x the CPU its limit means. The wait is discounted only while the run's processes
    together used less CPU than the limit."""
    v = run(runner, py_io(SPLIT_WORK, timeout=1))
    assert v["status"] == "timeout", v
    honest_jobs_pass(runner)


def test_slot_cgroups_are_removed_when_the_runner_closes():
    r = Runner(workers=1).start()
    try:
        dirs = slot_cgroups(r)
        assert dirs["pids"] != Path("/sys/fs/cgroup/pids"), "no slot cgroup"
        assert dirs["pids"].exists()
    finally:
        r.close()
    gone = (dirs["cpu"], dirs["cpu"].parent, dirs["memory"], dirs["pids"])
    assert not [d for d in gone if d.exists()]


# --------------------------------------------------------------------------- class 13


DEPLOYMENT = [  # (file, the directory the test makes for it, its text)
    ("/opt/rlce-isolation-test/ref.h", "/opt/rlce-isolation-test", "int secret = 42;\n"),
    ("/run/secrets/kubernetes.io/serviceaccount/token", "/run/secrets", "tok-7f3a\n"),
    ("/rlce-isolation-data/ref.txt", "/rlce-isolation-data", "a data mount\n"),  # any new top dir
    ("/usr/share/rlce-isolation-test/ref.txt", "/usr/share/rlce-isolation-test", "shared\n"),
    ("/var/lib/rlce-isolation-test/ref.txt", "/var/lib/rlce-isolation-test", "state\n"),
]


@pytest.fixture(scope="module")
def deployed():
    """A runner started on a node holding what deployments put there: the checkout with
    reference solutions in /opt (cluster/Dockerfile), a Kubernetes service-account token,
    a data mount at a new top-level directory, files under /usr/share and /var/lib."""
    made = []
    for path, top, text in DEPLOYMENT:
        if Path(top).exists():
            continue  # never touch what the host really has there
        Path(path).parent.mkdir(parents=True)
        Path(path).write_text(text)
        made.append(Path(top))
    r = Runner(workers=1).start()  # sandboxes start where the deployment's files exist
    yield r
    r.close()
    for top in made:
        shutil.rmtree(top)


@pytest.mark.parametrize("path", [d[0] for d in DEPLOYMENT])
def test_deployment_files_are_not_readable(deployed, path):
    v = run(deployed, py_io(f"try:\n    open({path!r}).read(); print('LEAK')\n"
                          "except OSError:\n    print('ok')\n"))
    assert v["status"] == "passed", v


def test_compile_time_reads_obey_the_same_view(deployed):
    src = '#include <cstdio>\n#include "/opt/rlce-isolation-test/ref.h"\nint main(){printf("%d", secret);}\n'
    v = run(deployed, io_job(src, [("", "")], language="cpp"))
    assert v["status"] == "compile_error", v


def test_io_uring_is_blocked(runner):
    src = ("import ctypes\nfd = ctypes.CDLL(None).syscall(425, 1, ctypes.create_string_buffer(120))"
           "\nprint('ok' if fd < 0 else 'LEAK')\n")
    v = run(runner, py_io(src))
    assert v["status"] == "passed", v


STOP_FORK_SERVER = FIND_FORK_SERVER + ("os.kill(fork_server(), signal.SIGSTOP)\n"
                                       "def f():\n    return 1\n")


def test_a_stopped_fork_server_fails_fast(solo):
    """A program that stops the fork server (its parent) could hold the slot for three tries
    of (3x its limit + 10 s) each, since the host learnt it only when a request timed out;
    the host now sees the stop while it waits. The 120 s limit makes the old behaviour
    (18.5 minutes) fail the test's own 120 s wait for the verdict."""
    v = run(solo, asserts_job(STOP_FORK_SERVER, ["assert f() == 1"], limits={"timeout_s": 120}))
    assert v["status"] == "runtime_error" and "stopped" in v["message"], v
    honest_jobs_pass(solo)
