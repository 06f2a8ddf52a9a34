"""Execution jobs and verdicts: the JSON contract of ``python -m executors run`` (schema v1).

A job and a verdict are plain dicts on the wire; these dataclasses validate and carry them.
``parse_job`` turns any decoded JSON value into a :class:`Job` or raises :class:`InvalidJob`
with a message that names the bad field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

SCHEMA_VERSION = 1
LANGUAGES = ("python", "javascript", "go", "rust", "cpp")
FORMATS = ("check", "asserts", "io", "call")
COMPARATORS = ("exact", "whitespace", "float")
Status = Literal["passed", "failed", "compile_error", "runtime_error", "timeout",
                 "memory_limit", "output_limit", "sandbox_error", "invalid_job"]
STATUSES: tuple[Status, ...] = get_args(Status)
# which test formats each language supports
SUPPORTED = {
    "python": ("check", "asserts", "io", "call"),
    "javascript": ("io", "asserts"),
    "go": ("io",),
    "rust": ("io",),
    "cpp": ("io",),
}
LANGUAGE_ALIASES = {"py": "python", "python3": "python", "js": "javascript", "node": "javascript",
                    "c++": "cpp", "golang": "go", "rs": "rust"}


class InvalidJob(ValueError):
    """A job that cannot be run as written; the message names the field and what is valid."""


# The JavaScript asserts harness runs the tests in the candidate's own node process.
JS_ASSERTS_REFUSED = (
    "JavaScript asserts are refused: they run inside the candidate's own node process, where "
    "one line (globalThis.assert = new Proxy(...)) makes every assertion a no-op, so their "
    "verdicts cannot be trusted for training; use io tests, or run the executor with "
    "allow_js_asserts (--allow-js-asserts) for evaluation of trusted programs only")
# CPython refuses to print (str, json.dumps) integers of more digits than this; the host does
# not lift that limit, so such an integer can be judged (in ``expected``) but not sent
INT_PRINT_LIMIT = 10 ** 4300


def _show(v: Any, width: int = 60) -> str:
    """``repr`` of an untrusted value for an error message: short, and never raising (an
    integer past CPython's 4300-digit limit cannot be printed)."""
    try:
        text = repr(v)
    except ValueError:
        return "a value too large to print"
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class Limits:
    """Per-job resource limits. ``timeout_s`` is per test case for ``io``, per job otherwise."""

    timeout_s: float = 5.0
    memory_mb: int = 512
    output_bytes: int = 1 << 20

    MAX_TIMEOUT_S = 120.0
    MAX_MEMORY_MB = 16384


@dataclass(frozen=True)
class Job:
    id: str
    language: str
    source: str
    tests: dict[str, Any]
    limits: Limits = field(default_factory=Limits)


@dataclass
class TestResult:
    status: str
    time_s: float
    message: str = ""


@dataclass
class Verdict:
    id: str
    status: Status
    passed: int
    total: int
    tests: list[TestResult]
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    message: str = ""
    retries: int = 0
    cached_compile: bool = False
    schema: int = SCHEMA_VERSION
    # tests with "record": each case's return value (call; as plain JSON) or standard output
    # (io); None where the case failed or its value cannot be held exactly; absent otherwise
    outputs: list[Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        """A verdict as ``python -m executors run`` and the fleet write it."""
        if d.get("status") not in STATUSES:
            raise ValueError(f"verdict {d.get('id')!r} has an unknown status {d.get('status')!r}")
        tests = [TestResult(**t) for t in d.get("tests", [])]
        return cls(**{**d, "tests": tests})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.outputs is None:
            del d["outputs"]
        d["duration_s"] = round(self.duration_s, 6)
        for t in d["tests"]:
            t["time_s"] = round(t["time_s"], 6)
        return d


def invalid(job_id: str, message: str) -> Verdict:
    return Verdict(id=job_id, status="invalid_job", passed=0, total=0, tests=[],
                   duration_s=0.0, message=message)


def _need(d: dict, key: str, typ: type | tuple, where: str) -> Any:
    if key not in d:
        raise InvalidJob(f"{where}: missing required field {key!r}")
    v = d[key]
    if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
        name = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise InvalidJob(f"{where}: field {key!r} must be {name}, got {type(v).__name__}")
    return v


def _str_list(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidJob(f"{where} must be a list of strings")
    return v


def _check_entry(entry: Any, w: str) -> None:
    if not isinstance(entry, str) or not entry.isidentifier():
        raise InvalidJob(f"{w}: entry_point {_show(entry)} is not an identifier")


def _check_tests(language: str, tests: Any, allow_js_asserts: bool) -> dict[str, Any]:
    if not isinstance(tests, dict):
        raise InvalidJob(f"field 'tests' must be an object, got {type(tests).__name__}")
    fmt = tests.get("format")
    if fmt not in FORMATS:
        raise InvalidJob(f"tests.format must be one of {', '.join(FORMATS)}; got {_show(fmt)}")
    if fmt not in SUPPORTED[language]:
        raise InvalidJob(
            f"language {language!r} does not support tests.format {fmt!r} "
            f"(supported: {', '.join(SUPPORTED[language])})"
        )
    if language == "javascript" and fmt == "asserts" and not allow_js_asserts:
        raise InvalidJob(JS_ASSERTS_REFUSED)
    w = f"tests ({fmt})"
    if "record" in tests and fmt not in ("call", "io"):
        raise InvalidJob(f"{w}: only call and io tests can record their outputs")
    if fmt == "check":
        _need(tests, "code", str, w)
        _check_entry(_need(tests, "entry_point", str, w), w)
    elif fmt == "asserts":
        if "entry_point" in tests:  # the program's function the asserts call, builtin name or not
            _check_entry(tests["entry_point"], w)
        asserts = _str_list(_need(tests, "asserts", list, w), f"{w}: asserts")
        if not asserts:
            raise InvalidJob(f"{w}: asserts is empty; a job needs at least one test")
        if not isinstance(tests.get("setup", ""), str):
            raise InvalidJob(f"{w}: setup must be a string")
    elif fmt == "io":
        cases = _need(tests, "cases", list, w)
        if not cases:
            raise InvalidJob(f"{w}: cases is empty; a job needs at least one test")
        record = _record_flag(tests, w)
        for i, c in enumerate(cases):
            if not isinstance(c, dict):
                raise InvalidJob(f"{w}: cases[{i}] must be an object")
            _need(c, "input", str, f"{w}: cases[{i}]")
            if record and "output" in c:
                raise InvalidJob(f"{w}: cases[{i}] has 'output', but record tests compare "
                                 "nothing: they return the outputs")
            if not record:
                _need(c, "output", str, f"{w}: cases[{i}]")
        compare = tests.get("compare", "whitespace")
        if compare not in COMPARATORS:
            raise InvalidJob(f"{w}: compare must be one of {', '.join(COMPARATORS)}; got {_show(compare)}")
        tol = tests.get("tolerance", 1e-6)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
            raise InvalidJob(f"{w}: tolerance must be a non-negative number; got {_show(tol)}")
    elif fmt == "call":
        fn = _need(tests, "fn_name", str, w)
        if not fn.isidentifier():
            raise InvalidJob(f"{w}: fn_name {_show(fn)} is not an identifier")
        cases = _need(tests, "cases", list, w)
        if not cases:
            raise InvalidJob(f"{w}: cases is empty; a job needs at least one test")
        record = _record_flag(tests, w)
        for i, c in enumerate(cases):
            if not isinstance(c, dict) or not (record or "expected" in c):
                raise InvalidJob(f"{w}: cases[{i}] must be an object with 'args' and 'expected'")
            if record and "expected" in c:
                raise InvalidJob(f"{w}: cases[{i}] has 'expected', but record tests compare "
                                 "nothing: they return the values")
            if not isinstance(c.get("args", []), list):
                raise InvalidJob(f"{w}: cases[{i}].args must be a list")
            if not isinstance(c.get("kwargs", {}), dict):
                raise InvalidJob(f"{w}: cases[{i}].kwargs must be an object")
    return tests


def _record_flag(tests: dict[str, Any], w: str) -> bool:
    record = tests.get("record", False)
    if not isinstance(record, bool):
        raise InvalidJob(f"{w}: record must be true or false; got {_show(record)}")
    return record


def _limits(v: Any) -> Limits:
    if v is None:
        return Limits()
    if not isinstance(v, dict):
        raise InvalidJob(f"field 'limits' must be an object, got {type(v).__name__}")
    unknown = set(v) - {"timeout_s", "memory_mb", "output_bytes"}
    if unknown:
        raise InvalidJob(f"limits: unknown field(s) {sorted(unknown)}; "
                         "valid: timeout_s, memory_mb, output_bytes")
    d = Limits()
    t = v.get("timeout_s", d.timeout_s)
    m = v.get("memory_mb", d.memory_mb)
    o = v.get("output_bytes", d.output_bytes)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (0 < t <= Limits.MAX_TIMEOUT_S):
        raise InvalidJob(f"limits.timeout_s must be a number in (0, {Limits.MAX_TIMEOUT_S}]; got {_show(t)}")
    if isinstance(m, bool) or not isinstance(m, int) or not (16 <= m <= Limits.MAX_MEMORY_MB):
        raise InvalidJob(f"limits.memory_mb must be an integer in [16, {Limits.MAX_MEMORY_MB}]; got {_show(m)}")
    if isinstance(o, bool) or not isinstance(o, int) or not (1 <= o <= 64 << 20):
        raise InvalidJob(f"limits.output_bytes must be an integer in [1, {64 << 20}]; got {_show(o)}")
    return Limits(timeout_s=float(t), memory_mb=m, output_bytes=o)


def _id_text(jid: Any) -> str:
    """The id as a verdict carries it; '' for a value that is no usable id."""
    if isinstance(jid, bool) or not isinstance(jid, (str, int)):
        return ""
    if isinstance(jid, int) and not -INT_PRINT_LIMIT < jid < INT_PRINT_LIMIT:
        return ""
    return str(jid)


def job_id_of(obj: Any) -> str:
    """Best-effort id of a possibly malformed job, so its invalid_job verdict can be matched."""
    return _id_text(obj.get("id")) if isinstance(obj, dict) else ""


def _utf8_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"a lone surrogate ({_show(text[e.start])} at character {e.start})"
    return None


Path = tuple  # (parent path, key or index), () at the job itself: spelled out only on error


def _spell(path: Path) -> str:
    keys = []
    while path:
        path, key = path
        keys.append(f"[{key}]" if isinstance(key, int) else f".{key[:40]}")
    return "".join(reversed(keys)).lstrip(".") or "job"


def _check_data(obj: dict[str, Any]) -> None:
    """Everything in a job is JSON data that the sandbox can be sent: strings of valid
    Unicode (a lone surrogate has no UTF-8 form, so no sandbox could ever run it), JSON
    types with string keys, and integers short enough to print, except under ``expected``,
    which never leaves the host."""
    stack: list[tuple[Any, Path, bool]] = [(obj, (), True)]
    while stack:
        v, path, sent = stack.pop()
        if isinstance(v, dict):
            items = v.items()
        elif isinstance(v, (list, tuple)):
            items = enumerate(v)
        else:
            _check_scalar(v, path, sent)
            continue
        is_dict = isinstance(v, dict)
        for k, x in items:
            if is_dict and (not isinstance(k, str) or _utf8_problem(k)):
                raise InvalidJob(f"field {_spell(path)!r} has a key {_show(k)} that is not a "
                                 "valid Unicode string")
            if type(x) is int and -INT_PRINT_LIMIT < x < INT_PRINT_LIMIT:
                continue  # the common case, kept cheap: long argument lists of small ints
            if isinstance(x, (dict, list, tuple)):
                stack.append((x, (path, k), sent and k != "expected"))
            else:
                _check_scalar(x, (path, k), sent and k != "expected")


def _check_scalar(v: Any, path: Path, sent: bool) -> None:
    if isinstance(v, str):
        bad = _utf8_problem(v)
        if bad:
            raise InvalidJob(f"field {_spell(path)!r} contains {bad}; job strings must be "
                             "valid Unicode")
    elif isinstance(v, int) and not isinstance(v, bool):
        if sent and not -INT_PRINT_LIMIT < v < INT_PRINT_LIMIT:
            raise InvalidJob(f"field {_spell(path)!r} is an integer of more than 4300 "
                             "digits; only 'expected' values may be that long")
    elif not isinstance(v, (float, bool, type(None))):
        raise InvalidJob(f"field {_spell(path)!r} is a {type(v).__name__}, which is not "
                         "JSON data")


def parse_job(obj: Any, allow_js_asserts: bool = False) -> Job:
    """Validate a decoded JSON job; raise InvalidJob naming the first problem.
    ``allow_js_asserts`` admits JavaScript ``asserts`` tests (evaluation only: see
    JS_ASSERTS_REFUSED)."""
    if not isinstance(obj, dict):
        raise InvalidJob(f"a job must be a JSON object, got {type(obj).__name__}")
    jid = obj.get("id")
    if _id_text(jid) == "":
        raise InvalidJob("field 'id' must be a non-empty string (or an integer of at most "
                         "4300 digits)")
    lang = _need(obj, "language", str, "job")
    lang = LANGUAGE_ALIASES.get(lang.lower(), lang.lower())
    if lang not in LANGUAGES:
        raise InvalidJob(f"field 'language' must be one of {', '.join(LANGUAGES)}; got {_show(obj['language'])}")
    source = _need(obj, "source", str, "job")
    if "\x00" in source:
        raise InvalidJob("field 'source' contains a NUL byte")
    tests = _check_tests(lang, obj.get("tests"), allow_js_asserts)
    limits = _limits(obj.get("limits"))
    _check_data(obj)
    return Job(id=_id_text(jid), language=lang, source=source, tests=tests, limits=limits)
