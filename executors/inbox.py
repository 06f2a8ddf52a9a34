"""The program that runs *inside* each firejail sandbox: a warm fork server.

The host sends this file's text to ``python3 -I -S`` inside the sandbox; it uses the standard
library only and imports nothing from the package. Three kinds of process live in a sandbox:

* the **zygote** (this loop): reads framed requests on stdin, answers on stdout, wipes the
  sandbox between jobs and kills every process a job left behind;
* the **template**, forked once at start-up before any job data is seen: it forks candidate
  processes on request, so a candidate's memory never holds another job's tests or programs;
* per job, a **judge** (forked from the zygote) that runs the trusted test code and talks to the
  candidate over a socket. Only the judge writes test results, on a pipe the candidate never holds.

Candidate functions are reached through proxies that move *plain data* only (None, bool, int,
float, complex, str, bytes, list, tuple, dict, set, frozenset), so a returned object cannot
carry a custom ``__eq__`` into the judge, and exiting, printing or patching inside the candidate
process cannot produce a pass. Every process here is non-dumpable, so same-uid processes cannot
read its memory or its file descriptors through /proc.
"""

import base64
import ctypes
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
WORKDIR = "/tmp/run"
PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes)
MAX_DEPTH = 64

# --------------------------------------------------------------------------- framing


def read_exact(fd, n):
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame(fd):
    (n,) = struct.unpack(">I", read_exact(fd, 4))
    return json.loads(read_exact(fd, n))


def write_frame(fd, obj):
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


# --------------------------------------------------------------------------- plain-data codec


def encode(v, depth=0):
    """Plain data -> JSON-able tagged form; anything else raises TypeError."""
    if depth > MAX_DEPTH:
        raise TypeError("value nested too deeply")
    t = type(v)
    if t is bool or t is type(None) or t is str:
        return v
    if t is int:
        return v if -(2**53) < v < 2**53 else {"int": str(v)}
    if t is float:
        return {"float": repr(v)}
    if t is complex:
        return {"complex": [repr(v.real), repr(v.imag)]}
    if t is bytes:
        return {"bytes": base64.b64encode(v).decode()}
    if t is list:
        return [encode(x, depth + 1) for x in v]
    if t is tuple:
        return {"tuple": [encode(x, depth + 1) for x in v]}
    if t is set or t is frozenset:
        return {t.__name__: [encode(x, depth + 1) for x in v]}
    if t is dict:
        return {"dict": [[encode(k, depth + 1), encode(x, depth + 1)] for k, x in v.items()]}
    raise TypeError(f"not plain data: {t.__name__}")


MAX_INT_DIGITS = 100_000  # a returned integer longer than this is not judged (host CPU)
_CHUNK = 4000  # below CPython's 4300-digit limit on str -> int, which the host keeps


def big_int(text: str) -> int:
    """``int(text)`` for integers of any length up to MAX_INT_DIGITS, without lifting the
    interpreter's str -> int limit for the whole host process; longer ones raise ValueError."""
    digits = text[1:] if text[:1] in "+-" else text
    if len(digits) <= _CHUNK:
        return int(text)
    if not digits.isdigit():
        raise ValueError("malformed integer")
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"integer with {len(digits)} digits (at most {MAX_INT_DIGITS} are "
                         "judged)")
    value = 0
    for i in range(0, len(digits), _CHUNK):
        part = digits[i: i + _CHUNK]
        value = value * 10 ** len(part) + int(part)
    return -value if text.startswith("-") else value


def decode(v):
    if isinstance(v, list):
        return [decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    ((tag, x),) = v.items()
    if tag == "int":
        return big_int(x)
    if tag == "float":
        return float(x)
    if tag == "complex":
        return complex(float(x[0]), float(x[1]))
    if tag == "bytes":
        return base64.b64decode(x)
    if tag == "tuple":
        return tuple(decode(i) for i in x)
    if tag == "set":
        return {decode(i) for i in x}
    if tag == "frozenset":
        return frozenset(decode(i) for i in x)
    if tag == "dict":
        return {decode(k): decode(i) for k, i in x}
    raise ValueError(f"bad tag {tag!r}")


# --------------------------------------------------------------------------- process hygiene


def no_dump():
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def sweep(keep):
    """SIGKILL every process of the sandbox except ``keep`` and init; reap what is ours."""
    for _ in range(200):
        others = [
            int(p)
            for p in os.listdir("/proc")
            if p.isdigit() and int(p) not in keep and int(p) != 1
        ]
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap()
        if not others:
            return True
        time.sleep(0.0005)
    return False


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wipe():
    """Remove everything a job wrote anywhere it could write."""
    for top in WRITABLE:
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            remove_tree(os.path.join(top, name))


def remove_tree(path):
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass
        for name in os.listdir(path):
            remove_tree(os.path.join(path, name))
        os.rmdir(path)
    else:
        os.unlink(path)


def memfd(name, data=b""):
    fd = os.memfd_create(name, 0)
    if data:
        os.write(fd, data)
        os.lseek(fd, 0, 0)
    return fd


def read_capped(fd, cap):
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, 0)
    data = os.read(fd, cap) if size else b""
    return data, size


# --------------------------------------------------------------------------- template / candidate


def apply_limits(lim):
    cpu = max(1, int(lim["cpu_s"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if lim.get("as_bytes"):
        resource.setrlimit(resource.RLIMIT_AS, (lim["as_bytes"], lim["as_bytes"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim["nofile"], lim["nofile"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["fsize_bytes"], lim["fsize_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def template_loop(sock):
    """Pristine fork server: never reads job data, only file descriptors and small commands.

    Each candidate is double-forked so that it is re-parented to the zygote (a child
    subreaper), which can then wait for it and read its exit status.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # middle processes reap themselves
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 65536, 16)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        cmd = json.loads(msg)
        r, w = os.pipe()
        mid = os.fork()
        if mid == 0:
            os.close(r)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # keep the candidate's zombie for us
            pid = os.fork()
            if pid == 0:
                os.close(w)
                candidate_start(cmd, fds, sock)
            os.write(w, struct.pack(">i", pid))
            os._exit(0)
        os.close(w)
        for fd in fds:
            os.close(fd)
        sock.send(read_exact(r, 4))  # the zygote waits until the candidate is re-parented
        os.close(r)


def candidate_start(cmd, fds, tsock):
    """In a fresh fork of the template: set up fds, limits and run the candidate."""
    try:
        tsock.close()
        stdin_fd, stdout_fd, stderr_fd, src_fd = fds[:4]
        rpc_fd = fds[4] if len(fds) > 4 else None
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        keep = sorted({src_fd} | ({rpc_fd} if rpc_fd is not None else set()))
        lo = 3
        for fd in keep:
            os.closerange(lo, fd)
            lo = fd + 1
        os.closerange(lo, 65536)
        os.setsid()
        os.chdir(cmd["cwd"])
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # python ignores it; the limit must kill
        apply_limits(cmd["limits"])
        if cmd["mode"] == "exec":
            os.close(src_fd)
            argv = cmd["argv"]
            os.execve(argv[0], argv, cmd["env"])
        src = b""
        while True:
            b = os.read(src_fd, 1 << 20)
            if not b:
                break
            src += b
        os.close(src_fd)
        if cmd["mode"] == "main":
            run_main(src)
        else:
            serve_rpc(src, rpc_fd)
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(120)


def run_main(src):
    """Run the candidate as a script (stdin/stdout problems); exit code = the script's."""
    code = 0
    g = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(src, "solution.py", "exec"), g)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except SyntaxError:
        traceback.print_exc()
        code = 121
    except MemoryError:
        code = 122
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code)


def serve_rpc(src, fd):
    """Candidate side of the judge protocol: load the program, then answer calls."""
    g = {"__name__": "__candidate__", "__builtins__": __builtins__}
    sock = socket.socket(fileno=fd)
    rfile = sock.makefile("rb")

    def send(obj):
        data = json.dumps(obj).encode()
        sock.sendall(struct.pack(">I", len(data)) + data)

    try:
        exec(compile(src, "solution.py", "exec"), g)
    except SyntaxError as e:
        send({"load": "syntax", "msg": f"{type(e).__name__}: {e}"})
        os._exit(0)
    except BaseException as e:
        send({"load": "error", "msg": f"{type(e).__name__}: {e}"})
        os._exit(0)
    names = {}
    for k, v in list(g.items()):
        if k.startswith("__"):
            continue
        if callable(v) and not isinstance(v, type):
            names[k] = "function"
        else:
            try:
                names[k] = {"data": encode(v)}
            except TypeError:
                names[k] = "other"
    send({"load": "ok", "names": names})
    while True:
        hdr = rfile.read(4)
        if len(hdr) < 4:
            os._exit(0)
        (n,) = struct.unpack(">I", hdr)
        req = json.loads(rfile.read(n))
        try:
            fn = g[req["name"]]
            out = fn(*decode(req["args"]), **decode(req["kwargs"]))
            reply = {"ok": encode(out)}
        except MemoryError:
            reply = {"exc": "MemoryError", "msg": "out of memory"}
        except RecursionError as e:
            reply = {"exc": "RecursionError", "msg": str(e)[:200]}
        except BaseException as e:  # the candidate's exception becomes the judge's
            reply = {"exc": type(e).__name__, "msg": str(e)[:500]}
        try:
            send(reply)
        except TypeError:
            send({"exc": "TypeError", "msg": "return value is not plain data"})


# --------------------------------------------------------------------------- judge


class CandidateGone(Exception):
    pass


class Judge:
    """Trusted side: proxies calls to the candidate process over a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def recv(self):
        hdr = self.rfile.read(4)
        if len(hdr) < 4:
            raise CandidateGone("the program exited or was killed")
        (n,) = struct.unpack(">I", hdr)
        body = self.rfile.read(n)
        if len(body) < n:
            raise CandidateGone("the program exited or was killed")
        return json.loads(body)

    def call(self, name, args, kwargs):
        data = json.dumps(
            {"name": name, "args": encode(list(args)), "kwargs": encode(dict(kwargs))}
        ).encode()
        try:
            self.sock.sendall(struct.pack(">I", len(data)) + data)
        except OSError:
            raise CandidateGone("the program exited or was killed") from None
        reply = self.recv()
        if "ok" in reply:
            return decode(reply["ok"])
        cls = BUILTIN_EXC.get(reply["exc"], RuntimeError)
        if issubclass(cls, (StopIteration, StopAsyncIteration)):
            # re-raised as itself it would end a test's ``map``/``for`` loop silently and
            # pass the test; a candidate's exception must fail it, never steer its control
            # flow (GeneratorExit, KeyboardInterrupt, SystemExit are no Exception: RuntimeError)
            cls = RuntimeError
        raise cls(f"{reply['exc']}: {reply['msg']}")

    def proxy(self, name):
        def fn(*args, **kwargs):
            return self.call(name, args, kwargs)

        fn.__name__ = name
        return fn


BUILTIN_EXC = {
    k: v
    for k, v in vars(__import__("builtins")).items()
    if isinstance(v, type) and issubclass(v, Exception)
}


def judge_main(req, sock, res_fd):
    """Run the trusted tests; write one JSON line per test to ``res_fd``."""
    no_dump()
    judge = Judge(sock)

    def emit(obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(res_fd, data) :]

    load = judge.recv()
    if load["load"] != "ok":
        emit({"load": load["load"], "msg": load["msg"]})
        os._exit(0)
    emit({"load": "ok"})
    ns = {"__name__": "__judge__"}
    for name, kind in load["names"].items():
        if kind == "function":
            ns[name] = judge.proxy(name)
        elif isinstance(kind, dict):
            ns[name] = decode(kind["data"])
    spec = req["tests"]
    fmt = spec["format"]
    if fmt == "call":
        for i, case in enumerate(spec["cases"]):
            t0 = time.perf_counter()
            try:
                out = judge.call(spec["fn_name"], case.get("args", []), case.get("kwargs", {}))
                emit({"i": i, "value": encode(out), "time": time.perf_counter() - t0})
            except CandidateGone as e:
                emit({"i": i, "status": "crashed", "msg": str(e), "time": time.perf_counter() - t0})
                break
            except BaseException as e:
                emit({"i": i, "status": "error", "msg": f"{type(e).__name__}: {e}"[:500],
                      "time": time.perf_counter() - t0})
        os._exit(0)
    if fmt == "check":
        entry = spec["entry_point"]
        if entry not in ns or load["names"].get(entry) != "function":
            emit({"i": 0, "status": "error", "msg": f"the program defines no function {entry!r}",
                  "time": 0.0})
            os._exit(0)
        tests = [[spec["code"], f"check({entry})"]]
    else:
        tests = [[a] for a in spec["asserts"]]
        if spec.get("setup"):
            try:
                exec(compile(spec["setup"], "setup.py", "exec"), ns)
            except BaseException as e:
                emit({"setup_error": f"{type(e).__name__}: {e}"[:500]})
                os._exit(0)
    for i, steps in enumerate(tests):
        t0 = time.perf_counter()
        try:
            for code in steps:
                exec(compile(code, f"test_{i}.py", "exec"), ns)
            emit({"i": i, "status": "passed", "time": time.perf_counter() - t0})
        except AssertionError as e:
            emit({"i": i, "status": "failed", "msg": f"AssertionError: {e}"[:500],
                  "time": time.perf_counter() - t0})
        except CandidateGone as e:
            emit({"i": i, "status": "crashed", "msg": str(e), "time": time.perf_counter() - t0})
            break
        except BaseException as e:
            emit({"i": i, "status": "error", "msg": f"{type(e).__name__}: {e}"[:500],
                  "time": time.perf_counter() - t0})
    os._exit(0)


# --------------------------------------------------------------------------- zygote


class Zygote:
    def __init__(self):
        self.pid = os.getpid()
        no_dump()
        LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self.tsock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.template = os.fork()
        if self.template == 0:
            self.tsock.close()
            os.closerange(3, child.fileno())
            template_loop(child)
        child.close()
        os.makedirs(WORKDIR, exist_ok=True)

    def spawn(self, cmd, fds):
        socket.send_fds(self.tsock, [json.dumps(cmd).encode()], fds)
        (pid,) = struct.unpack(">i", self.tsock.recv(16))
        return pid

    def clean(self):
        ok = sweep({self.pid, self.template})
        try:
            wipe()
        except OSError:
            ok = False
        os.makedirs(WORKDIR, exist_ok=True)
        return ok

    def wait(self, pid, deadline):
        """Wait for child ``pid`` until ``deadline``; its wait status, or None if still running."""
        try:
            pfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pfd = None
        try:
            while True:
                try:
                    got, st = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:  # not re-parented to us yet
                    got, st = 0, None
                    if pfd is None:
                        return None
                if got:
                    return st
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if pfd is not None:
                    select.select([pfd], [], [], min(left, 0.0002 if st is None else left))
                else:
                    time.sleep(0.0005)
        finally:
            if pfd is not None:
                os.close(pfd)

    def kill_wait(self, pid):
        """SIGKILL a child and collect its status."""
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.wait(pid, time.monotonic() + 5)

    # -- one stdin/stdout run (any language): returns exit info and output
    def run_io_case(self, job, stdin_data, src_fd_data, argv, mode):
        lim = job["limits"]
        fin = memfd("stdin", stdin_data)
        fout = memfd("stdout")
        ferr = memfd("stderr")
        fsrc = memfd("src", src_fd_data)
        t0 = time.monotonic()
        cmd = {"mode": mode, "cwd": WORKDIR, "limits": lim, "argv": argv, "env": job["env"]}
        pid = self.spawn(cmd, [fin, fout, ferr, fsrc])
        st = self.wait(pid, t0 + lim["timeout_s"])
        wall = time.monotonic() - t0
        finished = st is not None
        if not finished:
            st = self.kill_wait(pid)
        exit_info = exit_of(st) if finished else None
        out, out_size = read_capped(fout, lim["output_bytes"] + 1)
        err, err_size = read_capped(ferr, 8192)
        for fd in (fin, fout, ferr, fsrc):
            os.close(fd)
        return {
            "finished": finished,
            "exit": exit_info,
            "wall": wall,
            "stdout": base64.b64encode(out).decode(),
            "stdout_size": out_size,
            "stderr": err[-4096:].decode("utf-8", "replace"),
            "stderr_size": err_size,
        }

    def run_judged(self, job):
        """check / asserts / call formats: judge process + candidate process."""
        lim = job["limits"]
        a, b = socket.socketpair()
        res_r, res_w = os.pipe()
        fin = memfd("stdin")
        fout = memfd("stdout")
        ferr = memfd("stderr")
        fsrc = memfd("src", job["source"].encode())
        t0 = time.monotonic()
        cmd = {"mode": "rpc", "cwd": WORKDIR, "limits": lim, "argv": [], "env": {}}
        cpid = self.spawn(cmd, [fin, fout, ferr, fsrc, b.fileno()])
        b.close()
        for fd in (fin, fsrc):
            os.close(fd)
        jpid = os.fork()
        if jpid == 0:
            os.close(res_r)
            self.tsock.close()
            try:
                judge_main(job, a, res_w)
            finally:
                os._exit(0)
        a.close()
        os.close(res_w)
        deadline = t0 + lim["timeout_s"]
        lines = []
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([res_r], [], [], left)
            if not ready:
                break
            chunk = os.read(res_r, 65536)
            if not chunk:
                break
            buf += chunk
        os.close(res_r)
        judge_st = self.wait(jpid, min(deadline, time.monotonic() + 0.05))
        timed_out = judge_st is None and time.monotonic() >= deadline
        if judge_st is None:
            self.kill_wait(jpid)
        # the candidate ends when the judge closes its socket; give it a moment, then force it
        cst = self.wait(cpid, time.monotonic() + 0.02)
        if cst is None:
            cst = self.kill_wait(cpid)
            exit_info = None if timed_out else exit_of(cst)
        else:
            exit_info = exit_of(cst)
        for line in buf.split(b"\n"):
            if line:
                lines.append(json.loads(line))
        out, out_size = read_capped(fout, lim["output_bytes"] + 1)
        err, err_size = read_capped(ferr, 8192)
        os.close(fout)
        os.close(ferr)
        return {
            "results": lines,
            "timed_out": timed_out,
            "exit": exit_info,
            "wall": time.monotonic() - t0,
            "stdout": base64.b64encode(out[: lim["output_bytes"]]).decode(),
            "stdout_size": out_size,
            "stderr": err[-4096:].decode("utf-8", "replace"),
            "stderr_size": err_size,
        }

    def handle(self, req):
        op = req["op"]
        if op == "ping":
            return {"ok": True, "probe": probe()}
        job = req["job"]
        try:
            if op == "judge":
                return {"ok": True, "run": self.run_judged(job)}
            if op == "io":
                files = job.get("files", {})
                for name, b64 in files.items():
                    path = os.path.join(WORKDIR, name)
                    with open(path, "wb") as f:
                        f.write(base64.b64decode(b64))
                    os.chmod(path, 0o755)
                cases = []
                for stdin_text in job["inputs"]:
                    src = job["source"].encode() if job["mode"] == "main" else b""
                    r = self.run_io_case(job, stdin_text.encode(), src, job["argv"], job["mode"])
                    cases.append(r)
                    if not sweep({self.pid, self.template}):
                        return {"ok": False, "error": "could not end the run's processes"}
                    if job.get("stop_on_failure") and not (
                        r["finished"] and r["exit"] == ["exit", 0]
                    ):
                        break
                return {"ok": True, "cases": cases}
            if op == "compile":
                for name, b64 in job["files"].items():
                    with open(os.path.join(WORKDIR, name), "wb") as f:
                        f.write(base64.b64decode(b64))
                r = self.run_io_case(job, b"", b"", job["argv"], "exec")
                out = os.path.join(WORKDIR, job["output"])
                binary = None
                if r["finished"] and r["exit"] == ["exit", 0] and os.path.exists(out):
                    with open(out, "rb") as f:
                        binary = base64.b64encode(f.read()).decode()
                return {"ok": True, "compile": r, "binary": binary}
            return {"ok": False, "error": f"unknown op {op!r}"}
        finally:
            if not self.clean():
                # processes we cannot end means this sandbox must be thrown away
                write_frame(1, {"ok": False, "error": "sandbox could not be cleaned"})
                os._exit(3)

    def serve(self):
        while True:
            try:
                req = read_frame(0)
            except EOFError:
                os._exit(0)
            try:
                resp = self.handle(req)
            except Exception as e:  # infrastructure failure inside the sandbox
                resp = {"ok": False, "error": f"{type(e).__name__}: {e}",
                        "trace": traceback.format_exc()[-2000:]}
            write_frame(1, resp)


def exit_of(st):
    if st is None:
        return None
    if os.WIFSIGNALED(st):
        return ["signal", os.WTERMSIG(st)]
    return ["exit", os.WEXITSTATUS(st)]


def probe():
    """What isolation this sandbox really has, measured from inside."""
    info = {"uid": os.getuid(), "euid": os.geteuid(), "pid": os.getpid()}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
                info[k] = v.strip()
    info["env"] = sorted(os.environ)
    info["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    info["ifaces"] = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else []
    try:
        with open("/tmp/.rw_probe", "w") as f:
            f.write("x")
        os.unlink("/tmp/.rw_probe")
        info["tmp_writable"] = True
    except OSError:
        info["tmp_writable"] = False
    try:
        open("/etc/.rlce_probe", "w").close()
        os.unlink("/etc/.rlce_probe")
        info["host_writable"] = True
    except OSError:
        info["host_writable"] = False
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(("1.1.1.1", 53))
        info["internet"] = True
    except OSError:
        info["internet"] = False
    finally:
        s.close()
    return info


if __name__ == "__main__":
    sys.set_int_max_str_digits(0)
    Zygote().serve()
