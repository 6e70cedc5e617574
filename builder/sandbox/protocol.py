"""The wire between the caller, the worker and a job's process.

Caller -> worker: a pickled dict, ``{"op": "job", "id": N, ...}`` or ``{"op": "cancel", "id": N}`` (the caller is
trusted). Job process -> worker: on the job's own pipe, a tag byte and a pickled payload (``PROGRESS`` or
``RESULT``; anything else ends the job). Worker -> caller: a tag byte, the job id (8 bytes), and the payload
as the job process sent it, or the worker's own ``DONE`` report. The caller drops every message whose job id is
not the job it waits for, and unpickles payloads with an allowlist (``builder.sandbox.results``), so a job
process that writes forged messages can neither answer for another job nor shift the channel.
"""

from __future__ import annotations

import struct

READY = b"Y"  # worker -> caller, once: torch is imported and warm (job id 0)
PROGRESS = b"P"  # job -> caller: (layer, phase) the job has entered
RESULT = b"R"  # job -> caller: the job's result dict
DONE = b"D"  # worker -> caller: how the job's process ended
JOB_TAGS = frozenset({PROGRESS, RESULT})  # what a job process may send
MAX_MESSAGE = 16 * 1024 * 1024
JAIL_ENV = "BUILDER_IN_JAIL"  # set for a worker started inside the jail
# Test-only: workers started while the caller has this set accept "escape simulation" jobs (raw Python run in a
# job's process with every Python-level guard off, to show that the operating-system layers hold alone).
ESCAPE_TESTS_ENV = "BUILDER_SANDBOX_ESCAPE_TESTS"
GRACE = 1.0  # seconds between the job's own timeout and the worker's SIGKILL
_ID = struct.Struct(">Q")


def frame(tag: bytes, job_id: int, payload: bytes) -> bytes:
    """A worker -> caller message."""
    return tag + _ID.pack(job_id) + payload


def unframe(message: bytes) -> tuple[bytes, int, bytes]:
    """(tag, job id, payload) of a worker -> caller message; ValueError when it is too short to be one."""
    if len(message) < 1 + _ID.size:
        raise ValueError("a sandbox message without a job id")
    return message[:1], _ID.unpack_from(message, 1)[0], message[1 + _ID.size :]
