"""The caller's side of the sandbox: a pool of warm workers, one job at a time each, and the sessions using them.

- ``settings.workers`` workers (default 2) serve checks at once, so one user's slow check does not block the
  others; a job waits for a free worker.
- A session that submits while its own earlier check still waits or runs gets the earlier one cancelled.
- A session may submit ``settings.rate`` checks a minute; more are refused with a message.
- Every job has an id; every message from a worker carries it, and messages of other jobs are dropped.
- A worker that hangs or dies is replaced on the next job.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from builder.sandbox import jail, results
from builder.sandbox.protocol import DONE, ESCAPE_TESTS_ENV, MAX_MESSAGE, PROGRESS, READY, RESULT, unframe
from builder.sandbox.settings import Mode, SandboxError, SandboxSettings

SLACK = 5.0  # seconds the caller waits beyond a job's own deadline before it calls the worker lost
ROOT = Path(__file__).resolve().parents[2]
WORKER_COMMAND = "from builder.sandbox.worker import main; main()"
RATE_WINDOW = 60.0


@dataclass
class Outcome:
    """Everything a job sent back, and how it ended."""

    result: Any = None  # the job's result payload, unpickled with the allowlist (checked by the caller)
    ending: dict[str, Any] = field(default_factory=dict)  # the worker's DONE report
    progress: tuple[str, str] | None = None  # the last (layer, phase) the job entered
    lost: str = ""  # "hung" or "died" when the worker itself had to be replaced
    refused: str = ""  # why the job was not run (cancelled by a newer check, too many checks)
    bad_reply: str = ""  # why a reply was dropped as malformed

    @property
    def never_ran(self) -> bool:
        """The worker was gone before the job reached it (killed between jobs)."""
        return self.lost == "died" and self.progress is None and self.result is None


def _worker_env() -> dict[str, str]:
    """A worker's whole environment outside the jail: paths, one thread for OpenMP and BLAS, no secrets."""
    names = ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", ESCAPE_TESTS_ENV)
    kept = {name: os.environ[name] for name in names if name in os.environ}
    paths = [str(ROOT), *(p for p in sys.path if p and os.path.isabs(p))]
    threads = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
    return kept | threads | {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), "PYTHONDONTWRITEBYTECODE": "1"}


def plan(mode: Mode) -> tuple[bool, str]:
    """(jailed, why): whether workers run in the jail under this mode, and a sentence saying why."""
    if mode is Mode.PROCESS:
        return False, f"process limits only (BUILDER_SANDBOX={Mode.PROCESS.value})"
    reason = jail.probe()
    if reason is None:
        return True, "bubblewrap jail: no network, no files of the server, own PID and user namespaces"
    if mode is Mode.JAIL:
        raise SandboxError(f"BUILDER_SANDBOX=jail, but the jail cannot run here: {reason}; custom code is refused")
    return False, f"process limits only: {reason}"


class Worker:
    """One warm worker process and the connection to it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.facts: dict[str, Any] = {}  # what the worker said when ready: pid, seccomp, jail, warm seconds
        self.ready = False
        self.started_at = 0.0
        self.send_lock = threading.Lock()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, jailed: bool) -> None:
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-c", WORKER_COMMAND, str(theirs.fileno())]
        with theirs:
            self.process = subprocess.Popen(
                jail.jail_command(argv) if jailed else argv,
                pass_fds=(theirs.fileno(),),
                env={} if jailed else _worker_env(),
                cwd="/" if jailed else ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the caller's terminal is the caller's to handle
            )
        self.conn = Connection(ours.detach())
        self.ready = False
        self.facts = {}
        self.started_at = time.monotonic()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None
        self.ready = False

    def wait_ready(self, timeout: float) -> None:
        """Block until the worker has imported torch; raise SandboxError if it cannot."""
        if self.ready:
            return
        try:
            message = self.conn.recv_bytes(MAX_MESSAGE) if self.conn.poll(timeout) else None
            tag, _, payload = unframe(message) if message else (b"", 0, b"")
            facts = pickle.loads(payload) if tag == READY else None
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            facts = None
        if not isinstance(facts, dict):
            self.stop()
            raise SandboxError(
                f"the sandbox worker did not start within {timeout:g} s; its error, if any, is in this "
                "process's stderr (the server log)"
            )
        self.facts = facts | {"start_seconds": time.monotonic() - self.started_at}
        self.ready = True

    def send(self, message: dict[str, Any]) -> bool:
        with self.send_lock:
            try:
                self.conn.send(message)
            except (OSError, AttributeError):
                return False
        return True

    def run(self, job: dict[str, Any], deadline: float) -> Outcome:
        """Send one job and collect its messages until the worker's DONE for it."""
        if not self.send({"op": "job", **job}):
            self.stop()
            return Outcome(lost="died")
        try:
            outcome = collect(self.conn, job["id"], deadline)
        except BaseException:  # interrupted (Ctrl-C): the job's messages would be read as the next job's
            self.stop()
            raise
        if outcome.lost:
            self.stop()  # replaced on the next job
        return outcome


def collect(conn: Connection, job_id: int, deadline: float) -> Outcome:
    """Read messages for ``job_id`` until DONE; drop the others; a malformed reply is noted, not trusted."""
    outcome = Outcome()
    while not outcome.ending:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0 or not conn.poll(remaining):
                outcome.lost = "hung"
                break
            tag, message_id, payload = unframe(conn.recv_bytes(MAX_MESSAGE))
        except (EOFError, OSError, ValueError):
            outcome.lost = "died"
            break
        if message_id != job_id:
            continue  # a stale message of an earlier job
        try:
            _take(outcome, tag, payload)
        except results.ResultError as error:
            outcome.bad_reply = str(error)
    return outcome


def _take(outcome: Outcome, tag: bytes, payload: bytes) -> None:
    if tag == PROGRESS:
        outcome.progress = results.progress(results.load_payload(payload))
    elif tag == RESULT and outcome.result is None:
        outcome.result = results.load_payload(payload)
    elif tag == DONE:
        ending = results.load_payload(payload)
        outcome.ending = ending if isinstance(ending, dict) else {"ending": "bad-message"}


@dataclass
class _Ticket:
    """One submitted job, as its session sees it."""

    job_id: int
    session: str | None
    cancelled: bool = False
    done: bool = False
    worker: Worker | None = None


class Pool:
    """The workers, the queue in front of them, and the sessions' latest jobs."""

    def __init__(self) -> None:
        self.workers: list[Worker] = []
        self.free: list[Worker] = []
        self.condition = threading.Condition()
        self.latest: dict[str, _Ticket] = {}
        self.history: dict[str, deque[float]] = {}
        self.ids = itertools.count(1)
        self.jailed: bool | None = None
        self.why = ""

    def _ensure(self, current: SandboxSettings) -> None:
        """Decide the isolation once, and have ``current.workers`` workers (started lazily)."""
        if self.jailed is None:
            self.jailed, self.why = plan(current.mode)
        while len(self.workers) < current.workers:
            worker = Worker()
            self.workers.append(worker)
            self.free.append(worker)

    def warm_up(self, current: SandboxSettings, wait: bool) -> None:
        with self.condition:
            self._ensure(current)
            idle = list(self.free)
        for worker in idle:
            if not worker.running():
                worker.stop()
                worker.start(bool(self.jailed))
        if wait:
            for worker in idle:
                worker.wait_ready(current.startup_timeout)

    def run(self, job: dict[str, Any], current: SandboxSettings, session: str | None) -> Outcome:
        """Run a job on a free worker; a newer job of the same session cancels this one."""
        ticket = _Ticket(next(self.ids), session)
        with self.condition:
            self._ensure(current)
            refusal = self._admit(ticket, current)
            if refusal:
                return Outcome(refused=refusal)
            while not ticket.cancelled and not self.free:
                self.condition.wait()
            if ticket.cancelled:
                return Outcome(refused="cancelled: a newer check from the same session replaced it")
            worker = ticket.worker = self.free.pop()
        try:
            return self._run_on(worker, {**job, "id": ticket.job_id}, current)
        finally:
            with self.condition:
                ticket.worker, ticket.done = None, True
                self.free.append(worker)
                if session is not None and self.latest.get(session) is ticket:
                    del self.latest[session]
                self.condition.notify_all()

    def _admit(self, ticket: _Ticket, current: SandboxSettings) -> str:
        """Rate-limit the session and cancel its earlier job (with the condition held)."""
        session = ticket.session
        if session is None:
            return ""
        now = time.monotonic()
        recent = self.history.setdefault(session, deque())
        while recent and now - recent[0] > RATE_WINDOW:
            recent.popleft()
        if len(recent) >= current.rate:
            wait = RATE_WINDOW - (now - recent[0])
            return f"too many checks: at most {current.rate} a minute; try again in {wait:.0f} s"
        recent.append(now)
        earlier = self.latest.get(session)
        if earlier is not None and not earlier.done:
            earlier.cancelled = True
            if earlier.worker is not None:
                earlier.worker.send({"op": "cancel", "id": earlier.job_id})
            self.condition.notify_all()
        self.latest[session] = ticket
        return ""

    def _run_on(self, worker: Worker, job: dict[str, Any], current: SandboxSettings) -> Outcome:
        for _ in range(2):  # a job that never reached a worker (killed between jobs) is sent once more
            if not worker.running():
                worker.stop()
                worker.start(bool(self.jailed))
            worker.wait_ready(current.startup_timeout)
            outcome = worker.run(job, time.monotonic() + job["timeout"] + SLACK + 1.0)
            if not outcome.never_ran:
                return outcome
        return outcome

    def shutdown(self) -> None:
        with self.condition:
            for worker in self.workers:
                worker.stop()
            self.workers, self.free, self.latest = [], [], {}
            self.jailed = None

    def pids(self) -> list[int]:
        with self.condition:
            return [w.process.pid for w in self.workers if w.running()]

    def facts(self) -> list[dict[str, Any]]:
        with self.condition:
            return [dict(w.facts) for w in self.workers if w.ready]


POOL = Pool()
atexit.register(POOL.shutdown)
