"""The stages a proposed problem goes through, streaming: each proposal is parsed and checked
against evaluation sets and earlier problems as it arrives, its reference runs at once, and
its validation jobs go out as soon as its expected outputs are known, so a bad proposal
costs at most the executions of the stage that rejects it and never holds up the others.

1. **Parse** the teacher's answer (``proposal.parse``).
2. **Decontaminate and dedupe** the statement (``contamination``).
3. **Execute** the reference on every test input twice, the second time in reverse order:
   an input on which it raises, returns what JSON cannot hold, or gives two different
   outputs is dropped; a reference that crashes as a whole, times out or floods its output
   rejects the problem. Expected outputs are these outputs, never the teacher's claims.
4. **Validate**: programs that ignore their input (constants, the first argument) must fail
   the tests, and so must the reference's mutants, of which the tests must kill at least
   ``min_mutation_score``.
5. **Keep** the problem with its provenance (teacher, seed, mutation score).

``augment`` runs stages 3 and 4 for a problem that has a reference already: new inputs shaped
like its own (``inputs.more_inputs``) get expected outputs from the reference, and the
mutation score of the tests before and after says what the new ones add.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from executors.compare import plain_equal
from rlce.synth.contamination import Decontaminator, Deduper
from rlce.synth.inputs import more_inputs
from rlce.synth.mutants import mutants, trivial_programs
from rlce.synth.proposal import Proposal, Rejected, Seed, parse, parse_io

LANGUAGE_NAMES = {"python": "Python", "javascript": "JavaScript (Node.js)", "go": "Go",
                  "rust": "Rust", "cpp": "C++"}

# an expected value longer than this (as JSON) is not kept: it would be copied into every
# validation job and training row, and no statement describes such an output by hand
MAX_EXPECTED_CHARS = 20_000
STALL_S = 600.0  # longest wait for any verdict while problems are in flight

OnVerdict = Callable[[dict[str, Any]], None]


class Executor(Protocol):
    """Where jobs run: ``ExecutorFleet`` as it is, or a local ``Runner`` (``RunnerExecutor``)."""

    def submit(self, job: dict[str, Any], on_verdict: OnVerdict) -> None: ...


class RunnerExecutor:
    """A local ``executors.Runner`` behind the ``Executor`` interface."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def submit(self, job: dict[str, Any], on_verdict: OnVerdict) -> None:
        self.runner.submit(job).add_done_callback(lambda f: on_verdict(f.result()))


@dataclass(frozen=True)
class SynthParams:
    min_tests: int = 3  # inputs that must survive execution
    max_tests: int = 20  # inputs kept at most (the first ones)
    mutants: int = 12  # mutants of the reference run against the tests
    min_mutation_score: float = 0.6  # share of them the tests must kill
    timeout_s: float = 5.0  # each reference, mutant or trivial run
    extra_inputs: int = 10  # augment: new inputs tried per problem
    seed: int = 0
    languages: tuple[str, ...] = ("python",)  # io problems are written for each of these
    augment_into: str = "tests"  # augment: new cases join the tests, or tests.heldout


def _case_key(case: dict[str, Any]) -> str:
    """A call case as its arguments (``kwargs`` absent or empty alike)."""
    return json.dumps([case.get("args", []), case.get("kwargs") or {}], sort_keys=True)


def _unseen(cases: list[dict[str, Any]], seen: set[str]) -> list[dict[str, Any]]:
    """The cases whose arguments are not in ``seen`` yet, each once (``seen`` grows)."""
    out = []
    for c in cases:
        if _case_key(c) not in seen:
            seen.add(_case_key(c))
            out.append(c)
    return out


@dataclass
class Item:
    """One problem on its way through the stages."""

    key: str
    fn_name: str | None  # None: a stdin/stdout program (io tests)
    reference: str
    inputs: list[dict[str, Any]]
    seed: Seed | None = None
    proposal: Proposal | None = None
    original: dict[str, Any] | None = None  # augment: the problem's row as it was
    teacher_keys: set[str] = field(default_factory=set)  # augment: the teacher's inputs
    stage: str = "execute"
    waiting: int = 0
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    figures: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)


class Pipeline:
    """Feed it teacher answers (``feed``) or problems to augment (``augment``); ``finish``
    waits for every problem in flight. ``accepted`` holds the problem rows kept, ``log``
    one record per proposal (kept or not, why, and its figures), ``reasons`` the count of
    each rejection reason."""

    def __init__(self, executor: Executor, params: SynthParams,
                 decontaminator: Decontaminator | None, deduper: Deduper | None = None,
                 teacher: str = "") -> None:
        self.executor, self.p = executor, params
        self.decon, self.dedupe = decontaminator, deduper or Deduper()
        self.teacher = teacher
        self.on_record: Callable[[dict[str, Any]], None] | None = None  # each log record
        self.events: queue.Queue = queue.Queue()
        self.items: dict[str, Item] = {}
        self.accepted: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.reasons: Counter = Counter()
        self.proposed = 0
        self.executions = 0
        self._n = 0
        self._lock = threading.Lock()

    # -- input
    def feed(self, text: str, seed: Seed, kind: str = "function") -> None:
        """One teacher answer for ``seed`` (a ``function`` or an ``io`` program, as asked):
        parsed and checked now, executed in the background."""
        self.proposed += 1
        key = f"p{self._next()}"
        try:
            prop = (parse if kind == "function" else parse_io)(text, self.p.min_tests)
            if self.decon:
                self.decon.check(prop.fn_name, prop.statement, prop.solution)
            self.dedupe.check_statement(prop.statement, key)
        except Rejected as r:
            self._record(key, seed, None, r.reason, r.detail, text=text)
            return
        except Exception as e:  # noqa: BLE001 - one answer must never end the run
            self._record(key, seed, None, "internal_error", f"{type(e).__name__}: {e}"[:500],
                         text=text)
            return
        item = Item(key, prop.fn_name, prop.solution, prop.inputs[: self.p.max_tests * 2],
                    seed=seed, proposal=prop)
        item.figures["text"] = text
        self._execute(item)
        self.drain(block=False)

    def augment(self, row: dict[str, Any], teacher_inputs: list[dict[str, Any]] = ()) -> None:
        """More tests for a problem row with a Python reference (``reference``) and
        ``call`` tests: its inputs, the ``teacher_inputs`` (``{"args", "kwargs"}``, from
        ``proposal.parse_inputs``) and new ones shaped like its own, run through the
        reference."""
        self.proposed += 1
        key = f"a{self._next()}"
        tests = row["tests"]
        old = [{"args": c.get("args", []), "kwargs": c.get("kwargs", {})} for c in tests["cases"]]
        try:
            # seeded by the problem, not by arrival order, so its inputs are reproducible
            typed = more_inputs(old, self.p.extra_inputs, self.p.seed + int(
                hashlib.sha256(row["id"].encode()).hexdigest()[:8], 16))
        except Exception as e:  # noqa: BLE001 - one problem must never end the run
            self._record(key, None, None, "internal_error", f"new inputs for {row['id']}: "
                                                            f"{type(e).__name__}: {e}"[:500])
            return
        seen = {_case_key(c) for c in old}
        teacher, typed = _unseen(teacher_inputs, seen), _unseen(typed, seen)
        item = Item(key, tests["fn_name"], row["reference"], old + teacher + typed, original=row,
                    teacher_keys={_case_key(c) for c in teacher})
        item.figures["original_cases"] = len(old)
        item.figures["teacher_inputs"] = len(teacher)
        self._execute(item)
        self.drain(block=False)

    def _next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    # -- running jobs
    def _submit(self, item: Item, name: str, source: str, tests: dict[str, Any]) -> None:
        job = {"id": f"{item.key}/{name}", "language": "python", "source": source,
               "tests": tests, "limits": {"timeout_s": self.p.timeout_s}}
        item.waiting += 1
        self.executions += 1
        self.executor.submit(job, lambda v, k=item.key, n=name: self.events.put((k, n, v)))

    def drain(self, block: bool) -> None:
        """Handle the verdicts that came back; with ``block``, until no problem is left in
        flight. An executor that stops (``check()`` raises) or returns nothing for
        ``STALL_S`` while problems wait ends the wait with an error."""
        last = time.monotonic()
        while self.items:
            try:
                key, name, verdict = self.events.get(block=block, timeout=1.0 if block else None)
            except queue.Empty:
                if not block:
                    return
                check = getattr(self.executor, "check", None)
                if check:
                    check()
                if time.monotonic() - last > STALL_S:
                    raise TimeoutError(f"the executor returned no verdict for {STALL_S:.0f} s "
                                       f"while {len(self.items)} problems waited")
                continue
            last = time.monotonic()
            item = self.items.get(key)
            if item is None:
                continue
            item.verdicts[name] = verdict
            item.waiting -= 1
            if item.waiting == 0:
                try:
                    self._advance(item)
                except Rejected as r:
                    self._drop(item, r.reason, r.detail)
                except Exception as e:  # noqa: BLE001 - one problem must never end the run
                    self._drop(item, "internal_error", f"{type(e).__name__}: {e}"[:500])

    def _drop(self, item: Item, reason: str, detail: str) -> None:
        self.items.pop(item.key, None)
        self.dedupe.release(item.key)
        self._record(item.key, item.seed, item, reason, detail)

    def finish(self) -> None:
        self.drain(block=True)

    # -- stages
    def _execute(self, item: Item) -> None:
        self.items[item.key] = item
        cases = [dict(i) for i in item.inputs]
        record = ({"format": "call", "fn_name": item.fn_name, "record": True} if item.fn_name
                  else {"format": "io", "record": True})
        self._submit(item, "run", item.reference, {**record, "cases": cases})
        self._submit(item, "rerun", item.reference, {**record, "cases": cases[::-1]})

    def _advance(self, item: Item) -> None:
        if item.stage == "execute":
            self._expected_outputs(item)
            item.stage, item.verdicts = "validate", {}
            self._validate(item)
        elif item.stage == "validate":
            self._judge_validation(item)
        elif item.stage == "validate_original":
            self._judge_original(item)

    def _expected_outputs(self, item: Item) -> None:
        a, b = item.verdicts["run"], item.verdicts["rerun"]
        for v in (a, b):
            if v["status"] == "sandbox_error":
                raise Rejected("sandbox_error", v.get("message", "")[:300])
            if v["status"] in ("timeout", "memory_limit", "output_limit", "compile_error"):
                raise Rejected(f"reference_{v['status']}", v.get("message", "")[:300])
            if not v.get("outputs") and v["status"] != "passed":
                raise Rejected("reference_error", v.get("message", "")[:300])
        n = len(item.inputs)
        tests_a, tests_b = a["tests"], b["tests"][::-1]
        outs_a, outs_b = a["outputs"], b["outputs"][::-1]
        cases = []
        for i in range(n):
            ta, tb = tests_a[i]["status"], tests_b[i]["status"]
            if ta == "runtime_error" or tb == "runtime_error":
                item.dropped["raises"] += 1
            elif ta != "passed" or tb != "passed":
                item.dropped["not_plain_data"] += 1
            elif not (plain_equal(outs_a[i], outs_b[i]) and plain_equal(outs_b[i], outs_a[i])):
                item.dropped["nondeterministic"] += 1
            elif len(json.dumps(outs_a[i])) > MAX_EXPECTED_CHARS:
                item.dropped["output_too_large"] += 1
            elif item.fn_name:
                cases.append({**item.inputs[i], "expected": outs_a[i]})
            else:
                cases.append({"input": item.inputs[i]["input"], "output": outs_a[i]})
        for c in cases:
            if not c.get("kwargs", True):
                del c["kwargs"]
        item.figures["inputs_dropped"] = dict(item.dropped)
        if item.original is not None:
            self._check_reference(item, cases)
        if len(cases) < self.p.min_tests:
            raise Rejected("too_few_tests", f"{len(cases)} inputs survived execution "
                                            f"(dropped: {dict(item.dropped) or 'none'})")
        if item.original is None:
            item.cases = cases[: self.p.max_tests]
            self.dedupe.check_tests(item.fn_name, item.cases, item.key)
        else:
            item.cases = cases

    def _check_reference(self, item: Item, cases: list[dict[str, Any]]) -> None:
        """Augment: the reference must give the problem's own expected outputs."""
        orig = item.original["tests"]["cases"]
        got = {json.dumps([c["args"], c.get("kwargs", {})]): c["expected"] for c in cases}
        for c in orig:
            k = json.dumps([c.get("args", []), c.get("kwargs", {})])
            if k not in got or not plain_equal(got[k], c["expected"]):
                raise Rejected("reference_disagrees", f"the reference does not give the "
                                                      f"expected output for args {k[:200]}")

    def _tests(self, item: Item, cases: list[dict[str, Any]]) -> dict[str, Any]:
        if item.fn_name is None:
            return {"format": "io", "cases": cases, "compare": "whitespace"}
        return {"format": "call", "fn_name": item.fn_name, "cases": cases}

    def _validate(self, item: Item) -> None:
        tests = self._tests(item, item.cases)
        muts = mutants(item.reference, self.p.mutants, self.p.seed)
        if not muts:
            raise Rejected("no_mutants", "the reference has nothing to mutate, so the tests "
                                         "cannot be shown to tell a wrong program apart")
        item.figures["mutant_kinds"] = Counter(k for k, _ in muts)
        self._submit(item, "reference", item.reference, tests)
        outputs = [c["expected"] if item.fn_name else c["output"] for c in item.cases]
        for i, (what, src) in enumerate(trivial_programs(item.fn_name, outputs)):
            item.figures.setdefault("trivial_names", {})[f"trivial{i}"] = what
            self._submit(item, f"trivial{i}", src, tests)
        for i, (_, src) in enumerate(muts):
            self._submit(item, f"mutant{i}", src, tests)

    def _score(self, item: Item) -> tuple[int, int]:
        """(killed, judged) mutants; a sandbox error (or a job refused) judges nothing."""
        ms = [v for n, v in item.verdicts.items() if n.startswith("mutant")
              and v["status"] not in ("sandbox_error", "invalid_job")]
        return sum(v["status"] != "passed" for v in ms), len(ms)

    def _judge_validation(self, item: Item) -> None:
        ref = item.verdicts["reference"]
        if ref["status"] != "passed":  # e.g. state kept between calls, which reordering hid
            raise Rejected("reference_fails_tests", f"{ref['status']}: "
                                                    f"{ref.get('message', '')[:300]}")
        for name, v in item.verdicts.items():
            if name.startswith("trivial") and v["status"] in ("sandbox_error", "invalid_job"):
                raise Rejected("sandbox_error", f"{item.figures['trivial_names'][name]} was "
                                                f"not judged: {v.get('message', '')[:300]}")
        passing = [item.figures["trivial_names"][n] for n, v in sorted(item.verdicts.items())
                   if n.startswith("trivial") and v["status"] == "passed"]
        if passing:
            raise Rejected("trivial_pass", f"a program that ignores its input passes: "
                                           f"{passing[0]}")
        killed, judged = self._score(item)
        submitted = sum(n.startswith("mutant") for n in item.verdicts)
        if judged * 2 < submitted:
            raise Rejected("sandbox_error", f"{judged} of {submitted} mutants were judged")
        score = killed / judged
        item.figures.update(mutation_score=round(score, 4), mutants=judged, killed=killed)
        if item.original is not None:  # augment: also score the original tests
            item.stage, item.verdicts = "validate_original", {}
            orig = self._tests(item, item.original["tests"]["cases"])
            for i, (_, src) in enumerate(mutants(item.reference, self.p.mutants, self.p.seed)):
                self._submit(item, f"mutant{i}", src, orig)
            return
        if score < self.p.min_mutation_score:
            raise Rejected("weak_tests", f"the tests kill {killed} of {judged} mutants "
                                         f"({score:.2f} < {self.p.min_mutation_score})")
        self._accept(item)

    def _judge_original(self, item: Item) -> None:
        killed, judged = self._score(item)
        item.figures["mutation_score_before"] = round(killed / judged, 4) if judged else None
        self._accept(item)

    # -- output
    def _accept(self, item: Item) -> None:
        del self.items[item.key]
        fig = {k: v for k, v in item.figures.items()
               if k not in ("text", "trivial_names", "mutant_kinds")}
        fig["mutant_kinds"] = dict(item.figures.get("mutant_kinds", {}))
        if item.original is not None:
            row = dict(item.original)
            if self.p.augment_into == "heldout":  # the reward never sees them (rlce/guard.py)
                before = row["tests"]["cases"]
                shown = {_case_key(c) for c in before}
                new = [c for c in item.cases if _case_key(c) not in shown]
                row["tests"] = {**row["tests"], "cases": before}
                if new:  # (none survived: the problem is written as it was)
                    row["tests"]["heldout"] = new
            else:
                row["tests"] = {**row["tests"], "cases": item.cases}
            row["augmented"] = {**fig, "cases_before": len(item.original["tests"]["cases"]),
                                "cases_after": len(item.cases),
                                "teacher_cases": sum(_case_key(c) in item.teacher_keys
                                                     for c in item.cases)}
            pid = row["id"]
        else:
            prop = item.proposal
            digest = hashlib.sha256(json.dumps([prop.statement, item.cases],
                                               sort_keys=True).encode()).hexdigest()[:10]
            pid = f"synth/{item.fn_name or 'io'}-{digest}"
            prov = {"teacher": self.teacher, "seed": item.seed.id, "seed_kind": item.seed.kind,
                    **fig, "tests": len(item.cases)}
            tests = self._tests(item, item.cases)
            if item.fn_name is None:  # io tests judge a program in any language
                for lang in self.p.languages:
                    row = {"id": pid if lang == "python" else f"{pid}/{lang}",
                           "language": lang, "difficulty": "synthetic",
                           "prompt": prop.prompt(LANGUAGE_NAMES.get(lang, lang)),
                           "tests": tests, "provenance": {**prov, "reference_language":
                                                          "python"}}
                    if lang == "python":
                        row["reference"] = item.reference
                    else:
                        row["provenance"]["reference"] = item.reference
                    self.accepted.append(row)
                self._record(item.key, item.seed, item, "accepted", pid)
                return
            row = {"id": pid, "language": "python", "difficulty": "synthetic",
                   "prompt": prop.prompt(), "tests": tests, "reference": item.reference,
                   "provenance": prov}
        self.accepted.append(row)
        self._record(item.key, item.seed, item, "accepted", pid)

    def _record(self, key: str, seed: Seed | None, item: Item | None, outcome: str,
                detail: str, text: str = "") -> None:
        if outcome != "accepted":
            self.reasons[outcome] += 1
        fig = {k: v for k, v in (item.figures if item else {}).items()
               if k in ("mutation_score", "mutants", "killed", "inputs_dropped",
                        "mutation_score_before")}
        rec = {"key": key, "seed": seed.id if seed else None,
               "problem": item.original["id"] if item and item.original else None,
               "outcome": outcome, "detail": detail, **fig,
               "text": text or (item.figures.get("text", "") if item else "")}
        self.log.append(rec)
        if self.on_record:
            self.on_record(rec)

    def report(self) -> dict[str, Any]:
        return {"proposed": self.proposed, "accepted": len(self.accepted),
                "rejected": dict(self.reasons.most_common()), "executions": self.executions}
