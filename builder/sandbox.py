"""Run custom layer code safely: in a limited worker process, never in the caller (the Streamlit server, the CLI).

The worker (``builder.sandbox_worker``) is a separate Python process started lazily on first use (or early by
``warm_up()``), with a minimal environment. It imports torch once and forks a fresh child per job, so each job
starts warm, gets its own limits and leaves nothing behind. This module only sends designs as JSON, reads
results with an allowlisting unpickler, and turns every way a job can end (a result, a timeout, a crash, a lost
worker) into a message that names the layer and the line. See ``docs/sandbox.md`` for the threat model.

Settings come from ``configure()`` (the app's config), then the environment, then defaults:
``BUILDER_DISABLE_CUSTOM=1`` turns custom code off whatever ``configure()`` says; ``BUILDER_SANDBOX_TIMEOUT``
(seconds) and ``BUILDER_SANDBOX_MEMORY_MB`` set the limits.
"""

from __future__ import annotations

import atexit
import io
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from builder.custom import CodeProblem, check_source, require_valid
from builder.design import Design, DesignError, design_from_dict, dump_design, validate_design
from builder.diagnose import LayerError
from builder.inference import ParamInfo, Trace
from builder.sandbox_worker import DONE, GRACE, MAX_MESSAGE, PROGRESS, READY, RESULT, with_line

GiB = 2**30
DISABLE_ENV = "BUILDER_DISABLE_CUSTOM"
TIMEOUT_ENV = "BUILDER_SANDBOX_TIMEOUT"
MEMORY_ENV = "BUILDER_SANDBOX_MEMORY_MB"
SLACK = 5.0  # seconds the caller waits beyond the worker's own deadline before it calls the worker lost
ROOT = Path(__file__).resolve().parent.parent
WORKER_COMMAND = "from builder.sandbox_worker import main; main()"
# Classes a result may hold; anything else in a worker's reply is refused (a compromised worker cannot run code
# here by sending a crafted pickle).
RESULT_CLASSES: frozenset[tuple[str, str]] = frozenset(
    {("builder.inference", "Trace"), ("builder.inference", "LayerTrace"), ("builder.inference", "ParamInfo"),
     ("builder.diagnose", "LayerError"), ("builder.diagnose", "Fix"), ("builder.diagnose", "FixKind"),
     ("builder.design", "DType"), ("builder.custom", "CodeProblem")}
)  # fmt: skip


class SandboxError(DesignError):
    """The sandbox itself failed: the worker would not start or broke its protocol. Not the layer's fault."""


@dataclass(frozen=True)
class SandboxSettings:
    """How custom code runs: whether at all, and its limits per job."""

    enabled: bool = True
    timeout: float = 10.0  # wall-clock seconds per job; the CPU limit is this, rounded up, plus one
    memory: int = 2 * GiB  # address space a job may add to what torch itself uses
    startup_timeout: float = 120.0  # seconds to wait for the worker to import torch


_overrides: dict[str, Any] = {}


def configure(**changes: Any) -> None:
    """Set sandbox settings for this process (``enabled``, ``timeout``, ``memory``); None restores the default."""
    unknown = set(changes) - set(SandboxSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown sandbox setting(s): {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        if value is None:
            _overrides.pop(name, None)
        else:
            _overrides[name] = value


def settings() -> SandboxSettings:
    """The settings in force: configure() over the environment over the defaults; the off switch always wins."""
    env_off = os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    base = SandboxSettings(timeout=_env_number(TIMEOUT_ENV, 10.0), memory=int(_env_number(MEMORY_ENV, 2048) * 2**20))
    current = replace(base, **_overrides)
    return replace(current, enabled=False) if env_off else current


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


def custom_code_enabled() -> bool:
    """Whether custom layers may run on this server at all."""
    return settings().enabled


def disabled_message() -> str:
    return (
        f"custom code is turned off on this server ({DISABLE_ENV}=1 or sandbox.configure(enabled=False)); "
        "remove the custom layers, or run the builder on your own machine to use them"
    )


# ---------------------------------------------------------------------------------------------------------------
# The worker process


class _ResultUnpickler(pickle.Unpickler):
    """Unpickles only the result classes: a reply from the worker is data, never code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in RESULT_CLASSES:
            raise pickle.UnpicklingError(f"the sandbox worker sent a {module}.{name}, which is not a result")
        return super().find_class(module, name)


def load_result(data: bytes) -> Any:
    """A worker message's payload, unpickled with the result allowlist."""
    return _ResultUnpickler(io.BytesIO(data)).load()


def _worker_env() -> dict[str, str]:
    """The worker's whole environment: the caller's paths, one thread for OpenMP and BLAS, and no secrets."""
    kept = {name: os.environ[name] for name in ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL") if name in os.environ}
    paths = [str(ROOT), *(p for p in sys.path if p and os.path.isabs(p))]
    threads = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
    return kept | threads | {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), "PYTHONDONTWRITEBYTECODE": "1"}


class _Worker:
    """The warm worker process and the connection to it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.ready = False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", WORKER_COMMAND, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=_worker_env(),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the caller's terminal is the caller's to handle
            )
        self.conn = Connection(ours.detach())
        self.ready = False

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
        except (EOFError, OSError):
            message = None
        if message is None or message[:1] != READY:
            self.stop()
            raise SandboxError(
                f"the sandbox worker did not start within {timeout:g} s; its error, if any, is in this "
                "process's stderr (the server log)"
            )
        self.ready = True


_WORKER = _Worker()
_LOCK = threading.Lock()  # one job at a time per caller process (Streamlit sessions share the worker)


def warm_up(wait: bool = False) -> None:
    """Start the worker now, so the first check does not wait for it to import torch (2-6 s).

    Returns at once unless ``wait``; then it blocks until the worker is ready (raising SandboxError if it
    cannot start). Does nothing when custom code is turned off.
    """
    current = settings()
    if not current.enabled:
        return
    with _LOCK:
        if not _WORKER.running():
            _WORKER.stop()
            _WORKER.start()
        if wait:
            _WORKER.wait_ready(current.startup_timeout)


def worker_pid() -> int | None:
    """The worker's process id while it runs (for operators and tests)."""
    with _LOCK:
        return _WORKER.process.pid if _WORKER.running() else None


def shutdown() -> None:
    """Stop the worker (it starts again on the next job)."""
    with _LOCK:
        _WORKER.stop()


atexit.register(shutdown)


@dataclass
class _Outcome:
    """Everything a job sent back, and how it ended."""

    result: dict[str, Any] | None = None
    ending: dict[str, Any] = field(default_factory=dict)  # the worker's DONE report
    progress: tuple[str, str] | None = None  # the last (layer, phase) the job entered
    lost: str = ""  # "hung" or "died" when the worker itself had to be replaced

    @property
    def never_ran(self) -> bool:
        """The worker was gone before the job reached it (killed between jobs)."""
        return self.lost == "died" and self.progress is None and self.result is None


def _run(job: dict[str, Any], current: SandboxSettings) -> _Outcome:
    """Send a job to the worker and collect its messages; a job that never reached a worker is sent once more."""
    with _LOCK:
        outcome = _send(job, current)
        return _send(job, current) if outcome.never_ran else outcome


def _send(job: dict[str, Any], current: SandboxSettings) -> _Outcome:
    if not _WORKER.running():
        _WORKER.stop()
        _WORKER.start()
    _WORKER.wait_ready(current.startup_timeout)
    try:
        _WORKER.conn.send(job)
    except OSError:
        _WORKER.stop()
        return _Outcome(lost="died")
    try:
        return _collect(_WORKER.conn, time.monotonic() + job["timeout"] + GRACE + SLACK)
    except BaseException:  # interrupted (Ctrl-C): the job's messages would be read as the next job's
        _WORKER.stop()
        raise


def _collect(conn: Connection, deadline: float) -> _Outcome:
    outcome = _Outcome()
    while not outcome.ending:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0 or not conn.poll(remaining):
                outcome.lost = "hung"
                break
            message = conn.recv_bytes(MAX_MESSAGE)
            payload = load_result(message[1:])
        except (EOFError, OSError, pickle.UnpicklingError):
            outcome.lost = "died"
            break
        tag = message[:1]
        if tag == PROGRESS:
            outcome.progress = payload
        elif tag == RESULT:
            outcome.result = payload
        elif tag == DONE:
            outcome.ending = payload
    if outcome.lost:
        _WORKER.stop()  # replaced on the next job
    return outcome


def _job(design: Design, run: bool, current: SandboxSettings, static_check: bool = True) -> dict[str, Any]:
    return {
        "design": dump_design(design),
        "run": run,
        "timeout": float(current.timeout),
        "memory": int(current.memory),
        "static_check": static_check,  # the worker checks again; tests switch it off to test the runtime defences
    }


def _stopped(outcome: _Outcome, current: SandboxSettings, layers: str) -> CodeProblem:
    """Why a job that sent no result ended, attributed to the layer it last entered (else to ``layers``)."""
    layer, phase = outcome.progress or (layers, "the code")
    killed_by = outcome.ending.get("signal") or 0
    if outcome.lost:
        how = "stopped answering" if outcome.lost == "hung" else "died"
        message = f"the sandbox worker {how} while {phase} ran; it is replaced on the next check"
    elif outcome.ending.get("ending") == "too-big":
        message = f"{phase} sent back more than {MAX_MESSAGE // 2**20} MiB; a layer's results should be small"
    elif outcome.ending.get("ending") == "timeout":
        message = (
            f"{phase} did not finish within {current.timeout:g} s and was stopped; "
            "look for a loop that never ends or an operation on very large tensors"
        )
    elif killed_by == signal.SIGXCPU:
        message = f"{phase} used more than {math.ceil(current.timeout) + 1} s of CPU time and was stopped"
    elif killed_by == signal.SIGKILL:
        message = f"{phase} was killed (SIGKILL), most likely by the system for using too much memory"
    elif killed_by:
        name = signal.Signals(killed_by).name
        message = f"{phase} crashed the sandbox process ({name}); simplify the code at fault, or report a bug in torch"
    else:
        message = f"{phase} stopped the sandbox process (exit code {outcome.ending.get('code')})"
    return CodeProblem(layer, message)


def _unexpected(result: dict[str, Any]) -> str:
    return "the sandbox failed while tracing; please report this:\n" + str(result.get("internal", result))


# ---------------------------------------------------------------------------------------------------------------
# The API


def trace_in_worker(design: Design, run: bool = True) -> Trace:
    """Trace a design whose custom layers run in the sandbox worker (``builder.run.analyze`` calls this).

    Args:
        design: a design, usually with custom layers.
        run: run the dummy forward pass; else only build the layers, as ``inspect_design`` does.

    Returns:
        The Trace, as ``infer_shapes``/``inspect_design`` would return it. A layer that fails, hangs, exhausts its
        limits or crashes its process comes back as ``trace.error`` naming the layer and the line of its code.

    Raises:
        DesignError: custom code is turned off, the design is invalid, or a custom layer's source is refused
            before it runs (the message names the layer and the line).
        SandboxError: the worker could not start.
    """
    if design.custom_layers and not custom_code_enabled():
        names = ", ".join(design.custom_names())
        raise DesignError(f"custom layer(s) {names}: {disabled_message()}")
    validate_design(design)
    require_valid(design.custom_layers)
    current = settings()
    outcome = _run(_job(design, run, current), current)
    result = outcome.result
    if result is None:
        problem = _stopped(outcome, current, ", ".join(design.custom_names()))
        return _stopped_trace(design, problem, outcome, run)
    if "trace" in result:
        return result["trace"]
    if "problems" in result:
        problems = result["problems"]
        raise DesignError(str(problems[0]) + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    if "design_error" in result:
        raise DesignError(result["design_error"])
    if "timeout" in result:
        raise DesignError(f"tracing the design took longer than {current.timeout:g} s; try a smaller input shape")
    raise SandboxError(_unexpected(result))


def _stopped_trace(design: Design, problem: CodeProblem, outcome: _Outcome, run: bool) -> Trace:
    index = next((i for i, layer in enumerate(design.layers) if layer.type == problem.layer), None)
    if index is None:
        raise DesignError(str(problem))
    spec = design.layers[index]
    stage = "build" if outcome.progress and outcome.progress[1] == "__init__" else "forward"
    error = LayerError(index, spec.id, spec.type, dict(spec.params), with_line(problem), stage=stage)
    return Trace(design.name, design.input.shape, design.input.dtype, (), error, ran=run)


@dataclass(frozen=True)
class CheckReport:
    """What ``check_layer`` found: the output shape and parameters, or the problems, each with its line."""

    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None = None
    params: tuple[ParamInfo, ...] = ()
    param_count: int = 0
    flops: int = 0
    device: str = ""  # "meta", or "cpu" when the layer needed real values
    notes: tuple[str, ...] = ()
    problems: tuple[CodeProblem, ...] = ()
    output: str = ""  # what the layer printed

    @property
    def ok(self) -> bool:
        return not self.problems and self.output_shape is not None

    @property
    def needs_values(self) -> bool:
        """True when the forward pass could not run on the meta device and ran on small real tensors."""
        return self.device == "cpu"

    @property
    def message(self) -> str:
        """The report as one paragraph."""
        if not self.ok:
            return " ".join(f"{p}." for p in self.problems)
        shapes = ", ".join(f"{p.name} {p.describe()}" for p in self.params) or "no parameters"
        where = "ran on small real tensors (it needs values)" if self.needs_values else "ran on the meta device"
        return (
            f"{self.name}: input {self.input_shape} -> output {self.output_shape}; "
            f"{self.param_count:,} parameters ({shapes}); {where}."
        )


def check_layer(
    source: str,
    name: str,
    init_kwargs: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] = (2, 20),
    dtype: str = "float32",
) -> CheckReport:
    """Check a custom layer as MATLAB's checkLayer does: read it, build it, run it once, report what it does.

    The source is checked statically here, then defined, constructed with ``init_kwargs`` and run on a dummy
    input of ``input_shape`` in the sandbox worker: on the meta device first, on small real tensors when the
    layer needs values (``.item()``, a data-dependent ``if``).

    Args:
        source: the layer's code; ``torch``, ``nn`` and ``F`` are bound, ``math`` may be imported.
        name: the nn.Module subclass to check.
        init_kwargs: the constructor's arguments (JSON values, as the design stores them).
        input_shape: the dummy input's full shape, batch dimension included.
        dtype: the input's dtype: "float32", "float64" or "int64".

    Returns:
        A CheckReport: ``ok`` with the output shape, parameter shapes and where it ran, or the problems, each
        naming the layer and the line and saying what to change. Never raises for anything the code does.
    """
    report = CheckReport(name=name, input_shape=tuple(input_shape))
    if not custom_code_enabled():
        return replace(report, problems=(CodeProblem(name, disabled_message()),))
    problems = check_source(source, name)
    if problems:
        return replace(report, problems=problems)
    try:
        design = _one_layer_design(source, name, init_kwargs or {}, input_shape, dtype)
    except DesignError as error:
        return replace(report, problems=(CodeProblem(name, str(error)),))
    current = settings()
    outcome = _run(_job(design, True, current), current)
    return _report(report, outcome, current)


def _one_layer_design(
    source: str, name: str, init_kwargs: dict[str, Any], input_shape: tuple[int, ...], dtype: str
) -> Design:
    data = {
        "input": {"shape": list(input_shape), "dtype": dtype},
        "layers": [{"type": name, "params": init_kwargs}],
        "custom_layers": [{"name": name, "source": source}],
    }
    return design_from_dict(data)


def _report(report: CheckReport, outcome: _Outcome, current: SandboxSettings) -> CheckReport:
    result = outcome.result
    if result is None:
        return replace(report, problems=(_stopped(outcome, current, report.name),))
    report = replace(report, output=result.get("output", ""))
    trace: Trace | None = result.get("trace")
    if trace is not None and trace.ok:
        layer = trace.layers[0]
        return replace(
            report,
            output_shape=layer.output_shape,
            params=layer.params_after,
            param_count=layer.params,
            flops=layer.flops,
            device=layer.device,
            notes=layer.notes,
        )
    if trace is not None:
        failure = result.get("failure") or CodeProblem(report.name, trace.error.problem)
        return replace(report, problems=(failure,))
    if "problems" in result:
        return replace(report, problems=tuple(result["problems"]))
    if "design_error" in result:
        return replace(report, problems=(CodeProblem(report.name, result["design_error"]),))
    if "timeout" in result:
        layer, line = result["timeout"]
        message = f"did not finish within {current.timeout:g} s and was stopped"
        return replace(report, problems=(CodeProblem(layer or report.name, message, line),))
    return replace(report, problems=(CodeProblem(report.name, _unexpected(result)),))
