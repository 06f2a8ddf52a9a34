"""The cluster definitions parse, offer exactly the custom resources the presets place actors
by, keep firejail effective on executor nodes, and the RayJob's command is a valid config."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import yaml

from rlce.cli import load_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
PARTS = ("rollout", "learner", "executor")


def preset_resources() -> dict[str, set[str]]:
    out = {}
    for f in sorted((ROOT / "conf" / "cluster").glob("*.yaml")):
        cfg = load_config([f"cluster={f.stem}"])
        out[f.stem] = {getattr(cfg, part).resource for part in PARTS} - {None}
    return out


def launcher_resources() -> set[str]:
    doc = yaml.safe_load((CLUSTER / "ray-cluster.yaml").read_text())
    return {k for t in doc["available_node_types"].values() for k in t.get("resources", {})}


def kuberay_groups() -> dict[str, dict]:
    doc = yaml.safe_load((CLUSTER / "kuberay" / "raycluster.yaml").read_text())
    assert doc["kind"] == "RayCluster" and doc["apiVersion"] == "ray.io/v1"
    return {g["groupName"]: g for g in doc["spec"]["workerGroupSpecs"]}


def group_resources(group: dict) -> dict[str, float]:
    raw = group["rayStartParams"].get("resources")
    return json.loads(json.loads(raw)) if raw else {}


def test_node_types_offer_exactly_what_the_presets_use():
    presets = preset_resources()
    assert set(presets) == {"laptop", "single_node_8gpu", "multi_node"}
    assert presets["laptop"] == presets["single_node_8gpu"] == set()  # one node: no types
    used = set().union(*presets.values())
    assert used == set(PARTS) == presets["multi_node"]
    assert launcher_resources() == used
    assert {k for g in kuberay_groups().values() for k in group_resources(g)} == used


def test_executor_nodes_keep_firejail_effective_and_autoscale():
    doc = yaml.safe_load((CLUSTER / "ray-cluster.yaml").read_text())
    (executor,) = [t for t in doc["available_node_types"].values()
                   if "executor" in t.get("resources", {})]
    assert any("executors selfcheck" in c for c in executor["worker_setup_commands"])
    assert executor["min_workers"] < executor["max_workers"]
    group = next(g for g in kuberay_groups().values() if "executor" in group_resources(g))
    spec = group["template"]["spec"]
    assert spec["hostPID"] is True
    assert all(c["securityContext"]["privileged"] is True for c in spec["containers"])
    assert group["minReplicas"] < group["maxReplicas"]
    doc = yaml.safe_load((CLUSTER / "kuberay" / "raycluster.yaml").read_text())
    assert doc["spec"]["enableInTreeAutoscaling"] is True


def test_the_rayjob_runs_a_valid_rlce_train_on_the_raycluster():
    job = yaml.safe_load((CLUSTER / "kuberay" / "rayjob.yaml").read_text())
    cluster = yaml.safe_load((CLUSTER / "kuberay" / "raycluster.yaml").read_text())
    assert job["kind"] == "RayJob"
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:4] == ["python", "-m", "rlce.cli", "train"]
    cfg = load_config([a for a in argv[4:] if not a.startswith("hydra.")])
    assert cfg.cluster.name == "multi_node" and cfg.logging.dir == "/mnt/runs"
    # a retried job (backoffLimit) continues the run in its one folder
    assert "hydra.run.dir=/mnt/runs/rlce-train" in argv and cfg.checkpoint.resume == "auto"
    assert job["spec"]["backoffLimit"] >= 1 and cfg.checkpoint.every > 0
