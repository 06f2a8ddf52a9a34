"""The judge: the trusted process that runs a job's test code against the candidate.

The judge rebuilds only standard types from what the candidate sends (None, bool, int, float,
complex, str, bytes, bytearray, list, tuple, dict, set, frozenset, range, deque, Fraction,
Decimal, datetime dates, times and timedeltas, namedtuples by the standard factory, Counter,
OrderedDict, defaultdict of a builtin factory, iterators over such values, standard modules and
builtin types by name); any other object of the candidate stays in its process and reaches the
tests as a ``Ref`` handle, equal only to itself. So no returned object can carry a custom
``__eq__`` (or ``__len__``, ``__iter__``...) into the judge, and exiting, printing, patching or
writing raw frames inside the candidate process cannot produce a pass. The tests run against
the judge's own builtins and see, of the candidate's names, only those they use
(``test_namespace``). Only the judge writes test results, on a pipe the candidate never holds
(``judge_main``).
"""

import builtins
import dis
import importlib
import itertools
import json
import os
import struct
import time

from .codec import Decoder, _stdlib_module, encode
from .hygiene import no_dump
from .wire import DEFAULT_FRAME_CAP, write_all


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
    the reply is not one. It carries the program's own ``args`` (or its message) where the
    judge has the class of that name; a class it replaces (an unknown name, StopIteration)
    becomes RuntimeError with the program's class name before the message."""
    if type(reply) is not dict or not {"exc", "msg"} <= reply.keys() <= {"exc", "msg", "args"}:
        raise ValueError("not a reply")
    name, msg = reply["exc"], reply["msg"]
    if type(name) is not str or type(msg) is not str:
        raise ValueError("not an exception reply")
    cls = BUILTIN_EXC.get(name)
    if cls is None:
        return RuntimeError(f"{name}: {msg}"[:600])
    args = Decoder(live=True)(reply["args"]) if "args" in reply else (msg[:600],)
    if type(args) is not tuple:
        raise ValueError("malformed exception arguments")
    return exception(cls, args, f"{name}: {msg}"[:600])


def exception(cls, args, fallback):
    """An instance of ``cls`` carrying ``args``, whatever its constructor takes: classes such as
    ``UnicodeDecodeError`` need five arguments of given types, so where the arguments do not
    fit they are built without calling it, with ``args`` set (their ``str()`` is then empty,
    never an error); a class that cannot be built so (``ExceptionGroup``) is RuntimeError."""
    try:
        return cls(*args)
    except Exception:
        pass
    try:
        exc = cls.__new__(cls)
        exc.args = args
        return exc
    except Exception:
        return RuntimeError(fallback)


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
