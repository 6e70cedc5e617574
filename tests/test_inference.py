"""Shape inference: the D2L lazy-initialization story, FLOPs, memory, the real-tensor fallback, failures."""

from __future__ import annotations

import resource

import pytest
import torch

from builder.design import DesignError, design_from_dict
from builder.inference import infer_shapes, inspect_design
from builder.trace import UNINITIALIZED

MLP = {
    "version": 1,
    "name": "d2l-mlp",
    "input": {"shape": [2, 20], "dtype": "float32"},
    "layers": [
        {"type": "LazyLinear", "params": {"out_features": 256}},
        {"type": "ReLU"},
        {"type": "LazyLinear", "params": {"out_features": 10}},
    ],
}


def _design(layers: list[dict], shape: list[int], dtype: str = "float32", custom: list | None = None):
    data = {"input": {"shape": shape, "dtype": dtype}, "layers": layers, "custom_layers": custom or []}
    return design_from_dict(data)


def test_lazy_linear_holds_uninitialized_parameters_until_the_forward_pass() -> None:
    design = design_from_dict(MLP)
    before = inspect_design(design)
    assert not before.ran
    assert [p.describe() for p in before.layers[0].params_before] == [UNINITIALIZED, UNINITIALIZED]
    assert before.layers[0].input_shape is None

    trace = infer_shapes(design)
    first = trace.layers[0]
    assert first.inferred == {"in_features": 20}
    assert first.params_after[0].describe() == "torch.Size([256, 20])"
    assert "in_features inferred = 20" in first.notes
    assert [t.output_shape for t in trace.layers] == [(2, 256), (2, 256), (2, 10)]
    assert trace.total_params == 20 * 256 + 256 + 256 * 10 + 10


def test_flops_and_memory_match_torch() -> None:
    trace = infer_shapes(design_from_dict(MLP))
    assert trace.layers[0].flops == 2 * 2 * 20 * 256  # torch counts a multiply-add as two FLOPs
    assert trace.layers[0].param_bytes == (20 * 256 + 256) * 4
    assert trace.layers[0].activation_bytes == 2 * 256 * 4
    assert trace.layers[1].flops == 0


def test_a_twelve_billion_parameter_design_costs_no_memory() -> None:
    layers = [{"type": "Linear", "params": {"in_features": 32768, "out_features": 32768}}] * 11
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trace = infer_shapes(_design(layers, [4, 32768]))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert trace.total_params == 11 * (32768 * 32768 + 32768)
    assert trace.param_bytes > 40 * 2**30
    assert grown_mb < 200


def test_a_layer_needing_real_values_falls_back_to_small_real_tensors() -> None:
    source = (
        "class Gate(nn.Module):\n"
        "    def forward(self, x):\n"
        "        if x.sum() > 0:\n"
        "            return x * 2\n"
        "        return x\n"
    )
    layers = [{"type": "Linear", "params": {"in_features": 4, "out_features": 3}}, {"type": "Gate"}]
    trace = infer_shapes(_design(layers, [2, 4], custom=[{"name": "Gate", "source": source}]))
    assert trace.ok
    assert trace.layers[0].device == "meta"
    assert trace.layers[1].device == "cpu"
    assert trace.layers[1].output_shape == (2, 3)
    assert "real tensors" in trace.layers[1].notes[0]


def test_a_failure_names_the_layer_and_keeps_the_layers_before_it() -> None:
    layers = [
        {"type": "Linear", "params": {"in_features": 20, "out_features": 30}},
        {"type": "ReLU"},
        {"type": "Linear", "params": {"in_features": 20, "out_features": 10}},
    ]
    trace = infer_shapes(_design(layers, [2, 20]))
    assert [t.output_shape for t in trace.layers] == [(2, 30), (2, 30)]
    assert trace.error is not None and trace.error.index == 2
    assert "set in_features=30" in trace.error.message
    assert trace.output_shape is None


def test_float64_designs_build_float64_layers() -> None:
    trace = infer_shapes(_design([{"type": "LazyLinear", "params": {"out_features": 5}}], [2, 3], "float64"))
    assert trace.layers[0].param_bytes == (3 * 5 + 5) * torch.float64.itemsize


def test_an_empty_stack_is_refused() -> None:
    with pytest.raises(DesignError, match="no layers"):
        infer_shapes(_design([], [2, 20]))


CONV = 2 * 8 * 6 * 6 * 3 * 9  # 2 x output elements x (in_channels x kernel area)


@pytest.mark.parametrize(
    ("layer", "shape", "flops"),
    [
        ({"type": "Conv2d", "params": {"in_channels": 3, "out_channels": 8, "kernel_size": 3}}, [1, 3, 8, 8], CONV),
        ({"type": "LazyConv2d", "params": {"out_channels": 8, "kernel_size": 3}}, [1, 3, 8, 8], CONV),
        ({"type": "ReLU"}, [1, 3, 8, 8], 0),
    ],
)
def test_flops_per_layer_family(layer: dict, shape: list[int], flops: int) -> None:
    assert infer_shapes(_design([layer], shape)).layers[0].flops == flops


def test_real_values_are_refused_for_a_huge_input() -> None:
    """A layer that needs values runs on real tensors only while they are small; beyond, it says so."""
    from builder.custom import define_trusted
    from builder.design import design_from_dict

    gate = "class Gate(nn.Module):\n    def forward(self, x):\n        return x if x.sum() > 0 else -x\n"
    for shape, ok in (([2, 20], True), ([64, 1024, 1024], False)):
        data = {"input": {"shape": shape}, "layers": [{"type": "Gate"}]}
        design = design_from_dict(data | {"custom_layers": [{"name": "Gate", "source": gate}]})
        trace = infer_shapes(design, define_trusted(design.custom_layers))
        assert trace.ok is ok
        if not ok:
            assert "needs real values" in trace.error.message and "use a smaller input shape" in trace.error.message
