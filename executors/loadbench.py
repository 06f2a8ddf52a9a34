"""``python -m executors bench --hostile F``: honest programs beside hostile ones.

Two figures, both measured in this process on the same jobs:

* **Neighbours.** Honest programs (HumanEval's canonical solutions) run one at a time on
  ``workers - 1`` streams while one stream runs hostile programs back to back (fork bombs,
  memory hogs, output floods, sleepers, threaded spinners, /tmp fillers); the honest runs/s
  against the same honest streams with that stream idle. Clean and hostile passes alternate,
  so the node's drift is the same on both sides of each round's ratio.
* **A mixed job set.** A fraction ``F`` of hostile jobs shuffled into the honest ones, run
  through every worker: every honest verdict must still be ``passed``, and every hostile job
  must get a verdict of its own (no ``sandbox_error`` left after retries).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from .bench import humaneval_jobs, humaneval_problems
from .runner import Runner

ROUNDS = 3
HOSTILE_TIMEOUT_S = 1.0

# name -> program; each is judged as a "check" job against a test it can never pass
HOSTILE = {
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                 "        pass\n",
    "memory_hog": "x = []\nwhile True:\n    x.append(bytearray(64 << 20))\n",
    "output_flood": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
    "sleeper": "import time\ntime.sleep(3600)\n",
    "threaded_spin": "import threading\ndef spin():\n    while True:\n        pass\n"
                     "for _ in range(16):\n    threading.Thread(target=spin).start()\nspin()\n",
    "tmp_filler": "import os\ni = 0\nwhile True:\n    with open(f'/tmp/f{i}', 'wb') as f:\n"
                  "        f.write(b'x' * (1 << 20))\n    i += 1\n",
}


def hostile_jobs(count: int, tag: str, first: int = 0) -> list[dict[str, Any]]:
    """``count`` hostile jobs, their kinds in turn from the ``first``-th."""
    kinds = sorted(HOSTILE)
    return [{"id": f"hostile/{kinds[i % len(kinds)]}/{tag}{i}", "language": "python",
             "source": HOSTILE[kinds[i % len(kinds)]],
             "limits": {"timeout_s": HOSTILE_TIMEOUT_S},
             "tests": {"format": "check", "code": "def check(f):\n    assert f() == 1\n",
                       "entry_point": "f"}}
            for i in range(first, first + count)]


def honest_pass(r: Runner, jobs: list[dict], streams: int, hostile: bool
                ) -> tuple[float, Counter, Counter]:
    """Honest runs/s over ``jobs`` on ``streams`` one-at-a-time streams, with one more
    stream running hostile programs meanwhile if ``hostile``; honest and hostile verdicts."""
    honest, bad = Counter(), Counter()
    lock = threading.Lock()
    done = threading.Event()

    def honest_stream(part: list[dict]) -> None:
        for job in part:
            status = r.submit(job).result()["status"]
            with lock:
                honest[status] += 1

    def hostile_stream() -> None:
        i = 0
        while not done.is_set():
            (job,) = hostile_jobs(1, f"n{time.monotonic_ns()}-", first=i)  # each kind in turn
            verdict = r.submit(job).result()
            with lock:
                bad[f"{job['id'].split('/')[1]}:{verdict['status']}"] += 1
            i += 1

    threads = [threading.Thread(target=honest_stream, args=(jobs[k::streams],))
               for k in range(streams)]
    side = threading.Thread(target=hostile_stream) if hostile else None
    if side:
        side.start()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    done.set()
    if side:
        side.join()
    return len(jobs) / wall, honest, bad


def main(workers: int, fraction: float, repeat: int) -> int:
    if workers < 2:
        print("bench --hostile needs at least 2 workers: one for the hostile stream")
        return 2
    problems = humaneval_problems()
    honest = humaneval_jobs(problems) * repeat
    streams = workers - 1
    print(f"Honest: HumanEval canonical solutions, {len(honest)} jobs on {streams} stream(s); "
          f"hostile: {', '.join(sorted(HOSTILE))} (timeout {HOSTILE_TIMEOUT_S:g} s) on 1 "
          f"stream; {workers} workers on the node; {ROUNDS} rounds of a clean then a hostile "
          "pass")
    ratios, wrong = [], 0
    hostile_mix: Counter = Counter()
    with Runner(workers) as r:
        list(r.run(honest[: workers * 2]))  # warm-up
        for k in range(ROUNDS):
            clean, ok_clean, _ = honest_pass(r, honest, streams, hostile=False)
            noisy, ok_noisy, bad = honest_pass(r, honest, streams, hostile=True)
            wrong += sum(n for s, n in (ok_clean + ok_noisy).items() if s != "passed")
            hostile_mix += bad
            ratios.append(noisy / clean)
            print(f"  round {k + 1}: honest {clean:6.1f} runs/s clean, {noisy:6.1f} beside "
                  f"hostile programs ({sum(bad.values())} run meanwhile): {noisy / clean:.2f}x")
    ratios.sort()
    print(f"  honest throughput beside hostile programs / clean: median "
          f"{ratios[len(ratios) // 2]:.2f}x (rounds {', '.join(f'{x:.2f}' for x in ratios)})")
    print(f"  honest verdicts not 'passed': {wrong} of {2 * ROUNDS * len(honest)}")
    print(f"  hostile verdicts: {dict(sorted(hostile_mix.items()))}")

    mixed_honest = humaneval_jobs(problems, "/mixed")
    n_hostile = round(len(mixed_honest) * fraction / (1 - fraction)) if fraction < 1 else 0
    jobs = mixed_honest + hostile_jobs(n_hostile, "mixed")
    random.Random(0).shuffle(jobs)
    with Runner(workers) as r:
        t0 = time.perf_counter()
        verdicts = list(r.run(jobs))
        wall = time.perf_counter() - t0
    got = {v["id"]: v["status"] for v in verdicts}
    honest_bad = Counter(s for i, s in got.items() if not i.startswith("hostile/") and s != "passed")
    hostile_got = Counter(s for i, s in got.items() if i.startswith("hostile/"))
    floor = n_hostile * HOSTILE_TIMEOUT_S / workers
    print(f"Mixed set: {len(mixed_honest)} honest + {n_hostile} hostile jobs ({fraction:.0%}) "
          f"through {workers} workers in {wall:.1f} s (the hostile jobs' time limits alone "
          f"take {floor:.1f} s of it); honest not passed: {dict(honest_bad) or 0}; hostile "
          f"verdicts: {dict(hostile_got)}")
    return 0 if not wrong and not honest_bad and not hostile_got.get("sandbox_error") else 1
