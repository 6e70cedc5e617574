"""Turn a failing layer into an explanation: which layer, what it expected, what it got, and the fix.

The diagnosis reads the layer's own parameters and its input shape rather than torch's message, which differs
between devices (on meta a Linear mismatch reads "a and b must have same reduction dim"). torch's message is kept
for anything not recognised.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import torch

from builder.catalog import catalog
from builder.design import BlockSpec, LayerSpec, Merge, ResidualBlock, block_dim, block_merge
from builder.tensor_ops import TOKEN_INPUTS

Shape = tuple[int, ...]


class FixKind(StrEnum):
    """Edits a fix can make to a design."""

    INSERT_FLATTEN = "insert-flatten"  # insert Flatten before the layer (and optionally set `param`)
    SET_PARAM = "set-param"  # set the layer's `param` to `value`
    USE_LAZY = "use-lazy"  # replace the layer by its Lazy variant, dropping the inferred argument
    SET_INPUT_DTYPE = "set-input-dtype"  # set the design's input dtype to `value`
    ADD_PROJECTION = "add-projection"  # make the Residual's shortcut the layers in `value` (a projection)
    SET_MERGE = "set-merge"  # set the block's merge to `value`


@dataclass(frozen=True)
class Fix:
    """A suggested edit; ``certain`` fixes are offered as one click."""

    kind: FixKind
    description: str
    param: str | None = None
    value: Any = None
    certain: bool = True


@dataclass(frozen=True)
class LayerError:
    """A failure attributed to one layer of the stack."""

    index: int
    layer_id: str
    layer_type: str
    params: dict[str, Any]
    problem: str
    fixes: tuple[Fix, ...] = ()
    torch_message: str = ""
    stage: str = "forward"  # "build" when the constructor refused the arguments, "merge" for a block's merge
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = ""  # inside a block: where in the trace ("layer-5/body/2", copies "#2"); "" at the top level

    @property
    def where(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        place = "".join(f", {part}" for part in path_words(self.path))
        return f"layer {self.index + 1}{place} {self.layer_type}({args})"

    @property
    def hint(self) -> str:
        """The fixes as one sentence."""
        if not self.fixes:
            return ""
        return "Fix: " + "; or ".join(fix.description for fix in self.fixes) + "."

    @property
    def message(self) -> str:
        """The whole explanation, one paragraph."""
        return " ".join(part for part in (f"{self.where}: {self.problem}.", self.hint) if part)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "layer_id": self.layer_id,
            "type": self.layer_type,
            "message": self.message,
            "problem": self.problem,
            "fixes": [{"kind": str(f.kind), "description": f.description, "param": f.param, "value": f.value,
                       "certain": f.certain} for f in self.fixes],
            "torch_message": self.torch_message,
        } | ({"path": self.path} if self.path else {})  # fmt: skip


def path_words(path: str) -> list[str]:
    """A trace path as a message reads it below "layer 5": ``layer-5#2/body/2`` -> ["copy 2", "body[2]"]."""
    head, *rest = path.split("/") if path else [""]
    words = [f"copy {head.partition('#')[2]}"] if "#" in head else []
    while len(rest) >= 2:
        field_name, rest = rest[0], rest[1:]
        branch = ""
        if field_name == "branches" and len(rest) >= 2:
            branch, rest = f"[{rest[0]}]", rest[1:]
        position, _, copy = rest[0].partition("#")
        words.append(f"{field_name}{branch}[{position}]" + (f" copy {copy}" if copy else ""))
        rest = rest[1:]
    return words


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _lazy_name(layer_type: str) -> str | None:
    name = f"Lazy{layer_type}"
    return name if name in catalog() else None


def _set_or_lazy(spec: LayerSpec, param: str, value: Any) -> tuple[Fix, ...]:
    fixes = [Fix(FixKind.SET_PARAM, f"set {param}={value}", param, value)]
    lazy = _lazy_name(spec.type)
    if lazy:
        fixes.append(Fix(FixKind.USE_LAZY, f"use {lazy}, which infers {param}", param, lazy, certain=False))
    return tuple(fixes)


def _spatial_dims(layer_type: str) -> int | None:
    match = re.search(r"([123])d$", layer_type)
    return int(match.group(1)) if match else None


def _linear(spec: LayerSpec, shape: Shape) -> tuple[str, tuple[Fix, ...]] | None:
    want = spec.params.get("in_features")
    if want is None or shape[-1] == want:
        return None
    if len(shape) <= 2:
        problem = f"expected in_features={want} but got input {_fmt(shape)} with {shape[-1]} features"
        return problem, _set_or_lazy(spec, "in_features", shape[-1])
    flat = math.prod(shape[1:])
    problem = (
        f"expected in_features={want} in the last dimension but got a {len(shape)}-D input {_fmt(shape)}; "
        f"a Linear layer mixes only the last dimension"
    )
    flatten = Fix(FixKind.INSERT_FLATTEN, f"insert Flatten before it and set in_features={flat}", "in_features", flat)
    if flat == want:
        return problem, (Fix(FixKind.INSERT_FLATTEN, "insert Flatten before it"),)
    last = Fix(FixKind.SET_PARAM, f"set in_features={shape[-1]} to act on each position", "in_features", shape[-1])
    # A 3-D input is usually a sequence (N, L, features); a 4-D or 5-D one, feature maps to flatten.
    first, second = (last, flatten) if len(shape) == 3 else (flatten, last)
    return problem, (first, replace(second, certain=False))


def _conv(spec: LayerSpec, shape: Shape, error: Exception) -> tuple[str, tuple[Fix, ...]] | None:
    dims = _spatial_dims(spec.type) or 2
    names = ("L",) if dims == 1 else ("H", "W") if dims == 2 else ("D", "H", "W")
    if len(shape) not in (dims + 1, dims + 2):
        expected = f"(N, C, {', '.join(names)})"
        problem = f"expected a {dims + 2}-D input {expected} but got {_fmt(shape)}"
        if len(shape) == 2 and dims == 2:
            problem += "; set the input shape to an image shape such as (N, 1, 28, 28), or insert Unflatten"
        return problem, ()
    channels = shape[1] if len(shape) == dims + 2 else shape[0]
    want = spec.params.get("in_channels")
    if want is not None and channels != want:
        problem = f"expected {want} input channels but got input {_fmt(shape)} with {channels} channels"
        return problem, _set_or_lazy(spec, "in_channels", channels)
    if "greater than actual input size" in str(error) or "too small" in str(error):
        spatial = shape[-dims:]
        kernel = spec.params.get("kernel_size")
        problem = (
            f"kernel_size {kernel} is larger than the input's spatial size {_fmt(spatial)} at this layer "
            f"(input {_fmt(shape)}); reduce kernel_size, add padding, or remove a pooling layer before it"
        )
        return problem, ()
    return None


# Input ranks torch accepts for the normalization layers that check them (batched last).
NORM_RANKS: dict[str, tuple[int, ...]] = {
    "BatchNorm1d": (2, 3), "BatchNorm2d": (4,), "BatchNorm3d": (5,),
    "InstanceNorm1d": (2, 3), "InstanceNorm2d": (3, 4), "InstanceNorm3d": (4, 5),
}  # fmt: skip


def _norm_rank(spec: LayerSpec, shape: Shape) -> tuple[str, tuple[Fix, ...]] | None:
    """A norm layer of the wrong dimensionality: setting its size would not help, its 1d/2d/3d variant would."""
    ranks = NORM_RANKS.get(spec.type)
    if ranks is None or len(shape) in ranks:
        return None
    family = spec.type[:-2]
    fitting = [f"{family}{d}d" for d in (1, 2, 3) if len(shape) in NORM_RANKS[f"{family}{d}d"]]
    expected = " or ".join(f"{rank}-D" for rank in ranks)
    problem = f"expected a {expected} input but got a {len(shape)}-D input {_fmt(shape)}"
    return problem + (f"; use {fitting[0]} for this input" if fitting else ""), ()


def _norm(spec: LayerSpec, shape: Shape) -> tuple[str, tuple[Fix, ...]] | None:
    wrong_rank = _norm_rank(spec, shape)
    if wrong_rank is not None:
        return wrong_rank
    param = "num_channels" if spec.type == "GroupNorm" else "num_features"
    want = spec.params.get(param)
    if want is None or len(shape) < 2:
        return None
    if shape[1] != want:
        problem = f"expected {param}={want} channels (dimension 1) but got input {_fmt(shape)} with {shape[1]}"
        return problem, _set_or_lazy(spec, param, shape[1])
    return None


def _layer_norm(spec: LayerSpec, shape: Shape) -> tuple[str, tuple[Fix, ...]] | None:
    want = spec.params.get("normalized_shape")
    want = [want] if isinstance(want, int) else list(want or [])
    tail = list(shape[-len(want) :]) if want and len(want) <= len(shape) else None
    if tail is None or tail == want:
        return None
    problem = f"normalized_shape={want} must match the last dimensions of the input {_fmt(shape)}, here {tail}"
    return problem, (Fix(FixKind.SET_PARAM, f"set normalized_shape={tail}", "normalized_shape", tail),)


def _last_dim(param: str):
    def check(spec: LayerSpec, shape: Shape) -> tuple[str, tuple[Fix, ...]] | None:
        want = spec.params.get(param)
        if want is None or shape[-1] == want:
            return None
        problem = f"expected {param}={want} features in the last dimension but got input {_fmt(shape)}"
        return problem, (Fix(FixKind.SET_PARAM, f"set {param}={shape[-1]}", param, shape[-1]),)

    return check


SIZE_CHECKS = {
    "Linear": _linear,
    "BatchNorm1d": _norm, "BatchNorm2d": _norm, "BatchNorm3d": _norm,
    "InstanceNorm1d": _norm, "InstanceNorm2d": _norm, "InstanceNorm3d": _norm, "GroupNorm": _norm,
    "LayerNorm": _layer_norm, "RMSNorm": _layer_norm,
    "LSTM": _last_dim("input_size"), "GRU": _last_dim("input_size"), "RNN": _last_dim("input_size"),
    "LSTMCell": _last_dim("input_size"), "GRUCell": _last_dim("input_size"), "RNNCell": _last_dim("input_size"),
    "MultiheadAttention": _last_dim("embed_dim"),
    "Transformer": _last_dim("d_model"), "TransformerEncoder": _last_dim("d_model"),
    "TransformerDecoder": _last_dim("d_model"), "TransformerEncoderLayer": _last_dim("d_model"),
    "TransformerDecoderLayer": _last_dim("d_model"),
}  # fmt: skip


def _known_problem(spec: LayerSpec, shape: Shape, error: Exception) -> tuple[str, tuple[Fix, ...]] | None:
    if spec.type.startswith(("Conv", "LazyConv")):
        return _conv(spec, shape, error)
    check = SIZE_CHECKS.get(spec.type) or TENSOR_CHECKS.get(spec.type)
    found = check(spec, shape) if check else None
    if found is None and "too small" in str(error):
        problem = (
            f"the input {_fmt(shape)} is too small for this layer: its output would be empty; "
            f"reduce kernel_size or remove an earlier pooling layer"
        )
        found = problem, ()
    return found


def diagnose_run(index: int, spec: LayerSpec, shape: Shape, dtype: torch.dtype, error: Exception) -> LayerError:
    """Explain a forward-pass failure of layer ``index`` on an input of ``shape``."""
    torch_message = _first_line(error)
    found = _known_problem(spec, shape, error)
    if found is None:
        found = f"failed on input {_fmt(shape)} ({str(dtype).removeprefix('torch.')}): {torch_message}", ()
    problem, fixes = found
    return LayerError(index, spec.id, spec.type, dict(spec.params), problem, fixes, torch_message)


def diagnose_build(index: int, spec: LayerSpec, error: Exception) -> LayerError:
    """Explain a constructor failure (arguments torch refuses together)."""
    message = _first_line(error)
    problem = f"torch cannot build this layer with these arguments: {message}"
    return LayerError(index, spec.id, spec.type, dict(spec.params), problem, (), message, stage="build")


INTEGER_DTYPES = (torch.int64, torch.int32)
TOKEN_LAYERS = ("Embedding", "EmbeddingBag", *TOKEN_INPUTS)


def precheck(index: int, spec: LayerSpec, shape: Shape, dtype: torch.dtype, params: tuple) -> LayerError | None:
    """Catch dtype mistakes the meta device lets through (it does not check dtypes as the CPU does)."""
    if spec.type in TOKEN_LAYERS and dtype not in INTEGER_DTYPES:
        problem = f"expected integer token ids but got {str(dtype).removeprefix('torch.')} input {_fmt(shape)}"
        fixes = (Fix(FixKind.SET_INPUT_DTYPE, "set the input dtype to int64 (token ids)", None, "int64"),)
        return LayerError(index, spec.id, spec.type, dict(spec.params), problem, fixes if index == 0 else ())
    if dtype in INTEGER_DTYPES and spec.type not in TOKEN_LAYERS and params:
        problem = (
            f"expected floating-point input but got int64 token ids {_fmt(shape)}; "
            f"an Embedding before it turns token ids into vectors"
        )
        fixes = (Fix(FixKind.SET_INPUT_DTYPE, "set the input dtype to float32", None, "float32", index == 0),)
        return LayerError(index, spec.id, spec.type, dict(spec.params), problem, fixes)
    return None


# ------------------------------------------------------------------------------------------------ merges


@dataclass(frozen=True)
class MergeInput:
    """One stack's output at a block's merge: its title ("body", "branch 2") and shape, and what its layers did."""

    title: str
    shape: Shape
    steps: tuple[tuple[str, Shape | None, Shape | None], ...] = ()  # (type, input shape, output shape) per entry

    @property
    def identity(self) -> bool:
        return not self.steps


def projection(x: Shape, out: Shape) -> tuple[list[dict[str, Any]], str] | None:
    """Layers that take ``x`` to ``out``'s shape as a body that changed channels or stride does, and their text.

    Feature maps (N, C, ...) get a 1x1 convolution with the stride plus batch norm (torchvision's downsample);
    features in the last dimension get a Linear. None when no such projection fits.
    """
    if len(x) != len(out) or x[0] != out[0] or len(x) < 2:
        return None
    if x[1:-1] == out[1:-1] and len(x) in (2, 3):
        layer = {"type": "Linear", "params": {"in_features": x[-1], "out_features": out[-1]}}
        return [layer], f"Linear({x[-1]}, {out[-1]})"
    dims = len(x) - 2
    stride = _stride(x[2:], out[2:]) if dims in (1, 2, 3) else None
    if stride is None:
        return None
    conv: dict[str, Any] = {"in_channels": x[1], "out_channels": out[1], "kernel_size": 1}
    conv |= {"stride": stride} if stride != 1 else {}
    conv["bias"] = False  # the batch norm after it has the bias
    layers = [
        {"type": f"Conv{dims}d", "params": conv},
        {"type": f"BatchNorm{dims}d", "params": {"num_features": out[1]}},
    ]
    stride_text = f", stride={stride}" if stride != 1 else ""
    text = f"Conv{dims}d({x[1]}, {out[1]}, kernel_size=1{stride_text}, bias=False) + BatchNorm{dims}d({out[1]})"
    return layers, text


def _stride(sizes: Shape, wanted: Shape) -> int | None:
    """The stride of a 1x1 convolution without padding that turns ``sizes`` into ``wanted``, or None."""
    for stride in range(1, max(sizes, default=1) + 1):
        if all((size - 1) // stride + 1 == want for size, want in zip(sizes, wanted, strict=True)):
            return stride
    return None


def _broadcasts(a: Shape, b: Shape) -> bool:
    try:
        torch.broadcast_shapes(a, b)
    except RuntimeError:
        return False
    return True


def _concat_fits(shapes: list[Shape], dim: int) -> bool:
    """Whether the shapes concatenate along ``dim``: one rank, equal sizes in every other dimension."""
    rank = len(shapes[0])
    if any(len(shape) != rank for shape in shapes) or not -rank <= dim < rank:
        return False
    keep = [d for d in range(rank) if d != dim % rank]
    return all(shape[d] == shapes[0][d] for shape in shapes for d in keep)


def _changes(x: Shape, out: Shape) -> str:
    """How a body changed a feature map, for the message: ``channels 64 -> 128, stride 2``."""
    parts = []
    if len(x) == len(out) >= 3 and x[1] != out[1]:
        parts.append(f"channels {x[1]} -> {out[1]}")
    if len(x) == len(out) >= 3 and x[2:] != out[2:]:
        stride = _stride(x[2:], out[2:])
        parts.append(f"stride {stride}" if stride else f"size {_fmt(x[2:])} -> {_fmt(out[2:])}")
    if len(x) == len(out) == 2 and x[1] != out[1]:
        parts.append(f"features {x[1]} -> {out[1]}")
    return ", ".join(parts) or f"shape {_fmt(x)} -> {_fmt(out)}"


def _merge_fixes(block: BlockSpec, x: Shape, inputs: list[MergeInput]) -> tuple[Fix, ...]:
    """A projection shortcut for a Residual whose body changed the shape; concat when the outputs allow it."""
    fixes = []
    body = inputs[-1]
    found = projection(x, body.shape) if isinstance(block, ResidualBlock) else None
    if found is not None:
        layers, text = found
        identity = inputs[0].identity
        verb = "add a projection shortcut" if identity else "replace the shortcut by a projection"
        fixes.append(Fix(FixKind.ADD_PROJECTION, f"{verb}: {text}", "shortcut", layers, certain=identity))
    if _concat_fits([i.shape for i in inputs], 1):
        fixes.append(Fix(FixKind.SET_MERGE, "merge by concat (along the channels, dim=1)", "merge", "concat"))
    return tuple(fixes)


def _elementwise_problem(block: BlockSpec, merge: Merge, x: Shape, inputs: list[MergeInput]) -> str | None:
    first = inputs[0]
    other = next((i for i in inputs[1:] if not _broadcasts(first.shape, i.shape)), None)
    if other is None:
        return None
    verb = "add" if merge is Merge.ADD else "multiply"
    rule = f"merge '{merge}' needs shapes that broadcast (equal sizes, or 1)"
    if isinstance(block, ResidualBlock) and first.identity:
        return (
            f"cannot {verb} the body's output {_fmt(other.shape)} and the identity shortcut's {_fmt(first.shape)}: "
            f"the body changed the input ({_changes(x, other.shape)}); {rule}"
        )
    shapes = f"{_named(other.title)}'s output {_fmt(other.shape)} and {_named(first.title)}'s {_fmt(first.shape)}"
    return f"cannot {verb} {shapes}; {rule}"


def _named(title: str) -> str:
    """A stack as a sentence names it: "the body", "branch 2"."""
    return f"the {title}" if title in ("body", "shortcut") else title


def _changed_at(entry: MergeInput, axis: int) -> str:
    """Where in a stack dimension ``axis`` changed: ``at its layer 2 (MaxPool2d: 28 -> 26)``."""
    for position, (layer_type, before, after) in enumerate(entry.steps):
        if before and after and len(before) > axis and len(after) > axis and before[axis] != after[axis]:
            return f" at its layer {position + 1} ({layer_type}: {before[axis]} -> {after[axis]})"
    return ""


def _concat_problem(dim: int, x: Shape, inputs: list[MergeInput]) -> str | None:
    first = inputs[0]
    other = next((i for i in inputs[1:] if len(i.shape) != len(first.shape)), None)
    if other is not None:
        return (
            f"{other.title} gives a {len(other.shape)}-D output {_fmt(other.shape)} but {first.title} a "
            f"{len(first.shape)}-D one {_fmt(first.shape)}; concat needs outputs of one rank"
        )
    rank = len(first.shape)
    if not -rank <= dim < rank:
        outputs = f"the {rank}-D outputs {_fmt(first.shape)}"
        return f"dim={dim} is out of range for {outputs}; use a dim from {-rank} to {rank - 1}"
    for axis in (d for d in range(rank) if d != dim % rank):
        sizes = [i.shape[axis] for i in inputs]
        if len(set(sizes)) == 1:
            continue
        keep = x[axis] if len(x) == rank and x[axis] in sizes else sizes[0]
        changed = next(i for i in inputs if i.shape[axis] != keep)
        kept = next(i for i in inputs if i.shape[axis] == keep)
        return (
            f"concat along dim={dim} needs every other dimension equal, but {changed.title} gives "
            f"{_fmt(changed.shape)} and {kept.title} {_fmt(kept.shape)}: {changed.title} changed dimension {axis} "
            f"to {changed.shape[axis]}{_changed_at(changed, axis)}; keep it at {keep} (padding, stride or kernel size)"
        )
    return None


def diagnose_merge(
    index: int, block: BlockSpec, path: str, x: Shape, inputs: list[MergeInput], error: Exception
) -> LayerError:
    """Explain a Residual's or Parallel's merge that does not fit: both shapes, the merge, the dim and the fix.

    Args:
        index: the position of the top-level entry the block belongs to.
        block: the block; ``path`` is where its copy ran (``layer-5#2``).
        x: the block's input shape.
        inputs: what each stack gave, in merge order (a Residual's shortcut first, then its body).
        error: what torch raised.
    """
    merge, dim = block_merge(block), block_dim(block)
    params: dict[str, Any] = {"merge": str(merge)} | ({"dim": dim} if merge is Merge.CONCAT else {})
    if merge is Merge.CONCAT:
        problem, fixes = _concat_problem(dim, x, inputs), ()
    else:
        problem, fixes = _elementwise_problem(block, merge, x, inputs), _merge_fixes(block, x, inputs)
    torch_message = _first_line(error)
    if problem is None:
        shapes = ", ".join(f"{i.title} {_fmt(i.shape)}" for i in inputs)
        problem = f"cannot merge by {merge} the outputs {shapes}: {torch_message}"
    return LayerError(index, block.id, block.type, params, problem, fixes, torch_message, "merge", path=path)


# Last, because the tensor ops' checks build the Fix defined above; imported at load time, never while a job runs
# (the sandbox refuses imports then).
from builder.tensor_checks import TENSOR_CHECKS  # noqa: E402
