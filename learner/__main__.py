"""``python -m learner bench``."""

from __future__ import annotations

import argparse
import sys

from rlce.core.config import ModelConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m learner")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="learner tokens/s and peak memory for one step")
    b.add_argument("--model", default=ModelConfig.name)
    b.add_argument("--micro-batch-tokens", type=int, default=None,
                   help="the learner's budget (default: LearnerConfig's)")
    b.add_argument("--logit-chunk-tokens", type=int, nargs="+", default=None,
                   help="one run per value, side by side (default: LearnerConfig's)")
    b.add_argument("--gradient-checkpointing", action="store_true")
    b.add_argument("--groups", type=int, default=None,
                   help="default: as many as fill one micro-batch")
    b.add_argument("--n", type=int, default=4)
    b.add_argument("--prompt-len", type=int, default=64)
    b.add_argument("--completion-len", type=int, default=192)
    args = ap.parse_args(argv)
    from .bench import main as bench

    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
