"""``rlce submit``: run ``rlce train`` on a Ray cluster through the Ray Jobs API.

The working directory (this checkout, minus environments and run outputs) is shipped as the
job's ``working_dir``, so the cluster runs this code with this ``conf/``; the overrides are
passed through to ``rlce train``. The plain equivalent::

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python -m rlce.cli train cluster=multi_node 'logging.dir=${oc.env:HOME}/rlce-runs' \\
        'hydra.run.dir=${oc.env:HOME}/rlce-runs/NAME' checkpoint.resume=auto

Every attempt of a job runs in the same run folder and continues from its newest
checkpoint, so a job that is run again after a crash (``--retries``, or a KubeRay RayJob's
``backoffLimit`` with the same entrypoint) goes on instead of starting over.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path

EXCLUDES = [".venv", "runs", "outputs", "wandb", ".git", "**/__pycache__", ".pytest_cache",
            ".ruff_cache", "*.egg-info"]
# on the node where the job's driver runs (the head node); resolved there, since neither
# Hydra nor a run folder expands "~"
RUNS_DIR = "${oc.env:HOME}/rlce-runs"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="rlce submit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default=os.environ.get("RAY_DASHBOARD_ADDRESS",
                                                      "http://127.0.0.1:8265"),
                   help="the cluster's dashboard (Jobs API) address")
    p.add_argument("--working-dir", default=".", help="the code and conf/ to ship")
    p.add_argument("--no-wait", action="store_true", help="return once the job is submitted")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for the job")
    p.add_argument("--retries", type=int, default=2,
                   help="submit the job again this many times if it fails; each retry "
                        "continues the run from its newest checkpoint (waits for the job)")
    return p.parse_known_args(argv)


def use_cluster_token() -> None:
    """Ray 2.60 clusters require a token on the Jobs API by default; the client only sends it
    in ``RAY_AUTH_MODE=token``. Turn that on when a token is at hand and the user has not
    chosen a mode."""
    token = (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
             or (Path.home() / ".ray" / "auth_token").is_file())
    if token and "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"


def submit(argv: list[str]) -> int:
    """Submit, stream the job's logs until it ends (unless --no-wait); exit 0 if it
    succeeded."""
    use_cluster_token()  # before Ray is imported: it reads the mode once
    from ray.job_submission import JobStatus, JobSubmissionClient

    args, overrides = parse(argv)
    if not (Path(args.working_dir) / "rlce" / "cli.py").is_file():
        print(f"rlce submit: {args.working_dir} is not an RLCE checkout (no rlce/cli.py)")
        return 2
    if not any(o.startswith("logging.dir=") for o in overrides):
        overrides.append(f"logging.dir={RUNS_DIR}")
    name = time.strftime("rlce-%Y%m%d-%H%M%S-") + os.urandom(2).hex()
    # one run folder for every attempt, and each attempt continues from its newest
    # checkpoint: a job the cluster (or --retries) runs again after a crash goes on
    if not any(o.startswith("hydra.run.dir=") for o in overrides):
        logging_dir = [o.split("=", 1)[1] for o in overrides if o.startswith("logging.dir=")][-1]
        overrides.append(f"hydra.run.dir={logging_dir}/{name}")
    if not any(o.startswith("checkpoint.resume=") for o in overrides):
        overrides.append("checkpoint.resume=auto")
    env = {k: os.environ[k] for k in ("WANDB_API_KEY", "WANDB_ENTITY", "HF_TOKEN", "RLCE_CACHE")
           if k in os.environ}
    try:
        client = JobSubmissionClient(args.address)
    except ConnectionError as e:
        print(f"rlce submit: no Ray dashboard answers at {args.address} ({e}); give --address "
              f"the head's dashboard, e.g. http://HEAD:8265, once it is up")
        return 2
    entrypoint = "python -m rlce.cli train " + " ".join(shlex.quote(o) for o in overrides)
    runtime_env = {"working_dir": args.working_dir, "excludes": EXCLUDES, "env_vars": env}
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    terminal = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
    for attempt in range(args.retries + 1):
        job = _submit(client, entrypoint, runtime_env, name if not attempt
                      else f"{name}-retry{attempt}")
        print(f"submitted {job} to {args.address}: {entrypoint}")
        print(f"logs: ray job logs --address {args.address} {job}")
        if args.no_wait:
            return 0
        while client.get_job_status(job) not in terminal:
            if deadline is not None and time.monotonic() > deadline:
                print(f"rlce submit: {job} still running after {args.timeout} s; stopping it")
                client.stop_job(job)
                return 1
            time.sleep(2)
        status = client.get_job_status(job)
        print(client.get_job_logs(job)[-4000:])
        print(f"{job}: {status.value}")
        if status != JobStatus.FAILED:  # succeeded, or stopped by someone: not retried
            return 0 if status == JobStatus.SUCCEEDED else 1
        if attempt < args.retries:
            print(f"rlce submit: {job} failed; submitting it again ({attempt + 1} of "
                  f"{args.retries}): it continues from the run's newest checkpoint")
    return 1


def _submit(client, entrypoint: str, runtime_env: dict, submission_id: str) -> str:
    tries = 0
    while True:  # a cluster that just started may not have its job agent yet
        try:
            return client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env,
                                     submission_id=submission_id)
        except RuntimeError as e:
            tries += 1
            if "No available agent" not in str(e) or tries == 90:
                raise
            time.sleep(2)
