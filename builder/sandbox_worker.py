"""The sandbox worker: the process that runs custom layer code, one fresh, limited child process per job.

``builder.sandbox`` starts it as ``python -c "from builder.sandbox_worker import main; main()" FD`` with a
minimal environment (no secrets; one thread for OpenMP and BLAS). It imports torch once, warms it up, says
it is ready, then serves jobs from the connection on FD. For each job it forks a child: the worker stays
single-threaded, so the fork is safe, and the child starts warm in milliseconds, with a CPU budget of its
own and nothing left behind by the previous job. The child

1. drops stdin/stdout/stderr, sets its limits (address space, CPU time, no file writes, no core dumps, no new
   file descriptors) and installs an audit hook that refuses files, processes, sockets and new imports;
2. defines each custom layer with restricted builtins, a guarded ``__import__`` and read-only module views
   that refuse private names, denied names and modules outside the allowlist;
3. wraps each layer class so a failure in ``__init__`` or ``forward`` names the layer and the line;
4. traces the design (``builder.inference``) and sends the result back, pickled.

The worker forwards the child's messages without unpickling them, kills the child's process group when it is
done or over time, and reports how it ended. The caller unpickles with an allowlist (``builder.sandbox``).
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
import time
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from builder.catalog import catalog
from builder.custom import ALLOWED_IMPORTS, DENIED_ATTRIBUTES, CodeProblem, check_source
from builder.design import CustomLayerSpec, Design, DesignError, InputSpec, LayerSpec, load_design
from builder.inference import infer_shapes, inspect_design, needs_values

# Message tags on the wire: the first byte of every message.
READY = b"Y"  # worker -> caller, once: torch is imported and warm
PROGRESS = b"P"  # child -> caller: (layer, phase) the child has entered
RESULT = b"R"  # child -> caller: the job's result dict
DONE = b"D"  # worker -> caller: how the child ended
MAX_MESSAGE = 16 * 1024 * 1024
GRACE = 1.0  # seconds between the child's own timeout and the worker's SIGKILL
MAX_OUTPUT = 10_000  # characters of print() output kept per job

SAFE_BUILTIN_NAMES: tuple[str, ...] = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod",
    "complex", "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "id",
    "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct",
    "ord", "pow", "print", "property", "range", "repr", "reversed", "round", "set", "slice", "sorted",
    "staticmethod", "str", "sum", "super", "tuple", "type", "zip", "NotImplemented", "Ellipsis", "__build_class__",
)  # fmt: skip
# Audit events custom code may trigger (pure computation); every other event is refused while it runs.
AUDIT_ALLOWED: frozenset[str] = frozenset({"builtins.id", "object.__setattr__", "object.__delattr__", "sys._getframe"})
# Attributes that lead from an object to the interpreter's frames: refused even when read through torch.
AUDIT_FRAME_ATTRIBUTES: frozenset[str] = frozenset(
    {"gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "f_back"}
)


@dataclass
class _JobState:
    """What the child process knows about its job (module-level: the audit hook and signal handler need it)."""

    channel: Connection | None = None
    timeout: float = 10.0
    memory: int = 0
    trusted: bool = True  # the job's own code; False while custom code (or torch on its behalf) runs
    permits: set[str] = field(default_factory=set)  # one-shot events allowed (compile + exec of the source)
    finished: bool = False
    last_progress: tuple[str, str] | None = None
    depth: int = 0  # nested _Watch calls (a forward calling itself)
    failures: dict[str, CodeProblem] = field(default_factory=dict)


_STATE = _JobState()


class CustomLayerError(RuntimeError):
    """A custom layer failed; ``problem`` says which, where and why."""

    def __init__(self, problem: CodeProblem) -> None:
        super().__init__(with_line(problem))
        self.problem = problem


class _Timeout(BaseException):
    """The job's wall-clock time ran out at this line of custom code.

    A BaseException, so that `except Exception:` in custom code cannot swallow it.
    """

    def __init__(self, layer: str | None, line: int | None) -> None:
        super().__init__(f"timed out in {layer} at line {line}")
        self.layer = layer
        self.line = line


def with_line(problem: CodeProblem) -> str:
    """A problem as one clause for a LayerError, the line at the end."""
    return f"{problem.message} (line {problem.line})" if problem.line else problem.message


# ---------------------------------------------------------------------------------------------------------------
# Restricted namespace


class SafeModule:
    """A read-only view of an allowed module: private names, denied names and other modules are refused."""

    __slots__ = ("_SafeModule__module",)

    def __init__(self, module: types.ModuleType) -> None:
        object.__setattr__(self, "_SafeModule__module", module)

    def __getattribute__(self, name: str) -> Any:
        return module_attribute(object.__getattribute__(self, "_SafeModule__module"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"modules are read-only in custom layers; cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"modules are read-only in custom layers; cannot delete {name}")

    def __repr__(self) -> str:
        return f"<module {object.__getattribute__(self, '_SafeModule__module').__name__!r}>"


def module_attribute(module: types.ModuleType, name: str) -> Any:
    """``module.name`` as custom code may see it: allowed submodules come back as SafeModules."""
    if name.startswith("_") or name in DENIED_ATTRIBUTES:
        raise AttributeError(f"{module.__name__}.{name} is not available in custom layers")
    value = getattr(module, name)
    if isinstance(value, types.ModuleType):
        if value.__name__ not in ALLOWED_IMPORTS:
            raise AttributeError(f"{module.__name__}.{name} is not available in custom layers")
        return SafeModule(value)
    return value


def guarded_import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> SafeModule:
    """``__import__`` for custom code: only allowed modules that torch has already imported."""
    if level or name not in ALLOWED_IMPORTS or name not in sys.modules:
        raise ImportError(f"import {name} is not allowed: custom layers may import only torch and math")
    return SafeModule(sys.modules[name if fromlist else name.partition(".")[0]])


def _safe_builtins() -> dict[str, Any]:
    names = list(SAFE_BUILTIN_NAMES)
    names += [n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)]
    return {name: getattr(builtins, name) for name in names} | {"__import__": guarded_import}


SAFE_BUILTINS: dict[str, Any] = _safe_builtins()


def source_filename(layer: str) -> str:
    """The filename custom code is compiled under: tracebacks and frames name the layer through it."""
    return f"<custom layer {layer}>"


def _layer_of(filename: str) -> str | None:
    return filename.removeprefix("<custom layer ").removesuffix(">") if filename.startswith("<custom layer ") else None


# ---------------------------------------------------------------------------------------------------------------
# Defining and guarding custom layers


class _Watch:
    """Report entering a layer's phase; turn its failures into CustomLayerError naming the layer and line."""

    def __init__(self, layer: str, phase: str) -> None:
        self.layer = layer
        self.phase = phase

    def __enter__(self) -> None:
        _progress(self.layer, self.phase)
        _STATE.depth += 1

    def __exit__(self, kind: Any, error: BaseException | None, tb: types.TracebackType | None) -> bool:
        _STATE.depth -= 1
        if error is None or isinstance(error, CustomLayerError):
            return False
        if isinstance(error, Exception) and needs_values(error):
            return False  # inference re-runs the layer on real tensors
        if isinstance(error, RecursionError) and _STATE.depth > 0:
            return False  # describe it where the stack has room: at the outermost call
        problem = describe_failure(self.layer, self.phase, error, tb)
        _STATE.failures[self.layer] = problem
        raise CustomLayerError(problem) from None


def describe_failure(layer: str, phase: str, error: BaseException, tb: types.TracebackType | None) -> CodeProblem:
    """What went wrong in the layer's ``phase``, at the deepest line of its own code, and what to change."""
    line = error.line if isinstance(error, _Timeout) else _user_line(layer, tb)
    kind = type(error).__name__
    text = _first_line(error)
    if isinstance(error, _Timeout):
        message = f"{phase} did not finish within {_STATE.timeout:g} s and was stopped; look for a loop that never ends"
    elif isinstance(error, MemoryError) or "can't allocate memory" in text:
        limit = f"{_STATE.memory / 2**30:g} GiB"
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
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _user_line(layer: str, tb: types.TracebackType | None) -> int | None:
    """The deepest line of the layer's own code in a traceback."""
    filename, line = source_filename(layer), None
    with _trusted():
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                line = tb.tb_lineno
            tb = tb.tb_next
    return line


def _guarded(cls: type[nn.Module], layer: str) -> type[nn.Module]:
    """A subclass of the user's class whose __init__ and forward failures name the layer and the line."""

    def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        with _Watch(layer, "__init__"):
            cls.__init__(self, *args, **kwargs)

    def forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        with _Watch(layer, "forward"):
            return cls.forward(self, *args, **kwargs)

    namespace = {"__init__": __init__, "forward": forward, "__module__": cls.__module__, "__qualname__": layer}
    return type(cls)(layer, (cls,), namespace)


def define_sandboxed(spec: CustomLayerSpec) -> type[nn.Module] | CodeProblem:
    """Define a custom layer from its source with restricted builtins and module views (only in the child)."""
    namespace: dict[str, Any] = {
        "__builtins__": SAFE_BUILTINS,
        "__name__": f"custom_{spec.name}",
        "torch": SafeModule(torch),
        "nn": SafeModule(nn),
        "F": SafeModule(F),
    }
    try:
        code = compile(spec.source, source_filename(spec.name), "exec")
    except SyntaxError as error:
        return CodeProblem(spec.name, f"syntax error: {error.msg}", error.lineno)
    try:
        # Checking and subclassing the class may run its metaclass or __init_subclass__: custom code too.
        with _untrusted(), _Watch(spec.name, "the class definition"):
            _STATE.permits.add("exec")
            exec(code, namespace)  # noqa: S102 - restricted namespace, inside the limited child process
            cls = namespace.get(spec.name)
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
                return CodeProblem(spec.name, f"the code must define class {spec.name}(nn.Module)")
            if cls.forward is nn.Module.forward:
                return CodeProblem(spec.name, f"class {spec.name} has no forward method; add `def forward(self, X):`")
            return _guarded(cls, spec.name)
    except CustomLayerError as error:
        return error.problem
    finally:
        _STATE.permits.clear()


# ---------------------------------------------------------------------------------------------------------------
# The job, in the child process


def run_trace(job: dict[str, Any]) -> dict[str, Any]:
    """Define the design's custom layers and trace it; the result dict the caller receives."""
    design = load_design(job["design"])  # the job's own code is trusted; custom code runs only _untrusted()
    problems: list[CodeProblem] = []
    classes: dict[str, type[nn.Module]] = {}
    for spec in design.custom_layers:
        found = check_source(spec.source, spec.name) if job["static_check"] else ()
        defined = define_sandboxed(spec) if not found else None
        problems += [*found, defined] if isinstance(defined, CodeProblem) else found
        if isinstance(defined, type):
            classes[spec.name] = defined
    if problems:
        return {"problems": tuple(problems)}
    with _untrusted():
        trace = infer_shapes(design, classes) if job["run"] else inspect_design(design, classes)
    failure = _STATE.failures.get(trace.error.layer_type) if trace.error else None
    if failure is not None:
        trace = replace(trace, error=replace(trace.error, problem=with_line(failure)))
    return {"trace": trace, "failure": failure}


def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run the job with print() captured; every outcome becomes a result dict."""
    output = _BoundedText()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            result = run_trace(job)
        except DesignError as error:
            result = {"design_error": str(error)}
        except _Timeout as error:
            result = {"timeout": (error.layer, error.line)}
        except BaseException:  # a bug of ours, reported to the caller rather than lost with the process
            with _trusted():
                result = {"internal": traceback.format_exc(limit=-8)}
    _STATE.finished = True
    result["output"] = output.getvalue()
    return result


class _BoundedText(io.StringIO):
    """print() output, cut at MAX_OUTPUT characters."""

    def write(self, text: str) -> int:
        room = MAX_OUTPUT - self.tell()
        if room > 0:
            super().write(text[:room] if len(text) <= room else text[:room] + "\n[output cut]\n")
        return len(text)


def _progress(layer: str, phase: str) -> None:
    if _STATE.channel is not None and _STATE.last_progress != (layer, phase):
        _STATE.last_progress = (layer, phase)
        with _trusted():
            _STATE.channel.send_bytes(PROGRESS + pickle.dumps((layer, phase)))


@contextlib.contextmanager
def _trusted() -> Iterator[None]:
    """Let the job's own bookkeeping past the audit hook (custom code never runs inside)."""
    before, _STATE.trusted = _STATE.trusted, True
    try:
        yield
    finally:
        _STATE.trusted = before


@contextlib.contextmanager
def _untrusted() -> Iterator[None]:
    """Hold custom code, and everything it calls, to the audit hook."""
    before, _STATE.trusted = _STATE.trusted, False
    try:
        yield
    finally:
        _STATE.trusted = before


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Refuse files, processes, sockets, imports and frame access while custom code may be running."""
    if _STATE.trusted or event in AUDIT_ALLOWED:
        return
    if event in _STATE.permits:
        _STATE.permits.discard(event)
        return
    if event == "object.__getattr__":
        if len(args) > 1 and args[1] in AUDIT_FRAME_ATTRIBUTES:
            raise PermissionError(f"the sandbox refuses reading {args[1]}")
        return
    what = f" {args[0]}" if event in ("open", "import") and args else ""
    raise PermissionError(f"the sandbox refuses {event}{what}")


def _on_alarm(signum: int, frame: types.FrameType | None) -> None:
    """Stop custom code at the job's deadline, remembering the line it was running."""
    if _STATE.finished:
        return
    layer = line = None
    with _trusted():
        while frame is not None and layer is None:
            layer, line = _layer_of(frame.f_code.co_filename), frame.f_lineno
            frame = frame.f_back
    raise _Timeout(layer, line if layer else None)


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
    """Cap this process: memory above what torch uses, CPU seconds, no files written, no new descriptors."""
    size = _vm_size()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with an error, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    if size is not None:
        resource.setrlimit(resource.RLIMIT_AS, (size + memory, size + memory))
    cpu = math.ceil(timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, 0))  # last: no file or socket can be opened after this


def _child(job: dict[str, Any], write_fd: int, devnull: int) -> None:
    """The job process: isolate, limit, run, send the result."""
    os.setpgid(0, 0)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir("/")
    _STATE.channel = Connection(write_fd, readable=False)
    _STATE.timeout, _STATE.memory = job["timeout"], job["memory"]
    limit_resources(job["timeout"], job["memory"])
    sys.addaudithook(_audit)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, job["timeout"])
    result = _run_job(job)
    signal.setitimer(signal.ITIMER_REAL, 0)
    _STATE.channel.send_bytes(RESULT + pickle.dumps(result))


# ---------------------------------------------------------------------------------------------------------------
# The worker process


def _serve_one(conn: Connection, job: dict[str, Any], devnull: int) -> None:
    """Fork a child for the job, relay its messages until its result or its deadline, then end it."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            os.close(read_fd)
            conn.close()
            _child(job, write_fd, devnull)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    with Connection(read_fd, writable=False) as reader:
        ending = _relay(reader, conn, time.monotonic() + job["timeout"] + GRACE)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    killed_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    conn.send_bytes(DONE + pickle.dumps({"ending": ending, "signal": killed_by, "code": code}))


def _relay(reader: Connection, conn: Connection, deadline: float) -> str:
    """Forward the child's messages, unread, to the caller; say how the child ended ("result", "timeout", ...)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not reader.poll(remaining):
            return "timeout"
        try:
            message = reader.recv_bytes(MAX_MESSAGE)
        except EOFError:
            return "exited"
        except OSError:  # longer than MAX_MESSAGE
            return "too-big"
        conn.send_bytes(message)
        if message[:1] == RESULT:
            return "result"


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
    custom = (CustomLayerSpec(name="Gate", source=WARM_UP_SOURCE),)
    design = Design(input=InputSpec(shape=(2, 3, 8, 8)), layers=layers, custom_layers=custom)
    gate = define_sandboxed(custom[0])
    if not isinstance(gate, type):
        raise RuntimeError(f"the sandbox warm-up layer does not define: {gate}")
    for trace in (infer_shapes(design, {"Gate": gate}), inspect_design(design, {"Gate": gate})):
        if trace.error is not None:
            raise RuntimeError(f"the sandbox warm-up design fails: {trace.error.message}")
    _STATE.failures.clear()
    _STATE.last_progress = None


def main() -> None:
    """The worker's entry point: warm up, say so, then serve jobs until the caller hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides when the worker stops
    conn = Connection(int(sys.argv[1]))
    warm_up()
    devnull = os.open(os.devnull, os.O_RDWR)
    conn.send_bytes(READY + pickle.dumps(os.getpid()))
    while True:
        try:
            job = conn.recv()  # from the caller, which is trusted
        except EOFError:
            return
        _serve_one(conn, job, devnull)
