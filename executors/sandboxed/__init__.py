"""The program that runs *inside* each firejail sandbox: a warm fork server, standard library only.

Three kinds of process live in a sandbox:

* the **zygote** (``zygote``): reads framed requests on stdin, answers on stdout, wipes the
  sandbox between jobs and kills every process a job left behind (``hygiene``);
* the **template** (``candidate``), forked once at start-up before any job data is seen: it
  forks candidate processes on request, so a candidate's memory never holds another job's
  tests or programs;
* per job, a **judge** (``judge``, forked from the zygote) that runs the trusted test code and
  talks to the candidate over a socket, in the plain-data form of ``codec``. Only the judge
  writes test results, on a pipe the candidate never holds.

Modules, in dependency order (each imports only modules before it, and only relatively):
``wire`` (framing, frame caps), ``codec`` (plain-data codec, ``big_int``, ``Decoder``),
``hygiene`` (non-dumpable processes, sweep, wipe, IPC removal, memfds), ``candidate``
(template, candidate processes, the candidate's side of references), ``judge`` (``Judge``,
``Ref``, the test namespace, ``judge_main``), ``zygote`` (``RunClock``, ``Zygote``, ``probe``,
``main``). The host imports the same files as ``executors.sandboxed.*`` for the shared pieces
(framing, caps, codec, constants).

How the package gets into a sandbox, with no file: the host (``executors/sandbox.py``) runs
``python3 -P -s -S -c BOOT`` with ``PYTHONHASHSEED=0`` (see ``sandbox.PYTHON_FLAGS``) and
writes one frame on its stdin, ``bundle()``: the JSON object ``{module name: source text}``
in ``MODULES`` order. BOOT makes a module object ``sandboxed``
with ``__path__ = []`` (a package with no directory), then for each text in order makes the
module ``sandboxed.<name>`` with ``__package__ = "sandboxed"``, registers it in
``sys.modules`` (and as an attribute of the package) and executes the text in it. A relative
import such as ``from .codec import encode`` then finds its module already in ``sys.modules``,
so it resolves inside the sandbox exactly as it does on the host. Last, BOOT calls
``zygote.main()``. This ``__init__`` is never sent: inside, the package is only that module
object.
"""

import json
from pathlib import Path

MODULES = ("wire", "codec", "hygiene", "candidate", "judge", "zygote")  # dependency order


def bundle() -> bytes:
    """The package's module texts as BOOT reads them: JSON ``{name: source}`` in ``MODULES``
    (dependency) order."""
    here = Path(__file__).parent
    return json.dumps({name: (here / f"{name}.py").read_text() for name in MODULES}).encode()
