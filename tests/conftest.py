"""Test tiers and the tiny model.

- `slow`: needs Ray, vLLM, a subprocess of the rlce CLI or firejail sandboxes at volume, or
  takes more than a few seconds. `pytest -m "not slow"` is the fast tier: it neither imports
  ray nor vllm (checked at the end of every such run), because a module marked slow as a whole
  (`pytestmark`) is not even imported when the marker expression leaves out every test it
  could hold. A test that uses the Ray or engine fixtures must be marked slow.
- `gpu` (optionally `gpu(count=N)`): skipped unless this machine has N CUDA devices.

`pytest -q` runs every tier. The Ray and vLLM session fixtures live in `tests/fixtures.py`."""

from __future__ import annotations

import ast
import itertools
import re
import sys
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

pytest_plugins = ["tests.fixtures"]

# fixtures that start Ray or an engine: a test that uses one must be marked slow
SLOW_FIXTURES = {"ray_local", "tiny_cfg", "shared_engine", "vllm_actor", "restores_vllm_actor"}


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """A random model of SmolLM2's architecture, built once per cache (torch is imported
    here, not when the tests are collected)."""
    from rlce.core.models import build_tiny_model, cache_dir

    return str(build_tiny_model(cache_dir() / "models" / "tiny-llama-test"))


def module_marks(path: Path) -> set[str]:
    """The marks named in a test module's top-level `pytestmark`, read without importing it."""
    for node in ast.parse(path.read_bytes()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)
                    and isinstance(n.value, ast.Attribute) and n.value.attr == "mark"}
    return set()


def deselects_every_test_marked(config: pytest.Config, marks: set[str]) -> bool:
    """Whether `-m` leaves out every test that carries ``marks``, whatever other registered
    marks the expression names it may also carry."""
    expr = config.option.markexpr
    if not expr or not marks:
        return False
    registered = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    named = [m for m in registered - marks if re.search(rf"\b{re.escape(m)}\b", expr)]
    compiled = Expression.compile(expr)
    extras = itertools.chain.from_iterable(
        itertools.combinations(named, k) for k in range(len(named) + 1))
    return not any(compiled.evaluate(has_marks(marks | set(extra))) for extra in extras)


def has_marks(marks: set[str]):
    return lambda name, **kwargs: name in marks


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave a test module unimported when `-m` deselects every test it can hold."""
    if (collection_path.suffix == ".py" and collection_path.name.startswith("test_")
            and deselects_every_test_marked(config, module_marks(collection_path))):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items
                if SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError("tests that use Ray or a rollout engine must be marked slow: "
                                + ", ".join(unmarked))


def pytest_runtest_setup(item: pytest.Item) -> None:
    gpu = item.get_closest_marker("gpu")
    if gpu is None:
        return
    import torch

    need = gpu.kwargs.get("count", 1)
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have < need:
        pytest.skip(f"needs {need} CUDA GPU(s), this machine has {have}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The fast tier's promise, kept: a run without the slow tests imported neither ray nor
    vllm (a test module that does must be marked slow as a whole)."""
    heavy = [m for m in ("ray", "vllm") if m in sys.modules]
    if heavy and deselects_every_test_marked(session.config, {"slow"}):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"the fast tier imported {' and '.join(heavy)}: mark the test "
                                f"module that needs it slow (pytestmark = pytest.mark.slow)",
                                red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
