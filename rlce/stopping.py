"""Stopping a run on SIGTERM or SIGINT without losing it.

The first signal asks the run to stop: ``checkpoint.on_stop=abandon`` drops the step in
progress at its next safe point (before it draws more problems; a learner update that has
begun is never cut), ``finish`` lets it end; either way the run then writes a checkpoint,
closes W&B and exits 0 with the command that resumes it. Outside the training steps (the
evaluations) there is nothing to finish, so the signal interrupts at once. If stopping takes
longer than ``checkpoint.grace_s``, or a second signal comes, the process exits at once with
128 + the signal's number (the checkpoint folders are written whole or not at all, so
nothing is left half-written; see rlce/checkpoints.py)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Self

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(BaseException):
    """Raised where a run can stop early; a BaseException, so that no ``except Exception``
    on the way up mistakes it for a failure to recover from."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


class GracefulStop:
    """The run's signal handlers (installed by ``with``; the main thread only)."""

    def __init__(self, grace_s: float, abandon: bool, say=print) -> None:
        self.grace_s, self.abandon, self.say = grace_s, abandon, say
        self.signame: str | None = None  # the first signal's name, once one came
        self._in_steps = 0
        self._old: dict[int, object] = {}
        self._timer: threading.Timer | None = None

    @property
    def requested(self) -> bool:
        return self.signame is not None

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
        if self._timer is not None:
            self._timer.cancel()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """While inside (the training steps, a checkpoint being written), a signal only
        sets ``requested``: the code inside stops at its next ``check``."""
        self._in_steps += 1
        try:
            yield
        finally:
            self._in_steps -= 1

    def check(self, between_steps: bool = False) -> None:
        """Raise StopRequested if a stop was asked for and this is a point to stop at."""
        if self.requested and (between_steps or self.abandon):
            raise StopRequested(self.signame)

    def ask(self, reason: str) -> None:
        """Stop as a first signal would, for ``reason`` (the run's own decision: a reward
        alert with ``reward.on_alert=stop``), at the next point to stop at."""
        if not self.requested:
            self.signame = reason

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            self._exit_now(f"a second signal ({name})", 128 + signum)
        self.signame = name
        how = "dropping the step in progress" if self.abandon else "after the step in progress"
        self.say(f"{name}: stopping ({how}), then a checkpoint; {name} again or "
                 f"{self.grace_s:g} s more exits at once")
        self._timer = threading.Timer(self.grace_s, self._exit_now,
                                      (f"the grace period ({self.grace_s:g} s)", 128 + signum))
        self._timer.daemon = True
        self._timer.start()
        if not self._in_steps:
            raise StopRequested(name)

    def _exit_now(self, why: str, code: int) -> None:
        self.say(f"{why}: exiting now without a new checkpoint (the ones already "
                 "written are whole)")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
