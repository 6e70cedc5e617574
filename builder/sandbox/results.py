"""What comes back from a job is data, checked before anything formats it.

A job's process runs custom code, so its reply is treated as hostile: it is unpickled with an allowlist of result
classes (no other class, no code), then rebuilt field by field into fresh objects, each value checked as plain
data of bounded size: a shape is a short tuple of non-negative ints below ``MAX_SIZE``; text is a ``str`` of
bounded length; containers are shallow and short. A layer whose ``shape`` is a tuple nested 2**25 deep, a
10,000-digit int or a string subclass with its own ``__str__`` never reaches ``format_shape`` or the page. Layers
of the trace must be the design's own layers, in order.
"""

from __future__ import annotations

import contextvars
import io
import pickle
from typing import Any

from builder.design import Design, DType, design_path, walk
from builder.diagnose import Fix, FixKind, LayerError
from builder.sandbox.static import CodeProblem
from builder.trace import LayerTrace, ParamInfo, Trace

# Classes a result may hold; anything else in a reply is refused.
RESULT_CLASSES: frozenset[tuple[str, str]] = frozenset(
    {("builder.trace", "Trace"), ("builder.trace", "LayerTrace"), ("builder.trace", "ParamInfo"),
     ("builder.diagnose", "LayerError"), ("builder.diagnose", "Fix"), ("builder.diagnose", "FixKind"),
     (DType.__module__, "DType"), (CodeProblem.__module__, "CodeProblem")}
)  # fmt: skip
MAX_DIMS = 16
MAX_SIZE = 2**62
MAX_TEXT = 20_000
MAX_OUTPUT_TEXT = 12_000
MAX_ITEMS = 256
MAX_PARAMS = 4_096
MAX_DEPTH = 4
MAX_LAYERS = 100_000
MAX_TREE_DEPTH = 10
MAX_VALUES = 500_000  # values checked per reply: memo-shared containers cannot make the check itself slow
_BUDGET: contextvars.ContextVar[list[int]] = contextvars.ContextVar("budget")


class ResultError(ValueError):
    """A reply that is not a well-formed result; the message says which field."""


class _ResultUnpickler(pickle.Unpickler):
    """Unpickles only the result classes: a reply is data, never code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in RESULT_CLASSES:
            raise pickle.UnpicklingError(f"the sandbox sent a {module}.{name}, which is not a result")
        return super().find_class(module, name)


def load_payload(data: bytes) -> Any:
    """A message's payload, unpickled with the result allowlist (raises ResultError on anything else)."""
    try:
        return _ResultUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise ResultError(f"a reply that is not a result: {error}") from None
    except (RecursionError, MemoryError):
        raise ResultError("a reply nested too deeply") from None


# ---------------------------------------------------------------------------------------------------------------
# Plain values


def _spend() -> None:
    budget = _BUDGET.get(None)
    if budget is None:
        budget = [MAX_VALUES]
        _BUDGET.set(budget)
    budget[0] -= 1
    if budget[0] < 0:
        raise ResultError(f"the reply holds more than {MAX_VALUES:,} values")


def fresh_budget() -> None:
    """Start counting checked values for one reply."""
    _BUDGET.set([MAX_VALUES])


def text(value: Any, where: str, limit: int = MAX_TEXT) -> str:
    _spend()
    if type(value) is not str:
        raise ResultError(f"{where}: expected text")
    return value if len(value) <= limit else value[: limit - 3] + "..."


def whole(value: Any, where: str, low: int = 0, high: int = MAX_SIZE) -> int:
    _spend()
    if type(value) is not int or not low <= value <= high:
        raise ResultError(f"{where}: expected a whole number from {low} to {high}")
    return value


def flag(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise ResultError(f"{where}: expected true or false")
    return value


def shape(value: Any, where: str) -> tuple[int, ...]:
    if type(value) is not tuple or len(value) > MAX_DIMS:
        raise ResultError(f"{where}: a shape must be a tuple of at most {MAX_DIMS} sizes")
    return tuple(whole(size, where) for size in value)


def optional_shape(value: Any, where: str) -> tuple[int, ...] | None:
    return None if value is None else shape(value, where)


def items(value: Any, where: str, kind: type = tuple, limit: int = MAX_ITEMS) -> Any:
    _spend()
    if type(value) is not kind or len(value) > limit:
        raise ResultError(f"{where}: expected a {kind.__name__} of at most {limit} items")
    return value


def plain(value: Any, where: str, depth: int = 0) -> Any:
    """JSON-like data: None, bool, int, finite float, str, and short lists/tuples/dicts of those, shallow."""
    _spend()
    if value is None or type(value) in (bool, float):
        return value
    if type(value) is int:
        return whole(value, where, -MAX_SIZE, MAX_SIZE)
    if type(value) is str:
        return text(value, where)
    if depth >= MAX_DEPTH:
        raise ResultError(f"{where}: nested too deeply")
    if type(value) in (list, tuple):
        return type(value)(plain(v, where, depth + 1) for v in items(value, where, type(value)))
    if type(value) is dict:
        return {text(k, where, 200): plain(v, where, depth + 1) for k, v in items(value, where, dict).items()}
    raise ResultError(f"{where}: {type(value).__name__} is not plain data")


def tree(value: Any, where: str, depth: int = 0) -> Any:
    """JSON-like data of any width (within the reply's value budget), at most ``MAX_TREE_DEPTH`` deep."""
    _spend()
    if value is None or type(value) in (bool, float, int, str):
        return plain(value, where)
    if depth >= MAX_TREE_DEPTH:
        raise ResultError(f"{where}: nested too deeply")
    if type(value) in (list, tuple):
        return [tree(v, where, depth + 1) for v in items(value, where, type(value), MAX_LAYERS)]
    if type(value) is dict:
        return {text(k, where, 200): tree(v, where, depth + 1) for k, v in items(value, where, dict, 1_000).items()}
    raise ResultError(f"{where}: {type(value).__name__} is not plain data")


def _fields(obj: Any, cls: type, where: str) -> dict[str, Any]:
    if type(obj) is not cls:
        raise ResultError(f"{where}: expected a {cls.__name__}")
    state = getattr(obj, "__dict__", None)
    if type(state) is not dict:
        raise ResultError(f"{where}: a {cls.__name__} without fields")
    return state


# ---------------------------------------------------------------------------------------------------------------
# Result objects, rebuilt


def code_problem(obj: Any, where: str = "problem") -> CodeProblem:
    f = _fields(obj, CodeProblem, where)
    line = f.get("line")
    return CodeProblem(
        text(f.get("layer"), where, 200), text(f.get("message"), where), None if line is None else whole(line, where)
    )


def _param(obj: Any, where: str) -> ParamInfo:
    f = _fields(obj, ParamInfo, where)
    return ParamInfo(text(f.get("name"), where, 500), optional_shape(f.get("shape"), where))


def _fix(obj: Any, where: str) -> Fix:
    f = _fields(obj, Fix, where)
    kind = f.get("kind")
    if type(kind) is not FixKind:
        raise ResultError(f"{where}: unknown fix kind")
    param = f.get("param")
    return Fix(
        kind,
        text(f.get("description"), where),
        None if param is None else text(param, where, 200),
        plain(f.get("value"), where),
        flag(f.get("certain"), where),
    )


def _error(obj: Any, where: str) -> LayerError:
    f = _fields(obj, LayerError, where)
    return LayerError(
        index=whole(f.get("index"), where, 0, MAX_LAYERS),
        layer_id=text(f.get("layer_id"), where, 200),
        layer_type=text(f.get("layer_type"), where, 200),
        params=plain(f.get("params"), where),
        problem=text(f.get("problem"), where),
        fixes=tuple(_fix(x, where) for x in items(f.get("fixes"), where, limit=16)),
        torch_message=text(f.get("torch_message"), where),
        stage=text(f.get("stage"), where, 20),
        extra=plain(f.get("extra"), where),
        path=text(f.get("path", ""), where, 2_000),
    )


def _layer(obj: Any, where: str) -> LayerTrace:
    f = _fields(obj, LayerTrace, where)
    inferred = f.get("inferred")
    return LayerTrace(
        index=whole(f.get("index"), where, 0, MAX_LAYERS),
        id=text(f.get("id"), where, 200),
        type=text(f.get("type"), where, 200),
        input_shape=optional_shape(f.get("input_shape"), where),
        output_shape=optional_shape(f.get("output_shape"), where),
        params=whole(f.get("params"), where),
        params_before=tuple(_param(p, where) for p in items(f.get("params_before"), where, limit=MAX_PARAMS)),
        params_after=tuple(_param(p, where) for p in items(f.get("params_after"), where, limit=MAX_PARAMS)),
        inferred=plain(dict(inferred) if type(inferred) is dict else inferred, where),
        flops=whole(f.get("flops"), where),
        param_bytes=whole(f.get("param_bytes"), where),
        activation_bytes=whole(f.get("activation_bytes"), where),
        device=text(f.get("device"), where, 10),
        notes=tuple(text(n, where, 2_000) for n in items(f.get("notes"), where, limit=32)),
        path=text(f.get("path", ""), where, 2_000),
        shares=text(f.get("shares", ""), where, 200),
    )


def trace(obj: Any, design: Design) -> Trace:
    """A Trace rebuilt from a reply and checked against the design it traces."""
    f = _fields(obj, Trace, "trace")
    if type(f.get("layers")) is tuple and len(f["layers"]) > len(design.layers):
        raise ResultError("trace: more layers than the design has")
    dtype = f.get("input_dtype")
    if type(dtype) is not DType:
        raise ResultError("trace: unknown input dtype")
    layers = tuple(_layer(x, f"layers[{i}]") for i, x in enumerate(items(f.get("layers"), "trace", limit=MAX_LAYERS)))
    inner_items = items(f.get("inner", ()), "trace", limit=MAX_LAYERS)
    inner = tuple(_layer(x, f"inner[{i}]") for i, x in enumerate(inner_items))
    error = f.get("error")
    rebuilt = Trace(
        name=text(f.get("name"), "trace", 500),
        input_shape=shape(f.get("input_shape"), "trace"),
        input_dtype=dtype,
        layers=layers,
        error=None if error is None else _error(error, "trace error"),
        ran=flag(f.get("ran"), "trace"),
        inner=inner,
    )
    _matches(rebuilt, design)
    return rebuilt


def _matches(result: Trace, design: Design) -> None:
    """The trace's layers are the design's, in order (a forged reply cannot describe another model)."""
    if len(result.layers) > len(design.layers):
        raise ResultError("trace: more layers than the design has")
    for position, (layer, spec) in enumerate(zip(result.layers, design.layers, strict=False)):
        if (layer.index, layer.id, layer.type) != (position, spec.id, spec.type):
            raise ResultError(f"layers[{position}]: not the design's layer {spec.id} ({spec.type})")
    entries = {located.path: located for located in walk(design.layers)}
    for position, layer in enumerate(result.inner):
        located = entries.get(design_path(layer.path))
        if located is None or (located.index, located.entry.id, located.entry.type) != (
            layer.index,
            layer.id,
            layer.type,
        ):
            raise ResultError(f"inner[{position}]: not an entry of the design's blocks")
    error = result.error
    if error is not None:
        located = entries.get(design_path(error.path)) if error.path else None
        spec = located.entry if located else design.layers[error.index] if error.index < len(design.layers) else None
        index = located.index if located else error.index
        if spec is None or (index, error.layer_id, error.layer_type) != (error.index, spec.id, spec.type):
            raise ResultError("trace error: not one of the design's layers")


def job_result(obj: Any, design: Design) -> dict[str, Any]:
    """A job's result dict, rebuilt: one of trace, problems, design_error, timeout or internal, plus output."""
    fresh_budget()
    if type(obj) is not dict:
        raise ResultError("the result is not a dict")
    result: dict[str, Any] = {"output": text(obj.get("output", ""), "output", MAX_OUTPUT_TEXT)}
    if "trace" in obj:
        failure = obj.get("failure")
        result["trace"] = trace(obj["trace"], design)
        result["failure"] = None if failure is None else code_problem(failure, "failure")
    elif "problems" in obj:
        result["problems"] = tuple(code_problem(p) for p in items(obj["problems"], "problems", limit=64))
    elif "design_error" in obj:
        result["design_error"] = text(obj["design_error"], "design_error")
    elif "values" in obj:
        result["values"] = tree(obj["values"], "values")
    elif "raw" in obj:
        result["raw"] = tuple(text(line, "raw") for line in items(obj["raw"], "raw"))
    elif "timeout" in obj:
        timeout = items(obj["timeout"], "timeout", limit=2)
        layer, line = ((*timeout, None, None))[:2]
        result["timeout"] = (
            None if layer is None else text(layer, "timeout", 200),
            None if line is None else whole(line, "timeout"),
        )
    else:
        result["internal"] = text(obj.get("internal", "no result"), "internal", 2_000)
    return result


def progress(obj: Any) -> tuple[str, str]:
    """A PROGRESS payload: (layer, phase)."""
    fresh_budget()
    pair = items(obj, "progress", limit=2)
    if len(pair) != 2:
        raise ResultError("progress: expected (layer, phase)")
    return text(pair[0], "progress", 200), text(pair[1], "progress", 200)
