"""Real values: the design built on the CPU with fresh weights, and a real input fed through the whole stack.

The meta device gives shapes only. Where a lesson is about values (D2L's ``CenteredLayer`` turns
``torch.tensor([1.0, 2, 3, 4, 5])`` into ``[-2, -1, 0, 1, 2]``; ``MyLinear``'s outputs after its ReLU are never
negative), ``real_values`` runs the numbers and returns, per layer, a few output values with their mean and std
and a few values of each parameter.

The pipeline: the input (``make_input``: random of the design's shape, or typed values read with ``ast``, never
run) -> a meta-device pass of the design on that input (shapes, and the sizes that decide whether running it for
real is affordable) -> the CPU run, layer by layer, under ``torch.no_grad()`` with a seeded generator -> a
:class:`ValueRun` of plain data (numbers, short tuples, text), which ``to_dict``/``from_dict`` carry across a
process boundary. Custom layers run only where the caller put their classes: ``real_values`` takes them as an
argument, as ``infer_shapes`` does, so the sandbox can run it in its job process.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch
from torch import nn

from builder.adapters import call_layer
from builder.blocks.merge import merge_tensors
from builder.catalog import call_style
from builder.design import (
    BlockSpec,
    Design,
    DesignError,
    DType,
    Entry,
    InputSpec,
    ResidualBlock,
    block_dim,
    block_merge,
    is_block,
    is_shared,
)
from builder.inference import infer_shapes
from builder.layer_run import TORCH_DTYPES, build_layer, inferred_sizes, token_range
from builder.trace import Trace

Shape = tuple[int, ...]

# What a real run on the server's CPU may cost; beyond these the run is refused with the reason.
MAX_INPUT_VALUES = 1_000_000
MAX_PARAMS = 50_000_000  # 200 MB of float32 weights
MAX_OUTPUT_VALUES = 16_000_000  # any one layer's output (64 MB as float32)
MAX_FLOPS = 20_000_000_000  # a few seconds on two cores
MAX_TYPED_CHARS = 20_000
SHOWN = 8  # values shown per tensor
MAX_TENSORS = 64  # parameter tensors summarised per layer (a Transformer has dozens)
ABOUT_ZERO = 1e-5  # a mean this small, relative to the values' size, reads "mean ≈ 0"
DTYPES_OF: dict[torch.dtype, DType] = {dtype: name for name, dtype in TORCH_DTYPES.items()}
EXPLANATION = (
    "The dummy forward pass runs on PyTorch's meta device: its tensors have shapes but no values. "
    "Run with real values builds the same model on the CPU, with freshly initialized weights, and feeds it real "
    "numbers, so you can see what each layer does to them. Layers run in evaluation mode, as in the dummy pass: "
    "Dropout passes values through and BatchNorm uses its running statistics."
)


class InputKind(StrEnum):
    """Where the real input comes from."""

    RANDN = "random normal (torch.randn)"
    RAND = "random uniform in [0, 1) (torch.rand)"
    TYPED = "typed values"


@dataclass(frozen=True)
class ValueInput:
    """The real input, as plain data: random of ``shape``, or the typed ``text``; ``seed`` also seeds the weights."""

    kind: InputKind = InputKind.RANDN
    shape: Shape = (2, 20)
    dtype: DType = DType.FLOAT32
    text: str = ""
    seed: int = 0


# ---------------------------------------------------------------- the input


def _leaves(value: Any, budget: list[int]) -> None:
    """Check a typed literal holds only numbers (no text, no booleans), and not too many of them."""
    if isinstance(value, list | tuple):
        for item in value:
            _leaves(item, budget)
        return
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"at most {MAX_INPUT_VALUES:,} values can be typed; choose a random input instead")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number; type numbers only, such as [1.0, 2, 3]")


def _literal_node(text: str) -> ast.expr:
    """The literal inside ``torch.tensor(...)`` (or the text itself)."""
    tree = ast.parse(text.strip(), mode="eval").body
    if isinstance(tree, ast.Call):
        func = ast.unparse(tree.func)
        if func not in ("torch.tensor", "tensor") or len(tree.args) != 1 or tree.keywords:
            raise ValueError("type a list of numbers such as [1.0, 2, 3], or torch.tensor([1.0, 2, 3])")
        return tree.args[0]
    return tree


def parse_values(text: str, dtype: DType = DType.FLOAT32) -> torch.Tensor:
    """Typed values as a tensor: ``torch.tensor([1.0, 2, 3, 4, 5])``, ``[[1, 2], [3, 4]]`` or ``1, 2, 3``.

    The text is read with ``ast`` as a literal, never run.

    Raises:
        ValueError: the text is not a list of numbers (the message says what to type instead).
    """
    if len(text) > MAX_TYPED_CHARS:
        raise ValueError(f"at most {MAX_TYPED_CHARS:,} characters can be typed; choose a random input instead")
    if not text.strip():
        raise ValueError("type the input's values, such as torch.tensor([1.0, 2, 3, 4, 5])")
    try:
        value = ast.literal_eval(_literal_node(text))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as error:
        if isinstance(error, ValueError) and str(error).startswith("type "):
            raise
        raise ValueError("cannot read that; type a list of numbers such as [1.0, 2, 3, 4, 5]") from None
    if not isinstance(value, list | tuple):
        raise ValueError("a single number has no dimensions to run a stack on; type a list such as [1.0, 2, 3]")
    _leaves(value, [MAX_INPUT_VALUES])
    if dtype is DType.INT64 and any(isinstance(v, float) for v in _flat(value)):
        raise ValueError("this design's input holds token ids (int64): type whole numbers, such as [[1, 5, 2]]")
    try:
        return torch.tensor(value, dtype=TORCH_DTYPES[dtype])
    except (ValueError, TypeError, RuntimeError):
        raise ValueError("every row must have the same length, as in [[1, 2, 3], [4, 5, 6]]") from None


def _flat(value: Any) -> list[Any]:
    return [leaf for item in value for leaf in _flat(item)] if isinstance(value, list | tuple) else [value]


def make_input(spec: ValueInput, high: int = 2) -> torch.Tensor:
    """The real input tensor; token ids (int64) are drawn below ``high`` (the smallest vocabulary).

    Raises:
        ValueError: typed values that cannot be read, or a random input above ``MAX_INPUT_VALUES``.
    """
    if spec.kind is InputKind.TYPED:
        return parse_values(spec.text, spec.dtype)
    count = math.prod(spec.shape)
    if count > MAX_INPUT_VALUES:
        raise ValueError(
            f"an input of shape {spec.shape} holds {count:,} values; real values run only up to "
            f"{MAX_INPUT_VALUES:,} input values: choose a smaller input shape (a batch of 1 or 2 is enough)"
        )
    generator = torch.Generator().manual_seed(spec.seed)
    if spec.dtype is DType.INT64:
        return torch.randint(0, max(1, high), spec.shape, generator=generator)
    make = torch.randn if spec.kind is InputKind.RANDN else torch.rand
    return make(spec.shape, generator=generator, dtype=TORCH_DTYPES[spec.dtype])


# ---------------------------------------------------------------- summaries: plain data


def format_value(value: float) -> str:
    """A value as a student reads it: ``-2.0``, ``0.1235``, ``-1.49e-09``, ``nan``."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e6:
        return f"{value:.1f}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class TensorSummary:
    """A tensor as a few numbers: its shape, its first values (row-major) and statistics of all of them."""

    shape: Shape
    count: int
    first: tuple[float, ...]
    mean: float
    std: float | None  # None for a single value (torch's unbiased std needs two)
    minimum: float
    maximum: float
    nonfinite: int = 0

    def preview(self) -> str:
        """``[-2.0, -1.0, 0.0, 1.0, 2.0]``, or the first values and how many there are in all."""
        values = ", ".join(format_value(v) for v in self.first)
        if self.count <= len(self.first):
            return f"[{values}]"
        return f"[{values}, ...] ({self.count:,} values)"

    def notes(self) -> tuple[str, ...]:
        """What a student checks by eye: no negative values, a mean of about zero, NaN or inf."""
        notes = []
        if self.nonfinite:
            notes.append(f"{self.nonfinite:,} NaN or infinite values")
        elif self.count:
            scale = max(abs(self.minimum), abs(self.maximum), 1e-12)
            if self.minimum >= 0:
                notes.append("all values >= 0")
            if abs(self.mean) <= ABOUT_ZERO * scale and self.count > 1:
                notes.append("mean ≈ 0")
        return tuple(notes)


def summarize(tensor: torch.Tensor, shown: int = SHOWN) -> TensorSummary:
    """A TensorSummary of any real tensor (integers and booleans are summarised as floats).

    Statistics are computed in the tensor's own floating dtype (a 26M-value weight takes milliseconds, where a
    float64 copy would take seconds), over its finite values when it holds NaN or infinity.
    """
    values = tensor.detach().reshape(-1)
    if not values.is_floating_point():
        values = values.to(torch.float64)
    count = values.numel()
    if count == 0:
        return TensorSummary(tuple(tensor.shape), 0, (), math.nan, None, math.nan, math.nan)
    finite = torch.isfinite(values)
    nonfinite = 0 if bool(finite.all()) else int((~finite).sum())
    stats = values[finite] if nonfinite and nonfinite < count else values
    low, high = torch.aminmax(stats)
    return TensorSummary(
        shape=tuple(tensor.shape),
        count=count,
        first=tuple(float(v) for v in values[:shown].tolist()),
        mean=float(values.mean(dtype=torch.float64)),
        std=float(values.std()) if count > 1 else None,
        minimum=float(low),
        maximum=float(high),
        nonfinite=nonfinite,
    )


@dataclass(frozen=True)
class ParamValues:
    """One parameter tensor of a layer: its name and its values in brief."""

    name: str
    values: TensorSummary


@dataclass(frozen=True)
class LayerValues:
    """What one layer did to real values."""

    index: int
    id: str
    type: str
    output: TensorSummary
    params: tuple[ParamValues, ...] = ()
    more_params: int = 0  # parameter tensors left out beyond MAX_TENSORS
    inferred: tuple[tuple[str, int], ...] = ()  # sizes a lazy layer inferred: (("in_features", 20),)
    path: str = ""  # inside a block: "layer-5/body/2" (copies "layer-5#2/..."), as in a trace; "" at the top


@dataclass(frozen=True)
class ValueRun:
    """The result of a real-values run: the input, each layer that ran, and why it stopped or was refused."""

    input: TensorSummary | None
    layers: tuple[LayerValues, ...] = ()
    problem: str = ""
    seed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problem

    def layer(self, layer_id: str) -> LayerValues | None:
        return next((layer for layer in self.layers if layer.id == layer_id), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, text), for JSON or a process boundary."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Any) -> ValueRun:
        """The run back from ``to_dict``'s data, every field checked; raises ValueError naming a bad field."""
        return _value_run(data)


# ---------------------------------------------------------------- the run


def size_problem(trace: Trace) -> str:
    """Why running this traced design on real values would cost too much, or "" when it is affordable."""
    params = trace.total_params
    records = (*trace.layers, *trace.inner)
    biggest = max((math.prod(t.output_shape) for t in records if t.output_shape), default=0)
    if params > MAX_PARAMS:
        return (
            f"this model has {params:,} parameters; real values run on the server's CPU only up to "
            f"{MAX_PARAMS:,} parameters. The shapes above come from the meta device, which costs nothing; for "
            "values, try a smaller model (fewer or narrower layers)"
        )
    if biggest > MAX_OUTPUT_VALUES:
        return (
            f"a layer's output would hold {biggest:,} values; real values run only up to {MAX_OUTPUT_VALUES:,} "
            "values per layer: use a smaller input shape (a batch of 1, smaller images)"
        )
    if trace.total_flops > MAX_FLOPS:
        return (
            f"the forward pass would take {trace.total_flops:,} FLOPs; real values run only up to "
            f"{MAX_FLOPS:,}: use a smaller input shape or a smaller model"
        )
    return ""


def _input_problem(x: torch.Tensor) -> str:
    if x.dtype not in DTYPES_OF:
        return f"the input's dtype {x.dtype} is not one a design takes (float32, float64 or int64)"
    if not 1 <= x.dim() <= 6:
        return f"the input has {x.dim()} dimensions; a design's input has 1 to 6"
    if x.numel() > MAX_INPUT_VALUES:
        return f"the input holds {x.numel():,} values; real values run only up to {MAX_INPUT_VALUES:,}"
    if x.numel() == 0:
        return "the input holds no values; every size must be at least 1"
    return ""


def _param_values(module: nn.Module) -> tuple[tuple[ParamValues, ...], int]:
    named = list(module.named_parameters())
    shown = tuple(ParamValues(name, summarize(p)) for name, p in named[:MAX_TENSORS])
    return shown, max(0, len(named) - MAX_TENSORS)


def real_values(design: Design, classes: Mapping[str, type[nn.Module]], x: torch.Tensor, seed: int = 0) -> ValueRun:
    """Run the design on the CPU with real values, layer by layer, and summarise every layer's output.

    Args:
        design: a validated design; its input shape and dtype are replaced by ``x``'s.
        classes: the classes of its custom layers (``{}`` for built-in designs). Custom code runs here: call this
            in-process only with built-in layers or trusted classes; the sandbox calls it in its job process.
        x: the real input, batch first (``make_input``).
        seed: seeds the weights' initialization, so a run can be repeated.

    Returns:
        A ValueRun. When the run is refused (too big) or a layer fails, ``problem`` says why and which layer, and
        the layers before it keep their values.
    """
    problem = _input_problem(x)
    if problem:
        return ValueRun(None, problem=problem, seed=seed)
    try:
        shaped = design.model_copy(update={"input": InputSpec(shape=tuple(x.shape), dtype=DTYPES_OF[x.dtype])})
        trace = infer_shapes(shaped, classes)
    except DesignError as error:
        return ValueRun(summarize(x), problem=str(error), seed=seed)
    if trace.error is not None:
        where = f"on an input of shape {tuple(x.shape)}"
        return ValueRun(summarize(x), problem=f"the forward pass fails {where}: {trace.error.message}", seed=seed)
    problem = size_problem(trace)
    if problem:
        return ValueRun(summarize(x), problem=problem, seed=seed)
    with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
        torch.manual_seed(seed)
        layers, problem = _run_layers(shaped, classes, x)
    return ValueRun(summarize(x), tuple(layers), problem, seed)


class _Failed(Exception):
    """A layer failed on real values: the message names it."""


@dataclass
class _Runner:
    """One real forward pass through a tree of entries (layers and blocks), recording every entry's values.

    It mirrors the meta-device tracer (``builder.inference``): a block runs each copy in a row, each of its stacks
    on the block's input, then merges them (a Residual's shortcut first); paths name the entries inside blocks.
    """

    design: Design
    classes: Mapping[str, type[nn.Module]]
    layers: list[LayerValues] = field(default_factory=list)
    modules: dict[str, nn.Module] = field(default_factory=dict)  # by path (a top-level layer's is its id): for Shared

    def entry(self, index: int, entry: Entry, x: torch.Tensor, path: str) -> torch.Tensor:
        if is_block(entry):
            return self.block(index, entry, x, path)
        inner = path if "/" in path else ""
        spec = next(e for e in self.design.layers if e.id == entry.of) if is_shared(entry) else entry
        try:
            module = self.modules.get(spec.id) if spec is not entry else None
            if module is None:
                module = self.modules[path] = build_layer(spec, self.classes, "cpu", self.design.input.dtype)
            with torch.no_grad():
                out = call_layer(module, call_style(spec.type, spec.params), x)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"returned {type(out).__name__}, but a layer in a stack must return one tensor")
        except Exception as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            where = f"layer {index + 1}" + (f", {inner}" if inner else "")
            raise _Failed(f"{where} ({entry.type}) failed on real values: {reason}") from None
        params, more = _param_values(module)
        inferred = tuple((k, v) for k, v in inferred_sizes(entry, module).items() if type(v) is int)
        self.layers.append(LayerValues(index, entry.id, entry.type, summarize(out), params, more, inferred, inner))
        return out

    def block(self, index: int, block: BlockSpec, x: torch.Tensor, path: str) -> torch.Tensor:
        """Every copy of the block in a row; its row comes before its layers' and shows its output."""
        at = len(self.layers)
        copies = [path] if block.repeat == 1 else [f"{path}#{copy}" for copy in range(1, block.repeat + 1)]
        for copy_path in copies:
            x = self.copy(index, block, x, copy_path)
        inner = path if "/" in path else ""
        self.layers.insert(at, LayerValues(index, block.id, block.type, summarize(x), path=inner))
        return x

    def copy(self, index: int, block: BlockSpec, x: torch.Tensor, path: str) -> torch.Tensor:
        outputs = []
        for stack in block.stacks():
            y = x
            for position, entry in enumerate(stack.entries):
                y = self.entry(index, entry, y, f"{path}/{stack.key}/{position}")
            outputs.append(y)
        merge = block_merge(block)
        if merge is None:
            return outputs[0]
        if isinstance(block, ResidualBlock):  # merge(shortcut(x), body(x)): the shortcut comes first
            outputs = outputs[::-1]
        with torch.no_grad():
            return merge_tensors(merge, outputs, block_dim(block))


def _run_layers(
    design: Design, classes: Mapping[str, type[nn.Module]], x: torch.Tensor
) -> tuple[list[LayerValues], str]:
    """Build each entry on the CPU and run it on the previous output; stop at the first failure, naming it."""
    runner = _Runner(design, classes)
    try:
        for index, entry in enumerate(design.layers):
            x = runner.entry(index, entry, x, entry.id)
    except _Failed as failure:
        return runner.layers, str(failure)
    return runner.layers, ""


def run_values(design: Design, value_input: ValueInput, session: str | None = None) -> ValueRun:
    """Real values for a design (the app's and the CLI's entry point).

    Built-in layers run in this process; a design with custom layers runs in the sandbox
    (``builder.sandbox.values_in_worker``), which calls ``real_values`` in its job process.
    """
    if design.custom_layers:
        from builder import sandbox

        return sandbox.values_in_worker(design, value_input, session=session)
    try:
        x = make_input(value_input, token_range(design))
    except ValueError as error:
        return ValueRun(None, problem=str(error), seed=value_input.seed)
    return real_values(design, {}, x, value_input.seed)


# ---------------------------------------------------------------- plain data both ways


def _plain(value: Any) -> Any:
    if isinstance(value, TensorSummary | ParamValues | LayerValues | ValueRun):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


MAX_TEXT = 2_000
MAX_LAYERS = 100_000
MAX_DIMS = 16
MAX_COUNT = 2**62


def _field(data: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(data, dict) or name not in data:
        raise ValueError(f"value run: missing field {name!r}")
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if type(value) not in kinds:
        raise ValueError(f"value run: field {name!r} is a {type(value).__name__}")
    if type(value) is str and len(value) > MAX_TEXT:
        raise ValueError(f"value run: field {name!r} is too long")
    return value


def _count(data: Any, name: str) -> int:
    value = _field(data, name, int)
    if not 0 <= value <= MAX_COUNT:
        raise ValueError(f"value run: field {name!r} is out of range")
    return value


def _numbers(data: Any, name: str, kind: type, limit: int) -> tuple:
    items = _field(data, name, list)
    if len(items) > limit or any(type(item) is not kind for item in items):
        raise ValueError(f"value run: field {name!r} must be at most {limit} {kind.__name__}s")
    if kind is int and any(not 0 <= item <= MAX_COUNT for item in items):
        raise ValueError(f"value run: field {name!r} is out of range")
    return tuple(items)


def _summary(data: Any) -> TensorSummary:
    std = _field(data, "std", (float, type(None)))
    return TensorSummary(
        shape=_numbers(data, "shape", int, MAX_DIMS),
        count=_count(data, "count"),
        first=_numbers(data, "first", float, SHOWN),
        mean=_field(data, "mean", float),
        std=std,
        minimum=_field(data, "minimum", float),
        maximum=_field(data, "maximum", float),
        nonfinite=_count(data, "nonfinite"),
    )


def _layer(data: Any) -> LayerValues:
    params = _field(data, "params", list)
    if len(params) > MAX_TENSORS:
        raise ValueError("value run: too many parameter tensors")
    return LayerValues(
        index=_count(data, "index"),
        id=_field(data, "id", str),
        type=_field(data, "type", str),
        output=_summary(_field(data, "output", dict)),
        params=tuple(ParamValues(_field(p, "name", str), _summary(_field(p, "values", dict))) for p in params),
        more_params=_count(data, "more_params"),
        inferred=tuple(_pair(item) for item in _numbers(data, "inferred", list, MAX_DIMS)),
        path=_field(data, "path", str),
    )


def _pair(item: list[Any]) -> tuple[str, int]:
    if len(item) != 2 or type(item[0]) is not str or type(item[1]) is not int or len(item[0]) > MAX_TEXT:
        raise ValueError("value run: field 'inferred' holds (name, size) pairs")
    if not 0 <= item[1] <= MAX_COUNT:
        raise ValueError("value run: field 'inferred' is out of range")
    return item[0], item[1]


def _value_run(data: Any) -> ValueRun:
    layers = _field(data, "layers", list)
    if len(layers) > MAX_LAYERS:
        raise ValueError("value run: too many layers")
    given = _field(data, "input", (dict, type(None)))
    return ValueRun(
        input=None if given is None else _summary(given),
        layers=tuple(_layer(layer) for layer in layers),
        problem=_field(data, "problem", str),
        seed=_count(data, "seed"),
    )
