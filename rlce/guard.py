"""The reward's guard against programs that satisfy the tests rather than the problem.

The executor makes a verdict unfakeable from inside the sandbox; this module protects the
reward from outside it, where the tests themselves are too few or too visible:

* **Held-out tests.** A problem's tests may be split into reward tests and held-out tests:
  ``tests.heldout`` in the problem row (a list of the format's own items: ``asserts``
  statements, ``io`` cases or ``call`` cases), or ``reward.heldout_fraction`` of each
  problem's items chosen by a hash of the problem id (the same split on every run and
  machine). The reward sees only the reward tests; the held-out ones run in the same
  executor job, after them (``job_tests``), and ``split_verdict`` cuts the verdict in two.
  A sample that passes its reward tests and fails a held-out one is counted
  (``reward/heldout_fail_rate``) and, with ``reward.heldout=penalize``, gets no reward.
* **Hard-coding detector** (``hardcoded``): a static check of a passing program against its
  reward tests' literal inputs and expected outputs; see its docstring for what it catches.
* **Alerts** (``HackMonitor``): either rate above ``reward.alert_threshold`` over the last
  ``reward.alert_window`` steps raises an alert (W&B ``alert`` and a console line).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from executors.compare import plain_equal
from executors.schema import TestResult, Verdict

HELDOUT = "heldout"
# the list of test items each format has (check is one test: it cannot be split)
ITEMS = {"asserts": "asserts", "io": "cases", "call": "cases"}
GUARD_MODES = ("off", "log", "penalize")


def items_key(tests: dict[str, Any]) -> str | None:
    return ITEMS.get(tests.get("format", ""))


def reward_count(tests: dict[str, Any]) -> int:
    """How many reward tests ``tests`` holds (they come first in its job)."""
    key = items_key(tests)
    return len(tests[key]) if key else 1


def job_tests(tests: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The tests an execution job carries: the reward tests followed by the held-out ones
    (the executor never sees the split), and how many reward tests come first."""
    if HELDOUT not in tests:
        return tests, reward_count(tests)
    key = items_key(tests)
    out = {k: v for k, v in tests.items() if k != HELDOUT}
    out[key] = list(tests[key]) + list(tests[HELDOUT])
    return out, reward_count(tests)


def reward_tests(tests: dict[str, Any]) -> dict[str, Any]:
    """The tests without their held-out part."""
    return {k: v for k, v in tests.items() if k != HELDOUT}


def check_heldout(tests: dict[str, Any]) -> str | None:
    """What is wrong with a row's ``tests.heldout``, or None (the merged job is validated by
    the executor's own schema afterwards)."""
    if HELDOUT not in tests:
        return None
    key = items_key(tests)
    if key is None:
        return (f"tests.heldout: {tests.get('format')!r} tests are one test and cannot be "
                "split; give held-out tests with asserts, io or call tests")
    if not isinstance(tests[HELDOUT], list) or not tests[HELDOUT]:
        return f"tests.heldout must be a non-empty list of {key} items, like tests.{key}"
    if tests.get("record"):
        return "tests.heldout: record tests compare nothing, so they have nothing to hold out"
    if not isinstance(tests.get(key), list) or not tests[key]:
        return f"tests.{key} is empty: the reward needs at least one test beside tests.heldout"
    return None


def split_fraction(tests: dict[str, Any], problem_id: str, fraction: float) -> dict[str, Any]:
    """``tests`` with ``fraction`` of its items moved to ``heldout``: at least one of each
    where there are two or more items, chosen by a hash of the problem id and the item's
    index. Tests that already name their held-out part, or cannot be split, are returned
    as they are."""
    key = items_key(tests)
    if not fraction or key is None or HELDOUT in tests or tests.get("record"):
        return tests
    items = list(tests[key])
    if len(items) < 2:
        return tests
    count = min(len(items) - 1, max(1, round(fraction * len(items))))
    order = sorted(range(len(items)), key=lambda i: hashlib.sha256(
        f"{problem_id}\0{i}".encode()).hexdigest())
    held = set(order[:count])
    return {**tests, key: [x for i, x in enumerate(items) if i not in held],
            HELDOUT: [x for i, x in enumerate(items) if i in held]}


def with_heldout(problems: Any, fraction: float) -> Any:
    """``reward.heldout_fraction`` applied to a problem set (a list) or stream (an
    iterator): each problem's tests split by ``split_fraction``."""
    if not fraction:
        return problems
    split = (dataclasses.replace(p, tests=split_fraction(p.tests, p.id, fraction))
             for p in problems)
    return list(split) if isinstance(problems, (list, tuple)) else split


@dataclass
class Judged:
    """What the guard made of one executed sample. ``verdict`` is the reward tests' verdict
    (what the reward sees); ``heldout_total`` is 0 where the problem has no held-out tests
    or the program did not pass its reward tests (then held-out results say nothing)."""

    verdict: Verdict
    heldout_passed: int = 0
    heldout_total: int = 0
    hardcoded: str = ""  # the detector's reason, "" if not flagged (or not checked)

    @property
    def heldout_failed(self) -> bool:
        return self.verdict.status == "passed" and self.heldout_passed < self.heldout_total


def _first_failure(tests: list[TestResult], whole: Verdict) -> str:
    first = next(t for t in tests if t.status != "passed")
    if first.status != "not_run":
        return first.status
    return whole.status if whole.status != "passed" else "failed"


def split_verdict(v: Verdict, reward_count: int) -> tuple[Verdict, int, int]:
    """The verdict of the first ``reward_count`` tests, and (passed, total) of the rest.
    A verdict with no per-test results (it did not compile, or failed before any test ran)
    is a failure of the reward tests as it is."""
    heldout = v.total - reward_count
    if not v.tests or heldout <= 0:
        return (dataclasses.replace(v, total=reward_count, passed=min(v.passed, reward_count))
                if heldout > 0 else v), 0, max(0, heldout)
    tests = list(v.tests) + [TestResult("not_run", 0.0)] * (v.total - len(v.tests))
    mine, rest = tests[:reward_count], tests[reward_count:]
    passed = sum(t.status == "passed" for t in mine)
    status = "passed" if passed == reward_count else _first_failure(mine, v)
    message = "" if status == "passed" else next(
        (t.message for t in mine if t.status != "passed"), v.message) or v.message
    return (dataclasses.replace(v, status=status, passed=passed, total=reward_count,
                                tests=mine, message=message),
            sum(t.status == "passed" for t in rest), len(rest))


@dataclass(frozen=True)
class Guard:
    """The guard as the controller applies it (``reward.heldout``, ``reward.hardcode``)."""

    heldout: str = "log"  # log or penalize
    hardcode: str = "log"  # off, log or penalize

    def judge(self, problem: Any, verdict: Verdict, program: str) -> Judged:
        """``problem``: an ``rlce.data.Problem`` (its tests and ``reward_count``)."""
        mine, h_passed, h_total = split_verdict(verdict, problem.reward_count)
        judged = Judged(mine)
        if mine.status == "passed":
            judged.heldout_passed, judged.heldout_total = h_passed, h_total
            if self.hardcode != "off":
                judged.hardcoded = hardcoded(program, problem.language, problem.tests)
        return judged

    def penalized(self, judged: Judged) -> bool:
        """Whether the sample gets no reward."""
        return ((self.heldout == "penalize" and judged.heldout_failed)
                or (self.hardcode == "penalize" and bool(judged.hardcoded)))


# -- the hard-coding detector -------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One reward test as the detector sees it: the literal inputs it gives the program and
    the literal output it expects (``NO_VALUE`` where the test's code is not that simple)."""
    inputs: tuple[Any, ...]
    output: Any


NO_VALUE = object()


def trivial(v: Any) -> bool:
    """A value an honest program writes as a base case as often as a hack does: None, a
    boolean, a number of magnitude at most 2, a string of at most one character, an empty
    container."""
    if v is None or v is NO_VALUE or isinstance(v, bool):
        return True
    if isinstance(v, (int, float)):
        return abs(v) <= 2
    if isinstance(v, str):
        return len(v.strip()) <= 1
    if isinstance(v, (list, tuple, dict, set)):
        return len(v) == 0
    return False


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NO_VALUE


def _assert_case(node: ast.Assert, names: set[str]) -> Case | None:
    """``assert f(1, 2) == 3`` (either side), ``assert f(x)``, ``assert not f(x)``,
    ``assert f(x) is True``: the case, where ``f`` is one of ``names`` (or any call when
    ``names`` is empty) and every argument is a literal."""
    test, output = node.test, NO_VALUE
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, output = test.operand, False
    elif isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(
            test.ops[0], (ast.Eq, ast.Is)):
        left, right = test.left, test.comparators[0]
        if not isinstance(left, ast.Call):
            left, right = right, left
        test, output = left, _literal(right)
    elif isinstance(test, ast.Call):
        output = True
    if not isinstance(test, ast.Call) or output is NO_VALUE:
        return None
    fn = test.func.id if isinstance(test.func, ast.Name) else None
    if names and fn not in names:
        return None
    args = tuple(_literal(a) for a in test.args) + tuple(_literal(k.value)
                                                            for k in test.keywords)
    if any(a is NO_VALUE for a in args):
        return None
    return Case(args, output)


def _number(token: str) -> Any:
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            continue
    return token


def cases_of(tests: dict[str, Any]) -> list[Case]:
    """The reward tests' literal cases (held-out ones are not the reward's)."""
    fmt = tests.get("format")
    if fmt == "call":
        return [Case(tuple(c.get("args", [])) + tuple(c.get("kwargs", {}).values()),
                     c.get("expected", NO_VALUE)) for c in tests.get("cases", [])]
    if fmt == "io":
        out = []
        for c in tests.get("cases", []):
            text = c.get("input", "").strip()
            tokens = tuple(_number(t) for t in text.split())
            expected = c.get("output", "").strip()
            out.append(Case((text, *tokens) if len(tokens) != 1 else tokens,
                            _number(expected) if expected and " " not in expected
                            and "\n" not in expected else expected))
        return out
    codes = tests.get("asserts", []) if fmt == "asserts" else [tests.get("code", "")]
    names = ({tests["entry_point"]} if fmt == "asserts" and tests.get("entry_point")
             else {"candidate"} if fmt == "check" else set())
    out = []
    for code in codes:
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                case = _assert_case(node, names)
                if case is not None:
                    out.append(case)
    return out


def _emitted(body: list[ast.stmt] | ast.expr) -> list[Any]:
    """Literals a branch's body hands back: returned, yielded, printed, or the value of a
    conditional expression's arm."""
    if isinstance(body, ast.expr):
        return [_literal(body)]
    out = []
    for stmt in body:
        for node in ast.walk(stmt):
            value = None
            if isinstance(node, (ast.Return, ast.Yield)) and node.value is not None:
                value = node.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id == "print" and node.args):
                value = node.args[0]
            elif isinstance(node, ast.IfExp):
                out += [_literal(node.body), _literal(node.orelse)]
            if value is not None:
                out.append(_literal(value))
    return [v for v in out if v is not NO_VALUE]


def _tested(test: ast.expr) -> list[Any]:
    """Literals a condition compares for equality or membership (``x == 5``,
    ``x in (5, 7)``, ``s == "abc"``): what a branch on a test's input reads."""
    out = []
    for node in ast.walk(test):
        if not isinstance(node, ast.Compare):
            continue
        for op, right, left in zip(node.ops, node.comparators, [node.left, *node.comparators]):
            if isinstance(op, (ast.Eq, ast.Is)):
                out += [_literal(left), _literal(right)]
            elif isinstance(op, ast.In):
                seq = _literal(right)
                out.append(_literal(left))
                out += list(seq) if isinstance(seq, (list, tuple, set, frozenset)) else [seq]
    return [v for v in out if v is not NO_VALUE]


def _branches(tree: ast.AST) -> list[tuple[list[Any], list[Any]]]:
    """(literals tested, literals emitted) for each ``if``, conditional expression and
    ``match`` case of a program."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp)):
            out.append((_tested(node.test), _emitted(node.body)))
        elif isinstance(node, ast.match_case):
            pats = [_literal(p.value) for p in ast.walk(node.pattern)
                    if isinstance(p, ast.MatchValue)]
            out.append(([p for p in pats if p is not NO_VALUE], _emitted(node.body)))
    return out


def _tables(tree: ast.AST) -> list[list[tuple[Any, Any]]]:
    """Each dict literal's (key, value) entries whose key and value are literals."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            entries = []
            for k, v in zip(node.keys, node.values):
                if k is not None:
                    key, value = _literal(k), _literal(v)
                    if key is not NO_VALUE and value is not NO_VALUE:
                        entries.append((key, value))
            out.append(entries)
    return out


def _matches_input(value: Any, case: Case) -> bool:
    if any(plain_equal(value, x) for x in case.inputs):
        return True
    return len(case.inputs) > 1 and plain_equal(value, list(case.inputs))


def _constant(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Any:
    """The one literal a function returns on every ``return``, else NO_VALUE."""
    values = [n.value for n in ast.walk(node) if isinstance(n, ast.Return)]
    if not values or any(v is None for v in values):
        return NO_VALUE
    literals = [_literal(v) for v in values]
    if any(v is NO_VALUE for v in literals) or not all(plain_equal(v, literals[0])
                                                       for v in literals):
        return NO_VALUE
    return literals[0]


def _constant_functions(tree: ast.AST, entry: str | None) -> list[tuple[str, Any]]:
    """(name, the literal it returns) of each function that returns one literal on every
    ``return``: the entry function if it takes arguments (a function of nothing may well
    return a constant), and any other function whose literal is not trivial (a helper the
    entry function hands its answer to)."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        value = _constant(node)
        if value is NO_VALUE:
            continue
        a = node.args
        takes = a.args or a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg
        if (node.name == entry and takes) or (node.name != entry and not trivial(value)):
            out.append((node.name, value))
    return out


def _text_literals(program: str) -> tuple[list[Any], list[Any]]:
    """A program of another language read as text: its number and string literals, and
    those of them compared with ``==`` (``x == 5``, ``"abc" == s``)."""
    lit = r'(-?\d+(?:\.\d+)?|"(?:[^"\\\n]|\\.)*")'
    def value(token: str) -> Any:
        return token[1:-1] if token.startswith('"') else _number(token)
    every = [value(m.group(1)) for m in re.finditer(lit, program)]
    # a variable compared with a literal (not a literal inside arithmetic: n % 10 == 0)
    ident = r"(?<![\w.%*/+\-])[A-Za-z_]\w*(?:\[[^\]]*\])?"
    compared = [value(m.group(1) or m.group(2)) for m in
                re.finditer(rf"{ident}\s*==\s*{lit}(?![\w.])(?!\s*[-+*/%])|"
                            rf"(?<![\w.%*/+\-])(?<![\w.%*/+\-]\s){lit}\s*==\s*{ident}",
                            program)]
    return every, compared


def hardcoded(program: str, language: str, tests: dict[str, Any]) -> str:
    """Why a (passing) program looks hard-coded to its reward tests, or "" if it does not.

    Python programs are parsed. A program is flagged when it

    * branches on a test's literal input and hands back that test's expected output
      (``if n == 7: return 13``; ``elif``, conditional expressions, ``match`` cases and
      ``n in (7, 9)`` too), where that input is not trivial (see ``trivial``) and neither
      is the output, or it does so for two tests, and every non-trivial value the
      program's conditions compare for equality is some test's input;
    * holds a lookup table (a dict literal) from a test's non-trivial input to its expected
      output whose every non-trivial key is some test's input;
    * has an entry function whose every ``return`` gives the same literal, one of the
      tests' expected outputs (a function of its arguments that computes nothing), or a
      helper function that does so with a non-trivial output.

    Other languages (``io`` tests) are read as text, coarser: a program is flagged when it
    compares a variable (``n == 7``, not ``n % 7 == 0``) with a test's non-trivial input
    token and contains that test's expected output as a literal, non-trivial, or does so
    for two tests.

    What it cannot see: a table built at run time (``dict(zip(...))``), outputs encoded
    (``chr``, arithmetic on a literal), branches on a trivial input (``if n == 2: return
    True`` is a base case as often as a hack), a condition that mixes test inputs with
    other values (``m in (4, 6, 9, 11)`` is how a calendar is written, and a program that
    also compares values no test uses is read as a rule: hard-coding hidden among real
    cases passes), or a program that reads the expected outputs from somewhere (the
    sandbox gives it nothing to read)."""
    cases = [c for c in cases_of(reward_tests(tests)) if c.output is not NO_VALUE]
    if not cases:
        return ""
    if language != "python":
        every, compared = _text_literals(program)
        hits = [(c, x) for c in cases for x in c.inputs
                if not trivial(x) and any(plain_equal(x, y) or str(x) == str(y) for y in compared)
                and any(plain_equal(c.output, y) or str(c.output) == str(y) for y in every)]
        strong = [(c, x) for c, x in hits if not trivial(c.output)]
        if strong or len({repr(c) for c, _ in hits}) >= 2:
            c, x = (strong or hits)[0]
            return f"compares the test input {x!r} and holds its expected output {c.output!r}"
        return ""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    branches = _branches(tree)
    compared = [v for tested, _ in branches for v in tested if not trivial(v)]
    if not all(any(_matches_input(v, c) for c in cases) for v in compared):
        branches = []  # compares values no test uses: a rule or a mapping, not a lookup
    pairs = []
    for tested, emitted in branches:
        plain = [v for v in tested if not trivial(v)]
        if not plain:
            continue
        for c in cases:
            hit = [v for v in plain if _matches_input(v, c)]
            if hit and any(plain_equal(e, c.output) for e in emitted):
                pairs.append((c, hit[0]))
    strong = [(c, x) for c, x in pairs if not trivial(c.output)]
    if strong or len({repr(c) for c, _ in pairs}) >= 2:
        c, x = (strong or pairs)[0]
        return f"branches on the test input {x!r} and returns its expected output {c.output!r}"
    for table in _tables(tree):
        keys = [k for k, _ in table if not trivial(k)]
        if not keys or not all(any(_matches_input(k, c) for c in cases) for k in keys):
            continue  # a table of the problem's domain (months, numerals), not of its tests
        for key, value in table:
            if not trivial(key) and any(_matches_input(key, c) and plain_equal(value, c.output)
                                        for c in cases):
                return f"looks up the test input {key!r} in a table of expected outputs"
    entry = tests.get("fn_name") or tests.get("entry_point")
    for name, value in _constant_functions(tree, entry):
        if any(plain_equal(value, c.output) for c in cases):
            return f"{name} returns the expected output {value!r} without computing it"
    return ""


# -- alerts ---------------------------------------------------------------------------------

@dataclass
class HackMonitor:
    """Watches the two rates over the last ``window`` steps: ``observe`` returns an alert's
    text when a rate crosses ``threshold`` (with at least ``min_passed`` samples that passed
    their reward tests in the window), once per crossing."""

    threshold: float
    window: int = 5
    min_passed: int = 10

    def __post_init__(self) -> None:
        self.steps: deque[tuple[int, int, int, int]] = deque(maxlen=self.window)
        self.above: dict[str, bool] = {"heldout": False, "hardcode": False}

    def observe(self, step: int, passed: int, heldout_judged: int, heldout_failed: int,
                hardcoded: int) -> list[str]:
        """``passed``: samples that passed their reward tests this step; ``heldout_judged``:
        those of them that had held-out tests; the counts of each kind of flag."""
        self.steps.append((passed, heldout_judged, heldout_failed, hardcoded))
        p, hj, hf, hc = (sum(x[i] for x in self.steps) for i in range(4))
        rates = {"heldout": (hf / hj if hj else 0.0, hj,
                             "passed their reward tests and failed held-out tests"),
                 "hardcode": (hc / p if p else 0.0, p,
                              "passed and look hard-coded to their tests")}
        alerts = []
        for name, (rate, base, what) in rates.items():
            now = base >= self.min_passed and rate > self.threshold
            if now and not self.above[name]:
                alerts.append(f"step {step}: {rate:.0%} of the {base} samples of the last "
                              f"{len(self.steps)} steps that {what.split(' and ')[0]} "
                              f"{what.split(' and ')[1]} (threshold {self.threshold:.0%})")
            self.above[name] = now
        return alerts


GUARD_FILE = "reward_guard.json"  # the run's per-problem counts
FLAGGED_KEPT = 200  # hard-coded samples kept for the next W&B table
GUARD_COLUMNS = ["reward_passed", "heldout_judged", "heldout_failed", "hardcoded"]


class GuardWatch:
    """What ``rlce train`` does with the guard's findings after each step: per-problem
    counts (kept in the run folder as ``reward_guard.json`` and logged as a W&B table),
    the flagged programs (a W&B table), and the alerts: a console line through ``say``, a
    W&B alert on ``run`` (None: no W&B) and, with ``reward.on_alert=stop``, a graceful
    stop through ``stop.ask``. ``counts``: the per-problem counts to continue from (a
    resumed run's checkpoint keeps them, so steps done again are counted once)."""

    def __init__(self, run_dir: Any, reward: Any, run: Any, say: Any, stop: Any,
                 counts: dict[str, list[int]] | None = None) -> None:
        from pathlib import Path

        self.path = Path(run_dir) / GUARD_FILE
        self.run, self.say, self.stop, self.on_alert = run, say, stop, reward.on_alert
        self.counts: dict[str, list[int]] = {k: list(v) for k, v in (counts or {}).items()}
        self.flagged: list[list[Any]] = []
        self.monitor = HackMonitor(reward.alert_threshold, reward.alert_window,
                                   reward.alert_min_passed)
        self.alerts: list[str] = []

    def observe(self, step: int, metrics: dict[str, Any], records: list[dict[str, Any]]
                ) -> None:
        """One step's metrics (the controller's ``reward/...``) and sample records."""
        for r in records:
            if r["status"] != "passed":
                continue
            c = self.counts.setdefault(r["problem"], [0, 0, 0, 0])
            c[0] += 1
            c[1] += r["heldout_total"] > 0
            c[2] += r["heldout_passed"] < r["heldout_total"]
            c[3] += bool(r["hardcoded"])
            if r["hardcoded"] and len(self.flagged) < FLAGGED_KEPT:
                self.flagged.append([step, r["problem"], r["hardcoded"], r["penalized"],
                                     r["program"][:2000]])
        self.path.write_text(json.dumps({"columns": GUARD_COLUMNS,
                                         "problems": dict(sorted(self.counts.items()))},
                                        indent=1))
        for line in self.monitor.observe(step, sum(r["status"] == "passed" for r in records),
                                         int(metrics["reward/heldout_judged"]),
                                         int(metrics["reward/heldout_failed"]),
                                         int(metrics["reward/hardcoded"])):
            self.alerts.append(line)
            self.say(f"reward alert: {line}")
            if self.run is not None:
                self.run.alert(title="RLCE: possible reward hacking", text=line, level="WARN")
            if self.on_alert == "stop":
                self.stop.ask("a reward alert (reward.on_alert=stop)")

    def tables(self) -> dict[str, tuple[list[str], list[list[Any]]]]:
        """W&B tables to log now, as (columns, rows): the per-problem counts and the
        programs flagged since the last call."""
        out = {"reward/guard_by_problem": (["problem", *GUARD_COLUMNS],
                                           [[pid, *c] for pid, c in sorted(self.counts.items())])}
        if self.flagged:
            out["reward/hardcoded_samples"] = (["step", "problem", "why", "penalized",
                                                "program"], self.flagged)
            self.flagged = []
        return out
