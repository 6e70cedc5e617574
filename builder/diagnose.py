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
from builder.design import LayerSpec

Shape = tuple[int, ...]


class FixKind(StrEnum):
    """Edits a fix can make to a design."""

    INSERT_FLATTEN = "insert-flatten"  # insert Flatten before the layer (and optionally set `param`)
    SET_PARAM = "set-param"  # set the layer's `param` to `value`
    USE_LAZY = "use-lazy"  # replace the layer by its Lazy variant, dropping the inferred argument
    SET_INPUT_DTYPE = "set-input-dtype"  # set the design's input dtype to `value`


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
    stage: str = "forward"  # "build" when the constructor refused the arguments
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"layer {self.index + 1} {self.layer_type}({args})"

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
        }  # fmt: skip


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
    check = SIZE_CHECKS.get(spec.type)
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
TOKEN_LAYERS = ("Embedding", "EmbeddingBag")


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
