"""Small layers run on the CPU (builder.fast_path) and give the very records the meta device gives.

Every catalog sample and every example is traced twice, with the CPU path and with the meta device alone, and
the two traces must be equal field by field (shapes, parameters, FLOPs, memory, notes, errors). This process
has long warmed the meta device, so the tests here take the CPU path as a fresh process would; a fresh process
checks the point of it all: a small design's trace never imports torch._dynamo.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from builder import fast_path, layer_run
from builder.catalog import CallStyle
from builder.design import Design, DType, InputSpec, LayerSpec
from builder.examples import list_examples, load_example
from builder.inference import infer_shapes, infer_then
from builder.samples import sample_design
from builder.trace import Trace
from tests.test_catalog import LAYER_TYPES

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cold_meta_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the CPU path as a process that has not used the meta device yet does."""
    monkeypatch.setattr(fast_path, "meta_is_cold", lambda: True)


def _meta_only(design: Design) -> Trace:
    """The trace as it was before the CPU path: every layer on the meta device."""
    with fast_path.meta_only():
        return infer_shapes(design)


def _cpu_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the class of each module the CPU path ran to the end."""
    ran: list[str] = []
    original = fast_path.run_small

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        if result is not None:
            ran.append(type(result.module).__name__)
        return result

    monkeypatch.setattr(layer_run, "run_small", recording)
    return ran


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_every_catalog_sample_traces_alike_on_both_paths(layer_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    design = sample_design(layer_type)
    assert infer_shapes(design) == _meta_only(design)


@pytest.mark.parametrize("name", list_examples())
def test_every_example_traces_alike_on_both_paths(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    design = load_example(name)
    assert infer_shapes(design) == _meta_only(design)


REFLECT = {"padding": 1, "padding_mode": "reflect"}
SHAPES = [
    ("Linear", {"in_features": 6, "out_features": 4}, (6,)),  # 1-d: not addmm, left to meta
    ("Linear", {"in_features": 6, "out_features": 4, "bias": False}, (2, 5, 6)),
    ("LazyLinear", {"out_features": 4}, (3, 2, 5, 6)),
    ("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (3, 9, 9)),  # unbatched
    ("Conv2d", {"in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 2, **REFLECT}, (2, 4, 9, 9)),
    ("Conv1d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2, "dilation": 2}, (2, 3, 17)),
    ("ConvTranspose2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2}, (2, 3, 5, 5)),
    ("ConvTranspose1d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (3, 7)),  # unbatched
    ("LazyConv3d", {"out_channels": 2, "kernel_size": 2}, (1, 2, 4, 4, 4)),
    ("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 5}, (1, 3, 4, 4)),  # fails: kernel too big
]


@pytest.mark.parametrize(("layer_type", "params", "shape"), SHAPES)
def test_formulas_agree_with_flop_counter_mode_beyond_the_samples(
    layer_type: str, params: dict, shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    design = Design(name="one", input=InputSpec(shape=shape), layers=[LayerSpec(type=layer_type, params=params)])
    assert infer_shapes(design) == _meta_only(design)


def test_small_examples_run_every_layer_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = _cpu_runs(monkeypatch)
    trace = infer_shapes(load_example("lenet"))
    assert trace.ok and len(ran) == len(trace.layers)  # Conv2d, Sigmoid, AvgPool2d, Flatten, Linear...
    assert all(layer.device == "meta" for layer in trace.layers)  # no layer needed real values


def test_big_layers_stay_on_the_meta_device(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = _cpu_runs(monkeypatch)
    layers = [
        LayerSpec(type="Upsample", params={"scale_factor": 4096.0}),  # a (1, 3, 4096 * 8, ...) output
        LayerSpec(type="LazyLinear", params={"out_features": 1_000_000}),  # 3 * 4096**2 * 8 inputs each
    ]
    trace = infer_shapes(Design(name="big", input=InputSpec(shape=(1, 3, 8, 8)), layers=layers))
    assert trace.ok and trace.output_shape == (1, 3, 4096 * 8, 1_000_000)
    assert ran == []


def test_a_small_design_never_imports_torch_dynamo() -> None:
    script = (
        "import sys\n"
        "from builder.examples import load_example\n"
        "from builder.inference import infer_shapes\n"
        "for name in ('d2l-mlp', 'lenet'):\n"
        "    assert infer_shapes(load_example(name)).ok\n"
        "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_the_cpu_path_returns_meta_tensors() -> None:
    meta, x = torch.nn.Linear(3, 2, device="meta"), torch.empty(4, 3, device="meta")
    run = fast_path.run_small(
        meta, x, CallStyle.SINGLE, True, lambda: torch.nn.Linear(3, 2), lambda t: torch.randn(t.shape), {}
    )
    assert run is not None and run.out.is_meta and run.flops == 2 * 4 * 3 * 2


def test_the_cpu_path_leaves_the_global_generator_alone() -> None:
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    assert infer_shapes(load_example("lenet")).ok
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_warm_meta_device_takes_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_path, "meta_is_cold", lambda: False)
    ran = _cpu_runs(monkeypatch)
    assert infer_shapes(load_example("lenet")).ok
    assert ran == []


def test_a_second_input_feeds_the_same_lazy_modules_on_the_meta_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept modules run again (a second input, a shared layer): they are never swapped for fresh CPU ones."""
    ran = _cpu_runs(monkeypatch)
    design = load_example("d2l-mlp")
    first, second = infer_then(design, (2, 40))
    with fast_path.meta_only():
        assert (first, second) == infer_then(design, (2, 40))
    assert second.error is not None and second.error.layer_id == design.layers[0].id  # in_features stays 20
    assert ran == []


def test_a_float64_design_traces_alike_on_both_paths() -> None:
    design = load_example("lenet")
    design = design.model_copy(update={"input": design.input.model_copy(update={"dtype": DType.FLOAT64})})
    assert infer_shapes(design) == _meta_only(design)
