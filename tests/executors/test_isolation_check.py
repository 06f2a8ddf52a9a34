"""The start-up self-check refuses a sandbox that is not really isolated."""

import os

import pytest

from executors.sandbox import IsolationError, check_isolation

PYTHON = {"env": {"PYTHONHASHSEED": "0"},
          "flags": {"hash_randomization": 0, "ignore_environment": 0, "isolated": 0,
                    "safe_path": True, "no_user_site": 1, "no_site": 1}}
GOOD = {"uid": 1000, "euid": 1000, "pid": 3, "CapEff": "0" * 16, "CapPrm": "0" * 16,
        "NoNewPrivs": "1", "Seccomp": "2", "pids": [1, 3, 4], "ifaces": ["lo"],
        "internet": False, "host_writable": False, "tmp_writable": True,
        "env": ["PATH", "PYTHONHASHSEED"], "ipc_ns": "ipc:[1]", "io_uring": False,
        "python": PYTHON}


def test_good_probe_passes():
    check_isolation(GOOD, expect_uid=1000)


@pytest.mark.parametrize("change, needle", [
    ({"Seccomp": "0"}, "seccomp"),
    ({"pids": list(range(300)), "pid": 4711}, "PID namespace"),
    ({"ifaces": ["lo", "eth0"]}, "network interfaces"),
    ({"uid": 0, "euid": 0}, "root"),
    ({"env": ["PATH", "AWS_SECRET_ACCESS_KEY"]}, "AWS_SECRET_ACCESS_KEY"),
    ({"host_writable": True}, "writable"),
    ({"NoNewPrivs": "0"}, "no_new_privs"),
    ({"CapEff": "000001ffffffffff"}, "capabilities"),
    ({"ipc_ns": os.readlink("/proc/self/ns/ipc")}, "IPC namespace"),
    ({"io_uring": True}, "io_uring"),
])
def test_unsandboxed_probe_refused(change, needle):
    # what firejail gives where it silently disables itself (no kernel threads visible)
    with pytest.raises(IsolationError, match=needle):
        check_isolation({**GOOD, **change}, expect_uid=GOOD["uid"])


def python_seen(env=None, **flags):
    """The probe's view of the sandboxed interpreter, GOOD's with ``env`` and ``flags``."""
    return {"env": PYTHON["env"] if env is None else env, "flags": {**PYTHON["flags"], **flags}}


def test_a_fixed_hash_seed_is_allowed():
    """PYTHONHASHSEED=0 is the one variable of ours in the sandbox (verdicts must not depend
    on the sandbox's hash secret), and hash randomisation is then off inside."""
    check_isolation({**GOOD, "python": python_seen()}, expect_uid=GOOD["uid"])


@pytest.mark.parametrize("env, seen, needle", [
    # another seed, or none: set order, and so verdicts, would differ from the executor's
    (["PATH", "PYTHONHASHSEED"], python_seen({"PYTHONHASHSEED": "1"}),
     r"PYTHONHASHSEED='1'"),
    (["PATH", "PYTHONHASHSEED"], python_seen({"PYTHONHASHSEED": "random"}, hash_randomization=1),
     "hash randomisation is on"),
    (["PATH"], python_seen({}, hash_randomization=1), "PYTHONHASHSEED=None"),
    # any other PYTHON* variable changes how the interpreter runs programs (-E is off)
    (["PATH", "PYTHONHASHSEED", "PYTHONPATH"],
     python_seen({"PYTHONHASHSEED": "0", "PYTHONPATH": "/opt/rlce"}), "PYTHONPATH"),
    (["PATH", "PYTHONHASHSEED", "PYTHONINSPECT"],
     python_seen({"PYTHONHASHSEED": "0", "PYTHONINSPECT": "1"}), "PYTHONINSPECT"),
    # names the standard library reads once -E is off, outside PYTHON*
    (["PATH", "PYTHONHASHSEED", "SSLKEYLOGFILE"], python_seen(), "SSLKEYLOGFILE"),
    # hash randomisation on inside, whatever the environment says
    (["PATH", "PYTHONHASHSEED"], python_seen(hash_randomization=1), "hash randomisation is on"),
    (["PATH", "PYTHONHASHSEED"], python_seen(hash_randomization=None), "hash randomisation is on"),
    # the flags of -P -s -S: the working directory on sys.path, the user's site-packages
    (["PATH", "PYTHONHASHSEED"], python_seen(safe_path=False), "safe_path"),
    (["PATH", "PYTHONHASHSEED"], python_seen(no_user_site=0), "no_user_site"),
    (["PATH", "PYTHONHASHSEED"], python_seen(no_site=0), "no_site"),
])
def test_an_interpreter_that_is_not_ours_is_refused(env, seen, needle):
    with pytest.raises(IsolationError, match=needle):
        check_isolation({**GOOD, "env": env, "python": seen}, expect_uid=GOOD["uid"])


@pytest.mark.parametrize("seen", [None, {}, {"env": {"PYTHONHASHSEED": "0"}}, "x"])
def test_a_probe_that_does_not_report_the_interpreter_is_refused(seen):
    """Fail closed: no report of the interpreter's hash randomisation is not 'off'."""
    probe = {k: v for k, v in GOOD.items() if k != "python"}
    if seen is not None:
        probe["python"] = seen
    with pytest.raises(IsolationError, match="hash randomisation is on"):
        check_isolation(probe, expect_uid=GOOD["uid"])


def test_the_view_hides_everything_not_whitelisted(monkeypatch):
    from executors import sandbox

    tree = {"/": ["usr", "opt", "data", "etc"], "/usr": ["bin", "local"], "/usr/local": ["include", "lib"],
            "/var": ["tmp", "lib"], "/run": ["lock", "secrets"]}
    monkeypatch.setattr(sandbox.os, "listdir", lambda d: tree[d])
    monkeypatch.setattr(sandbox.os.path, "isdir", lambda d: d in tree)
    assert sandbox.hidden_paths() == ["/data", "/opt", "/usr/local/lib", "/var/lib", "/run/secrets"]


def test_too_many_hidden_paths_refused(monkeypatch):
    from executors import sandbox

    monkeypatch.setattr(sandbox, "hidden_paths", lambda: [f"/d{i}" for i in range(200)])
    with pytest.raises(IsolationError, match="too many entries"):
        sandbox.firejail_args(sandbox.SandboxConfig())


def fake_cgroup_fs(monkeypatch, tmp_path, mounts, own):
    from executors import cgroups

    monkeypatch.setattr(cgroups, "_mounts", lambda: [
        (fs, tmp_path / name, "/", set(opts)) for fs, name, opts in mounts])
    monkeypatch.setattr(cgroups, "_own_paths", lambda: own)
    return cgroups


def test_cgroup_v2_preferred_when_it_offers_the_controllers(monkeypatch, tmp_path):
    (tmp_path / "unified" / "exec").mkdir(parents=True)
    (tmp_path / "unified" / "exec" / "cgroup.controllers").write_text("cpuset cpu io memory pids")
    cg = fake_cgroup_fs(monkeypatch, tmp_path, [("cgroup2", "unified", ["rw"])], {"": "/exec"})
    layout = cg.detect()
    assert layout.version == 2 and layout.dirs["memory"] == tmp_path / "unified" / "exec"
    assert (tmp_path / "unified" / "exec" / "cgroup.subtree_control").read_text() == \
        "+cpu +memory +pids"


def test_cgroup_v1_used_on_hybrid_hosts(monkeypatch, tmp_path):
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("")  # v2 without controllers
    for c in ("cpu", "memory", "pids"):
        (tmp_path / c).mkdir()
    cg = fake_cgroup_fs(monkeypatch, tmp_path, [("cgroup2", "unified", ["rw"])] + [
        ("cgroup", c, ["rw", c]) for c in ("cpu", "memory", "pids")],
        {"": "/", "cpu": "/", "memory": "/", "pids": "/"})
    layout = cg.detect()
    assert layout.version == 1 and layout.dirs == {c: tmp_path / c for c in ("cpu", "memory", "pids")}


def test_no_usable_cgroup_refused(monkeypatch, tmp_path):
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("io")
    cg = fake_cgroup_fs(monkeypatch, tmp_path, [("cgroup2", "unified", ["rw"])], {"": "/"})
    with pytest.raises(cg.CgroupUnavailable, match="no cpu, memory, pids controller.*no cgroup v1"):
        cg.detect()


def test_slot_splits_its_cpu_between_infrastructure_and_run(tmp_path):
    """On either layout the slot's cpu cgroup has an infra group (where the sandbox starts:
    fork server and judge) weighted 8:1 against the run group (the template and every job's
    processes); v2 delegates cpu to them, so the slot itself holds no process. Memory and
    tasks stay bounded on the slot as a whole."""
    from executors.cgroups import Layout, SlotCgroup, SlotLimits

    limits = SlotLimits(cpus=1.25, memory_mb=4096, pids=512)
    (tmp_path / "v2").mkdir()
    v2 = SlotCgroup(Layout(2, {c: tmp_path / "v2" for c in ("cpu", "memory", "pids")}),
                    "slot-0", limits)
    v2.create()
    slot = tmp_path / "v2" / "slot-0"
    assert (slot / "cgroup.subtree_control").read_text() == "+cpu"
    assert (slot / "cpu.max").read_text() == "125000 100000"
    assert [(slot / g / "cpu.weight").read_text() for g in ("infra", "run")] == ["800", "100"]
    assert f"echo $$ > {slot / 'infra' / 'cgroup.procs'} && exec" in v2.wrap(["x"])[2]

    for c in ("cpu", "memory", "pids"):
        (tmp_path / c).mkdir()
    v1 = SlotCgroup(Layout(1, {c: tmp_path / c for c in ("cpu", "memory", "pids")}),
                    "slot-0", limits)
    v1.create()
    cpu = tmp_path / "cpu" / "slot-0"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "125000"
    assert [(cpu / g / "cpu.shares").read_text() for g in ("infra", "run")] == ["8192", "1024"]
    script = v1.wrap(["x"])[2]
    for target in (cpu / "infra", tmp_path / "memory" / "slot-0", tmp_path / "pids" / "slot-0"):
        assert f"echo $$ > {target / 'cgroup.procs'}" in script
    v1.move_to_run(4321)
    assert (cpu / "run" / "cgroup.procs").read_text() == "4321"


def test_executor_pods_hold_no_token_and_no_references():
    from pathlib import Path

    import yaml

    cluster = Path(__file__).parents[2] / "cluster"
    doc = yaml.safe_load((cluster / "kuberay" / "raycluster.yaml").read_text())
    (group,) = [g for g in doc["spec"]["workerGroupSpecs"] if g["groupName"] == "executor-cpu"]
    spec = group["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert all(c["image"].startswith("rlce-executor:") for c in spec["containers"])
    stages = {s.split()[2]: s for s in ("\n" + (cluster / "Dockerfile").read_text())
              .split("\nFROM ")[1:]}
    # the catalogs are removed in a stage of their own, which the executor image copies from
    # (a removal in a later layer of the image would leave them in an earlier one)
    assert "rm -rf /opt/rlce/rlce/problems/catalog_*.py" in stages["executor-source"]
    assert "COPY --from=executor-source /opt/rlce /opt/rlce" in stages["executor"]
    assert "COPY . " not in stages["executor"] and stages["executor"].startswith("base AS")
    assert list(stages)[-1] == "rlce"  # a plain `docker build` gives the full image


def test_sandbox_refuses_to_start_without_a_usable_cgroup(monkeypatch):
    from executors import cgroups, sandbox

    def nothing():
        raise cgroups.CgroupUnavailable("no cgroup v2 mount; no cgroup v1 hierarchy for pids")

    monkeypatch.setattr(sandbox, "detect", nothing)
    sandbox.cgroup_layout.cache_clear()
    try:
        with pytest.raises(IsolationError, match="no usable cgroup.*hierarchy for pids"):
            sandbox.Sandbox(0).start()
    finally:
        sandbox.cgroup_layout.cache_clear()
