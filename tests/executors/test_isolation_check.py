"""The start-up self-check refuses a sandbox that is not really isolated."""

import os

import pytest

from executors.sandbox import IsolationError, check_isolation

GOOD = {"uid": 1000, "euid": 1000, "pid": 3, "CapEff": "0" * 16, "CapPrm": "0" * 16,
        "NoNewPrivs": "1", "Seccomp": "2", "pids": [1, 3, 4], "ifaces": ["lo"],
        "internet": False, "host_writable": False, "tmp_writable": True, "env": ["PATH"],
        "ipc_ns": "ipc:[1]", "io_uring": False}


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
