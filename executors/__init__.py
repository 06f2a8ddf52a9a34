"""Sandboxed execution of candidate programs against their tests (usable on its own).

    from executors import Runner
    with Runner() as r:
        verdict = r.submit({"id": "1", "language": "python", "source": "...",
                            "tests": {...}}).result()

See executors/README.md for the job and verdict schema and what the sandbox covers.
"""

from .runner import CompileCache, Runner, run_jobs
from .sandbox import IsolationError, SandboxConfig, SandboxError
from .schema import SCHEMA_VERSION, InvalidJob, Job, Limits, Verdict, parse_job

__all__ = ["Runner", "run_jobs", "CompileCache", "IsolationError", "SandboxConfig",
           "SandboxError", "InvalidJob", "Job", "Limits", "Verdict", "parse_job",
           "SCHEMA_VERSION"]
