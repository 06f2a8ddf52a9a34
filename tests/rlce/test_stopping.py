"""SIGTERM and SIGINT: the first asks the run to stop at a safe point, the second (or the
end of the grace period) exits at once. Real signals, sent by the process to itself or to
a child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from rlce.stopping import GracefulStop, StopRequested


def test_outside_the_steps_a_signal_stops_at_once():
    said = []
    before = signal.getsignal(signal.SIGTERM)  # Ray's own, if a test before started Ray
    with GracefulStop(grace_s=600, abandon=True, say=said.append) as stop:
        with pytest.raises(StopRequested) as e:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()  # never reached: the handler raises first
        assert e.value.signame == "SIGTERM" and stop.requested
    assert "SIGTERM: stopping" in said[0]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is given back


@pytest.mark.parametrize("abandon", [True, False])
def test_inside_the_steps_a_signal_waits_for_a_safe_point(abandon):
    with GracefulStop(grace_s=600, abandon=abandon, say=lambda line: None) as stop, \
            stop.deferred():
        stop.check()  # nothing asked yet
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.signame == "SIGINT"
        if abandon:  # the step in progress is dropped at its next safe point
            with pytest.raises(StopRequested):
                stop.check()
        else:  # the step in progress ends first
            stop.check()
        with pytest.raises(StopRequested):
            stop.check(between_steps=True)


CHILD = """
import os, threading
from rlce.stopping import GracefulStop
with GracefulStop(grace_s={grace}, abandon=False, say=print) as stop, stop.deferred():
    for s in {signals}:
        os.kill(os.getpid(), s)
    threading.Event().wait()
"""


@pytest.mark.parametrize("grace, signals, code", [
    (600, [signal.SIGTERM, signal.SIGTERM], 128 + signal.SIGTERM),  # a second signal
    (600, [signal.SIGINT, signal.SIGINT], 128 + signal.SIGINT),
    (0.2, [signal.SIGTERM], 128 + signal.SIGTERM),  # the grace period runs out
])
def test_a_second_signal_or_the_end_of_the_grace_period_exits_at_once(grace, signals, code):
    script = CHILD.format(grace=grace, signals=[int(s) for s in signals])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == code, proc.stderr[-2000:]
    why = "a second signal" if len(signals) == 2 else "the grace period (0.2 s)"
    assert why in proc.stdout and "exiting now" in proc.stdout, proc.stdout
