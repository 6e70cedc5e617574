"""What a dummy forward pass reports: one record per layer (shapes, parameters, FLOPs, memory), and the run's.

Plain frozen data, made by ``builder.inference`` (and, for designs with custom layers, in the sandbox, whose
replies are rebuilt from these classes only: ``builder.sandbox.results``); read by the table, the graph, the
export and the app.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from builder.design import DType
from builder.diagnose import LayerError

Shape = tuple[int, ...]

UNINITIALIZED = "<UninitializedParameter>"


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a layer: its shape, or None while it is an UninitializedParameter."""

    name: str
    shape: Shape | None

    def describe(self) -> str:
        return UNINITIALIZED if self.shape is None else f"torch.Size({list(self.shape)})"


@dataclass(frozen=True)
class LayerTrace:
    """What one layer did in the dummy forward pass (or, before it, what it holds)."""

    index: int
    id: str
    type: str
    input_shape: Shape | None = None
    output_shape: Shape | None = None
    params: int = 0
    params_before: tuple[ParamInfo, ...] = ()
    params_after: tuple[ParamInfo, ...] = ()
    inferred: Mapping[str, Any] = field(default_factory=dict)
    flops: int = 0
    param_bytes: int = 0
    activation_bytes: int = 0
    device: str = "meta"
    notes: tuple[str, ...] = ()
    path: str = ""  # inside a block: "layer-5/body/2" (copies "layer-5#2/..."); "" for a top-level entry
    shares: str = ""  # a Shared entry: the id of the layer whose module (and parameter count) it reuses

    @property
    def lazy(self) -> bool:
        """True if the layer held uninitialized parameters before the forward pass."""
        return any(p.shape is None for p in self.params_before)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (a row of the CLI's --json); ``path`` only inside a block."""
        return _layer_dict(self) | ({"path": self.path} if self.path else {})

    @property
    def formula(self) -> str:
        """The table's parameter formula (``256 x 20 + 256 = 5,376``); a Shared entry's count is at its layer."""
        from builder.formulas import table_formula

        return f"counted once, at {self.shares}" if self.shares else table_formula(self)


@dataclass(frozen=True)
class Trace:
    """The result of inference: one LayerTrace per layer that ran, and the first error, if any."""

    name: str
    input_shape: Shape
    input_dtype: DType
    layers: tuple[LayerTrace, ...]
    error: LayerError | None = None
    ran: bool = True
    inner: tuple[LayerTrace, ...] = ()  # entries inside blocks and copies of repeated blocks, by path, as they ran

    @property
    def ok(self) -> bool:
        return self.ran and self.error is None

    @property
    def output_shape(self) -> Shape | None:
        if not self.ok or not self.layers:
            return None
        return self.layers[-1].output_shape

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def param_bytes(self) -> int:
        return sum(layer.param_bytes for layer in self.layers)

    @property
    def activation_bytes(self) -> int:
        return sum(layer.activation_bytes for layer in self.layers)

    def layer(self, layer_id: str) -> LayerTrace | None:
        """The trace of the entry with this id, if it got that far (inside a repeated block: its first copy)."""
        found = next((t for t in self.layers if t.id == layer_id), None)
        return found if found is not None else next((t for t in self.inner if t.id == layer_id), None)

    def at(self, path: str) -> LayerTrace | None:
        """The record at a trace path (``layer-5/body/2``); a top-level entry's path is its id."""
        return self.records().get(path)

    def records(self) -> dict[str, LayerTrace]:
        """Every record by its path (top-level entries by their id): for callers that look many up."""
        return {t.id: t for t in self.layers} | {t.path: t for t in self.inner}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the CLI's --json)."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "input_dtype": str(self.input_dtype),
            "layers": [_layer_dict(t) for t in self.layers],
            "output_shape": list(self.output_shape) if self.output_shape else None,
            "total_params": self.total_params,
            "total_flops": self.total_flops,
            "param_bytes": self.param_bytes,
            "activation_bytes": self.activation_bytes,
            "error": self.error.to_dict() if self.error else None,
        }


def _layer_dict(t: LayerTrace) -> dict[str, Any]:
    return {
        "index": t.index,
        "id": t.id,
        "type": t.type,
        "input_shape": list(t.input_shape) if t.input_shape else None,
        "output_shape": list(t.output_shape) if t.output_shape else None,
        "params": t.params,
        "formula": t.formula,
        "param_shapes": {p.name: list(p.shape) if p.shape else None for p in t.params_after},
        "inferred": dict(t.inferred),
        "flops": t.flops,
        "param_bytes": t.param_bytes,
        "activation_bytes": t.activation_bytes,
        "device": t.device,
        "notes": list(t.notes),
    }
