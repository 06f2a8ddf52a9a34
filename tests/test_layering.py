"""The house is one-way (ARCHITECTURE.md): ``executors/`` imports nothing of RLCE; the leaf
contracts in ``rlce/core/`` import no part; ``actors/`` and ``learner/`` import only
themselves and ``rlce/core/``; no two modules import each other, even lazily. Every import
statement counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("executors", "actors", "learner", "rlce")

# what each layer may import from the repository (module-name prefixes)
ALLOWED = {
    "executors": ("executors",),
    "rlce.core": ("rlce.core",),
    "actors": ("actors", "rlce.core"),
    "learner": ("learner", "rlce.core"),
}


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def repo_imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of a repository module in ``path``."""
    mod = module_name(path, root)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
                # "from . import losses" imports the module package.losses
                names = [f"{stem}.{a.name}" if not node.module else stem for a in node.names]
            else:
                names = [node.module or ""]
        out += [(node.lineno, n) for n in names if n.split(".")[0] in PARTS]
    return out


def sources(*roots: str) -> list[Path]:
    return sorted(p for r in roots for p in (ROOT / r).rglob("*.py"))


def layer_of(mod: str) -> str | None:
    if mod == "rlce.core" or mod.startswith("rlce.core."):
        return "rlce.core"
    top = mod.split(".")[0]
    return top if top in ALLOWED else None


def test_parts_import_only_leaf_contracts_and_themselves():
    broken = []
    for path in sources(*PARTS):
        layer = layer_of(module_name(path))
        if layer is None:
            continue  # the driver side (rlce/ outside core) may import every part
        for line, mod in repo_imports(path):
            if not any(mod == a or mod.startswith(a + ".") for a in ALLOWED[layer]):
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not broken, "imports against the one-way rule:\n" + "\n".join(broken)


def resolve(mod: str, known: set[str]) -> str | None:
    """The repository module that ``mod`` names (``pkg.mod.Name`` -> ``pkg.mod``)."""
    while mod and mod not in known:
        mod = mod.rpartition(".")[0]
    return mod or None


def test_no_import_cycles_between_modules():
    paths = sources(*PARTS)
    known = {module_name(p) for p in paths}
    graph = {module_name(p): {m for _, x in repo_imports(p) if (m := resolve(x, known))}
             for p in paths}
    for mod, deps in graph.items():  # a package's __init__ importing its own modules is fine
        deps.discard(mod)
        graph[mod] = {d for d in deps if not mod.startswith(d + ".")}
    cycles = []
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("source,expected", [
    ("from rlce.controller import Controller\n", ["rlce.controller"]),
    ("def f():\n    from actors import rollout\n", ["actors"]),
    ("from . import losses\n", ["learner.losses"]),
    ("from .group import LearnerGroup\n", ["learner.group"]),
    ("import numpy\nimport executors.fleet as f\n", ["executors.fleet"]),
])
def test_import_reader_sees_every_kind_of_import(tmp_path, source, expected):
    # the reader itself: absolute, lazy, relative-module and relative-name imports
    (tmp_path / "learner").mkdir()
    f = tmp_path / "learner" / "mod.py"
    f.write_text(source)
    assert [m for _, m in repo_imports(f, tmp_path)] == expected
