"""Every shipped example end to end: it loads, runs, summarises, draws, and exports to code that runs the same.

Custom-layer examples (centered-layer, my-linear) are traced here in this process (their sources are ours), and
once more in the sandbox worker, as the app and the CLI trace them. The block examples are also checked against
models built independently with plain torch (tests/test_blocks_examples.py).
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch

from builder import cli
from builder.design import DesignError, dump_design, is_block
from builder.examples import EXAMPLES_DIR, list_examples, load_example
from builder.export import ExportStyle, export_code
from builder.graph import node_id, render_graph
from builder.inference import infer_shapes
from builder.summary import format_summary
from builder.trace import Trace

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")

# name -> (output shape, parameter count after the forward pass); D2L's figures for LeNet and AlexNet.
EXPECTED: dict[str, tuple[tuple[int, ...], int]] = {
    "alexnet": ((1, 10), 46_764_746),
    "centered-layer": ((4, 128), 8 * 128 + 128),
    "d2l-mlp": ((2, 10), 20 * 256 + 256 + 256 * 10 + 10),
    "d2l-tied-mlp": ((2, 1), 20 * 8 + 8 + 8 * 8 + 8 + 8 * 1 + 1),  # the shared layer's 72 counted once
    "lenet": ((1, 10), 61_706),
    "my-linear": ((2, 8), 20 * 64 + 64 + 64 * 8 + 8),
    "text-lstm": ((2, 2), 1000 * 32 + 4 * (32 * 64 + 64 * 64 + 2 * 64) + 16 * 64 * 2 + 2),
    "transformer-encoder": ((2, 10), 20_298),
    # blocks (format 2); the figure for ResNet-18, the others from tests/test_blocks_examples.py's models
    "resnet18": ((1, 1000), 11_689_512),
    "googlenet": ((1, 10), 5_977_530),
    "densenet-block": ((4, 10, 4, 4), 1_778),
    "se-block": ((2, 64, 16, 16), 39_120),
    "unet": ((1, 2, 64, 64), 116_770),
    "mobilenetv2": ((1, 10), 111_818),
    "transformer-block": ((2, 16, 64), 100_096),
    # tensor ops and learnable tensors, checked against plain-torch models in tests/test_blocks_examples.py
    "vit-tiny": ((1, 10), 5_362_762),
    "rnn-lm": ((2, 16, 28), 2_908),
    "convnext-block": ((2, 96, 14, 14), 79_296),
}
CUSTOM = ("centered-layer", "my-linear")
EXPORTS = {"sequential": (ExportStyle.SEQUENTIAL, False), "module": (ExportStyle.MODULE, False)}
EXPORTS["materialized"] = (ExportStyle.SEQUENTIAL, True)
EXPORTS["module-materialized"] = (ExportStyle.MODULE, True)


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    return {name: infer_shapes(design) for name, design in list_examples().items()}


def test_the_seed_examples_are_listed_in_name_order() -> None:
    examples = list_examples()
    assert list(examples) == sorted(EXPECTED)
    assert all(design.name == name for name, design in examples.items())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_file_is_in_the_saved_format(name: str) -> None:
    text = (EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert text == dump_design(load_example(name))  # what the app writes, ids included


def test_unknown_example_suggests_a_name() -> None:
    with pytest.raises(DesignError, match="did you mean 'lenet'"):
        load_example("lenett")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_to_its_known_shape_and_size(name: str, traces: dict[str, Trace]) -> None:
    trace = traces[name]
    assert trace.ok, trace.error and trace.error.message
    assert (trace.output_shape, trace.total_params) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_summary_and_graph_show_every_layer(name: str, traces: dict[str, Trace]) -> None:
    design, trace = load_example(name), traces[name]
    assert f"Output shape: {trace.output_shape}" in format_summary(trace)
    source = render_graph(design, trace).source
    for index, entry in enumerate(design.layers):  # a layer is a node, a block a cluster
        assert (f'subgraph "cluster_{node_id(index)}"' if is_block(entry) else f'"{node_id(index)}" [label=') in source
    assert f'label="output\\n{trace.output_shape}"' in source


@pytest.mark.parametrize("command", ["summary", "graph"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_through_the_cli(name: str, command: str, capsys) -> None:
    assert cli.main([command, str(EXAMPLES_DIR / f"{name}.json")]) == 0  # custom layers: in the sandbox
    out, err = capsys.readouterr()
    assert err == ""
    assert str(EXPECTED[name][0]) in out


@pytest.mark.parametrize("export", list(EXPORTS))
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exported_example_runs_like_the_trace(name: str, export: str, traces: dict, tmp_path: Path) -> None:
    style, materialize = EXPORTS[export]
    path = tmp_path / f"{name}.py"
    path.write_text(export_code(load_example(name), traces[name], style=style, materialize=materialize))
    namespace = runpy.run_path(str(path), run_name="exported")
    model = namespace["build_model"]().eval()
    shape, dtype = namespace["INPUT_SHAPE"], namespace["INPUT_DTYPE"]
    x = torch.zeros(shape, dtype=dtype) if dtype == torch.int64 else torch.randn(shape, dtype=dtype)
    with torch.no_grad():
        out = model(x)
    assert (tuple(out.shape), sum(p.numel() for p in model.parameters())) == EXPECTED[name]


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_example_traces_the_same_in_the_sandbox(name: str, traces: dict[str, Trace]) -> None:
    from builder.run import analyze

    trace = analyze(load_example(name))
    assert trace.ok, trace.error and trace.error.message
    assert [(t.output_shape, t.params) for t in trace.layers] == [
        (t.output_shape, t.params) for t in traces[name].layers
    ]
