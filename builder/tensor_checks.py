"""Why a tensor op failed on its input, in the builder's words: "Select index 5 out of range for dim 1 of size 3".

Each check reads the layer's arguments and its input shape (torch's message differs between devices) and returns
the problem and its fixes, or None when it does not recognise the failure (torch's message is shown then).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from builder.design import LayerSpec
from builder.diagnose import Fix, FixKind
from builder.tensor_ops import AUTO

Shape = tuple[int, ...]
Found = tuple[str, tuple[Fix, ...]] | None


def _fmt(shape: Shape | list[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _dim_problem(layer: str, name: str, dim: Any, shape: Shape) -> str | None:
    """Why ``dim`` names no dimension of ``shape``, or None."""
    rank = len(shape)
    if isinstance(dim, int) and -rank <= dim < rank:
        return None
    return (
        f"{layer} {name}={dim} is out of range for the input {_fmt(shape)} of {rank} dimensions; "
        f"use a dim from {-rank} to {rank - 1}"
    )


def _dims(values: Any) -> list[Any]:
    return list(values) if isinstance(values, list | tuple) else [values]


def _permute(spec: LayerSpec, shape: Shape) -> Found:
    dims = _dims(spec.params.get("dims"))
    bad = next((p for p in (_dim_problem("Permute", "dims", d, shape) for d in dims) if p), None)
    if bad:
        return bad, ()
    if sorted(d % len(shape) for d in dims) != list(range(len(shape))):
        problem = f"Permute dims={dims} must name each of the {len(shape)} dimensions of the input {_fmt(shape)} once"
        return problem, ()
    return None


def _transpose(spec: LayerSpec, shape: Shape) -> Found:
    found = (_dim_problem("Transpose", name, spec.params.get(name), shape) for name in ("dim0", "dim1"))
    bad = next((p for p in found if p), None)
    return (bad, ()) if bad else None


def _select(spec: LayerSpec, shape: Shape) -> Found:
    dim, index = spec.params.get("dim"), spec.params.get("index")
    bad = _dim_problem("Select", "dim", dim, shape)
    if bad:
        return bad, ()
    size = shape[dim]
    if isinstance(index, int) and -size <= index < size:
        return None
    problem = f"Select index {index} out of range for dim {dim} of size {size}; use an index from {-size} to {size - 1}"
    return problem, (Fix(FixKind.SET_PARAM, f"set index={size - 1} (the last)", "index", size - 1, certain=False),)


def _slice(spec: LayerSpec, shape: Shape) -> Found:
    bad = _dim_problem("Slice", "dim", spec.params.get("dim"), shape)
    return (bad, ()) if bad else None


def _mean(spec: LayerSpec, shape: Shape) -> Found:
    dims = _dims(spec.params.get("dims"))
    bad = next((p for p in (_dim_problem("Mean", "dims", d, shape) for d in dims) if p), None)
    if bad:
        return bad, ()
    if len({d % len(shape) for d in dims}) != len(dims):
        return f"Mean dims={dims} names a dimension of the input {_fmt(shape)} twice", ()
    return None


def _reshape(spec: LayerSpec, shape: Shape) -> Found:
    want = _dims(spec.params.get("shape"))
    elements = math.prod(shape)
    if want.count(-1) > 1:
        return f"Reshape shape={want} has more than one -1; only one size can be inferred", ()
    known = math.prod(size for size in want if size != -1)
    if (-1 in want and known and elements % known == 0) or (-1 not in want and known == elements):
        return None
    batch = [shape[0], -1]
    problem = (
        f"Reshape shape={want} does not fit the input {_fmt(shape)} of {elements:,} elements "
        f"({'no whole size for -1' if -1 in want else f'{known:,} elements'})"
    )
    return problem, (Fix(FixKind.SET_PARAM, f"set shape={batch} (keep the batch)", "shape", batch, certain=False),)


def _broadcast_problem(layer: str, want: list[int], shape: Shape) -> str | None:
    pairs = zip(reversed(want), reversed(shape), strict=False)
    if len(want) <= len(shape) and all(a in (1, b) for a, b in pairs):
        return None
    return f"{layer} shape={want} does not broadcast to the input {_fmt(shape)}; its sizes must be 1 or the input's"


def _learned(layer: str) -> Callable[[LayerSpec, Shape], Found]:
    def check(spec: LayerSpec, shape: Shape) -> Found:
        want = spec.params.get("shape", AUTO)
        problem = None if want == AUTO else _broadcast_problem(layer, _dims(want), shape)
        if problem is None:
            return None
        return problem, (Fix(FixKind.SET_PARAM, "set shape='auto' (take it from the input)", "shape", AUTO),)

    return check


def _prepend(spec: LayerSpec, shape: Shape) -> Found:
    if len(shape) != 3:
        return f"PrependToken takes a sequence (N, L, dim), got the input {_fmt(shape)}", ()
    dim = spec.params.get("dim", AUTO)
    if dim in (AUTO, shape[-1]):
        return None
    problem = f"PrependToken dim={dim} must be the input's last size, here {shape[-1]} in {_fmt(shape)}"
    return problem, (Fix(FixKind.SET_PARAM, f"set dim={shape[-1]}", "dim", shape[-1]),)


TENSOR_CHECKS: dict[str, Callable[[LayerSpec, Shape], Found]] = {
    "Permute": _permute,
    "Transpose": _transpose,
    "Select": _select,
    "Slice": _slice,
    "Mean": _mean,
    "Reshape": _reshape,
    "AddParameter": _learned("AddParameter"),
    "MulParameter": _learned("MulParameter"),
    "PrependToken": _prepend,
}
