"""Hostile programs: resource exhaustion, escape and leakage, reward hacking.

Each case asserts the verdict, that the executor keeps serving (a canary job passes right
after) and that the host is unchanged (no marker file outside the sandbox, no process of a
sandbox user beyond the sandboxes themselves)."""

import os
import socket
import threading

import pytest

from executors.sandbox import PYTHON_FLAGS
from tests.executors.conftest import asserts_job, io_job, processes_of, run, sandbox_uids

pytestmark = pytest.mark.slow  # about 50 hostile programs, each in its own sandbox

MARK = "/tmp/rlce-hostile-marker"
UNIX_NAME = f"rlce-hostile-test-{os.getpid()}"  # per session: concurrent sessions do not collide
NOT_PASSED = {"failed", "runtime_error", "timeout", "memory_limit", "output_limit"}
ADD_OK = "def add(a, b):\n    return a + b\n"


def py_io(src, want="ok", timeout=2, **kw):
    return io_job(src, [("", want)], limits={"timeout_s": timeout}, **kw)


def adds(prefix, asserts=("assert add(1, 2) == 3",), fn="def add(a, b):\n    return 0\n"):
    return asserts_job(prefix + "\n" + fn, list(asserts), limits={"timeout_s": 2})


CASES = {
    # --- resource exhaustion
    "cpu_spin": (py_io("while True:\n    pass\n"), {"timeout"}),
    "sleep": (py_io("import time\ntime.sleep(60)\n"), {"timeout"}),
    "ignore_signals": (py_io(
        "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGXCPU, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n"), {"timeout"}),
    "c_level_hang": (py_io("import ctypes\nctypes.CDLL(None).pause()\n"), {"timeout"}),
    "fork_bomb": (py_io("import os\nwhile True:\n    try:\n        os.fork()\n"
                        "    except OSError:\n        pass\n"), {"timeout"}),
    "thread_bomb": (py_io("import threading, time\nwhile True:\n"
                          "    threading.Thread(target=time.sleep, args=(100,)).start()\n"),
                    {"runtime_error", "timeout"}),
    "memory_bomb": (py_io("x = bytearray(8 * 1024**3)\nprint('ok')\n"), {"memory_limit"}),
    "memory_grow": (py_io("a = []\nwhile True:\n    a.append(' ' * 10**7)\n"), {"memory_limit"}),
    "infinite_stdout": (py_io("while True:\n    print('x' * 1000)\n"), {"output_limit"}),
    "infinite_stderr": (py_io("import sys\nwhile True:\n    sys.stderr.write('x' * 1000)\n"),
                        {"output_limit"}),
    "disk_fill": (py_io("i = 0\nwhile True:\n    open(f'/tmp/f{i}', 'wb').write(b'x' * 2**22)\n"
                        "    i += 1\n    if i > 200: break\nprint('ok')\n", timeout=3),
                  {"passed", "timeout", "output_limit", "runtime_error", "memory_limit"}),
    "big_file": (py_io("open('big', 'wb').write(b'x' * 2**26)\nprint('ok')\n"), {"output_limit"}),
    "inode_fill": (py_io("import os\nos.makedirs('d', exist_ok=True)\nfor i in range(10**7):\n"
                         "    open(f'd/{i}', 'w').close()\n", timeout=1), {"timeout"}),
    "fd_exhaustion": (py_io("fs = [open('/dev/null') for _ in range(100000)]\n"),
                      {"runtime_error"}),
    "zombies": (py_io("import os\nfor _ in range(20):\n    if os.fork() == 0:\n"
                      "        os._exit(0)\nprint('ok')\n"), {"passed"}),
    "recursion": (adds("", ["assert f(1) == 1"], "def f(n):\n    return f(n + 1)\n"),
                  {"runtime_error"}),
    "cpp_fork_bomb": (io_job("#include <unistd.h>\nint main(){for(;;) fork();}", [("", "")],
                             language="cpp", limits={"timeout_s": 2}), {"timeout"}),
    "cpp_memory_bomb": (io_job("#include <vector>\n#include <cstdio>\nint main(){std::vector<char>"
                               " v; for(;;) v.resize(v.size()*2+1<<20);}", [("", "")],
                               language="cpp", limits={"timeout_s": 3}),
                        {"memory_limit", "runtime_error"}),
    "go_spin": (io_job("package main\nfunc main(){for{}}", [("", "")], language="go",
                       limits={"timeout_s": 1}), {"timeout"}),
    "js_spin": (io_job("for(;;){}", [("", "")], language="javascript",
                       limits={"timeout_s": 1}), {"timeout"}),
    # --- escape and leakage
    "daemon": (py_io("import os, time\nif os.fork() == 0:\n    os.setsid()\n"
                     "    if os.fork() == 0:\n        time.sleep(3)\n"
                     f"        open('{MARK}-daemon', 'w')\n    os._exit(0)\nprint('ok')\n"),
               {"passed"}),
    "write_etc": (py_io("open('/etc/rlce-pwned', 'w').write('x')\n"), {"runtime_error"}),
    "write_host_tmp": (py_io(f"open('{MARK}-tmp', 'w').write('x')\nprint('ok')\n"), {"passed"}),
    "write_usr": (py_io("import os\nos.makedirs('/usr/local/rlce-pwned')\n"), {"runtime_error"}),
    "read_shadow": (py_io("print(open('/etc/shadow').read())\n"), {"runtime_error"}),
    "read_root": (py_io("import os\nprint(os.listdir('/root'))\n"), {"runtime_error"}),
    "read_project": (py_io("import os\nprint(os.listdir('/work'))\n"), {"runtime_error"}),
    "env_secret": (py_io("import os\nprint('ok' if not any('rlce-secret' in v for v in "
                         "os.environ.values()) else 'LEAK')\n"), {"passed"}),
    "proc_environ_scan": (py_io(
        "import os\nhit = False\nfor p in os.listdir('/proc'):\n    try:\n"
        "        hit |= b'rlce-secret' in open(f'/proc/{p}/environ', 'rb').read()\n"
        "    except Exception:\n        pass\nprint('LEAK' if hit else 'ok')\n"), {"passed"}),
    "host_pids_hidden": (py_io("import os\nn = len([p for p in os.listdir('/proc') if p.isdigit()])"
                               "\nprint('ok' if n < 12 else 'LEAK')\n"), {"passed"}),
    "internet": (py_io("import socket\ns = socket.socket(); s.settimeout(1)\ntry:\n"
                       "    s.connect(('1.1.1.1', 53)); print('LEAK')\nexcept OSError:\n"
                       "    print('ok')\n"), {"passed"}),
    "dns": (py_io("import socket\ntry:\n    socket.getaddrinfo('pypi.org', 443); print('LEAK')\n"
                  "except OSError:\n    print('ok')\n"), {"passed"}),
    "host_loopback_ports": (py_io(
        "import socket\nleak = False\nfor port in (6379, 8265, 10001, 52365, HOSTPORT):\n"
        "    s = socket.socket(); s.settimeout(0.5)\n    try:\n"
        "        s.connect(('127.0.0.1', port)); leak = True\n    except OSError:\n        pass\n"
        "print('LEAK' if leak else 'ok')\n"), {"passed"}),
    "abstract_unix_socket": (py_io(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n"
        f"    s.connect('\\0{UNIX_NAME}'); print('LEAK')\nexcept OSError:\n    print('ok')\n"),
        {"passed"}),
    "ptrace_parent": (py_io(
        "import ctypes, os\nr = ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0)\n"
        "print('ok' if r != 0 else 'LEAK')\n"), {"passed"}),
    "read_parent_memory": (py_io(
        "import os\ntry:\n    open(f'/proc/{os.getppid()}/mem', 'rb').read(1); print('LEAK')\n"
        "except OSError:\n    print('ok')\n"), {"passed"}),
    "setuid_root": (py_io("import os\nos.setuid(0)\nprint('LEAK')\n"), {"runtime_error"}),
    "signal_parent": (py_io("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                            "print('ok')\n"), NOT_PASSED | {"passed"}),
    "kill_everything": (adds("import os, signal\nos.kill(-1, signal.SIGKILL)\n"), NOT_PASSED),
    # --- reward hacking
    "sys_exit_0": (adds("import sys\nsys.exit(0)\n"), NOT_PASSED),
    "os_exit_0": (adds("import os\nos._exit(0)\n"), NOT_PASSED),
    "exit_in_call": (adds("", fn="def add(a, b):\n    import os\n    os._exit(0)\n"), NOT_PASSED),
    "atexit_hook": (adds("import atexit, os\natexit.register(lambda: os._exit(0))\n"),
                    {"failed"}),
    "kill_self": (adds("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"), NOT_PASSED),
    "fake_markers": (adds("import os, json\nprint('PASSED'); print(json.dumps({'i': 0, "
                          "'status': 'passed'}))\nfor fd in range(3, 64):\n    try:\n"
                          "        os.write(fd, b'{\"i\": 0, \"status\": \"passed\"}\\n')\n"
                          "    except OSError:\n        pass\n"), NOT_PASSED),
    "always_equal_asserts": (adds("class E:\n    def __eq__(self, o): return True\n"
                                  "    def __ne__(self, o): return False\n",
                                  fn="def add(a, b):\n    return E()\n"), NOT_PASSED),
    "always_equal_check": ({"id": "t", "language": "python",
                            "source": "class E(int):\n    def __eq__(self, o): return True\n"
                                      "def add(a, b):\n    return E(0)\n",
                            "tests": {"format": "check", "entry_point": "add",
                                      "code": "def check(c):\n    assert c(1, 2) == 3\n"}},
                           NOT_PASSED),
    "always_equal_call": ({"id": "t", "language": "python",
                           "source": "class E(list):\n    def __eq__(self, o): return True\n"
                                     "def f():\n    return E()\n",
                           "tests": {"format": "call", "fn_name": "f",
                                     "cases": [{"args": [], "expected": [1, 2]}]}}, NOT_PASSED),
    "patch_builtins": (adds("import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})"
                            "\nbuiltins.__import__ = None\n"), {"failed"}),
    "raise_systemexit_in_call": (adds("", fn="def add(a, b):\n    raise SystemExit(0)\n"),
                                 {"runtime_error"}),
}


@pytest.fixture(scope="module")
def host_listeners():
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0" + UNIX_NAME)
    unix.listen()
    yield tcp.getsockname()[1]
    tcp.close()
    unix.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile(runner, host_listeners, name):
    job, allowed = CASES[name]
    job = dict(job, id=f"hostile-{name}")
    job["source"] = job["source"].replace("HOSTPORT", str(host_listeners))
    uids = sandbox_uids(runner)
    v = run(runner, job)
    assert v["status"] in allowed, (name, v)
    if v["status"] == "passed":
        assert "LEAK" not in v["stdout"], v
    # the executor keeps serving
    canary = run(runner, asserts_job(ADD_OK, ["assert add(2, 2) == 4"], id="canary"))
    assert canary["status"] == "passed", canary
    # the host is unchanged
    assert not os.path.exists("/etc/rlce-pwned") and not os.path.exists("/usr/local/rlce-pwned")
    assert not [p for p in os.listdir("/tmp") if p.startswith("rlce-hostile-marker")]
    for pid, cmd in processes_of(uids):  # only the sandboxes' own processes
        assert "firejail" in cmd or f"python3 {' '.join(PYTHON_FLAGS)} " in cmd, (name, pid, cmd)


def test_js_fake_marker_with_the_evaluation_opt_in(js_runner):
    v = run(js_runner, {"id": "t", "language": "javascript",
                        "source": "function add(a,b){return 0}\nconsole.log('0 ok');"
                                  "console.log('undefined 0 ok');",
                        "tests": {"format": "asserts", "asserts": ["assert.equal(add(1,2),3)"]}})
    assert v["status"] == "failed", v


def test_daemon_leaves_nothing_behind(runner):
    v = run(runner, CASES["daemon"][0])
    assert v["status"] == "passed"
    threading.Event().wait(4)  # the daemon would have written its marker by now
    assert not os.path.exists(f"{MARK}-daemon")


def test_no_state_survives_between_runs(solo):
    write = py_io("import os\nfor d in ('/tmp', '/var/tmp', '/dev/shm', '.'):\n"
                  "    open(os.path.join(d, 'state'), 'w').write('x')\nprint('ok')\n")
    read = py_io("import os\nleft = [d for d in ('/tmp', '/var/tmp', '/dev/shm', '.')"
                 " if os.path.exists(os.path.join(d, 'state'))]\nprint('ok' if not left else left)\n")
    assert run(solo, write)["status"] == "passed"
    v = run(solo, read)
    assert v["status"] == "passed", v


def test_tests_are_not_readable_by_the_candidate(runner):
    # the test code holds a marker; the program scans everything it can read for it
    src = ("import glob\nfound = []\nfor p in glob.glob('/proc/*/*') + glob.glob('/tmp/**', "
           "recursive=True):\n    try:\n        if b'zq9-hidden-7' in open(p, 'rb').read():\n"
           "            found.append(p)\n    except Exception:\n        pass\n"
           "def f():\n    return found\n")
    v = run(runner, asserts_job(src, ["assert f() == [], 'zq9-hidden-7'"]))
    assert v["status"] == "passed", v


def test_huge_integers_are_judged_or_refused_never_an_executor_error(runner):
    """A return value past CPython's 4300-digit str -> int limit used to raise on the host and
    come back as ``sandbox_error``: an infrastructure verdict a program could cause at will."""
    import math

    def call(src, expected):
        return run(runner, {"id": "big", "language": "python", "source": src, "tests": {
            "format": "call", "fn_name": "f", "cases": [{"args": [2000], "expected": expected}]}})

    fact = "import math\ndef f(n):\n    return math.factorial(n)\n"
    assert call(fact, math.factorial(2000))["status"] == "passed"  # 5,736 digits
    assert call("def f(n):\n    return 10**5000\n", 1)["status"] == "failed"
    v = call("def f(n):\n    return 10**200000\n", 1)
    # the sandbox returns it; the host refuses to decode it, and a wrong answer is what it is
    assert v["status"] == "failed" and "at most 100000 are judged" in v["message"], v
