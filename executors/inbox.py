"""The program that runs *inside* each firejail sandbox: a warm fork server.

The host sends this file's text to ``python3 -I -S`` inside the sandbox; it uses the standard
library only and imports nothing from the package. Three kinds of process live in a sandbox:

* the **zygote** (this loop): reads framed requests on stdin, answers on stdout, wipes the
  sandbox between jobs and kills every process a job left behind;
* the **template**, forked once at start-up before any job data is seen: it forks candidate
  processes on request, so a candidate's memory never holds another job's tests or programs;
* per job, a **judge** (forked from the zygote) that runs the trusted test code and talks to the
  candidate over a socket. Only the judge writes test results, on a pipe the candidate never holds.

The judge rebuilds only standard types from what the candidate sends (None, bool, int, float,
complex, str, bytes, bytearray, list, tuple, dict, set, frozenset, range, deque, Fraction,
Decimal, datetime dates, times and timedeltas, iterators over such values, standard modules by
name); any other object of the candidate stays in its process and reaches
the tests as a ``Ref`` handle, equal only to itself. So no returned object can carry a custom
``__eq__`` (or ``__len__``, ``__iter__``...) into the judge, and exiting, printing, patching or
writing raw frames inside the candidate process cannot produce a pass. The tests run against
the judge's own builtins and see, of the candidate's names, only those they use. Every process here is non-dumpable, so same-uid processes cannot
read its memory or its file descriptors through /proc.
"""

import base64
import builtins
import ctypes
import dis
import importlib
import itertools
import json
import os
import resource
import select
import signal
import socket
import stat
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
MAX_DEPTH = 64

# --------------------------------------------------------------------------- framing


STDERR_KEEP = 4096  # bytes of a run's stderr a reply carries
DEFAULT_FRAME_CAP = 512 << 20  # candidate -> judge, when the language has no memory limit
MAX_BINARY_BYTES = 64 << 20  # largest compiled program run (1/8 of the host's compile cache)
MAX_REQUEST_BYTES = 1 << 30  # host -> zygote: jobs are the host's own, checked by its schema
RESULT_LINE_BYTES = 8 << 10  # a judge result line without its value (messages are cut at 500)
BASE_REPLY_BYTES = 64 << 10  # a reply's fixed fields, error messages and traces


class FrameTooLarge(Exception):
    """A frame's length header exceeds the cap its reader derived for it."""


def read_exact(fd, n):
    """Read exactly ``n`` bytes into one preallocated buffer (linear in ``n``)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if not k:
            raise EOFError
        got += k
    return buf


def read_frame(fd, cap):
    (n,) = struct.unpack(">I", read_exact(fd, 4))
    if n > cap:
        raise FrameTooLarge(f"frame of {n} bytes exceeds its cap of {cap} bytes")
    return json.loads(read_exact(fd, n))


def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def write_all(fd, data):
    """Write all of ``data``; each partial write advances a view, nothing is copied."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_frame(fd, obj, cap=0xFFFFFFFF):
    """Write ``obj`` as one frame, or raise FrameTooLarge (writing nothing) if over ``cap``."""
    data = frame(obj)
    if len(data) - 4 > cap:
        raise FrameTooLarge(f"frame of {len(data) - 4} bytes exceeds its cap of {cap} bytes")
    write_all(fd, data)


def b64_len(n):
    return 4 * ((n + 2) // 3)


def run_reply_cap(lim):
    """Largest report of one run: its stdout as read back (``output_bytes`` + 1, base64) and
    its stderr tail with every byte escaped as ``\\uXXXX``."""
    return b64_len(lim["output_bytes"] + 1) + 6 * STDERR_KEEP + 1024


def tests_in(spec):
    if spec["format"] == "check":
        return 1
    return len(spec.get("asserts") or spec.get("cases") or ())


def results_cap(job):
    """Bytes of result lines a judge may write: call-format return values count against the
    job's output limit, like stdout; every other line is small and bounded."""
    return job["limits"]["output_bytes"] + RESULT_LINE_BYTES * (tests_in(job["tests"]) + 2)


def reply_cap(req):
    """Largest reply the zygote can honestly give to ``req``; both ends enforce it."""
    job = req.get("job")
    if req["op"] == "io":
        return BASE_REPLY_BYTES + len(job["inputs"]) * run_reply_cap(job["limits"])
    if req["op"] == "judge":  # results are re-encoded: same size, twice for safety
        return BASE_REPLY_BYTES + 2 * results_cap(job) + run_reply_cap(job["limits"])
    if req["op"] == "compile":
        return BASE_REPLY_BYTES + b64_len(MAX_BINARY_BYTES) + run_reply_cap(job["limits"])
    return BASE_REPLY_BYTES + (1 << 20)  # ping: the isolation probe


# --------------------------------------------------------------------------- plain-data codec

HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python, as opposed to a C type


def encode(v, ref=None, depth=0):
    """Value -> JSON-able tagged form.

    Subclasses of plain types (``Counter``, ``OrderedDict``, ``defaultdict``, a ``namedtuple``,
    ``IntEnum``, ...) travel as their base type, read through the base type's own methods
    (``dict.items(v)``, ``tuple.__iter__(v)``, ``int.__int__(v)``), so no method a subclass
    overrides is used. Iterators of C types (generators, ``map``, ``zip``) are drained and
    travel as ``iter``; ``Fraction`` as its two integers; ``range``, ``deque``, ``bytearray``
    and ``datetime`` values as their fields; a standard-library module by name.
    Anything else goes to ``ref`` (which returns a tagged reference or raises TypeError)."""
    if depth > MAX_DEPTH:
        raise TypeError("value nested too deeply")
    if v is None or type(v) is bool:
        return v
    scalar = _encode_scalar(v)
    if scalar is not None:
        return scalar
    seq = _encode_container(v, ref, depth + 1)
    if seq is not None:
        return seq
    return _encode_other(v, ref, depth + 1)


def _encode_scalar(v):
    """Tagged form of a number, str or bytes (of any subclass), else None."""
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, int):
        n = int.__int__(v)
        return n if -(2**53) < n < 2**53 else {"int": str(n)}
    if isinstance(v, float):
        return {"float": repr(float.__float__(v))}
    if isinstance(v, complex):
        return {"complex": [repr(complex.real.__get__(v)), repr(complex.imag.__get__(v))]}
    if isinstance(v, bytes):
        return {"bytes": base64.b64encode(bytes.__getitem__(v, slice(None))).decode()}
    if isinstance(v, bytearray):
        return {"bytearray": base64.b64encode(bytes(bytearray.__getitem__(v, slice(None))))
                .decode()}
    return None


def _encode_container(v, ref, depth):
    """Tagged form of a list, tuple, set, frozenset or dict (of any subclass), else None."""
    if isinstance(v, list):
        return [encode(x, ref, depth) for x in list.__iter__(v)]
    for base in (tuple, frozenset, set):
        if isinstance(v, base):
            return {base.__name__: [encode(x, ref, depth) for x in base.__iter__(v)]}
    if isinstance(v, dict):
        return {"dict": [[encode(k, ref, depth), encode(x, ref, depth)] for k, x in dict.items(v)]}
    view = DICT_VIEWS.get(type(v))
    if view is not None:
        return {view: [encode(x, ref, depth) for x in v]}
    return None


DICT_VIEWS = {type({}.keys()): "keys", type({}.values()): "values", type({}.items()): "items"}


def _encode_other(v, ref, depth):
    t = type(v)
    if not t.__flags__ & HEAPTYPE and hasattr(t, "__next__"):
        return {"iter": [encode(x, ref, depth) for x in v]}
    if t is _loaded("fractions", "Fraction"):
        return {"fraction": [encode(v.numerator, None, depth), encode(v.denominator, None, depth)]}
    if t is _loaded("decimal", "Decimal"):
        return {"decimal": str(v)}
    if t is range:
        return {"range": [encode(n, None, depth) for n in (v.start, v.stop, v.step)]}
    deque = _loaded("collections", "deque")
    if deque is not None and isinstance(v, deque):
        return {"deque": [[encode(x, ref, depth) for x in deque.__iter__(v)],
                          deque.maxlen.__get__(v)]}
    moment = _encode_datetime(v)
    if moment is not None:
        return moment
    if t is type(sys) and _stdlib_module(v.__name__):
        return {"module": v.__name__}
    if ref is None:
        raise TypeError(f"not plain data: {t.__name__}")
    return ref(v)


# datetime types, subclass before base, with the fields that rebuild them
DATETIME_FIELDS = (
    ("datetime", ("year", "month", "day", "hour", "minute", "second", "microsecond", "fold")),
    ("date", ("year", "month", "day")),
    ("time", ("hour", "minute", "second", "microsecond", "fold")),
    ("timedelta", ("days", "seconds", "microseconds")),
)


def _encode_datetime(v):
    """A ``datetime`` date, datetime, time or timedelta (of any subclass) as its kind, fields
    and fixed UTC offset, read through the base type's own descriptors; None if ``v`` is
    none of those or has a time zone other than a fixed ``timezone``."""
    mod = sys.modules.get("datetime")
    for kind, fields in DATETIME_FIELDS if mod is not None else ():
        base = getattr(mod, kind)
        if isinstance(v, base):
            tz = base.tzinfo.__get__(v) if hasattr(base, "tzinfo") else None
            if tz is not None and type(tz) is not mod.timezone:
                return None
            offset = tz and mod.timezone.utcoffset(tz, None)
            zone = tz and [offset.days, offset.seconds, offset.microseconds, tz.tzname(None)]
            return {"datetime": [kind, [getattr(base, f).__get__(v) for f in fields], zone]}
    return None


def _loaded(module, name):
    """``module.name`` if the program imported that module (so only then can it hold one)."""
    return getattr(sys.modules.get(module), name, None)


# Standard modules whose import acts (prints, opens a browser, installs site hooks into the
# builtins): the judge never imports them for the program.
IMPORT_ACTS = frozenset({"antigravity", "this", "site", "idlelib", "turtledemo", "__hello__",
                         "__phello__"})


def _stdlib_module(name):
    """A top-level standard-library module that only defines things when imported (not a
    submodule: importing ``venv.__main__`` runs a program)."""
    return isinstance(name, str) and name in sys.stdlib_module_names and name not in IMPORT_ACTS


MAX_INT_DIGITS = 100_000  # a returned integer longer than this is not judged (host CPU)
MAX_RANGE_ITEMS = 1 << 20  # a returned range longer than this is not judged (host memory)
_CHUNK = 4000  # below CPython's 4300-digit limit on str -> int, which the host keeps


def big_int(text: str, max_digits=MAX_INT_DIGITS) -> int:
    """``int(text)`` for integers of any length up to ``max_digits`` (None: any), without
    lifting the interpreter's str -> int limit for the whole host process; longer ones raise
    ValueError."""
    if type(text) is not str:
        raise ValueError("malformed integer")
    digits = text[1:] if text[:1] in "+-" else text
    if len(digits) <= _CHUNK:
        return int(text)
    if not digits.isdigit():
        raise ValueError("malformed integer")
    if max_digits is not None and len(digits) > max_digits:
        raise ValueError(f"integer with {len(digits)} digits (at most {max_digits} are judged)")
    value = 0
    for i in range(0, len(digits), _CHUNK):
        part = digits[i: i + _CHUNK]
        value = value * 10 ** len(part) + int(part)
    return -value if text.startswith("-") else value


class Decoder:
    """Tagged form -> value, building only standard types whatever the sender wrote: no code
    of the sender's can run here. Malformed input raises ValueError or TypeError.

    ``ref`` turns a reference id into an object (the judge's handles, the candidate's own
    objects); without it a reference is malformed. ``live`` (inside the sandbox) rebuilds
    iterators, modules and the standard types below; otherwise (on the host) an iterator, a
    ``range`` or a ``deque`` is the list of its items, and a module or a date is malformed.
    Only the host caps integers at MAX_INT_DIGITS (its own CPU): inside the sandbox the job's
    time and memory limits bound them, so ``math.factorial(30000)`` is judged."""

    def __init__(self, ref=None, live=False):
        self.ref = ref
        self.live = live
        self.max_digits = None if live else MAX_INT_DIGITS

    def __call__(self, v, depth=0):
        if depth > MAX_DEPTH:
            raise ValueError("value nested too deeply")
        t = type(v)
        if v is None or t is bool or t is str or t is float:
            return v
        if t is int:
            if not -(2**53) < v < 2**53:
                raise ValueError("malformed integer")
            return v
        if t is list:
            return [self(x, depth + 1) for x in v]
        if t is not dict or len(v) != 1:
            raise ValueError("malformed value")
        ((tag, x),) = v.items()
        build = getattr(self, f"tag_{tag}", None) if type(tag) is str else None
        if build is None:
            raise ValueError(f"bad tag {tag!r}"[:80])
        return build(x, depth + 1)

    def items(self, x, depth):
        if type(x) is not list:
            raise ValueError("malformed container")
        return [self(i, depth) for i in x]

    def tag_int(self, x, depth):
        return big_int(x, self.max_digits)

    def tag_float(self, x, depth):
        if type(x) is not str:
            raise ValueError("malformed float")
        return float(x)

    def tag_complex(self, x, depth):
        re, im = self.items(x, depth)
        return complex(self.tag_float(re, depth), self.tag_float(im, depth))

    def tag_bytes(self, x, depth):
        if type(x) is not str:
            raise ValueError("malformed bytes")
        return base64.b64decode(x, validate=True)

    def tag_tuple(self, x, depth):
        return tuple(self.items(x, depth))

    def tag_set(self, x, depth):
        return set(self.items(x, depth))

    def tag_frozenset(self, x, depth):
        return frozenset(self.items(x, depth))

    def tag_dict(self, x, depth):
        pairs = self.items(x, depth)
        if not all(type(p) is list and len(p) == 2 for p in pairs):
            raise ValueError("malformed dict")
        return dict(pairs)

    def tag_iter(self, x, depth):
        values = self.items(x, depth)
        return iter(values) if self.live else values

    def tag_fraction(self, x, depth):
        num, den = self.items(x, depth)
        if type(num) is not int or type(den) is not int or den == 0:
            raise ValueError("malformed fraction")
        import fractions  # here, not at the top: most jobs never need it in the template

        return fractions.Fraction(num, den)

    def tag_decimal(self, x, depth):
        if type(x) is not str:
            raise ValueError("malformed decimal")
        import decimal  # here, not at the top: most jobs never need it in the template

        return decimal.Decimal(x)

    def tag_keys(self, x, depth):
        keys = self.items(x, depth)
        return dict.fromkeys(keys).keys() if self.live else keys

    def tag_values(self, x, depth):
        values = self.items(x, depth)
        return dict(enumerate(values)).values() if self.live else values

    def tag_items(self, x, depth):
        pairs = self.items(x, depth)
        if not all(type(p) is tuple and len(p) == 2 for p in pairs):
            raise ValueError("malformed dict items")
        return dict(pairs).items() if self.live else pairs

    def tag_bytearray(self, x, depth):
        data = self.tag_bytes(x, depth)
        return bytearray(data) if self.live else data

    def tag_range(self, x, depth):
        bounds = self.items(x, depth)
        if len(bounds) != 3 or not all(type(n) is int for n in bounds) or bounds[2] == 0:
            raise ValueError("malformed range")
        if self.live:
            return range(*bounds)
        if len(range(*bounds)) > MAX_RANGE_ITEMS:  # its list would be built here, on the host
            raise ValueError(f"a range of {len(range(*bounds))} items (at most "
                             f"{MAX_RANGE_ITEMS} are judged)")
        return list(range(*bounds))

    def tag_deque(self, x, depth):
        if type(x) is not list or len(x) != 2 or not (x[1] is None or type(x[1]) is int):
            raise ValueError("malformed deque")
        items = self.items(x[0], depth)
        if not self.live:
            return items
        import collections  # here, not at the top: most jobs never need it in the template

        return collections.deque(items, x[1])

    def tag_datetime(self, x, depth):
        """A date, datetime, time or timedelta rebuilt from its fields (never on the host)."""
        if not self.live or type(x) is not list or len(x) != 3:
            raise ValueError("malformed datetime value")
        kind, values, zone = x
        fields = dict(DATETIME_FIELDS).get(kind)
        if fields is None or type(values) is not list or len(values) != len(fields) or not all(
                type(n) is int for n in values):
            raise ValueError("malformed datetime value")
        import datetime  # here, not at the top: most jobs never need it in the template

        kwargs = dict(zip(fields, values))
        if zone is not None:
            kwargs["tzinfo"] = datetime.timezone(datetime.timedelta(*zone[:3]), zone[3])
        return getattr(datetime, kind)(**kwargs)

    def tag_module(self, x, depth):
        if not self.live or not _stdlib_module(x):
            raise ValueError("malformed module reference")
        return importlib.import_module(x)

    def tag_ref(self, x, depth):
        if self.ref is None or type(x) is not int:
            raise ValueError("a reference where plain data was expected")
        return self.ref(x)


decode = Decoder()


# --------------------------------------------------------------------------- process hygiene


def no_dump():
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


SWEEP_WAIT_S = 10.0  # killed processes exit on their own; this only catches an unkillable one


def others(keep):
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in keep and p != "1"}


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
        if not left:
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
    """Remove ``path`` and everything below it. A job can nest directories deeper than
    Python's recursion limit and than PATH_MAX (by ``chdir`` into each new one), so the walk
    keeps an explicit stack and works relative to the directory it is in."""
    parent, name = os.path.split(path)
    os.chdir(parent)
    try:
        remove_here(name)
    finally:
        os.chdir("/")


def remove_here(name):
    stack = [name]  # names relative to the current directory; None: go back up one level
    while stack:
        entry = stack[-1]
        if stat.S_ISDIR(os.lstat(entry).st_mode):
            try:
                os.chmod(entry, 0o700)
            except OSError:
                pass
            names = os.listdir(entry)
            if names:
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


def remove_ipc():
    """Remove every SysV shared memory segment, message queue and semaphore set of the
    sandbox's IPC namespace, so none reaches the next job (the namespace outlives jobs)."""
    for kind, ctl in IPC_KINDS:
        with open(f"/proc/sysvipc/{kind}") as f:
            rows = f.read().splitlines()[1:]
        for row in rows:
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
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code)


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
            return {"exc": builtin_base(type(e)), "msg": str(e)[:500]}

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


def builtin_base(cls):
    """The name of the first built-in exception class ``cls`` derives from, so that a test's
    ``except ValueError`` still catches the program's own ``ValueError`` subclass."""
    return next(c.__name__ for c in cls.__mro__ if c.__module__ == "builtins")


# --------------------------------------------------------------------------- judge


class CandidateGone(BaseException):
    """The program's process ended, or sent a reply that is not a reply: the test is over
    (a BaseException, so that a test's ``except Exception`` does not swallow it)."""


class Ref:
    """A handle on an object of the program, which stays in the program's process.

    Equality and hashing are object identity (the judge's own, never the program's), so a
    handle equals only itself and can never pass a comparison with a value; reading or
    setting an attribute and calling go to the program and come back as plain data or new
    handles. Double-underscore names are not forwarded, so no protocol (``__eq__``,
    ``__len__``, ``__iter__``, ``__index__``...) reaches the program."""

    __slots__ = ("__judge", "__id")

    def __init__(self, judge, ident):
        object.__setattr__(self, "_Ref__judge", judge)
        object.__setattr__(self, "_Ref__id", ident)

    def __call__(self, *args, **kwargs):
        return self.__judge.request({"op": "call", "ref": self.__id, "args": list(args),
                                     "kwargs": dict(kwargs)})

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.__judge.request({"op": "getattr", "ref": self.__id, "name": name})

    def __setattr__(self, name, value):
        if name.startswith("__"):
            raise AttributeError(f"cannot set {name} on an object of the program")
        self.__judge.request({"op": "setattr", "ref": self.__id, "name": name, "value": value})

    def __repr__(self):
        return f"<object #{self.__id} of the program>"

    def __reduce_ex__(self, protocol):
        raise TypeError("an object of the program cannot be copied or pickled in the judge")


def candidate_frame_cap(lim):
    """A candidate's reply is a value it held in memory: larger than its memory limit is not
    plain data it computed (it wrote the frame itself)."""
    return lim.get("as_bytes") or DEFAULT_FRAME_CAP


def judge_memory(lim):
    """Address space the judge may add to what it inherited: room to decode and re-encode
    replies as large as the candidate's own memory."""
    return 2 * candidate_frame_cap(lim) + (64 << 20)


class Judge:
    """Trusted side: talks to the candidate process over a socket.

    Every reply is hostile input: it is only decoded into standard types and handles, and a
    reply that is malformed (or none at all) sets ``broken``, which fails the test whatever
    the test code did with the exception."""

    def __init__(self, sock, max_frame):
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.max_frame = max_frame
        self.broken = ""
        self.gone = False
        self.refs = {}
        self.decode = Decoder(ref=self.handle, live=True)

    def recv(self):
        hdr = self.rfile.read(4)
        if len(hdr) < 4:
            raise CandidateGone("the program exited or was killed")
        (n,) = struct.unpack(">I", hdr)
        if n > self.max_frame:
            # the body is never read, so the channel is out of step: closing it (read-ahead
            # included) makes every later call fail as CandidateGone
            self.rfile.close()
            self.sock.close()
            raise MemoryError(f"the program sent a {n}-byte reply; replies are capped at its "
                              f"memory limit ({self.max_frame} bytes)")
        body = self.rfile.read(n)
        if len(body) < n:
            raise CandidateGone("the program exited or was killed")
        return json.loads(body)

    def handle(self, ident):
        if ident not in self.refs:
            self.refs[ident] = Ref(self, ident)
        return self.refs[ident]

    def encode_arg(self, v):
        """A handle travels back to the program as its id; nothing else that is not data."""
        if type(v) is Ref and object.__getattribute__(v, "_Ref__judge") is self:
            return {"ref": object.__getattribute__(v, "_Ref__id")}
        raise TypeError(f"not plain data: {type(v).__name__}")

    def request(self, req):
        """Send one request; its result, or the program's exception raised here."""
        if self.broken:
            raise CandidateGone(self.broken)
        for key in ("args", "kwargs", "value"):
            if key in req:
                req[key] = encode(req[key], self.encode_arg)
        data = json.dumps(req).encode()
        try:
            self.sock.sendall(struct.pack(">I", len(data)) + data)
            reply = self.recv()
            if type(reply) is dict and reply.keys() == {"ok"}:
                return self.decode(reply["ok"])
            exc = exception_of(reply)
        except CandidateGone as e:
            self.broken, self.gone = str(e), True
            raise
        except MemoryError as e:  # a reply over the cap, or one too big to decode
            self.broken = f"MemoryError: {e}"[:500]
            raise CandidateGone(self.broken) from None
        except BaseException as e:
            self.broken = f"the program sent a malformed reply ({type(e).__name__}: {e})"[:500]
            raise CandidateGone(self.broken) from None
        raise exc

    def failure(self):
        """The result of a test during which the channel broke: a crash if the program went
        away, else a runtime error of the program (its malformed reply)."""
        return {"status": "crashed" if self.gone else "error", "msg": self.broken}

    def load(self):
        """The program's load message, checked: ``(None, names)`` or ``(status, message)``."""
        try:
            msg = self.recv()
            if type(msg) is dict and msg.get("load") == "ok":
                names = msg["names"]
                if type(names) is list and all(type(n) is str for n in names):
                    return None, {n for n in names if not n.startswith("__")}
            elif type(msg) is dict and msg.get("load") in ("syntax", "error"):
                return msg["load"], str(msg["msg"])[:2000]
            raise ValueError("not a load message")
        except CandidateGone as e:
            return "error", str(e)
        except Exception as e:
            return "error", f"the program sent a malformed reply ({type(e).__name__}: {e})"[:500]

    def fetch(self, name):
        return self.request({"op": "global", "name": name})


def exception_of(reply):
    """The (built-in) exception of an exception reply, to raise in the judge; ValueError if
    the reply is not one."""
    if type(reply) is not dict or reply.keys() != {"exc", "msg"}:
        raise ValueError("not a reply")
    name, msg = reply["exc"], reply["msg"]
    if type(name) is not str or type(msg) is not str:
        raise ValueError("not an exception reply")
    return exception(BUILTIN_EXC.get(name, RuntimeError), f"{name}: {msg}"[:600])


def exception(cls, msg):
    """An instance of ``cls`` carrying ``msg``, whatever its constructor takes: classes such as
    ``UnicodeDecodeError`` need five arguments, so they are built without calling it, with
    ``args`` set (their ``str()`` is then empty, never an error)."""
    try:
        return cls(msg)
    except TypeError:
        exc = cls.__new__(cls)
        exc.args = (msg,)
        return exc


# The program's exception is raised in the judge as the built-in class of that name, except
# the two that steer iteration: a StopIteration raised inside ``map(candidate, xs)`` would end
# the map early, so that ``all(map(candidate, xs))`` held. Those become RuntimeError.
BUILTIN_EXC = {
    k: v
    for k, v in vars(builtins).items()
    if isinstance(v, type) and issubclass(v, Exception)
    and not issubclass(v, (StopIteration, StopAsyncIteration))
}
BUILTIN_NAMES = frozenset(vars(builtins))
CALL_CHECK = compile("check(__entry__)", "check.py", "exec")


GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
ATTR_LOADS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})


def nested_names(code, pick):
    """``pick(code)`` for a code object and every one nested in it (functions,
    comprehensions, classes), united."""
    names = pick(code)
    for const in code.co_consts:
        if type(const) is type(code):
            names |= nested_names(const, pick)
    return names


def read_names(code):
    """The global names ``code`` itself reads, by disassembly (attribute names such as
    ``x.data`` are not among them)."""
    return {i.argval for i in dis.get_instructions(code) if i.opname in GLOBAL_LOADS}


def attribute_bases(code):
    """The global names ``code`` itself reads an attribute of (``math`` of ``math.isclose``)."""
    ins = list(dis.get_instructions(code))
    return {a.argval for a, b in itertools.pairwise(ins)
            if a.opname in GLOBAL_LOADS and b.opname in ATTR_LOADS}


def code_names(code, exact):
    """The names a code object, or one nested in it, uses. ``exact``: only the global names
    it reads; otherwise every name, a cheap superset."""
    return nested_names(code, read_names if exact else (lambda c: set(c.co_names)))


def names_in(codes, pick):
    return set().union(*(nested_names(code, pick) for code in codes if type(code) is not str))


def test_namespace(judge, defined, codes):
    """Globals for the test code: the real builtins, and of the program's names only those the
    tests use that are not builtins (a program's ``range`` or ``len`` never reaches a test).
    A standard-library module name whose attribute the tests read (``math`` of
    ``math.isclose``) is the judge's own import of it, never the program's value, which could
    be a fake ``math`` whose ``isclose`` always holds; read otherwise (``secrets(1)``,
    ``total(array)``) it is the program's value. Values are fetched now, only for the names
    the tests use: a table the tests never read stays in the program's process."""
    wanted = set()
    for code in codes:
        wanted |= code_names(code, exact=False)
    wanted = (wanted & defined) - BUILTIN_NAMES
    if wanted:  # most tests share no name with the program: no disassembly for them
        wanted &= names_in(codes, read_names)
    modules = {n for n in wanted if _stdlib_module(n)}
    if modules:
        modules &= names_in(codes, attribute_bases)
    ns = {"__name__": "__judge__", "__builtins__": builtins}
    for name in sorted(wanted):
        ns[name] = importlib.import_module(name) if name in modules else judge.fetch(name)
    return ns


def clashes(spec, codes, defined):
    """The built-in names ``codes`` of an ``asserts`` test read that the program also
    defines, other than the entry point: the tests get the builtin, so a test reading one
    might never call the program's function of that name (``def max(xs): return 0`` passing
    ``max([1, 5]) == 5``); such a test is an error, not a silent pass. ``check`` tests reach
    the program through their argument only."""
    if spec["format"] != "asserts":
        return []
    shared = (defined & BUILTIN_NAMES) - {spec.get("entry_point")}
    return sorted(shared & names_in(codes, read_names)) if shared else []


def clash_error(names):
    name = names[0]
    return NameError(f"the tests read {name!r}, which the program defines and which is also a "
                     f"built-in name; the tests get the builtin, so set tests.entry_point to "
                     f"{name!r} if the program's {name!r} is the function under test")


def judge_main(req, sock, res_fd):
    """Run the trusted tests; write one JSON line per test to ``res_fd``."""
    no_dump()
    judge = Judge(sock, candidate_frame_cap(req["limits"]))

    def emit(obj):
        write_all(res_fd, (json.dumps(obj) + "\n").encode())

    failure, defined = judge.load()
    if failure:
        emit({"load": failure, "msg": defined})
        os._exit(0)
    emit({"load": "ok"})
    spec = req["tests"]
    if spec["format"] == "call":
        judge_calls(judge, spec, defined, emit)
    else:
        judge_tests(judge, spec, defined, emit)
    os._exit(0)


def judge_calls(judge, spec, defined, emit):
    """``call`` format: each case's return value goes to the host, which compares it."""
    name = spec["fn_name"]
    fn = None
    for i, case in enumerate(spec["cases"]):
        t0 = time.perf_counter()
        try:
            if name not in defined:
                raise NameError(f"the program defines no function {name!r}")
            fn = judge.fetch(name) if fn is None else fn
            out = fn(*case.get("args", []), **case.get("kwargs", {}))
            emit({"i": i, "value": encode(out), "time": time.perf_counter() - t0})
        except CandidateGone:
            emit(dict(judge.failure(), i=i, time=time.perf_counter() - t0))
            break
        except BaseException as e:
            emit({"i": i, "status": "error", "msg": f"{type(e).__name__}: {e}"[:500],
                  "time": time.perf_counter() - t0})


def judge_tests(judge, spec, defined, emit):
    """``check`` and ``asserts`` formats: run the test code against a namespace that holds the
    real builtins and the program's names the tests use. The entry point is the program's
    function: ``check``'s argument, or in ``asserts`` the name the tests call (even a
    built-in name such as ``max``)."""
    tests = test_code(spec)
    entry = spec.get("entry_point")
    try:
        setup = [compile(spec["setup"], "setup.py", "exec")] if spec.get("setup") else []
        codes = setup + [c for steps in tests for c in steps if type(c) is not str]
        ns = test_namespace(judge, defined, codes)
        if entry is not None:
            fn = judge.fetch(entry) if entry in defined else None
            if type(fn) is not Ref:
                emit({"i": 0, "status": "error", "time": 0.0,
                      "msg": f"the program defines no function {entry!r}"})
                return
            ns["__entry__" if spec["format"] == "check" else entry] = fn
        if clashes(spec, setup, defined):
            raise clash_error(clashes(spec, setup, defined))
        for code in setup:
            exec(code, ns)
    except CandidateGone:
        emit(dict(judge.failure(), i=0, time=0.0))
        return
    except BaseException as e:
        emit({"setup_error": f"{type(e).__name__}: {e}"[:500]})
        return
    for i, steps in enumerate(tests):
        emit(dict(run_test(judge, steps, ns, clashes(spec, steps, defined)), i=i))
        if judge.broken:
            break


def test_code(spec):
    """Each test's compiled code; code that does not compile is its error message, reported
    as that test's error when its turn comes."""
    if spec["format"] == "check":
        return [[compiled(spec["code"], "check.py"), CALL_CHECK]]
    return [[compiled(a, f"test_{i}.py")] for i, a in enumerate(spec["asserts"])]


def compiled(src, filename):
    try:
        return compile(src, filename, "exec")
    except SyntaxError as e:
        return f"SyntaxError: {e}"


def run_test(judge, steps, ns, clashes=()):
    """One test -> its result. A test is ``passed`` only if its code ran to the end and every
    reply from the program was a well-formed reply: a broken channel fails it even where the
    test code caught the exception. A test reading ``clashes`` (built-in names the program
    also defines) is an error before it runs."""
    t0 = time.perf_counter()
    try:
        if clashes:
            raise clash_error(clashes)
        for code in steps:
            if type(code) is str:
                raise SyntaxError(code)
            exec(code, ns)
        result = {"status": "passed"}
    except AssertionError as e:
        result = {"status": "failed", "msg": f"AssertionError: {e}"[:500]}
    except BaseException as e:
        result = {"status": "error", "msg": f"{type(e).__name__}: {e}"[:500]}
    if judge.broken:  # whatever the test code made of it
        result = judge.failure()
    return dict(result, time=time.perf_counter() - t0)


# --------------------------------------------------------------------------- zygote


def private_channel():
    """Move the host's request and reply pipes off fds 0 and 1 (which then read and write
    /dev/null), so that nothing writing to stdout, nor reading stdin, in this process or any
    process forked from it can reach the protocol. Returns (request fd, reply fd)."""
    rfd, wfd = os.dup(0), os.dup(1)  # not inheritable: nothing exec'd keeps them
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    return rfd, wfd


def to_dev_null(fds):
    null = os.open("/dev/null", os.O_RDWR)
    for fd in fds:
        os.dup2(null, fd)
    os.close(null)


WALL_CAP_FACTOR = 3  # a run that starves itself ends at this many times its time limit


class RunClock:
    """When a run's time is up. Its limit counts the wall time its processes ran or slept, but
    not the time they were runnable and waited for a CPU (the run delay in
    ``/proc/<pid>/schedstat``): on a node loaded from outside the slot, an honest program still
    gets the CPU time its limit means, instead of timing out because others ran. A run cannot
    buy time this way: waiting for a CPU is the only thing that extends it, its processes are
    bounded by ``RLIMIT_CPU`` and the slot's cgroup, and one that starves itself (its own
    spinners) still ends at ``WALL_CAP_FACTOR`` times its limit.

    The watched processes are fresh forks, whose run delay starts at zero; it is read only once
    the deadline known so far is reached (it only ever moves later), so a run that ends within
    its limit costs no read at all."""

    def __init__(self, limit, t0, pids):
        self.limit = limit
        self.t0 = t0
        self.waited = dict.fromkeys(pids, 0.0)  # pid -> seconds it waited for a CPU
        self.grace = 0.0

    def deadline(self):
        due = self.t0 + self.limit + self.grace
        if time.monotonic() >= due:
            for pid in self.waited:
                d = run_delay(pid)
                if d is not None:  # a process that is gone keeps its last figure
                    self.waited[pid] = d
            self.grace = min(sum(self.waited.values()), (WALL_CAP_FACTOR - 1) * self.limit)
            due = self.t0 + self.limit + self.grace
        return due

    def expired(self):
        return time.monotonic() >= self.deadline()


def run_delay(pid):
    """Seconds ``pid``'s main thread has waited, runnable, for a CPU; None if unreadable."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class Zygote:
    def __init__(self):
        self.pid = os.getpid()
        no_dump()
        LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self.rfd, self.wfd = private_channel()
        self.tsock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.template = os.fork()
        if self.template == 0:
            self.tsock.close()
            os.closerange(3, child.fileno())
            os.closerange(child.fileno() + 1, 65536)
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
            remove_ipc()
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

    def wait_run(self, pid, clock):
        """Wait for the run's process ``pid`` until ``clock`` says its time is up; its wait
        status, or None if it is still running."""
        while True:  # the deadline only moves later: wait for it, then ask again
            st = self.wait(pid, clock.deadline())
            if st is not None or clock.expired():
                return st

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
        clock = RunClock(lim["timeout_s"], t0, [pid])
        st = self.wait_run(pid, clock)
        wall = time.monotonic() - t0
        finished = st is not None
        if not finished:
            st = self.kill_wait(pid)
        exit_info = exit_of(st) if finished else None
        out, out_size = read_capped(fout, lim["output_bytes"] + 1)
        err, err_size = read_capped(ferr, 2 * STDERR_KEEP)
        for fd in (fin, fout, ferr, fsrc):
            os.close(fd)
        return {
            "finished": finished,
            "exit": exit_info,
            "wall": wall,
            "stdout": base64.b64encode(out).decode(),
            "stdout_size": out_size,
            "stderr": err[-STDERR_KEEP:].decode("utf-8", "replace"),
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
                self.enter_judge(lim)
                judge_main(job, a, res_w)
            finally:
                os._exit(0)
        a.close()
        os.close(res_w)
        clock = RunClock(lim["timeout_s"], t0, [cpid, jpid])
        buf, over = read_results(res_r, clock, results_cap(job))
        os.close(res_r)
        judge_st = self.wait(jpid, min(clock.deadline(), time.monotonic() + 0.05))
        timed_out = judge_st is None and clock.expired()
        if judge_st is None:
            self.kill_wait(jpid)
        # the candidate ends when the judge closes its socket; give it a moment, then force it
        cst = self.wait(cpid, time.monotonic() + 0.02)
        if cst is None:
            cst = self.kill_wait(cpid)
            exit_info = None if timed_out else exit_of(cst)
        else:
            exit_info = exit_of(cst)
        # a judge ended at the deadline or the cap may leave a partial last line
        lines = [json.loads(ln) for ln in buf[: buf.rfind(b"\n") + 1].split(b"\n") if ln]
        out, out_size = read_capped(fout, lim["output_bytes"] + 1)
        err, err_size = read_capped(ferr, 2 * STDERR_KEEP)
        os.close(fout)
        os.close(ferr)
        return {
            "results": lines,
            "results_over": over,
            "timed_out": timed_out,
            "exit": exit_info,
            "wall": time.monotonic() - t0,
            "stdout": base64.b64encode(out[: lim["output_bytes"]]).decode(),
            "stdout_size": out_size,
            "stderr": err[-STDERR_KEEP:].decode("utf-8", "replace"),
            "stderr_size": err_size,
        }

    def enter_judge(self, lim):
        """In the judge, before any test code runs: the protocol pipes are closed and its
        standard fds are /dev/null, so printing (even a value the candidate chose) or reading
        stdin cannot touch the host's channel; its memory is bounded by the job's."""
        os.close(self.rfd)
        os.close(self.wfd)
        to_dev_null((0, 1, 2))
        room = vm_size() + judge_memory(lim)
        resource.setrlimit(resource.RLIMIT_AS, (room, room))

    def put_files(self, files):
        for name, data in files.items():
            path = os.path.join(WORKDIR, name)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o755)

    def run_io(self, job):
        """Each case starts from the job's files in an otherwise empty sandbox: everything the
        previous case wrote is wiped and its processes ended first."""
        files = {name: base64.b64decode(b64) for name, b64 in job.get("files", {}).items()}
        src = job["source"].encode() if job["mode"] == "main" else b""
        cases = []
        for i, stdin_text in enumerate(job["inputs"]):
            # the first case follows the previous job's clean, and the last one's is the job's
            if i and not self.clean():
                return {"ok": False, "error": "could not end the run's processes"}
            self.put_files(files)
            r = self.run_io_case(job, stdin_text.encode(), src, job["argv"], job["mode"])
            cases.append(r)
            if job.get("stop_on_failure") and not (r["finished"] and r["exit"] == ["exit", 0]):
                break
        return {"ok": True, "cases": cases}

    def compile(self, job):
        """Compile; a binary over MAX_BINARY_BYTES is a compile error naming its size."""
        self.put_files({n: base64.b64decode(b64) for n, b64 in job["files"].items()})
        r = self.run_io_case(job, b"", b"", job["argv"], "exec")
        out = os.path.join(WORKDIR, job["output"])
        if not (r["finished"] and r["exit"] == ["exit", 0] and os.path.exists(out)):
            return {"ok": True, "compile": r, "binary": None}
        size = os.path.getsize(out)
        if size > MAX_BINARY_BYTES:
            r["stderr"] += (f"\nthe compiled program is {size} bytes, over the cap of "
                            f"{MAX_BINARY_BYTES} bytes")
            return {"ok": True, "compile": r, "binary": None}
        with open(out, "rb") as f:
            return {"ok": True, "compile": r, "binary": base64.b64encode(f.read()).decode()}

    def handle(self, req):
        op = req["op"]
        if op == "ping":
            return {"ok": True, "probe": probe()}
        job = req["job"]
        try:
            if op == "judge":
                return {"ok": True, "run": self.run_judged(job)}
            if op == "io":
                return self.run_io(job)
            if op == "compile":
                return self.compile(job)
            return {"ok": False, "error": f"unknown op {op!r}"}
        finally:
            if not self.clean():
                # processes we cannot end means this sandbox must be thrown away
                self.reply(req, {"ok": False, "error": "sandbox could not be cleaned"})
                os._exit(3)

    def reply(self, req, resp):
        """Answer ``req``, echoing its id so the host can tell a stale or forged reply from
        its own; a reply over the request's cap is replaced by an error naming both sizes."""
        resp["rid"] = req.get("rid")
        try:
            write_frame(self.wfd, resp, reply_cap(req))
        except FrameTooLarge as e:
            write_frame(self.wfd, {"ok": False, "rid": req.get("rid"),
                                   "error": f"reply to a {req['op']!r} request: {e}"})

    def serve(self):
        while True:
            try:
                req = read_frame(self.rfd, MAX_REQUEST_BYTES)
            except EOFError:
                os._exit(0)
            try:
                resp = self.handle(req)
            except Exception as e:  # infrastructure failure inside the sandbox
                resp = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000],
                        "trace": traceback.format_exc()[-2000:]}
            self.reply(req, resp)


def read_results(fd, clock, cap):
    """The judge's result lines until it closes the pipe, the run's time is up or more than
    ``cap`` bytes came (the rest is not read). Returns (bytes, over_cap)."""
    chunks, size = [], 0
    while size <= cap:
        left = clock.deadline() - time.monotonic()
        if left <= 0:
            break
        if not select.select([fd], [], [], left)[0]:
            continue  # the deadline may have moved: ask the clock again
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    return (data[:cap], True) if size > cap else (data, False)


def vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


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
    info["ipc_ns"] = os.readlink("/proc/self/ns/ipc")
    info["children"] = [int(c) for c in open(f"/proc/self/task/{os.getpid()}/children").read().split()]
    info["io_uring"] = LIBC.syscall(425, 1, ctypes.create_string_buffer(120)) >= 0  # io_uring_setup
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
