"""Explanations for a module that runs a second time: a shared (tied) layer, or a model fed another input.

Both come down to one lesson of the book's lazy-initialization chapter: a module keeps the sizes it was built
with, and a lazy one the sizes it inferred at its first forward pass. The messages name the layer, both shapes
and the fix, in ``builder.diagnose``'s style.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from builder.design import LayerSpec, SharedSpec
from builder.diagnose import LayerError, diagnose_run

Shape = tuple[int, ...]


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ")"


def _sizes(inferred: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in inferred.items())


def diagnose_tied(
    index: int, entry: SharedSpec, target: LayerSpec, first: Shape, here: Shape, inferred: Mapping[str, Any]
) -> LayerError:
    """A Shared entry whose input does not fit the layer it reuses: both layers, both shapes and the fix."""
    built = f" ({target.type} inferred {_sizes(inferred)} there)" if inferred else ""
    problem = (
        f"shares {target.id} ({target.type}), which first ran on input {_fmt(first)}{built}, but here it gets "
        f"{_fmt(here)}; tying reuses the very same weights, so every use of a shared layer needs an input of the "
        f"same size"
    )
    fix = (
        f"Fix: make the layers before {entry.id} give the shape {target.id} gets, {_fmt(first)}, or use a layer of "
        f"its own here instead of sharing {target.id}"
    )
    return LayerError(index, entry.id, entry.type, {"of": target.id}, f"{problem}. {fix}", (), "")


def diagnose_again(
    index: int, spec: LayerSpec, first: Shape, here: Shape, inferred: Mapping[str, Any], dtype: torch.dtype,
    error: Exception,
) -> LayerError:  # fmt: skip
    """A layer of an initialized model that fails on another input: a lazy one explains that it inferred once."""
    found = diagnose_run(index, spec, here, dtype, error)
    if not inferred:
        return found
    problem = (
        f"{spec.type} inferred {_sizes(inferred)} from the first input {_fmt(first)}; a lazy layer infers its "
        f"sizes once, at its first forward pass, so the input {_fmt(here)} does not fit it now; run a fresh pass "
        f"to infer again"
    )
    return LayerError(index, spec.id, spec.type, dict(spec.params), problem, (), found.torch_message)
