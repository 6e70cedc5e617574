"""Small layers on the CPU: the same record as the meta device, without its first-use cost in a fresh process.

On its first use the meta device imports ``torch._dynamo`` (its Python reference kernels are wrapped in
``torch._disable_dynamo``), and so does ``FlopCounterMode`` (a dispatch mode): about 1.5 s, more than the
whole of a small design's ``summary``. Until that import has happened in this process, a built-in layer whose
work is small runs instead on the CPU with small real tensors, and its FLOPs come from
``torch.utils.flop_counter``'s own formula functions applied to the one op that counts in it (``mm_flop`` for a
Linear, ``conv_flop_count`` for a convolution). Layers without such a formula, big layers, custom layers and
anything the CPU run refuses go to the meta device, as before; once it is warm (a long-lived server warms it at
start), every layer does, since a meta pass then costs less than real values.

The record is the meta device's (``device="meta"``: no real values were needed); tests compare both paths
over every catalog sample and example.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.utils.flop_counter import conv_flop_count, mm_flop

from builder.adapters import call_layer
from builder.catalog import CallStyle

# What a layer may cost to run for real. A size, factor or padding among its arguments that is not a size of its
# parameters can grow the output (an Upsample's scale_factor, a pool's output_size), once per spatial dimension.
SMALL_OUTPUT = 2**20  # elements of the output, at most: the input's times that growth
SMALL_WORK = 2**27  # the output's elements times the parameters: a bound on the multiply-adds
SMALL_PARAMS = 2**20  # elements of the built layer's parameters
Formula = Callable[[nn.Module, torch.Tensor, torch.Tensor], "int | None"]
_META_ONLY: ContextVar[bool] = ContextVar("meta_only", default=False)


def linear_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int | None:
    """A Linear is one (M, K) x (K, N) matmul (addmm): ``mm_flop``; a 1-d input takes another op: none."""
    if x.dim() < 2:
        return None
    k = x.shape[-1]
    return mm_flop((x.numel() // k, k), (k, out.shape[-1]))


def conv_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int | None:
    """One ``aten.convolution``: ``conv_flop_count`` on the batched shapes (an unbatched input gets a batch of 1)."""
    weight = module.weight
    batched = x.dim() == weight.dim()
    x_shape = list(x.shape) if batched else [1, *x.shape]
    out_shape = list(out.shape) if batched else [1, *out.shape]
    return conv_flop_count(x_shape, list(weight.shape), out_shape, transposed=module.transposed)


# Module classes (a lazy one becomes its concrete class when it runs) and torch's formula for them.
FORMULAS: tuple[tuple[type[nn.Module], Formula], ...] = ((nn.Linear, linear_flops), (_ConvNd, conv_flops))


@dataclass(frozen=True)
class SmallRun:
    """A layer's run on the CPU: the module that ran, its output (back on meta) and its FLOPs."""

    module: nn.Module
    out: torch.Tensor
    flops: int


def _numbers(value: Any) -> Iterable[float]:
    """The numbers in an argument (sizes, factors, nested lists); booleans and text are none."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _numbers(item)


def growth(module: nn.Module, params: dict[str, Any], x: torch.Tensor) -> float:
    """How much a layer may grow its input: its arguments that are not sizes of its parameters, per spatial dim."""
    sizes = {size for p in module.parameters() if not isinstance(p, nn.UninitializedParameter) for size in p.shape}
    factor = 1.0
    for number in _numbers(list(params.values())):
        if number not in sizes:
            factor *= max(1.0, abs(number)) if math.isfinite(number) else math.inf
    return factor ** max(1, x.dim() - 2)


def is_small(module: nn.Module, params: dict[str, Any], x: torch.Tensor) -> bool:
    """Whether a layer built on the CPU is small enough to run for real on ``x`` at no noticeable cost."""
    weights = _param_count(module)
    output = x.numel() * growth(module, params, x)
    return weights <= SMALL_PARAMS and output <= SMALL_OUTPUT and output * max(1, weights) <= SMALL_WORK


def _formula(module: nn.Module) -> Formula | None:
    return next((formula for cls, formula in FORMULAS if isinstance(module, cls)), None)


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if not isinstance(p, nn.UninitializedParameter))


def meta_is_cold() -> bool:
    """Whether this process has yet to pay the meta device's first use (the import of torch._dynamo)."""
    return "torch._dynamo" not in sys.modules


@contextmanager
def meta_only() -> Iterator[None]:
    """Trace every layer on the meta device inside this block.

    For warm-ups of long-lived processes (the app's server, the sandbox worker), which must pay the meta device's
    first use before a user's big design needs it, and for the tests that compare both paths.
    """
    token = _META_ONLY.set(True)
    try:
        yield
    finally:
        _META_ONLY.reset(token)


def run_small(
    module: nn.Module,
    x: torch.Tensor,
    style: CallStyle,
    counted: bool,
    build: Callable[[], nn.Module],
    real_like: Callable[[torch.Tensor], torch.Tensor],
    params: dict[str, Any],
) -> SmallRun | None:
    """Run a layer built on meta (``module``, on ``x``) again on the CPU: None to leave it to the meta device.

    That is when the meta device is already warm, when the layer is not small (``is_small``, judged before
    anything real is allocated), when its FLOPs are counted and there is no formula for it, or when the CPU run
    fails in any way (the meta path then gives today's result, or today's diagnosis). ``build`` makes the layer
    on the CPU, ``real_like`` a real input.
    """
    if _META_ONLY.get() or not meta_is_cold() or not is_small(module, params, x):
        return None
    if counted and _formula(module) is None:
        return None
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():  # initial weights: leave the global generator alone
            real, real_x = build(), real_like(x)
            out = call_layer(real, style, real_x)
        formula = _formula(real)  # a lazy layer has its concrete class only now
        flops = formula(real, real_x, out) if counted and formula else 0
    except Exception:  # any failure here is the meta path's to report, as it does today
        return None
    if not isinstance(out, torch.Tensor) or flops is None:
        return None
    return SmallRun(real, out.to("meta"), flops)
