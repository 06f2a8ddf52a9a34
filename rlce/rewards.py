"""Rewards: plain callables ``reward(verdict, completion_text) -> float`` over the executor's
typed ``Verdict`` (``status``, ``passed``, ``total``, per-test results), registered by name so
that a config can pick them, and the extraction of a program from a completion.

A user adds one without subclassing anything::

    from rlce.rewards import register
    @register("short_and_right")
    def short_and_right(verdict, text):
        return float(verdict.status == "passed") - 0.001 * len(text)
"""

from __future__ import annotations

import re
from collections.abc import Callable

from executors.schema import Verdict

RewardFn = Callable[[Verdict, str], float]
REWARDS: dict[str, RewardFn] = {}

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#-]*)[^\n]*\n(.*?)(```|\Z)", re.DOTALL)
FENCE_NAMES = {"python": {"python", "py", "python3"}, "javascript": {"javascript", "js", "node"},
               "go": {"go", "golang"}, "rust": {"rust", "rs"}, "cpp": {"cpp", "c++", "cc"}}


def extract_program(text: str, language: str, entry: str | None = None) -> tuple[str, bool]:
    """The program in a completion and whether it came from a fenced code block.

    Blocks tagged with the language come first, else untagged ones. Of those, the last that
    defines ``entry`` (the function the tests call) wins, so an "example usage" block after
    the solution is not judged in its place; without ``entry`` (or with no block defining it)
    the last block. A block still open at the end (the completion was cut off) counts up to
    the end. No block at all: the whole text."""
    blocks = [(tag, body if end or language != "python" else _parsable_prefix(body))
              for tag, body, end in FENCE.findall(text)]
    names = FENCE_NAMES.get(language, {language})
    tagged = [body for tag, body in blocks if tag.lower() in names]
    candidates = tagged or [body for tag, body in blocks if not tag]
    if not candidates:
        return text, False
    if entry:
        pattern = re.compile(rf"\b(def|function|fn|func)\s+{re.escape(entry)}\b")
        defining = [b for b in candidates if pattern.search(b)]
        if defining:
            return defining[-1], True
    return candidates[-1], True


def _parsable_prefix(body: str) -> str:
    """A Python block cut off by the token limit: its longest prefix of whole lines that
    parses (compiling runs nothing), so a finished function is not lost to a half-written
    example after it."""
    lines = body.split("\n")
    for end in range(len(lines), 0, -1):
        src = "\n".join(lines[:end])
        try:
            compile(src, "<completion>", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        return src + "\n"
    return body


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    def add(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is already registered")
        REWARDS[name] = fn
        return fn
    return add


def get_reward(name: str) -> RewardFn:
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; registered: {sorted(REWARDS)}")
    return REWARDS[name]


@register("binary")
def binary(verdict: Verdict, text: str) -> float:
    """1 if every test passed, else 0."""
    return float(verdict.status == "passed")


@register("fraction")
def fraction(verdict: Verdict, text: str) -> float:
    """The fraction of tests passed (0 for a program that did not compile or run)."""
    return verdict.passed / verdict.total if verdict.total else 0.0


PENALTIES = {"compile_error": -0.2, "timeout": -0.1, "memory_limit": -0.1,
             "output_limit": -0.1}


@register("fraction_with_penalties")
def fraction_with_penalties(verdict: Verdict, text: str) -> float:
    """``fraction`` plus a penalty for compile errors and for exhausting a limit."""
    return fraction(verdict, text) + PENALTIES.get(verdict.status, 0.0)


@register("binary_with_format")
def binary_with_format(verdict: Verdict, text: str) -> float:
    """``binary`` plus 0.1 when the completion put its program in a fenced code block."""
    closed = any(end for _, _, end in FENCE.findall(text))
    return binary(verdict, text) + (0.1 if closed else 0.0)
