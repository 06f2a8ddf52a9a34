"""How a problem becomes a prompt, and a completion the program that is judged: one place
for training, evaluation and the minimal loop."""

from __future__ import annotations

import ast
import re

from rlce.core.types import Prompt
from rlce.data import Problem
from rlce.rewards import extract_program

INSTRUCTION = "Answer with the complete program in one fenced code block."


def messages_for(statement: str) -> tuple[dict[str, str], ...]:
    """The chat turns a problem's statement is asked in."""
    return ({"role": "user", "content": f"{statement}\n\n{INSTRUCTION}"},)


def prompt_for(problem: Problem) -> Prompt:
    return Prompt(problem.id, messages=messages_for(problem.prompt))


def program_for(problem: Problem, text: str) -> str:
    """The program to judge: the completion's code block; for a problem that gives a stub
    (``meta["stub"]``, as HumanEval does) the stub goes first when the block does not define
    the entry point itself."""
    entry = problem.tests.get("fn_name") or problem.tests.get("entry_point")
    program, _ = extract_program(text, problem.language, entry)
    stub = problem.meta.get("stub")
    if stub and entry and f"def {entry}" not in program:
        program = stub + program
    return program


def program_key(program: str, language: str) -> str:
    """What two programs share when they differ only in layout: a Python program's syntax
    tree without comments and formatting (a docstring stays), any other language's text
    with runs of whitespace collapsed."""
    if language == "python":
        try:
            return ast.dump(ast.parse(program))
        except (SyntaxError, ValueError, RecursionError):
            pass
    return re.sub(r"\s+", " ", program).strip()
