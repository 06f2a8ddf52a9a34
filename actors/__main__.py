"""``python -m actors bench`` and ``python -m actors convert``."""

from __future__ import annotations

import argparse
import sys

from rlce.core.config import ModelConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m actors")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="tokens/s: bare vLLM vs RolloutActor(s)")
    b.add_argument("--model", default=ModelConfig.name)
    b.add_argument("--prompts", type=int, default=16)
    b.add_argument("--n", type=int, default=4)
    b.add_argument("--max-tokens", type=int, default=128)
    b.add_argument("--actors", type=int, default=1)
    b.add_argument("--kv-cache-gb", type=float, default=2.0)
    c = sub.add_parser("convert", help="convert the default model from its GGUF wheel")
    c.add_argument("--dest", default=None)
    args = ap.parse_args(argv)
    if args.cmd == "bench":
        from .bench import main as bench

        return bench(args)
    from pathlib import Path

    from rlce.core.models import convert_default_model

    print(convert_default_model(Path(args.dest) if args.dest else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
