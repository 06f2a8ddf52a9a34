"""The ``rlce`` command: ``rlce train [key=value ...]`` with Hydra overrides."""

from __future__ import annotations

import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def load_config(overrides: list[str]):
    """Compose ``conf/config.yaml`` over the typed schema; unknown keys and bad types fail
    here with Hydra's message naming the option."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlce.config import TrainConfig

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    schema = OmegaConf.structured(TrainConfig)
    unknown = _unknown_keys(cfg, schema)
    if unknown:  # "+key=..." gets past compose; the schema is the whole truth
        raise ValueError(f"unknown config option(s) {unknown}; see rlce/config.py")
    return OmegaConf.to_object(OmegaConf.merge(schema, cfg))


def _unknown_keys(cfg, schema, prefix: str = "") -> list[str]:
    from omegaconf import DictConfig

    out = []
    for key in cfg:
        name = f"{prefix}{key}"
        if key not in schema:
            out.append(name)
        elif isinstance(cfg[key], DictConfig) and isinstance(schema[key], DictConfig):
            out += _unknown_keys(cfg[key], schema[key], name + ".")
    return out


USAGE = """usage:
  rlce train [key=value ...]            train (no arguments: the embedded default)
  rlce eval [key=value ...]             pass@k of model.name (a checkpoint folder or a model)
                                        on eval.set, e.g. eval=humaneval
  rlce bench pipeline [key=value ...]   a short run that prints the wall-time split
  rlce bench publish [--engines 1 2 4]  weight publish time to rollout engines vs a copy floor
  rlce submit [--address URL] [key=value ...]
                                        run `rlce train` on a Ray cluster (Ray Jobs API)
options: see conf/ (presets: model=tiny algo=rloo data=generator eval=humaneval ...) and the
typed schema in rlce/config.py"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["submit"]:
        from rlce.submit import submit

        return submit(argv[1:])
    if argv[:2] == ["bench", "publish"]:
        from rlce.bench import publish

        return publish(argv[2:])
    if argv[:2] == ["bench", "pipeline"]:
        command, overrides = "bench pipeline", argv[2:]
    elif argv and argv[0] in ("train", "eval"):
        command, overrides = argv[0], argv[1:]
    else:
        print(USAGE, file=sys.stderr)
        return 2
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if command == "bench pipeline":
        from rlce.bench import PIPELINE_DEFAULTS

        overrides = [o for o in PIPELINE_DEFAULTS
                     if o.split("=")[0] not in {x.split("=")[0] for x in overrides}] + overrides
    try:
        cfg = load_config(overrides)
        from rlce.train import build_parts

        build_parts(cfg)
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        print(f"rlce {command}: invalid configuration: {e}", file=sys.stderr)
        return 2
    if command == "train":
        from rlce.train import train

        train(cfg)
    elif command == "eval":
        from rlce.train import evaluate_model

        evaluate_model(cfg)
    else:
        from rlce.bench import pipeline

        pipeline(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
