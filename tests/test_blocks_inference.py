"""Inference through blocks: a record per inner layer (by path, copies numbered) and per block, merges and their
costs, failures attributed to the block with both shapes and the fix, and repeated copies traced cheaply."""

from __future__ import annotations

import resource
import time
from typing import Any

import pytest

from builder.blocks.edit import apply_fix
from builder.design import Design, design_from_dict
from builder.diagnose import FixKind
from builder.inference import infer_shapes, inspect_design
from builder.trace import Trace


def conv(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> dict[str, Any]:
    params = {"in_channels": cin, "out_channels": cout, "kernel_size": kernel, "padding": kernel // 2}
    return {"type": "Conv2d", "params": params | ({"stride": stride} if stride != 1 else {})}


RELU = {"type": "ReLU"}


def _design(shape: list[int], *layers: dict[str, Any]) -> Design:
    return design_from_dict({"version": 2, "name": "blocks", "input": {"shape": shape}, "layers": list(layers)})


def _trace(shape: list[int], *layers: dict[str, Any]) -> Trace:
    return infer_shapes(_design(shape, *layers))


def test_every_inner_layer_and_every_copy_has_a_record_by_path() -> None:
    trace = _trace([1, 8, 8, 8], {"type": "Residual", "repeat": 2, "body": [conv(8, 8), RELU]}, RELU)
    assert [(t.id, t.type, t.path) for t in trace.layers] == [("layer-1", "Residual", ""), ("layer-4", "ReLU", "")]
    paths = [t.path for t in trace.inner]
    assert paths == ["layer-1#1/body/0", "layer-1#1/body/1", "layer-1#2/body/0", "layer-1#2/body/1",
                     "layer-1#1", "layer-1#2"]  # fmt: skip
    assert trace.at("layer-1#2/body/0").input_shape == (1, 8, 8, 8)
    assert trace.layer("layer-2").path == "layer-1#1/body/0"  # an inner layer by id: its first copy


def test_a_block_record_totals_all_its_copies_and_its_merge() -> None:
    trace = _trace([1, 8, 8, 8], {"type": "Residual", "repeat": 3, "body": [conv(8, 8)]})
    block, layer = trace.layers[0], trace.at("layer-1#1/body/0")
    assert (block.input_shape, block.output_shape) == ((1, 8, 8, 8), (1, 8, 8, 8))
    assert block.params == 3 * (8 * 8 * 9 + 8) == trace.total_params
    merge_flops = 8 * 8 * 8  # one addition per output element
    assert block.flops == 3 * (layer.flops + merge_flops)
    assert block.activation_bytes == 3 * 2 * (8 * 8 * 8 * 4)  # the conv's output and the sum, per copy
    assert "3 copies" in block.notes[0]


@pytest.mark.parametrize(
    ("block", "shape"),
    [
        ({"type": "Residual", "merge": "concat", "body": [conv(8, 4)]}, (1, 12, 8, 8)),  # shortcut first
        ({"type": "Residual", "merge": "mul", "body": [{"type": "AdaptiveAvgPool2d", "params": {"output_size": 1}},
                                                       {"type": "Sigmoid"}]}, (1, 8, 8, 8)),  # a gate broadcasts
        ({"type": "Parallel", "branches": [[conv(8, 4)], [], [conv(8, 2)]]}, (1, 14, 8, 8)),
        ({"type": "Parallel", "merge": "concat", "dim": -1, "branches": [[], []]}, (1, 8, 8, 16)),
        ({"type": "Parallel", "merge": "add", "branches": [[conv(8, 8)], [RELU], []]}, (1, 8, 8, 8)),
        ({"type": "Sequential", "layers": []}, (1, 8, 8, 8)),  # the identity
    ],
    ids=["residual-concat", "squeeze-excite-mul", "parallel-concat", "concat-last-dim", "parallel-add", "empty"],
)  # fmt: skip
def test_merges_follow_torch(block: dict[str, Any], shape: tuple[int, ...]) -> None:
    trace = _trace([1, 8, 8, 8], block)
    assert trace.ok, trace.error and trace.error.message
    assert trace.output_shape == shape


def test_an_add_after_the_body_changed_channels_and_stride_offers_a_projection_shortcut() -> None:
    trace = _trace([1, 64, 56, 56], conv(64, 64), {"type": "Residual", "label": "down1", "body": [conv(64, 128, 2)]})
    error = trace.error
    assert (error.index, error.layer_type, error.stage, error.path) == (1, "Residual", "merge", "layer-2")
    assert error.message.startswith("layer 2 Residual(merge='add'): cannot add the body's output (1, 128, 28, 28)")
    assert "identity shortcut's (1, 64, 56, 56)" in error.message and "channels 64 -> 128, stride 2" in error.message
    [fix] = error.fixes
    assert fix.kind is FixKind.ADD_PROJECTION and fix.certain
    assert fix.description == (
        "add a projection shortcut: Conv2d(64, 128, kernel_size=1, stride=2, bias=False) + BatchNorm2d(128)"
    )
    assert [t.id for t in trace.layers] == ["layer-1"]  # results before the failure are kept
    assert trace.at("layer-2/body/0").output_shape == (1, 128, 28, 28)
    fixed = infer_shapes(
        apply_fix(
            _design([1, 64, 56, 56], conv(64, 64), {"type": "Residual", "label": "down1", "body": [conv(64, 128, 2)]}),
            error,
            fix,
        )
    )
    assert fixed.ok and fixed.output_shape == (1, 128, 28, 28)  # fmt: skip


def test_an_add_after_a_channel_change_also_offers_concat() -> None:
    design = _design([1, 8, 8, 8], {"type": "Residual", "body": [conv(8, 16)]})
    error = infer_shapes(design).error
    kinds = [(fix.kind, fix.certain) for fix in error.fixes]
    assert kinds == [(FixKind.ADD_PROJECTION, True), (FixKind.SET_MERGE, True)]
    assert "or merge by concat" in error.message
    assert infer_shapes(apply_fix(design, error, error.fixes[1])).output_shape == (1, 24, 8, 8)


def test_a_features_residual_gets_a_linear_projection() -> None:
    body = [{"type": "Linear", "params": {"in_features": 20, "out_features": 64}}]
    error = _trace([2, 20], {"type": "Residual", "body": body}).error
    assert error.fixes[0].description == "add a projection shortcut: Linear(20, 64)"


def test_a_wrong_explicit_shortcut_is_named_and_its_replacement_is_only_suggested() -> None:
    error = _trace([1, 8, 8, 8], {"type": "Residual", "body": [conv(8, 16)], "shortcut": [conv(8, 4)]}).error
    assert "cannot add the body's output (1, 16, 8, 8) and the shortcut's (1, 4, 8, 8)" in error.message
    assert (error.fixes[0].kind, error.fixes[0].certain) == (FixKind.ADD_PROJECTION, False)


def test_a_concat_whose_branch_changed_the_size_names_the_branch_and_its_layer() -> None:
    pool = {"type": "MaxPool2d", "params": {"kernel_size": 3, "stride": 1}}
    block = {"type": "Parallel", "label": "inception", "branches": [[conv(8, 4, kernel=1)], [RELU, pool], []]}
    error = _trace([1, 8, 28, 28], block).error
    assert error.message.startswith("layer 1 Parallel(merge='concat', dim=1): concat along dim=1 needs every other")
    assert "branch 2 gives (1, 8, 26, 26) and branch 1 (1, 4, 28, 28)" in error.message
    assert "branch 2 changed dimension 2 to 26 at its layer 2 (MaxPool2d: 28 -> 26); keep it at 28" in error.message


def test_a_failure_deep_inside_a_block_names_its_path() -> None:
    inner = {
        "type": "Sequential",
        "layers": [RELU, {"type": "Linear", "params": {"in_features": 7, "out_features": 20}}],
    }
    trace = _trace([2, 20], {"type": "Residual", "repeat": 2, "body": [inner]})
    error = trace.error
    assert (error.layer_id, error.path) == ("layer-4", "layer-1#1/body/0/layers/1")
    assert error.message.startswith("layer 1, copy 1, body[0], layers[1] Linear(in_features=7, out_features=20):")
    assert "set in_features=20" in error.message
    assert trace.at("layer-1#1/body/0/layers/0").output_shape == (2, 20)
    fixed = apply_fix(_design([2, 20], {"type": "Residual", "repeat": 2, "body": [inner]}), error, error.fixes[0])
    assert infer_shapes(fixed).ok


def test_inspect_builds_every_copy_without_running() -> None:
    lazy = {"type": "LazyLinear", "params": {"out_features": 4}}
    trace = inspect_design(_design([2, 20], {"type": "Sequential", "repeat": 2, "layers": [lazy]}))
    assert not trace.ran and trace.layers[0].params == 0
    assert [t.lazy for t in trace.inner if "/" in t.path] == [True, True]


def test_sixty_residual_blocks_with_a_billion_parameters_cost_little_time_and_memory() -> None:
    channels = 1024
    convs = [conv(channels, channels), {"type": "BatchNorm2d", "params": {"num_features": channels}}, RELU]
    design = _design([8, channels, 14, 14], {"type": "Residual", "repeat": 60, "body": convs + convs[:2]})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    trace = infer_shapes(design)
    seconds = time.perf_counter() - start
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert trace.ok and trace.total_params > 10**9
    assert len(trace.inner) == 60 * 5 + 60
    assert seconds < 5 and grown_mb < 200
