"""A job's process: forked from the warm worker, it locks itself down, then defines and traces custom layers.

In this order, so that nothing custom runs before every guard is in place and no guard can be switched off:

1. the design is read and each custom layer's source is checked and compiled (``restrict.compile_restricted``);
2. limits: address space, CPU time, no file writes, no core dumps, no new processes, no new file descriptors;
3. the seccomp filter (``syscalls``) where libseccomp is present;
4. an audit hook, for good: from here on no code of this process is trusted. It refuses files, processes, sockets,
   new imports and frame access; the only ``exec`` it lets through is of the code objects compiled in step 1, and
   the only frames it lets be read are read by the two functions that find a failing line (``_user_line``,
   ``_running_line``), which return a number;
5. the layers are defined in restricted namespaces (``restrict.namespace``) and wrapped so that a failure names the
   layer and the line; the wrappers are defined in an empty namespace, so nothing reachable from a layer leads
   back to this module;
6. the design is traced and the result sent on the job's own pipe. The worker forwards it framed with the job's id.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import math
import os
import pickle
import resource
import signal
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from torch import nn

from builder.design import CustomLayerSpec, DesignError, DType, load_design
from builder.inference import infer_shapes, infer_then, inspect_design
from builder.layer_run import needs_values, token_range
from builder.sandbox import restrict, syscalls
from builder.sandbox.protocol import ESCAPE_TESTS_ENV, PROGRESS, RESULT
from builder.sandbox.static import CodeProblem, check_source
from builder.values import InputKind, ValueInput, make_input, real_values

MAX_OUTPUT = 10_000  # characters of print() output kept per job
# Audit events custom code may trigger (pure computation); every other event is refused.
AUDIT_ALLOWED: frozenset[str] = frozenset({"builtins.id", "object.__setattr__", "object.__delattr__", "sys._getframe"})
# Attributes that lead from an object to the interpreter's frames: refused even when read through torch.
AUDIT_FRAME_ATTRIBUTES: frozenset[str] = frozenset(
    {"gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "f_back"}
)


@dataclass
class _Job:
    """What the job process knows about its job (module-level: the signal handler needs it)."""

    channel: Connection | None = None
    timeout: float = 10.0
    memory: int = 0
    finished: bool = False
    last_progress: tuple[str, str] | None = None
    depth: int = 0  # nested watches (a forward calling itself)
    failures: dict[str, CodeProblem] = field(default_factory=dict)


_JOB = _Job()


class CustomLayerError(RuntimeError):
    """A custom layer failed; ``problem`` says which, where and why."""

    def __init__(self, problem: CodeProblem) -> None:
        super().__init__(with_line(problem))
        self.problem = problem


class _Timeout(BaseException):
    """The job's wall-clock time ran out at this line of custom code (not catchable by `except Exception`)."""

    def __init__(self, layer: str | None, line: int | None) -> None:
        super().__init__(f"timed out in {layer} at line {line}")
        self.layer = layer
        self.line = line


def with_line(problem: CodeProblem) -> str:
    """A problem as one clause for a LayerError, the line at the end."""
    return f"{problem.message} (line {problem.line})" if problem.line else problem.message


def source_filename(layer: str) -> str:
    """The filename custom code is compiled under: tracebacks and frames name the layer through it."""
    return f"<custom layer {layer}>"


def _layer_of(filename: str) -> str | None:
    return filename.removeprefix("<custom layer ").removesuffix(">") if filename.startswith("<custom layer ") else None


# ---------------------------------------------------------------------------------------------------------------
# Failures, named by layer and line


class _Watch:
    """Report entering a layer's phase; turn its failures into CustomLayerError naming the layer and line."""

    def __init__(self, layer: str, phase: str) -> None:
        self.layer = layer
        self.phase = phase

    def __enter__(self) -> None:
        _progress(self.layer, self.phase)
        _JOB.depth += 1

    def __exit__(self, kind: Any, error: BaseException | None, tb: types.TracebackType | None) -> bool:
        _JOB.depth -= 1
        if error is None or isinstance(error, CustomLayerError):
            return False
        if isinstance(error, Exception) and needs_values(error):
            return False  # inference re-runs the layer on real tensors
        if isinstance(error, RecursionError) and _JOB.depth > 0:
            return False  # describe it where the stack has room: at the outermost call
        problem = describe_failure(self.layer, self.phase, error, tb)
        _JOB.failures[self.layer] = problem
        raise CustomLayerError(problem) from None


def describe_failure(layer: str, phase: str, error: BaseException, tb: types.TracebackType | None) -> CodeProblem:
    """What went wrong in the layer's ``phase``, at the deepest line of its own code, and what to change."""
    line = error.line if isinstance(error, _Timeout) else _user_line(source_filename(layer), tb)
    kind = type(error).__name__
    text = _first_line(error)
    if isinstance(error, _Timeout):
        message = f"{phase} did not finish within {_JOB.timeout:g} s and was stopped; look for a loop that never ends"
    elif isinstance(error, MemoryError) or "can't allocate memory" in text:
        limit = f"{_JOB.memory / 2**30:g} GiB"
        message = f"{phase} ran out of memory ({kind}): a layer may use about {limit}; use smaller tensors"
    elif isinstance(error, RecursionError):
        message = f"{phase} recursed without end (RecursionError); make sure the call at this line stops"
    elif isinstance(error, SystemExit | KeyboardInterrupt | GeneratorExit):
        message = (
            f"{phase} raised {kind}: a layer cannot stop the program; "
            "raise an exception with a message instead, such as ValueError('...')"
        )
    else:
        message = f"{phase} raised {kind}: {text}" if text else f"{phase} raised {kind}"
    return CodeProblem(layer, message, line)


def _first_line(error: BaseException, limit: int = 300) -> str:
    try:
        lines = str(error).strip().splitlines()
    except Exception:  # custom exceptions may have a broken __str__
        return ""
    line = lines[0] if lines and isinstance(lines[0], str) else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _user_line(filename: str, tb: types.TracebackType | None) -> int | None:
    """The deepest line of ``filename``'s code in a traceback (a frame reader the audit hook lets through)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _running_line(frame: types.FrameType | None) -> tuple[str | None, int | None]:
    """The custom layer and line a frame stack is running (a frame reader the audit hook lets through)."""
    while frame is not None:
        layer = _layer_of(frame.f_code.co_filename)
        if layer is not None:
            return layer, frame.f_lineno
        frame = frame.f_back
    return None, None


FRAME_READERS: frozenset[types.CodeType] = frozenset({_user_line.__code__, _running_line.__code__})


# ---------------------------------------------------------------------------------------------------------------
# Defining custom layers

GUARD_SOURCE = """
def guard(cls, layer, watch):
    class Guarded(cls):
        def __init__(self, *args, **kwargs):
            with watch(layer, "__init__"):
                cls.__init__(self, *args, **kwargs)

        def forward(self, *args, **kwargs):
            with watch(layer, "forward"):
                return cls.forward(self, *args, **kwargs)

    Guarded.__name__ = Guarded.__qualname__ = layer
    return Guarded
"""


def _make_guard() -> Callable[..., type[nn.Module]]:
    """The wrapper factory, defined where its globals hold nothing (a layer can reach the wrapper's functions)."""
    empty: dict[str, Any] = {"__builtins__": {"__build_class__": builtins.__build_class__}, "__name__": "guard"}
    exec(compile(GUARD_SOURCE, "<layer guard>", "exec"), empty)  # noqa: S102 - our own constant source
    return empty["guard"]


_GUARD = _make_guard()


def compile_layer(spec: CustomLayerSpec, static_check: bool) -> types.CodeType | tuple[CodeProblem, ...]:
    """The layer's restricted code, or why it is refused (the static check when on, then the rewrite)."""
    if static_check:
        problems = check_source(spec.source, spec.name)
        if problems:
            return problems
    try:
        return restrict.compile_restricted(spec.source, source_filename(spec.name))
    except SyntaxError as error:
        return (CodeProblem(spec.name, f"{error.msg}", error.lineno),)
    except (RecursionError, MemoryError, ValueError):
        return (CodeProblem(spec.name, "the code is nested too deeply to read; split long expressions into steps"),)


def define_layer(spec: CustomLayerSpec, code: types.CodeType) -> type[nn.Module] | CodeProblem:
    """Run the layer's restricted code in a fresh namespace and wrap its class."""
    namespace = restrict.namespace(f"custom_{spec.name}")
    try:
        # Checking and subclassing the class may run its metaclass or __init_subclass__: custom code too.
        with _Watch(spec.name, "the class definition"):
            exec(code, namespace)  # noqa: S102 - restricted namespace, inside the locked-down job process
            cls = namespace.get(spec.name)
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
                return CodeProblem(spec.name, f"the code must define class {spec.name}(nn.Module)")
            if cls.forward is nn.Module.forward:
                return CodeProblem(spec.name, f"class {spec.name} has no forward method; add `def forward(self, X):`")
            return _GUARD(cls, spec.name, _Watch)
    except CustomLayerError as error:
        return error.problem


# ---------------------------------------------------------------------------------------------------------------
# The job


def prepare(job: dict[str, Any]) -> tuple[Any, dict[str, types.CodeType], list[CodeProblem]]:
    """Read the design and compile its custom layers (before any guard: nothing custom runs here)."""
    design = load_design(job["design"])
    codes: dict[str, types.CodeType] = {}
    problems: list[CodeProblem] = []
    for spec in design.custom_layers:
        compiled = compile_layer(spec, job["static_check"])
        if isinstance(compiled, tuple):
            problems += compiled
        else:
            codes[spec.name] = compiled
    return design, codes, problems


def define_all(design: Any, codes: dict[str, types.CodeType]) -> dict[str, type[nn.Module]] | list[CodeProblem]:
    """Every custom layer's guarded class, or the problems that stopped their definitions."""
    classes: dict[str, type[nn.Module]] = {}
    problems: list[CodeProblem] = []
    for spec in design.custom_layers:
        defined = define_layer(spec, codes[spec.name])
        if isinstance(defined, CodeProblem):
            problems.append(defined)
        else:
            classes[spec.name] = defined
    return problems or classes


def value_input(design: Any, data: dict[str, Any]) -> Any:
    """The real input of a values job (before the lock-down: typed values are parsed, which compiles)."""
    spec = ValueInput(
        kind=InputKind(data["kind"]),
        shape=tuple(data["shape"]),
        dtype=DType(data["dtype"]),
        text=data["text"],
        seed=data["seed"],
    )
    return make_input(spec, token_range(design)), spec.seed


def run_values(design: Any, codes: dict[str, types.CodeType], x: Any, seed: int) -> dict[str, Any]:
    """Run the design on a real input (``builder.values``); the result holds plain data only."""
    classes = define_all(design, codes)
    if isinstance(classes, list):
        return {"problems": tuple(classes)}
    return {"values": real_values(design, classes, x, seed).to_dict()}


def run_trace(
    design: Any, codes: dict[str, types.CodeType], run: bool, then: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """Define the design's custom layers and trace it (then, given ``then``, a second input's shape through the
    same modules: the second trace is the result); the result dict the caller receives."""
    classes = define_all(design, codes)
    if isinstance(classes, list):
        return {"problems": tuple(classes)}
    if then is not None:
        trace = infer_then(design, then, classes)[1]
    else:
        trace = infer_shapes(design, classes) if run else inspect_design(design, classes)
    failure = _JOB.failures.get(trace.error.layer_type) if trace.error else None
    if failure is not None:
        trace = replace(trace, error=replace(trace.error, problem=with_line(failure)))
    return {"trace": trace, "failure": failure}


def _then_shape(job: dict[str, Any]) -> tuple[int, ...] | None:
    """A second input's shape, as the caller sent it (checked again by ``infer_then``)."""
    then = job.get("then")
    return None if then is None else tuple(int(size) for size in then)


def _describe_internal(error: BaseException) -> str:
    """A bug of ours, in a few lines (no source files are readable here)."""
    return f"{type(error).__name__}: {_first_line(error)}"


class _BoundedText(io.StringIO):
    """print() output, cut at MAX_OUTPUT characters."""

    def write(self, text: str) -> int:
        text = str(text)
        room = MAX_OUTPUT - self.tell()
        if room > 0:
            super().write(text[:room] if len(text) <= room else text[:room] + "\n[output cut]\n")
        return len(text)


def _progress(layer: str, phase: str) -> None:
    if _JOB.channel is not None and _JOB.last_progress != (layer, phase):
        _JOB.last_progress = (layer, phase)
        _JOB.channel.send_bytes(PROGRESS + pickle.dumps((layer, phase)))


# ---------------------------------------------------------------------------------------------------------------
# Locking the process down


def make_audit_hook(codes: frozenset[types.CodeType]) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook: no state that code could switch, one decision for the rest of the process's life."""
    busy = [False]  # the hook's own frame reads raise events too

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if busy[0] or event in AUDIT_ALLOWED:
            return
        if event == "exec" and args and args[0] in codes:
            return
        if event == "object.__getattr__":
            if len(args) > 1 and args[1] in AUDIT_FRAME_ATTRIBUTES and not _read_by_frame_reader():
                raise PermissionError(f"the sandbox refuses reading {args[1]}")
            return
        what = f" {args[0]}" if event in ("open", "import") and args else ""
        raise PermissionError(f"the sandbox refuses {event}{what}")

    def _read_by_frame_reader() -> bool:
        busy[0] = True
        try:
            return sys._getframe(2).f_code in FRAME_READERS
        finally:
            busy[0] = False

    return audit


def _on_alarm(signum: int, frame: types.FrameType | None) -> None:
    """Stop custom code at the job's deadline, remembering the line it was running."""
    if _JOB.finished:
        return
    layer, line = _running_line(frame)
    raise _Timeout(layer, line)


def _vm_size() -> int | None:
    """The process's address-space size in bytes (Linux), or None where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def limit_resources(timeout: float, memory: int) -> None:
    """Cap this process: memory above what torch uses, CPU seconds, no files written, no new processes or fds."""
    size = _vm_size()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with an error, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    if size is not None:
        resource.setrlimit(resource.RLIMIT_AS, (size + memory, size + memory))
    cpu = math.ceil(timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # holds in the jail's user namespace; root ignores it
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, 0))  # last: no file or socket can be opened after this


def lock_down(job: dict[str, Any], codes: frozenset[types.CodeType]) -> None:
    """Steps 2-4: limits, seccomp, the audit hook. Irreversible."""
    rules = syscalls.build_filter(os.getpid()) if syscalls.available() else None
    limit_resources(job["timeout"], job["memory"])
    if rules is not None:
        syscalls.install(rules)
    sys.addaudithook(make_audit_hook(codes))


def run_job(job: dict[str, Any], write_fd: int, devnull: int) -> None:
    """The job process, from fork to its result on the pipe."""
    os.setpgid(0, 0)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir("/")
    _JOB.channel = Connection(write_fd, readable=False)
    _JOB.timeout, _JOB.memory = job["timeout"], job["memory"]
    output = _BoundedText()
    if "raw" in job and os.environ.get(ESCAPE_TESTS_ENV) == "1":
        _JOB.channel.send_bytes(RESULT + pickle.dumps(simulate_escape(job)))
        return
    try:
        design, codes, problems = prepare(job)
        values = value_input(design, job["values"]) if "values" in job else None
    except (DesignError, ValueError) as error:
        result: dict[str, Any] = {"design_error": str(error)}
    else:
        lock_down(job, frozenset(codes.values()))
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, job["timeout"])
        result = {"problems": tuple(problems)} if problems else _traced(design, codes, job, values, output)
        signal.setitimer(signal.ITIMER_REAL, 0)
    result["output"] = output.getvalue()
    _JOB.channel.send_bytes(RESULT + pickle.dumps(result))


def simulate_escape(job: dict[str, Any]) -> dict[str, Any]:
    """Test-only: run raw Python with every Python-level guard off, under the OS layers alone.

    As if an attacker had fully escaped the static check, the rewrite, the module views and the audit hook: the
    job's limits and (unless ``job["os_limits"]`` is False) RLIMIT_NPROC and seccomp still apply, and the jail
    around the worker. The code appends what happened to ``report``.
    """
    report: list[str] = []
    if job.get("os_limits", True):
        rules = syscalls.build_filter(os.getpid()) if syscalls.available() else None
        limit_resources(job["timeout"], job["memory"])
        if rules is not None:
            syscalls.install(rules)
    namespace: dict[str, Any] = {"report": report, "__name__": "escape"}
    try:
        exec(compile(job["raw"], "<escape simulation>", "exec"), namespace)  # noqa: S102 - test-only, trusted
    except BaseException as error:
        report.append(f"raised {type(error).__name__}: {_first_line(error)}")
    return {"raw": tuple(str(line)[:2_000] for line in report[:200]), "output": ""}


def _traced(
    design: Any, codes: dict[str, types.CodeType], job: dict[str, Any], values: Any, output: _BoundedText
) -> dict[str, Any]:
    """Run the trace (or the real-values run) with print() captured; every outcome becomes a result dict."""
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            if values is not None:
                result = run_values(design, codes, *values)
            else:
                result = run_trace(design, codes, job["run"], _then_shape(job))
        except DesignError as error:
            result = {"design_error": str(error)}
        except _Timeout as error:
            result = {"timeout": (error.layer, error.line)}
        except BaseException as error:  # a bug of ours, or custom code that got past the layer guards
            result = {"internal": _describe_internal(error)}
    _JOB.finished = True
    return result
