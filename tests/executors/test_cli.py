"""``python -m executors run`` and ``selfcheck`` as a user drives them."""

import json
import subprocess
import sys

JOBS = [
    {"id": "ok", "language": "python", "source": "def f():\n    return 1\n",
     "tests": {"format": "asserts", "asserts": ["assert f() == 1"]}},
    "{not json",
    {"id": "nolang", "source": "x"},
    {"id": "io", "language": "python", "source": "print(input()[::-1])",
     "tests": {"format": "io", "cases": [{"input": "abc\n", "output": "cba"}]}},
]


def test_run_streams_one_verdict_per_line():
    stdin = "\n".join(j if isinstance(j, str) else json.dumps(j) for j in JOBS) + "\n"
    p = subprocess.run([sys.executable, "-m", "executors", "run", "--workers", "1"],
                       input=stdin, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    out = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(out) == 4
    by_id = {v["id"]: v for v in out}
    assert by_id["ok"]["status"] == "passed" and by_id["io"]["status"] == "passed"
    assert by_id["nolang"]["status"] == "invalid_job" and "language" in by_id["nolang"]["message"]
    assert by_id[""]["status"] == "invalid_job" and "line 2" in by_id[""]["message"]


def test_selfcheck_reports_isolation():
    p = subprocess.run([sys.executable, "-m", "executors", "selfcheck"], capture_output=True,
                       text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    probe = json.loads(p.stdout)
    assert probe["isolation"] == "ok" and probe["Seccomp"] == "2" and probe["uid"] != 0
