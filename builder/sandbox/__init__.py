"""Run custom layer code safely: never in the caller (the Streamlit server, the CLI), only in a jailed worker.

The layers, outermost first (``docs/sandbox.md`` has the threat model):

1. the static check (``static``) reads the code and refuses it before anything runs;
2. a bubblewrap jail (``jail``) around each worker: no network, no files of the server, its own PID and user
   namespaces; where bubblewrap cannot run, the level is "process" and the server says so;
3. a fresh process per job (``worker``, ``child``) with limits, a seccomp filter (``syscalls``), a one-way audit
   hook and restricted namespaces (``restrict``) with allowlisted modules (``policy``);
4. replies checked as bounded plain data, framed with the job's id (``results``, ``protocol``);
5. a pool of workers with per-session cancelling and rate limits (``pool``).

Settings: ``settings``/``configure`` (``BUILDER_DISABLE_CUSTOM``, ``BUILDER_SANDBOX``, ``BUILDER_SANDBOX_TIMEOUT``,
``BUILDER_SANDBOX_MEMORY_MB``, ``BUILDER_SANDBOX_WORKERS``, ``BUILDER_SANDBOX_RATE``).
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass, replace
from typing import Any

from builder.design import Design, DesignError, design_from_dict, dump_design, validate_design, walk
from builder.diagnose import LayerError
from builder.sandbox import pool, results, syscalls
from builder.sandbox.protocol import MAX_MESSAGE
from builder.sandbox.settings import (
    DISABLE_ENV,
    MEMORY_ENV,
    MODE_ENV,
    TIMEOUT_ENV,
    Mode,
    SandboxError,
    SandboxSettings,
    configure,
    disabled_message,
    settings,
)
from builder.sandbox.static import CodeProblem, check_source, require_valid
from builder.trace import ParamInfo, Trace

__all__ = [
    "DISABLE_ENV",
    "MEMORY_ENV",
    "MODE_ENV",
    "TIMEOUT_ENV",
    "CheckReport",
    "Isolation",
    "Mode",
    "SandboxError",
    "SandboxSettings",
    "check_layer",
    "configure",
    "custom_code_enabled",
    "disabled_message",
    "isolation",
    "settings",
    "shutdown",
    "trace_in_worker",
    "values_in_worker",
    "warm_up",
    "worker_pid",
    "worker_pids",
]


def custom_code_enabled() -> bool:
    """Whether custom layers may run on this server at all."""
    return settings().enabled


@dataclass(frozen=True)
class Isolation:
    """Where custom code runs on this server: the level and a sentence saying why."""

    level: str  # "jail", "process" or "off"
    detail: str
    seccomp: bool

    def describe(self) -> str:
        filter_text = "seccomp filter on" if self.seccomp else "no seccomp filter (libseccomp missing)"
        return f"{self.level}: {self.detail}; {filter_text}"


def isolation() -> Isolation:
    """The isolation level custom code runs at here (probes bubblewrap once per process).

    Raises:
        SandboxError: the settings are invalid, or BUILDER_SANDBOX=jail and the jail cannot run.
    """
    current = settings()
    if not current.enabled:
        return Isolation("off", disabled_message(), syscalls.available())
    jailed, why = pool.plan(current.mode)
    return Isolation("jail" if jailed else "process", why, syscalls.available())


def warm_up(wait: bool = False) -> None:
    """Start the workers now, so the first check does not wait for them to import torch (2-6 s).

    Returns at once unless ``wait``; then it blocks until they are ready (raising SandboxError if one cannot
    start). Does nothing when custom code is turned off.
    """
    current = settings()
    if current.enabled:
        pool.POOL.warm_up(current, wait)


def worker_pids() -> list[int]:
    """The process ids of the running workers (for operators and tests)."""
    return pool.POOL.pids()


def worker_pid() -> int | None:
    """The first running worker's process id, if any."""
    pids = worker_pids()
    return pids[0] if pids else None


def worker_facts() -> list[dict[str, Any]]:
    """What each ready worker reported: pid, seccomp, jail, warm-up and start seconds."""
    return pool.POOL.facts()


def shutdown() -> None:
    """Stop the workers (they start again on the next job)."""
    pool.POOL.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# Jobs


def _job(design: Design, run: bool, current: SandboxSettings, static_check: bool = True) -> dict[str, Any]:
    return {
        "design": dump_design(design),
        "run": run,
        "timeout": float(current.timeout),
        "memory": int(current.memory),
        "static_check": static_check,  # the job checks again; tests switch it off to test the runtime defences
    }


def _run(
    design: Design, run: bool, session: str | None, static_check: bool = True, then: tuple[int, ...] | None = None
) -> tuple[Any, pool.Outcome]:
    """Run a job; (checked result dict or None, outcome)."""
    current = settings()
    job = _job(design, run, current, static_check) | ({} if then is None else {"then": [int(s) for s in then]})
    outcome = pool.POOL.run(job, current, session)
    return _checked(outcome, design), outcome


def simulate_escape(source: str, os_limits: bool = True) -> tuple[tuple[str, ...] | None, pool.Outcome]:
    """Test-only: run trusted raw Python in a job's process with all Python-level guards off (see docs/sandbox.md).

    Workers accept it only when they were started with BUILDER_SANDBOX_ESCAPE_TESTS=1 in the caller's
    environment. Returns what the code reported (None when the job gave no result) and the job's outcome.
    """
    current = settings()
    job = {"raw": source, "os_limits": os_limits, "timeout": float(current.timeout), "memory": int(current.memory)}
    outcome = pool.POOL.run(job, current, None)
    raw = outcome.result.get("raw") if isinstance(outcome.result, dict) else None
    if raw is not None and (type(raw) is not tuple or not all(type(line) is str for line in raw)):
        raw = None
    return raw, outcome


def _stopped(outcome: pool.Outcome, layers: str) -> CodeProblem:
    """Why a job that sent no usable result ended, attributed to the layer it last entered (else to ``layers``)."""
    current = settings()
    layer, phase = outcome.progress or (layers, "the code")
    ending = outcome.ending.get("ending")
    killed_by = outcome.ending.get("signal") or 0
    if outcome.refused:
        return CodeProblem(layers, outcome.refused)
    if outcome.ending.get("leftovers"):
        message = f"{phase} started a process, which a layer may not do; the sandbox killed it"
    elif outcome.bad_reply:
        message = f"{phase} sent back something that is not a result ({outcome.bad_reply}); it was dropped"
    elif outcome.lost:
        how = "stopped answering" if outcome.lost == "hung" else "died"
        message = f"the sandbox worker {how} while {phase} ran; it is replaced on the next check"
    elif ending == "cancelled":
        message = "cancelled: a newer check from the same session replaced it"
    elif ending == "too-big":
        message = f"{phase} sent back more than {MAX_MESSAGE // 2**20} MiB; a layer's results should be small"
    elif ending == "bad-message":
        message = f"{phase} wrote on the sandbox's channel, which a layer may not do; the job was stopped"
    elif ending == "timeout":
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
    return "the sandbox failed while tracing; please report this: " + str(result.get("internal", "no result"))


def trace_in_worker(
    design: Design, run: bool = True, session: str | None = None, then: tuple[int, ...] | None = None
) -> Trace:
    """Trace a design whose custom layers run in the sandbox (``builder.run.analyze`` calls this).

    Args:
        design: a design, usually with custom layers.
        run: run the dummy forward pass; else only build the layers, as ``inspect_design`` does.
        session: who asks (the app's session id): a newer job of the same session cancels this one, and a
            session's jobs per minute are limited. None (the CLI) is never cancelled or limited.
        then: a second input's shape: run it through the same modules after the first pass
            (``builder.inference.infer_then``) and return that second trace.

    Returns:
        The Trace, as ``infer_shapes``/``inspect_design`` would return it. A layer that fails, hangs, exhausts its
        limits or crashes its process comes back as ``trace.error`` naming the layer and the line of its code.

    Raises:
        DesignError: custom code is turned off, the design is invalid, a custom layer's source is refused before
            it runs (the message names the layer and the line), or the job was cancelled or rate-limited.
        SandboxError: the sandbox could not start, is misconfigured, or lost the worker during the job (a passing
            trouble: callers that cache traces keep none of these).
    """
    if design.custom_layers and not custom_code_enabled():
        names = ", ".join(design.custom_names())
        raise DesignError(f"custom layer(s) {names}: {disabled_message()}")
    validate_design(design)
    require_valid(design.custom_layers)
    result, outcome = _run(design, run, session, then=then)
    if result is None:
        problem = _stopped(outcome, ", ".join(design.custom_names()))
        return _stopped_trace(design, problem, outcome, run)
    if "trace" in result:
        return result["trace"]
    if "problems" in result:
        problems = result["problems"]
        raise DesignError(str(problems[0]) + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    if "design_error" in result:
        raise DesignError(result["design_error"])
    if "timeout" in result:
        raise DesignError(f"tracing the design took longer than {settings().timeout:g} s; try a smaller input shape")
    raise SandboxError(_unexpected(result))


def values_in_worker(design: Design, value_input: Any, session: str | None = None) -> Any:
    """Run a design with custom layers on real values in the sandbox (``builder.values.real_values`` there).

    Args:
        design: the design; its custom layers are defined in the job's process as for a trace.
        value_input: a ``builder.values.ValueInput`` (random of a shape, or typed values, and a seed).
        session: who asks (see ``trace_in_worker``).

    Returns:
        A ``builder.values.ValueRun``, rebuilt and checked from the job's plain-data reply; a layer that fails,
        hangs or is refused comes back as the run's ``problem``.
    """
    from builder.values import ValueRun

    def refused(problem: str) -> ValueRun:
        return ValueRun(None, problem=problem, seed=value_input.seed)

    if design.custom_layers and not custom_code_enabled():
        return refused(disabled_message())
    try:
        validate_design(design)
        require_valid(design.custom_layers)
        current = settings()
        job = _job(design, True, current) | {"values": _value_input_data(value_input)}
        outcome = pool.POOL.run(job, current, session)
    except DesignError as error:
        return refused(str(error))
    result = _checked(outcome, design)
    if result is None:
        return refused(str(_stopped(outcome, ", ".join(design.custom_names()))))
    if "values" in result:
        try:
            return ValueRun.from_dict(result["values"])
        except ValueError as error:
            return refused(f"the sandbox sent back values that are not a result ({error})")
    if "problems" in result:
        return refused(str(result["problems"][0]))
    if "timeout" in result:
        return refused(f"the run did not finish within {settings().timeout:g} s; try a smaller input")
    return refused(result.get("design_error") or _unexpected(result))


def _value_input_data(value_input: Any) -> dict[str, Any]:
    return {
        "kind": str(value_input.kind.value),
        "shape": [int(size) for size in value_input.shape],
        "dtype": str(value_input.dtype.value),
        "text": str(value_input.text),
        "seed": int(value_input.seed),
    }


def _checked(outcome: pool.Outcome, design: Design) -> dict[str, Any] | None:
    """The outcome's result, rebuilt and checked; None when there is none to trust."""
    if outcome.result is None or outcome.ending.get("leftovers"):
        return None
    try:
        return results.job_result(outcome.result, design)
    except results.ResultError as error:
        outcome.bad_reply = str(error)
        return None


def _stopped_trace(design: Design, problem: CodeProblem, outcome: pool.Outcome, run: bool) -> Trace:
    """A trace failing at the layer the job stopped in; a passing trouble raises instead, so no cache keeps it."""
    if outcome.lost or outcome.ending.get("ending") == "cancelled":
        raise SandboxError(str(problem))  # the worker was lost or the job cancelled: try again
    located = next((found for found in walk(design.layers) if found.entry.type == problem.layer), None)
    if located is None or outcome.refused:
        raise DesignError(str(problem))
    spec = located.entry
    stage = "build" if outcome.progress and outcome.progress[1] == "__init__" else "forward"
    path = located.path if located.depth else ""
    error = LayerError(
        located.index, spec.id, spec.type, dict(spec.params), _with_line(problem), stage=stage, path=path
    )
    return Trace(design.name, design.input.shape, design.input.dtype, (), error, ran=run)


def _with_line(problem: CodeProblem) -> str:
    return f"{problem.message} (line {problem.line})" if problem.line else problem.message


# ---------------------------------------------------------------------------------------------------------------
# Checking one layer


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
    session: str | None = None,
    static_check: bool = True,
) -> CheckReport:
    """Check a custom layer as MATLAB's checkLayer does: read it, build it, run it once, report what it does.

    The source is checked statically here, then defined, constructed with ``init_kwargs`` and run on a dummy
    input of ``input_shape`` in the sandbox: on the meta device first, on small real tensors when the layer needs
    values (``.item()``, a data-dependent ``if``).

    Args:
        source: the layer's code; ``torch``, ``nn`` and ``F`` are bound, ``math`` may be imported.
        name: the nn.Module subclass to check.
        init_kwargs: the constructor's arguments (JSON values, as the design stores them).
        input_shape: the dummy input's full shape, batch dimension included.
        dtype: the input's dtype: "float32", "float64" or "int64".
        session: who asks (see ``trace_in_worker``).
        static_check: False only in tests of the runtime defences (the job process checks nothing statically).

    Returns:
        A CheckReport: ``ok`` with the output shape, parameter shapes and where it ran, or the problems, each
        naming the layer and the line and saying what to change. Never raises for anything the code does.
    """
    report = CheckReport(name=name, input_shape=tuple(input_shape))
    if not custom_code_enabled():
        return replace(report, problems=(CodeProblem(name, disabled_message()),))
    problems = check_source(source, name) if static_check else ()
    if problems:
        return replace(report, problems=problems)
    try:
        design = _one_layer_design(source, name, init_kwargs or {}, input_shape, dtype)
    except DesignError as error:
        return replace(report, problems=(CodeProblem(name, str(error)),))
    try:
        result, outcome = _run(design, True, session, static_check)
    except SandboxError as error:
        return replace(report, problems=(CodeProblem(name, str(error)),))
    return _report(report, result, outcome)


def _one_layer_design(
    source: str, name: str, init_kwargs: dict[str, Any], input_shape: tuple[int, ...], dtype: str
) -> Design:
    data = {
        "input": {"shape": list(input_shape), "dtype": dtype},
        "layers": [{"type": name, "params": init_kwargs}],
        "custom_layers": [{"name": name, "source": source}],
    }
    return design_from_dict(data)


def _report(report: CheckReport, result: dict[str, Any] | None, outcome: pool.Outcome) -> CheckReport:
    if result is None:
        return replace(report, problems=(_stopped(outcome, report.name),))
    report = replace(report, output=result.get("output", ""))
    trace: Trace | None = result.get("trace")
    if trace is not None and trace.ok and trace.layers:
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
    if trace is not None and trace.error is not None:
        failure = result.get("failure") or CodeProblem(report.name, trace.error.problem)
        return replace(report, problems=(failure,))
    if "problems" in result:
        return replace(report, problems=tuple(result["problems"]))
    if "design_error" in result:
        return replace(report, problems=(CodeProblem(report.name, result["design_error"]),))
    if "timeout" in result:
        layer, line = result["timeout"]
        message = f"did not finish within {settings().timeout:g} s and was stopped"
        return replace(report, problems=(CodeProblem(layer or report.name, message, line),))
    return replace(report, problems=(CodeProblem(report.name, _unexpected(result)),))
