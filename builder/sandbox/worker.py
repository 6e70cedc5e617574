"""The sandbox worker: a warm process that forks one locked-down process per job (``builder.sandbox.child``).

Started by ``builder.sandbox.pool`` as ``python -c "from builder.sandbox.worker import main; main()" FD``, inside
the bubblewrap jail where it is available (``builder.sandbox.jail``), with a minimal environment. It imports torch
once, warms it up, says it is ready, then serves jobs from the connection on FD, one at a time. For each job it:

- creates a fresh pipe and forks the job's process, which gets only the pipe's write end;
- relays the job's PROGRESS and RESULT messages, framed with the job's id, and stops reading at the result; any
  other tag, a message too big or a job past its deadline ends the job;
- ends the job when the caller cancels it (a newer check from the same session);
- kills the job's process group, then every process the job may have left behind: the worker is a child
  subreaper, so an orphan that called ``setsid()`` is re-parented to it and found; in the jail's own PID namespace
  every process but the jail's init and the worker is a leftover;
- reports how the job ended (DONE) with the same id.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import sys
import time
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from builder.catalog import catalog
from builder.design import CustomLayerSpec, Design, InputSpec, LayerSpec
from builder.fast_path import meta_only
from builder.inference import infer_shapes, inspect_design
from builder.sandbox import child, syscalls
from builder.sandbox.protocol import DONE, GRACE, JAIL_ENV, JOB_TAGS, MAX_MESSAGE, READY, RESULT, frame
from builder.values import InputKind

PR_SET_CHILD_SUBREAPER = 36

WARM_UP_SOURCE = """
class Gate(nn.Module):
    def __init__(self, scale=2.0):
        super().__init__()
        self.scale = scale

    def forward(self, X):
        if X.sum() > 0:
            return F.relu(X) * self.scale
        return X - X.mean()
"""


WARM_UP_VALUES = {"kind": InputKind.RANDN.value, "shape": [2, 3, 8, 8], "dtype": "float32", "text": "", "seed": 0}


def warm_up() -> None:
    """Import and exercise what a trace uses, so jobs start warm and never import (they may not)."""
    torch.set_num_threads(1)
    catalog()
    layers = (
        LayerSpec(type="Conv2d", params={"in_channels": 3, "out_channels": 4, "kernel_size": 3}),
        LayerSpec(type="BatchNorm2d", params={"num_features": 4}),
        LayerSpec(type="MaxPool2d", params={"kernel_size": 2}),
        LayerSpec(type="Flatten"),
        LayerSpec(type="LazyLinear", params={"out_features": 8}),
        LayerSpec(type="LayerNorm", params={"normalized_shape": [8]}),
        LayerSpec(type="Gate"),
        LayerSpec(type="Unflatten", params={"dim": 1, "unflattened_size": [2, 4]}),
        LayerSpec(type="TransformerEncoderLayer", params={"d_model": 4, "nhead": 2, "dim_feedforward": 8}),
        LayerSpec(type="LSTM", params={"input_size": 4, "hidden_size": 4, "batch_first": True}),
    )
    spec = CustomLayerSpec(name="Gate", source=WARM_UP_SOURCE)
    design = Design(input=InputSpec(shape=(2, 3, 8, 8)), layers=layers, custom_layers=(spec,))
    code = child.compile_layer(spec, static_check=True)
    gate = child.define_layer(spec, code) if not isinstance(code, tuple) else code
    if not isinstance(gate, type):
        raise RuntimeError(f"the sandbox warm-up layer does not define: {gate}")
    with meta_only():  # small built-in layers run on the CPU (builder.fast_path): warm the meta device for big ones
        on_meta = infer_shapes(design, {"Gate": gate})
    for trace in (on_meta, infer_shapes(design, {"Gate": gate}), inspect_design(design, {"Gate": gate})):
        if trace.error is not None:
            raise RuntimeError(f"the sandbox warm-up design fails: {trace.error.message}")
    values = child.run_values(design, {"Gate": code}, *child.value_input(design, WARM_UP_VALUES))
    if "values" not in values or values["values"].get("problem"):
        raise RuntimeError(f"the sandbox warm-up real-values run fails: {values}")
    child._JOB.failures.clear()
    child._JOB.last_progress = None


def _become_subreaper() -> None:
    """Orphans of a job are re-parented to this process, so they can be found and killed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process this worker can see in /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found.append((int(entry), int(fields[1]), int(fields[2])))
    return found


def leftovers(in_jail: bool) -> list[int]:
    """Processes a finished job left behind: in the jail, any but init and the worker; else the worker's children."""
    me = os.getpid()
    if in_jail:
        return [pid for pid, _, _ in _processes() if pid not in (1, me)]
    return [pid for pid, parent, _ in _processes() if parent == me]


def job_processes(in_jail: bool, job: int) -> set[int]:
    """Processes the running job started: in the jail all but init, the worker and the job; else its group, children."""
    me = os.getpid()
    if in_jail:
        return {pid for pid, _, _ in _processes() if pid not in (1, me, job)}
    return {pid for pid, parent, group in _processes() if pid != job and job in (parent, group)}


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def clean_up(in_jail: bool) -> set[int]:
    """Kill and reap whatever the last job left; which processes those were."""
    _reap()
    found = leftovers(in_jail)
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while found and time.monotonic() < deadline:
        _reap()
        if not leftovers(in_jail):
            break
        time.sleep(0.01)
    return set(found)


def serve_one(conn: Connection, job: dict[str, Any], devnull: int, in_jail: bool) -> None:
    """Fork a process for the job, relay its messages until its result, deadline or cancelling, then end it."""
    job_id = job["id"]
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            os.close(read_fd)
            conn.close()
            child.run_job(job, write_fd, devnull)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    with Connection(read_fd, writable=False) as reader:
        ending = relay(reader, conn, job_id, time.monotonic() + job["timeout"] + GRACE)
    started = job_processes(in_jail, pid)  # counted before the group dies with the job
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    killed_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    left = len(started | clean_up(in_jail))
    report = {"ending": ending, "signal": killed_by, "code": code, "leftovers": left}
    conn.send_bytes(frame(DONE, job_id, pickle.dumps(report)))


def relay(reader: Connection, conn: Connection, job_id: int, deadline: float) -> str:
    """Forward the job's messages, framed with its id; say how it ended ("result", "timeout", "cancelled", ...)."""
    while True:
        remaining = deadline - time.monotonic()
        ready = wait([reader, conn], timeout=max(remaining, 0)) if remaining > 0 else []
        if not ready:
            return "timeout"
        if conn in ready and _cancelled(conn, job_id):
            return "cancelled"
        if reader not in ready:
            continue
        try:
            message = reader.recv_bytes(MAX_MESSAGE)
        except EOFError:
            return "exited"
        except OSError:  # longer than MAX_MESSAGE
            return "too-big"
        tag = message[:1]
        if tag not in JOB_TAGS:
            return "bad-message"
        conn.send_bytes(frame(tag, job_id, message[1:]))
        if tag == RESULT:
            return "result"


def _cancelled(conn: Connection, job_id: int) -> bool:
    """Read the caller's message during a job: only a cancel of this job counts."""
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return True  # the caller is gone
    return isinstance(message, dict) and message.get("op") == "cancel" and message.get("id") == job_id


def main() -> None:
    """The worker's entry point: warm up, say so, then serve jobs until the caller hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides when the worker stops
    conn = Connection(int(sys.argv[1]))
    in_jail = os.environ.get(JAIL_ENV) == "1"
    _become_subreaper()
    started = time.monotonic()
    warm_up()
    devnull = os.open(os.devnull, os.O_RDWR)
    facts = {"pid": os.getpid(), "seccomp": syscalls.available(), "jail": in_jail, "warm": time.monotonic() - started}
    conn.send_bytes(frame(READY, 0, pickle.dumps(facts)))
    while True:
        try:
            job = conn.recv()  # from the caller, which is trusted
        except EOFError:
            return
        if isinstance(job, dict) and job.get("op") == "job":
            serve_one(conn, job, devnull, in_jail)
