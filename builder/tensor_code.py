"""Tensor ops as the book writes them in ``forward``: ``x = x.permute(0, 2, 1)``, ``x = x + self.pos_embedding``.

``inline_op`` turns one of the builder's own layers (``builder.tensor_ops``) with its arguments into the expression
that replaces its call, and the ``nn.Parameter`` it needs, if any. A learnable tensor whose size is still "auto"
has no inline form: it stays its (lazy) class, whose source ``class_source`` gives for the exported file.

Arguments reach the code only as ints and finite floats (the design is validated before export; anything else
raises ValueError), so nothing of the design is written as code unchecked.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from builder.tensor_ops import AUTO, TENSOR_OPS

PARAMETER = "{parameter}"  # where the expression refers to its parameter (self.pos_embedding)


@dataclass(frozen=True)
class Inline:
    """A tensor op written inline: the expression of x, and the parameter it uses (attribute base, constructor)."""

    expression: str
    parameter: tuple[str, str] | None = None

    def code(self, reference: str) -> str:
        """The expression with its parameter called ``reference`` (``self.pos_embedding``)."""
        return self.expression.replace(PARAMETER, reference)


def _int(value: Any) -> str:
    if type(value) is not int:
        raise ValueError(f"expected a whole number, got {value!r}; validate the design first")
    return str(value)


def _float(value: Any) -> str:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}; validate the design first")
    return repr(float(value))


def _ints(values: Any) -> str:
    """``0, 2, 1`` from a list of sizes (one int is a list of one)."""
    return ", ".join(_int(v) for v in (values if isinstance(values, list | tuple) else [values]))


def _sizes(values: Any) -> str:
    """A tuple literal of sizes: ``(192,)``, ``(1, 65, 192)``."""
    text = _ints(values)
    return f"({text},)" if "," not in text else f"({text})"


def _indexed(dim: int, item: str) -> str:
    """``x[:, 0]`` for dim 1, ``x[..., 0]`` for dim -1, ``x[..., 0, :]`` for dim -2."""
    dim = int(_int(dim))
    if dim >= 0:
        return f"x[{':, ' * dim}{item}]"
    return f"x[..., {item}{', :' * (-dim - 1)}]"


def _slice(params: Mapping[str, Any]) -> str:
    start, end, step = params.get("start"), params.get("end"), params.get("step", 1)
    text = f"{'' if start is None else _int(start)}:{'' if end is None else _int(end)}"
    return text if step == 1 else f"{text}:{_int(step)}"


def _mean(params: Mapping[str, Any]) -> str:
    dims = params["dims"] if isinstance(params["dims"], list | tuple) else [params["dims"]]
    dim = _int(dims[0]) if len(dims) == 1 else _sizes(dims)
    return f"x.mean(dim={dim}{', keepdim=True' if params.get('keepdim') else ''})"


def _mul_parameter(params: Mapping[str, Any]) -> Inline:
    init, sizes = params.get("init", 1.0), _sizes(params["shape"])
    tensor = f"torch.ones({_ints(params['shape'])})" if init == 1 else f"torch.full({sizes}, {_float(init)})"
    return Inline(f"x * {PARAMETER}", ("layer_scale", f"nn.Parameter({tensor})"))


INLINE: dict[str, Callable[[Mapping[str, Any]], Inline]] = {
    "Permute": lambda p: Inline(f"x.permute({_ints(p['dims'])})"),
    "Transpose": lambda p: Inline(f"x.transpose({_int(p['dim0'])}, {_int(p['dim1'])})"),
    "Reshape": lambda p: Inline(f"x.reshape({_ints(p['shape'])})"),
    "Select": lambda p: Inline(_indexed(p["dim"], _int(p["index"]))),
    "Slice": lambda p: Inline(_indexed(p["dim"], _slice(p))),
    "Mean": lambda p: Inline(_mean(p)),
    "OneHot": lambda p: Inline(f"F.one_hot(x, {_int(p['num_classes'])}).float()"),
    "MulConstant": lambda p: Inline(f"x * {_float(p['factor'])}"),
    "AddParameter": lambda p: Inline(
        f"x + {PARAMETER}", ("pos_embedding", f"nn.Parameter(torch.zeros({_ints(p['shape'])}))")
    ),
    "MulParameter": _mul_parameter,
    "PrependToken": lambda p: Inline(
        f"torch.cat(({PARAMETER}.expand(x.shape[0], -1, -1), x), dim=1)",
        ("cls_token", f"nn.Parameter(torch.zeros(1, 1, {_int(p['dim'])}))"),
    ),
}
# The argument that makes a learnable tensor lazy while it is "auto".
SIZE_ARGUMENTS: dict[str, str] = {"AddParameter": "shape", "MulParameter": "shape", "PrependToken": "dim"}


def inline_op(layer_type: str, params: Mapping[str, Any]) -> Inline | None:
    """The inline form of a tensor op, or None while its size is "auto" (it is then written as its class)."""
    size = SIZE_ARGUMENTS.get(layer_type)
    if size is not None and params.get(size, AUTO) == AUTO:
        return None
    return INLINE[layer_type](params)


def uses_functional(layer_type: str) -> bool:
    """Whether the inline form calls ``F`` (torch.nn.functional)."""
    return layer_type == "OneHot"


def class_source(layer_type: str) -> str:
    """The source of a tensor op's class, as the exported file defines it."""
    return inspect.getsource(TENSOR_OPS[layer_type])
