"""The pristine template and the candidate processes it forks.

The template is forked once from the zygote, before any job data is seen, and only ever reads
file descriptors and small commands; each candidate is a fresh fork of it with the job's
limits, that either ``execve``s a compiled program, runs a Python program as a script
(``run_main``) or serves the judge's requests on a socket (``serve_rpc``, ``Objects``): its
objects stay here and reach the judge as plain data or as references.
"""

import json
import os
import resource
import signal
import socket
import struct
import sys
import traceback

from .codec import Decoder, encode


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

    Each candidate is a direct child (one fork per run): the template answers its pid, waits
    for it and reports its wait status, two messages per candidate. Processes the candidate
    leaves behind are re-parented to the zygote, a child subreaper, which ends them.
    """
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 65536, 16)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        cmd = json.loads(msg)
        gate_r, gate_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # nothing of the job runs before the zygote has the pid: a candidate
            os.close(gate_w)  # could otherwise stop the template before it answered
            os.read(gate_r, 1)
            os.close(gate_r)
            candidate_start(cmd, fds, sock)
        os.close(gate_r)
        for fd in fds:
            os.close(fd)
        sock.send(struct.pack(">i", pid))
        os.close(gate_w)
        while True:  # a candidate can give the template other children (clone with
            done, status = os.waitpid(-1, 0)  # CLONE_PARENT): they are reaped on the way
            if done == pid:
                break
        sock.send(struct.pack(">i", status))
        reap_others()


def reap_others():
    """Reap the template's children that have ended (the sweep ends those still running;
    their zombies are reaped here or while the next candidate runs)."""
    while True:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not done:
            return


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
    program = None  # set once the program's own text compiled
    try:
        program = compile(src, "solution.py", "exec")
        exec(program, g)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except SyntaxError:  # a compile error only if the program's own text did not compile
        traceback.print_exc()
        code = 121 if program is None else 1
    except MemoryError:
        code = 122
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(shut_down(code))


def shut_down(code):
    """What the interpreter does at exit, in its order, for a program run by ``exec``: wait
    for its non-daemon threads, run its ``atexit`` hooks, flush stdout (the program's and the
    original) unless the program closed or dropped it (output that cannot be written then is
    exit 120, as CPython makes it, never 0) and stderr. Returns the exit code."""
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:
            traceback.print_exc()
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    try:  # sys.__stdout__ too: CPython's finalisation flushes the original stream
        for out in dict.fromkeys([getattr(sys, "stdout", None), sys.__stdout__]):
            if out is not None and not out.closed:
                out.flush()
    except BaseException as e:  # output lost (no memory left for it, fd closed)
        code = code or 120
        try:
            print(f"could not write the program's output: {type(e).__name__}: {e}",
                  file=sys.stderr)
        except BaseException:
            pass
    try:
        sys.stderr.flush()
    except BaseException:
        pass
    return code


def serve_rpc(src, fd):
    """Candidate side of the judge protocol: load the program, send the names it defines (not
    their values: the judge asks for the few its tests use), then answer requests."""
    g = {"__name__": "__candidate__", "__builtins__": __builtins__}
    sock = socket.socket(fileno=fd)
    rfile = sock.makefile("rb")

    def send(obj):
        data = json.dumps(obj).encode()
        sock.sendall(struct.pack(">I", len(data)) + data)

    program = None  # set once the program's own text compiled
    try:
        program = compile(src, "solution.py", "exec")
        exec(program, g)
    except BaseException as e:  # a SyntaxError the program raises running is a runtime error
        syntax = program is None and isinstance(e, SyntaxError)
        send({"load": "syntax" if syntax else "error", "msg": f"{type(e).__name__}: {e}"})
        os._exit(0)
    send({"load": "ok", "names": [k for k in list(g) if type(k) is str and k[:2] != "__"]})
    objects = Objects(g)
    while True:
        hdr = rfile.read(4)
        if len(hdr) < 4:
            os._exit(0)
        (n,) = struct.unpack(">I", hdr)
        send(objects.answer(json.loads(rfile.read(n))))


class Objects:
    """The candidate's side of references: objects handed to the judge by id, so that the
    judge can call them, read and set their attributes and pass them back as arguments."""

    def __init__(self, g):
        self.g = g
        self.held = []
        self.ids = {}
        self.decode = Decoder(ref=self.held.__getitem__, live=True)

    def register(self, v):
        key = id(v)
        if key not in self.ids:
            self.ids[key] = len(self.held)
            self.held.append(v)
        return {"ref": self.ids[key]}

    def answer(self, req):
        """One request -> its reply: the result as data (or references), or the exception."""
        try:
            return {"ok": encode(self.perform(req), self.register)}
        except MemoryError:
            return {"exc": "MemoryError", "msg": "out of memory"}
        except RecursionError as e:
            return {"exc": "RecursionError", "msg": str(e)[:200]}
        except BaseException as e:  # the candidate's exception becomes the judge's
            return exception_reply(e)

    def perform(self, req):
        op = req["op"]
        if op == "global":
            return self.g[req["name"]]
        obj = self.held[req["ref"]]
        if op == "call":
            return obj(*self.decode(req["args"]), **self.decode(req["kwargs"]))
        if op == "getattr":
            return getattr(obj, req["name"])
        if op == "setattr":
            return setattr(obj, req["name"], self.decode(req["value"]))
        raise ValueError(f"unknown request {op!r}")


def exception_reply(e):
    """The reply for the program's exception: its built-in class's name, its message, and its
    ``args`` where they are plain data, so that the judge's exception has the program's own
    ``args`` and ``str()`` (a test reading ``str(e) == 'negative'``)."""
    reply = {"exc": builtin_base(type(e)), "msg": str(e)[:500]}
    try:
        reply["args"] = encode(BaseException.args.__get__(e))
    except Exception:  # args that are not plain data: the message alone
        pass
    return reply


def builtin_base(cls):
    """The name of the first built-in exception class ``cls`` derives from, so that a test's
    ``except ValueError`` still catches the program's own ``ValueError`` subclass."""
    return next(c.__name__ for c in cls.__mro__ if c.__module__ == "builtins")
