"""What the teacher is asked for, and how its answer is read: a statement, a reference solution
and test inputs, parsed structurally. A malformed answer is rejected with its reason, never
half-used; the teacher's claims about outputs (``assert f(2) == 5``) are ignored, since
expected outputs come only from running the reference."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from executors.runner import to_plain
from rlce.rewards import FENCE

FORMAT = """Answer in exactly this format, with nothing after the tests:

Problem:
<the task in plain words: what the function takes and what it returns>

Solution:
```python
def function_name(arguments):
    ...
```

Tests:
```python
function_name(example arguments)
function_name(other example arguments)
```
Give at least {min_tests} test calls with literal arguments (numbers, strings, lists, dicts),
including edge cases."""


FORMAT_IO = """Answer in exactly this format, with nothing after the tests:

Problem:
<the task in plain words: what the program reads from standard input and what it prints>

Solution:
```python
<a complete Python program that reads standard input and prints the answer>
```

Tests:
```text
<one complete standard input>
```
```text
<another complete standard input>
```
Give at least {min_tests} test inputs, each in its own text block, including edge cases."""

KINDS = ("function", "io")
# what FORMAT and FORMAT_IO put where the statement goes; a teacher may copy it
PLACEHOLDER = re.compile(r"<the task in plain words\b", re.IGNORECASE)

# A worked answer of each kind, shown to the teacher as an earlier turn of the conversation
# (``synth.shots=1``): a small teacher copies a shape it has seen far better than it follows a
# description of one. Each is itself a valid proposal (tested against the real executor), and
# a proposal that copies one is rejected as ``copies_example``.
EXAMPLE_TOPIC = "runs of equal neighbours"
EXAMPLES = {
    "function": """Problem:
Given a string s, return the length of the longest run of one character repeated in a row.
An empty string gives 0.

Solution:
```python
def longest_run(s):
    best = 0
    run = 0
    prev = None
    for ch in s:
        if ch == prev:
            run += 1
        else:
            run = 1
            prev = ch
        best = max(best, run)
    return best
```

Tests:
```python
longest_run("aabbbc")
longest_run("")
longest_run("abc")
longest_run("zzzz")
longest_run("abba")
```""",
    "io": """Problem:
The first line holds n, the second line n integers. Print how many of the integers are
strictly greater than the one just before them.

Solution:
```python
n = int(input())
xs = list(map(int, input().split()))
count = 0
for i in range(1, n):
    if xs[i] > xs[i - 1]:
        count += 1
print(count)
```

Tests:
```text
5
1 2 2 3 1
```
```text
1
7
```
```text
4
4 3 2 1
```
```text
4
1 2 3 4
```""",
}


@dataclass(frozen=True)
class Seed:
    """Where a proposal comes from: an example problem, a topic, or a problem the policy
    fails (``kind``), with the text the teacher is shown."""

    id: str
    kind: str  # example, topic or failure
    text: str


def teacher_prompt(seed: Seed, min_tests: int, kind: str = "function") -> str:
    """What the teacher is asked: a new exercise from ``seed``, answered as a function
    (``kind="function"``) or as a program over standard input and output (``"io"``)."""
    fmt = FORMAT if kind == "function" else FORMAT_IO
    if seed.kind == "topic":
        ask = f"Write a new Python programming exercise about {seed.text}."
    elif seed.kind == "failure":
        ask = ("A student cannot solve this exercise yet:\n\n"
               f"{seed.text}\n\n"
               "Write an easier Python exercise that practises one step of it.")
    else:
        ask = ("Here is a Python programming exercise:\n\n"
               f"{seed.text}\n\n"
               "Write a new, different exercise on a related idea.")
    if kind == "io":
        ask += (" It must be solved by a program that reads standard input and prints its "
                "answer.")
    return f"{ask}\n\n{fmt.format(min_tests=min_tests)}"


def teacher_messages(seed: Seed, min_tests: int, kind: str = "function",
                     shots: int = 1) -> tuple[dict[str, str], ...]:
    """The teacher's conversation: with ``shots=1``, a request on ``EXAMPLE_TOPIC`` answered
    by ``EXAMPLES[kind]`` comes first, then the request for ``seed``."""
    ask = {"role": "user", "content": teacher_prompt(seed, min_tests, kind)}
    if not shots:
        return (ask,)
    example = Seed("example", "topic", EXAMPLE_TOPIC)
    return ({"role": "user", "content": teacher_prompt(example, min_tests, kind)},
            {"role": "assistant", "content": EXAMPLES[kind]}, ask)


def inputs_prompt(statement: str, reference: str, fn_name: str, n: int,
                  cases: list[dict[str, Any]] = ()) -> str:
    """What the teacher is asked for when it adds tests to a problem (``synth.mode=augment``
    with ``synth.teacher_inputs``), shown the problem's own test calls (``cases``): calls
    only; their outputs come from the reference."""
    calls = "\n".join(fn_name + "(" + ", ".join(
        [repr(a) for a in c.get("args", [])]
        + [f"{k}={v!r}" for k, v in (c.get("kwargs") or {}).items()]) + ")" for c in cases)
    shown = f"Its tests call:\n```python\n{calls}\n```\n\n" if calls else ""
    return (f"Here is a Python exercise and a correct solution.\n\n{statement}\n\n"
            f"```python\n{reference.rstrip()}\n```\n\n{shown}"
            f"Write {n} new test calls of `{fn_name}` with literal arguments (numbers, "
            "strings, lists, dicts): edge cases, and inputs unlike these. Answer "
            "with one Python code block, one call per line.")


def parse_inputs(text: str, fn_name: str) -> tuple[list[dict[str, Any]], int]:
    """The distinct calls of ``fn_name`` with literal arguments in the answer's code blocks
    (or its text, if it has none), as ``{"args", "kwargs"}``, and how many non-empty lines
    were not such a call. What a line claims about the output is ignored."""
    blocks = [body for _, body, _ in FENCE.findall(text)] or [text]
    calls, skipped = [], 0
    for block in blocks:
        found, n = test_calls(block, {fn_name})
        calls += [args for _, args in found]
        skipped += n
    return unique_inputs(calls), skipped


class Rejected(Exception):
    """A proposal or problem that is not kept: ``reason`` is one short name (the yield
    report counts them), ``detail`` says what exactly."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Proposal:
    statement: str
    solution: str
    fn_name: str | None  # the function the tests call; None for a stdin/stdout program
    signature: str  # "name(a, b)" as the solution declares it; "" for a program
    inputs: list[dict[str, Any]]  # {"args": [...], "kwargs": {...}}, or {"input": "..."}
    skipped_inputs: int = 0  # test lines that were not a call with literal arguments
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "function" if self.fn_name else "io"

    def prompt(self, language: str = "Python") -> str:
        """The problem as the policy is asked it (a program in ``language`` for io)."""
        if self.fn_name:
            return f"{self.statement}\n\nWrite it as a Python function `{self.signature}`."
        return (f"{self.statement}\n\nWrite a {language} program that reads standard input "
                "and writes the answer to standard output.")


SECTION = re.compile(r"^[ \t]*(?:#+[ \t]*)?\**(problem|solution|tests?)\**[ \t]*(?::\**|$)",
                     re.IGNORECASE | re.MULTILINE)


def sections(text: str) -> dict[str, str]:
    """The text under each heading (``Problem:``, ``## Solution``, ``**Tests:**``, the text
    may start on the heading's line); the first occurrence of a heading wins."""
    marks = [("tests" if m.group(1).lower().startswith("test") else m.group(1).lower(),
              m.start(), m.end()) for m in SECTION.finditer(text)]
    out: dict[str, str] = {}
    for i, (name, _, end) in enumerate(marks):
        stop = marks[i + 1][1] if i + 1 < len(marks) else len(text)
        out.setdefault(name, text[end:stop].strip())
    return out


def first_block(text: str) -> str | None:
    """The body of the first fenced code block (closed or not)."""
    m = FENCE.search(text)
    return m.group(2) if m else None


def _common(text: str) -> tuple[dict[str, str], str, str, ast.Module]:
    """The sections, statement, solution and its syntax tree every answer must have."""
    parts = sections(text)
    statement = parts.get("problem", "").strip()
    if len(statement) < 20:
        raise Rejected("no_statement", f"the Problem section has {len(statement)} characters")
    if PLACEHOLDER.search(statement):  # the format's "<the task in plain words: ...>"
        raise Rejected("no_statement", "the Problem section is the format's placeholder")
    solution = first_block(parts.get("solution", ""))
    if solution is None or not solution.strip():
        raise Rejected("no_solution", "no code block under Solution")
    try:
        tree = ast.parse(solution)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise Rejected("solution_syntax", f"{type(e).__name__}: {e}") from None
    return parts, statement, solution, tree


def parse(text: str, min_tests: int = 1) -> Proposal:
    """The teacher's answer as a Proposal, or Rejected naming the first thing wrong."""
    parts, statement, solution, tree = _common(text)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if not functions:
        raise Rejected("no_function", "the solution defines no top-level function")
    tests = first_block(parts.get("tests", ""))
    if tests is None:
        raise Rejected("no_tests", "no code block under Tests")
    calls, skipped = test_calls(tests, set(functions))
    if not calls:
        raise Rejected("no_test_inputs", "no test line calls a function of the solution with "
                                         f"literal arguments ({skipped} lines skipped)")
    names = {name for name, _ in calls}
    if len(names) > 1:
        raise Rejected("ambiguous_entry", f"the tests call several functions: {sorted(names)}")
    (name,) = names
    if re.search(rf"\bdef\s+{re.escape(name)}\b", statement):
        raise Rejected("statement_leaks_solution", "the statement defines the function")
    try:
        signature = f"{name}({ast.unparse(functions[name].args)})"
    except (RecursionError, MemoryError) as e:
        raise Rejected("solution_syntax", f"the signature cannot be written back: "
                                          f"{type(e).__name__}") from None
    inputs = unique_inputs([args for _, args in calls])
    if len(inputs) < min_tests:
        raise Rejected("too_few_tests", f"{len(inputs)} distinct test inputs, {min_tests} needed")
    return Proposal(statement, solution.strip() + "\n", name, signature, inputs, skipped)


def parse_io(text: str, min_tests: int = 1) -> Proposal:
    """A stdin/stdout answer (``FORMAT_IO``) as a Proposal, or Rejected."""
    parts, statement, solution, _ = _common(text)
    if not re.search(r"\binput\s*\(|sys\.stdin|open\(\s*0", solution):
        raise Rejected("no_stdin", "the program never reads standard input")
    if solution.strip() in statement:
        raise Rejected("statement_leaks_solution", "the statement holds the program")
    # closed blocks only: a block the token limit cut off holds a truncated input
    blocks = [body for _, body, end in FENCE.findall(parts.get("tests", "")) if end]
    inputs = unique_inputs([{"input": b if b.endswith("\n") else b + "\n"}
                            for b in blocks if b.strip()])
    if not inputs:
        raise Rejected("no_test_inputs", "no text block under Tests")
    if len(inputs) < min_tests:
        raise Rejected("too_few_tests", f"{len(inputs)} distinct test inputs, {min_tests} needed")
    return Proposal(statement, solution.strip() + "\n", None, "", inputs)


def test_calls(src: str, functions: set[str]) -> tuple[list[tuple[str, dict]], int]:
    """(function, {"args", "kwargs"}) of each test line's first call to one of ``functions``
    whose arguments are all literals (``f(1)``, ``assert f(1) == 2``, ``print(f(1))``), and
    how many non-empty lines were not such a call."""
    found, skipped = [], 0
    for line in src.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        call = _literal_call(line, functions)
        if call is None:
            skipped += 1
        else:
            found.append(call)
    return found, skipped


def _literal_call(line: str, functions: set[str]) -> tuple[str, dict] | None:
    try:
        tree = ast.parse(line)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in functions:
            try:
                args = [ast.literal_eval(a) for a in node.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                return None
            if None in kwargs:  # **kwargs
                return None
            try:  # tuples go as lists; a set, bytes or complex JSON cannot carry
                return node.func.id, {"args": to_plain(args), "kwargs": to_plain(kwargs)}
            except ValueError:
                return None
    return None


def unique_inputs(inputs: list[dict]) -> list[dict]:
    seen, out = set(), []
    for i in inputs:
        key = repr(i["input"]) if "input" in i else repr((i["args"], sorted(i["kwargs"].items())))
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out
