"""``python -m rlce.problems export FILE``: the shipped set as JSONL (without references)."""

import sys

from rlce.problems import export

if len(sys.argv) != 3 or sys.argv[1] != "export":
    print("usage: python -m rlce.problems export FILE.jsonl", file=sys.stderr)
    sys.exit(2)
print(f"wrote {export(sys.argv[2])} problems to {sys.argv[2]}")
