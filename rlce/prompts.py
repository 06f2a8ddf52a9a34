"""How a problem becomes a prompt, and a completion the program that is judged: one place
for training, evaluation and the minimal loop."""

from __future__ import annotations

from rlce.core.types import Prompt
from rlce.data import Problem
from rlce.rewards import extract_program

INSTRUCTION = "Answer with the complete program in one fenced code block."


def prompt_for(problem: Problem) -> Prompt:
    return Prompt(problem.id, messages=({"role": "user",
                                         "content": f"{problem.prompt}\n\n{INSTRUCTION}"},))


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
