"""Framing between the host, the zygote and the judge, and the cap on every frame.

A frame is a 4-byte big-endian length and that many bytes of JSON. Every reader derives a cap
from what it asked for (``reply_cap``, ``results_cap``) and refuses a longer frame before reading
its body; reads and writes are linear in the frame's size. The host imports this module too, so
both ends apply the same caps.
"""

import json
import os
import struct

STDERR_KEEP = 4096  # bytes of a run's stderr a reply carries
DEFAULT_FRAME_CAP = 512 << 20  # candidate -> judge, when the language has no memory limit
MAX_BINARY_BYTES = 64 << 20  # largest compiled program run (1/8 of the host's compile cache)
MAX_REQUEST_BYTES = 1 << 30  # host -> zygote: jobs are the host's own, checked by its schema
RESULT_LINE_BYTES = 8 << 10  # a judge result line without its value (messages are cut at 500)
BASE_REPLY_BYTES = 64 << 10  # a reply's fixed fields, error messages and traces


class FrameTooLarge(Exception):
    """A frame's length header exceeds the cap its reader derived for it."""


def read_exact(fd, n):
    """Read exactly ``n`` bytes into one preallocated buffer (linear in ``n``)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if not k:
            raise EOFError
        got += k
    return buf


def read_frame(fd, cap):
    (n,) = struct.unpack(">I", read_exact(fd, 4))
    if n > cap:
        raise FrameTooLarge(f"frame of {n} bytes exceeds its cap of {cap} bytes")
    return json.loads(read_exact(fd, n))


def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def write_all(fd, data):
    """Write all of ``data``; each partial write advances a view, nothing is copied."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_frame(fd, obj, cap=0xFFFFFFFF):
    """Write ``obj`` as one frame, or raise FrameTooLarge (writing nothing) if over ``cap``."""
    data = frame(obj)
    if len(data) - 4 > cap:
        raise FrameTooLarge(f"frame of {len(data) - 4} bytes exceeds its cap of {cap} bytes")
    write_all(fd, data)


def b64_len(n):
    return 4 * ((n + 2) // 3)


def run_reply_cap(lim):
    """Largest report of one run: its stdout as read back (``output_bytes`` + 1, base64) and
    its stderr tail with every byte escaped as ``\\uXXXX``."""
    return b64_len(lim["output_bytes"] + 1) + 6 * STDERR_KEEP + 1024


def tests_in(spec):
    if spec["format"] == "check":
        return 1
    return len(spec.get("asserts") or spec.get("cases") or ())


def results_cap(job):
    """Bytes of result lines a judge may write: call-format return values count against the
    job's output limit, like stdout; every other line is small and bounded."""
    return job["limits"]["output_bytes"] + RESULT_LINE_BYTES * (tests_in(job["tests"]) + 2)


def reply_cap(req):
    """Largest reply the zygote can honestly give to ``req``; both ends enforce it."""
    job = req.get("job")
    if req["op"] == "io":
        return BASE_REPLY_BYTES + len(job["inputs"]) * run_reply_cap(job["limits"])
    if req["op"] == "judge":  # results are re-encoded: same size, twice for safety
        return BASE_REPLY_BYTES + 2 * results_cap(job) + run_reply_cap(job["limits"])
    if req["op"] == "compile":
        return BASE_REPLY_BYTES + b64_len(MAX_BINARY_BYTES) + run_reply_cap(job["limits"])
    return BASE_REPLY_BYTES + (1 << 20)  # ping: the isolation probe
