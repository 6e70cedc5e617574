"""A second input through the same, now built model (the book's exercise on lazy initialization)."""

from __future__ import annotations

import pytest

from builder.design import DesignError, design_from_dict
from builder.examples import load_example
from builder.inference import infer_shapes, infer_then


def test_another_batch_size_runs_through_the_built_modules() -> None:
    first, second = infer_then(load_example("d2l-mlp"), (5, 20))
    assert first.ok and first.input_shape == (2, 20)
    assert second.ok and second.input_shape == (5, 20) and second.output_shape == (5, 10)
    assert second.total_params == first.total_params == 20 * 256 + 256 + 256 * 10 + 10
    assert second.layers[0].params_before == first.layers[0].params_after  # already initialized: nothing to infer


def test_a_lazy_layer_keeps_the_sizes_it_inferred_first() -> None:
    _, second = infer_then(load_example("d2l-mlp"), (2, 40))
    assert second.error is not None and second.error.layer_id == "layer-1"
    assert second.error.problem == (
        "LazyLinear inferred in_features=20 from the first input (2, 20); a lazy layer infers its sizes once, at "
        "its first forward pass, so the input (2, 40) does not fit it now; run a fresh pass to infer again"
    )
    assert second.layers == ()


def test_a_fresh_pass_infers_again() -> None:
    design = load_example("d2l-mlp")
    fresh = infer_shapes(design.model_copy(update={"input": design.input.model_copy(update={"shape": (2, 40)})}))
    assert fresh.ok and fresh.layers[0].inferred == {"in_features": 40}


def test_a_later_lazy_layer_is_named_when_the_first_ones_still_fit() -> None:
    data = {
        "name": "conv",
        "input": {"shape": [1, 3, 8, 8]},
        "layers": [
            {"type": "Conv2d", "params": {"in_channels": 3, "out_channels": 4, "kernel_size": 3}},
            {"type": "Flatten"},
            {"type": "LazyLinear", "params": {"out_features": 2}},
        ],
    }
    _, second = infer_then(design_from_dict(data), (1, 3, 10, 10))
    assert second.error is not None and second.error.layer_id == "layer-3"
    assert "inferred in_features=144 from the first input (1, 144)" in second.error.problem
    assert [layer.output_shape for layer in second.layers] == [(1, 4, 8, 8), (1, 256)]


def test_a_built_layer_that_does_not_fit_gets_the_usual_diagnosis() -> None:
    data = {"name": "fixed", "input": {"shape": [2, 20]}, "layers": [
        {"type": "Linear", "params": {"in_features": 20, "out_features": 4}}]}  # fmt: skip
    _, second = infer_then(design_from_dict(data), (2, 30))
    assert "expected in_features=20 but got input (2, 30)" in second.error.problem


def test_shared_layers_run_the_second_input_too() -> None:
    first, second = infer_then(load_example("d2l-tied-mlp"), (7, 20))
    assert second.ok and second.output_shape == (7, 1) and second.total_params == first.total_params == 249


def test_a_failing_first_pass_has_no_second() -> None:
    data = {"name": "broken", "input": {"shape": [2, 20]}, "layers": [
        {"type": "Linear", "params": {"in_features": 30, "out_features": 4}}]}  # fmt: skip
    first, second = infer_then(design_from_dict(data), (2, 30))
    assert first.error is not None and second.error == first.error and not second.ran


@pytest.mark.parametrize("shape", [(), (0, 20), (2,) * 7])
def test_a_bad_second_shape_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(DesignError, match="the second input's shape"):
        infer_then(load_example("d2l-mlp"), shape)


def test_custom_layers_feed_the_second_input_in_the_sandbox() -> None:
    from builder.run import analyze_then

    design = load_example("my-linear")  # LazyLinear(64) -> ReLU -> MyLinear(64, 8), its code in the sandbox
    assert analyze_then(design, (3, 20)).output_shape == (3, 8)
    failed = analyze_then(design, (3, 21))
    assert failed.error is not None and "inferred in_features=20 from the first input (2, 20)" in failed.error.problem


def test_blocks_feed_the_second_input_copy_by_copy() -> None:
    _, second = infer_then(load_example("densenet-block"), (2, 6, 8, 8))  # the first input has 3 channels
    assert second.error is not None and second.error.path == "layer-1#1/body/0"
    assert "LazyBatchNorm2d inferred num_features=3 from the first input (4, 3, 8, 8)" in second.error.problem
    assert infer_then(load_example("densenet-block"), (2, 3, 8, 8))[1].output_shape == (2, 10, 4, 4)
