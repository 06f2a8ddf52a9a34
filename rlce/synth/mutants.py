"""Mutants of a reference solution: one small change each to its syntax tree (an operator, a
comparison's boundary, a constant, a boolean connective, a negation, an if's branches, a
statement removed), the bugs a test set must catch. A mutant the tests pass survives; the
share of mutants the tests kill is the tests' mutation score. Some mutants behave exactly as
the reference (``x * 1`` for ``x * 2`` at 0...), so a score of 1.0 is not always reachable."""

from __future__ import annotations

import ast
import copy
import random
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

BINOPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add,
                            ast.Div: ast.Mult, ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv,
                            ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
                            ast.LShift: ast.RShift, ast.RShift: ast.LShift}
COMPARES: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                              ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
                              ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
                              ast.IsNot: ast.Is}

Edit = Callable[[ast.AST], None]


def _swap_operator(n: Any) -> None:
    n.op = BINOPS[type(n.op)]()


def _swap_comparison(n: Any, j: int) -> None:
    n.ops[j] = COMPARES[type(n.ops[j])]()


def _swap_boolean(n: Any) -> None:
    n.op = ast.Or() if isinstance(n.op, ast.And) else ast.And()


def _drop_minus(n: Any) -> None:  # -x -> +x
    n.op = ast.UAdd()


def _double_not(n: Any) -> None:  # not x -> not not x
    n.operand = ast.UnaryOp(ast.Not(), n.operand)


def _flip_bool(n: Any) -> None:
    n.value = not n.value


def _add(n: Any, d: int) -> None:
    n.value += d


def _swap_branches(n: Any) -> None:
    n.body, n.orelse = n.orelse, n.body


def _negate_test(n: Any) -> None:
    n.test = ast.UnaryOp(ast.Not(), n.test)


def _drop_statement(n: Any, j: int) -> None:
    n.body[j] = ast.Pass()


def _sites(tree: ast.AST) -> Iterator[tuple[str, int, Edit]]:
    """Every place a mutation applies: (kind, the node's index in ``ast.walk`` order, the
    edit), so that the edit can be replayed on a copy of the tree."""
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BINOPS:
            yield "operator", i, _swap_operator
        elif isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                if type(op) in COMPARES:
                    yield "comparison", i, partial(_swap_comparison, j=j)
        elif isinstance(node, ast.BoolOp):
            yield "boolean", i, _swap_boolean
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            yield "negation", i, _drop_minus
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield "negation", i, _double_not
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            yield "constant", i, _flip_bool
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield "constant", i, partial(_add, d=1)
            yield "constant", i, partial(_add, d=-1)
        elif isinstance(node, ast.If):
            yield "branches", i, _swap_branches if node.orelse else _negate_test
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.For, ast.While, ast.If,
                             ast.With)) \
                and len(node.body) >= 2:
            for j, stmt in enumerate(node.body):
                if not isinstance(stmt, ast.Return):
                    yield "statement", i, partial(_drop_statement, j=j)


def mutants(source: str, limit: int, seed: int = 0) -> list[tuple[str, str]]:
    """Up to ``limit`` distinct mutants of ``source`` as (kind, source), drawn with ``seed``
    from every site when there are more; none that is the same program as the reference.
    A program too deeply nested to copy or write back has none."""
    try:
        return _mutants(source, limit, seed)
    except (RecursionError, MemoryError):
        return []


def _mutants(source: str, limit: int, seed: int) -> list[tuple[str, str]]:
    tree = ast.parse(source)
    reference = ast.unparse(tree)
    sites = list(_sites(tree))
    order = list(range(len(sites)))
    random.Random(seed).shuffle(order)
    out: list[tuple[str, str]] = []
    seen = {reference}
    for k in order:
        if len(out) >= limit:
            break
        kind, index, edit = sites[k]
        copy_tree = copy.deepcopy(tree)
        node = next(n for i, n in enumerate(ast.walk(copy_tree)) if i == index)
        edit(node)
        ast.fix_missing_locations(copy_tree)
        try:
            text = ast.unparse(copy_tree)
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError, TypeError, AttributeError):
            continue
        if text not in seen:
            seen.add(text)
            out.append((kind, text + "\n"))
    return out


def trivial_programs(fn_name: str | None, outputs: list) -> list[tuple[str, str]]:
    """Programs that ignore their input: a constant (``None``, ``0``, ``True``, ``""``,
    ``[]`` ... and each of the tests' three most common expected values), or the first
    argument unchanged; for a stdin/stdout program (``fn_name`` None): printing nothing,
    one of the three most common outputs, or the input itself. Tests any of them passes do
    not test the problem."""
    import json
    from collections import Counter

    if fn_name is None:
        common = Counter(outputs).most_common(3)
        out = [("no output", "pass\n"),
               ("the input echoed", "import sys\nsys.stdout.write(sys.stdin.read())\n")]
        return out + [(f"always prints {text[:40]!r}",
                       f"import sys\nsys.stdout.write({text!r})\n") for text, _ in common]

    consts = ["None", "0", "1", "-1", "True", "False", "''", "[]", "{}"]
    common = Counter(json.dumps(o, sort_keys=True) for o in outputs).most_common(3)
    consts += [f"__import__('json').loads({text!r})" for text, _ in common]
    out = [(f"constant {c}", f"def {fn_name}(*args, **kwargs):\n    return {c}\n")
           for c in consts]
    out.append(("first argument", f"def {fn_name}(*args, **kwargs):\n"
                                  "    return args[0] if args else None\n"))
    return out
