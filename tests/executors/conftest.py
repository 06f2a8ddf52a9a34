"""Shared fixtures: one warm runner per test session (real firejail, real sandbox users)."""

import os
import pwd

import pytest

from executors import Runner

SECRET = "rlce-secret-7f3a9c"


@pytest.fixture(scope="session")
def runner():
    os.environ["RLCE_TEST_SECRET"] = SECRET  # must never be visible inside a sandbox
    r = Runner(workers=2).start()
    yield r
    r.close()


@pytest.fixture
def js_runner(runner):
    """The session runner with JavaScript asserts admitted (the evaluation opt-in)."""
    runner.allow_js_asserts = True
    yield runner
    runner.allow_js_asserts = False


@pytest.fixture(scope="session")
def solo():
    """A one-slot runner, so that consecutive jobs share a sandbox."""
    r = Runner(workers=1).start()
    yield r
    r.close()


def sandbox_uids(runner: Runner) -> set[int]:
    """The uids of ``runner``'s own sandboxes (not those of other executors on the machine)."""
    return {pwd.getpwnam(f"{box.cfg.user_prefix}-{box.slot}").pw_uid
            for box in runner._sandboxes}


def processes_of(uids: set[int]) -> list[tuple[int, str]]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{pid}")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if st.st_uid in uids:
            out.append((int(pid), cmd[:80]))
    return out


def run(runner, job: dict) -> dict:
    return runner.submit(job).result(timeout=120)


def asserts_job(source: str, asserts: list[str], **kw) -> dict:
    return {"id": kw.pop("id", "t"), "language": "python", "source": source,
            "tests": {"format": "asserts", "asserts": asserts}, **kw}


def io_job(source: str, cases: list[tuple[str, str]], language: str = "python", **kw) -> dict:
    tests = {"format": "io", "cases": [{"input": i, "output": o} for i, o in cases]}
    tests.update(kw.pop("tests_extra", {}))
    return {"id": kw.pop("id", "t"), "language": language, "source": source, "tests": tests, **kw}
