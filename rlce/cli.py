"""The ``rlce`` command. ``train``, ``eval``, ``synth`` and ``bench pipeline`` are Hydra applications over
``conf/`` and the typed schema (``rlce/config.py``), with Hydra's own conventions: ``--help``
lists the config groups and options, ``--cfg job`` prints the resolved config, ``-m`` runs a
sweep over comma-separated overrides, ``hydra.run.dir=...`` sets the run folder.

A user's mistake (a bad value, a missing file, an unknown model) ends with one line naming
the option and exit code 2; a traceback means a bug."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
EXIT_CONFIG = 2

USAGE = """usage:
  rlce train [key=value ...]            train (no arguments: the embedded default)
  rlce eval [key=value ...]             pass@k of model.name (a checkpoint folder or a model)
                                        on eval.set, e.g. eval=humaneval
  rlce synth [key=value ...]            synthetic problems and tests, kept where execution
                                        confirms them (synth.mode=propose or augment)
  rlce critic train critic.stores=[RUN,...]
                                        an execution critic from trajectory stores
  rlce critic eval critic.path=DIR critic.stores=[RUN,...]
                                        its AUROC, calibration, precision at 90% recall
  rlce bench pipeline [key=value ...]   a short run that prints the wall-time split
  rlce bench publish [--engines 1 2 4]  weight publish time to rollout engines vs a copy floor
  rlce bench soak [--jobs N] [--steps N]
                                        memory, open files and /dev/shm over a long run
  rlce submit [--address URL] [key=value ...]
                                        run `rlce train` on a Ray cluster (Ray Jobs API)
  rlce train --help                     the config groups, every option and its default
  rlce train --cfg job [key=value ...]  the resolved config, without running
  rlce train -m key=a,b [...]           a sweep: one run per combination"""


def load_config(overrides: list[str]) -> Any:
    """Compose the config as ``rlce train`` would (for tests and tools): the typed
    ``TrainConfig``; bad values raise (Hydra's or the option's own ValueError)."""
    from hydra import compose, initialize_config_dir

    import rlce.config  # noqa: F401  (registers the schema Hydra composes over)

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    return typed(cfg)


def typed(dcfg: Any) -> Any:
    """The composed config as the typed ``TrainConfig``, every option checked; a key the
    schema does not have (``+foo=1`` gets past composition) fails here too."""
    from omegaconf import OmegaConf

    from rlce.config import TrainConfig

    schema = OmegaConf.structured(TrainConfig)
    unknown = _unknown_keys(dcfg, schema)
    if unknown:
        raise ValueError(f"unknown config option(s) {unknown}; see rlce train --help")
    return OmegaConf.to_object(OmegaConf.merge(schema, dcfg))


def _unknown_keys(cfg: Any, schema: Any, prefix: str = "") -> list[str]:
    """Keys of ``cfg`` that the typed ``schema`` lacks (free-form dicts are not checked)."""
    import dataclasses

    from omegaconf import DictConfig, OmegaConf

    out = []
    for key in cfg:
        name = f"{prefix}{key}"
        if key not in schema:
            out.append(name)
        elif isinstance(cfg[key], DictConfig) and dataclasses.is_dataclass(
                OmegaConf.get_type(schema, key)):
            out += _unknown_keys(cfg[key], schema[key], name + ".")
    return out


class _Task:
    """One Hydra task: builds the typed config, then runs the command; user mistakes end
    the process with one line and exit code 2."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.started = False

    def __call__(self, dcfg: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf.errors import OmegaConfBaseException

        from rlce.checkpoints import CheckpointError
        from rlce.config import ConfigError
        from rlce.core.types import LearnerLost
        from rlce.critic import CriticError

        self.started = True
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            cfg = typed(dcfg)
        except (OmegaConfBaseException, ValueError) as e:
            discard_if_empty(run_dir)
            fail(self.command, e)
        try:
            if self.command == "train":
                from rlce.train import train

                train(cfg, run_dir, list(HydraConfig.get().overrides.task))
            elif self.command == "synth":
                from rlce.synth.run import synth

                synth(cfg, run_dir)
            elif self.command == "critic train":
                from rlce.critic import train_critic

                train_critic(cfg, run_dir)
            elif self.command == "critic eval":
                from rlce.critic import eval_critic

                eval_critic(cfg, run_dir)
            elif self.command == "eval":
                from rlce.train import evaluate_model

                evaluate_model(cfg, run_dir)
            else:
                from rlce.bench import pipeline

                pipeline(cfg, run_dir)
        except ConfigError as e:
            discard_if_empty(run_dir)
            fail(self.command, e)
        except CriticError as e:  # bad data or a folder that is not a critic: one line
            discard_if_empty(run_dir)
            print(f"rlce {self.command}: {e}", file=sys.stderr)
            sys.exit(EXIT_CONFIG)
        except (CheckpointError, LearnerLost) as e:
            # a full disk, say, or a learner lost more often than learner.max_restarts allows:
            # one line (the resume command was printed), the checkpoints kept
            print(f"rlce {self.command}: {e}", file=sys.stderr)
            sys.exit(1)


def discard_if_empty(run_dir: Path) -> None:
    """Remove a run folder that holds only what Hydra wrote before the run was refused."""
    import shutil

    if run_dir.is_dir() and all(p.name == ".hydra" or p.suffix == ".log"
                                for p in run_dir.iterdir()):
        shutil.rmtree(run_dir)


def fail(command: str, e: BaseException) -> None:
    # OmegaConf wraps an option's own check as "<message>\n    full_key: ...": keep the first
    lines = str(e).strip().splitlines()
    print(f"rlce {command}: invalid configuration: {lines[0] if lines else repr(e)}",
          file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def run_hydra(command: str, args: list[str]) -> int:
    """Run ``command`` as a Hydra application with ``args`` as its command line."""
    import hydra

    import rlce.config  # noqa: F401  (registers the schema Hydra composes over)

    task = _Task(command)
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)(task)
    argv = sys.argv
    sys.argv = [f"rlce {command}", *args]
    try:
        app()
    except SystemExit as e:
        # Hydra ends with 1 when composing fails (an unknown key, a value of the wrong
        # type): that is the user's config, not a bug in a task that never started
        if e.code == 1 and not task.started:
            return EXIT_CONFIG
        return int(e.code or 0)
    finally:
        sys.argv = argv
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["submit"]:
        from rlce.submit import submit

        return submit(argv[1:])
    if argv[:2] == ["bench", "publish"]:
        from rlce.bench import publish

        return publish(argv[2:])
    if argv[:2] == ["bench", "soak"]:
        from rlce.soak import main as soak

        return soak(argv[2:], load_config)
    if argv[:2] == ["bench", "pipeline"]:
        from rlce.bench import PIPELINE_DEFAULTS

        given = {a.split("=")[0].lstrip("+~") for a in argv[2:]}
        return run_hydra("bench pipeline", [o for o in PIPELINE_DEFAULTS
                                            if o.split("=")[0] not in given] + argv[2:])
    if argv[:2] in (["critic", "train"], ["critic", "eval"]):
        return run_hydra(" ".join(argv[:2]), argv[2:])
    if argv[:1] in (["train"], ["eval"], ["synth"]):
        return run_hydra(argv[0], argv[1:])
    print(USAGE, file=sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
