"""The graph: golden DOT files, plus what a user sees in it before, after and when the forward pass fails.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/test_graph.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import graphviz
import pytest

from builder.design import Design, InputSpec, LayerSpec, design_from_dict
from builder.graph import INPUT_ID, OUTPUT_ID, WRAP, GraphError, key_args, render_graph, write_graph
from builder.inference import infer_shapes, inspect_design
from builder.trace import Trace

GOLDEN = Path(__file__).parent / "golden" / "graph"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
RED = "#d32f2f"


def _design(name: str, *layers: tuple[str, dict]) -> Design:
    specs = tuple(LayerSpec(type=layer_type, params=params) for layer_type, params in layers)
    return Design(name=name, input=InputSpec(shape=(2, 20)), layers=specs)


MLP = _design("d2l-mlp", ("LazyLinear", {"out_features": 256}), ("ReLU", {}), ("LazyLinear", {"out_features": 10}))
FAILING = _design(
    "broken",
    ("Linear", {"in_features": 20, "out_features": 64}),
    ("ReLU", {}),
    ("Linear", {"in_features": 30, "out_features": 10}),
    ("LazyLinear", {"out_features": 2}),
)


def _node(graph: graphviz.Digraph, node_id: str) -> str:
    """The DOT line that declares ``node_id``."""
    quoted = re.escape(f'"{node_id}"' if "-" in node_id else node_id)
    return next(line for line in graph.body if re.match(rf"\s*{quoted} \[", line))


def _edges(graph: graphviz.Digraph) -> list[str]:
    """Edge labels, top to bottom."""
    return re.findall(r'-> \S+ \[label="([^"]*)"', graph.source)


def _check_golden(name: str, source: str) -> None:
    path = GOLDEN / f"{name}.gv"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}: run UPDATE_GOLDEN=1 pytest tests/test_graph.py"
    assert source == path.read_text(encoding="utf-8"), f"{path} differs; if the change is wanted, UPDATE_GOLDEN=1"


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace | None]:
    return {
        "mlp-no-trace": None,
        "mlp-before-run": inspect_design(MLP),
        "mlp-after-run": infer_shapes(MLP),
        "failing": infer_shapes(FAILING),
    }


@pytest.mark.parametrize("name", ["mlp-no-trace", "mlp-before-run", "mlp-after-run", "failing"])
def test_graph_matches_golden_file(name: str, traces: dict[str, Trace | None]) -> None:
    design = FAILING if name == "failing" else MLP
    _check_golden(name, render_graph(design, traces[name]).source)


def test_a_custom_layer_node_is_marked_as_the_design_s_code() -> None:
    from builder.examples import load_example

    design = load_example("centered-layer")
    graph = render_graph(design, None)
    _check_golden("custom-no-trace", graph.source)
    custom, builtin = _node(graph, "layer-2"), _node(graph, "layer-1")
    assert "custom layer (the design's code)" in custom and "#fff4e0" in custom
    assert "custom layer" not in builtin and "#fff4e0" not in builtin


def test_before_the_run_shapes_are_unknown_and_lazy_parameters_uninitialized(traces: dict) -> None:
    graph = render_graph(MLP, traces["mlp-before-run"])
    assert _edges(graph) == ["(2, 20)", "?", "?", "?"]  # only the input's shape is known
    lazy = _node(graph, "layer-1")
    assert "weight: <UninitializedParameter>" in lazy and "in_features" not in lazy
    assert "dashed" in lazy
    assert "dashed" not in _node(graph, "layer-2")  # ReLU is not lazy
    assert "output\\n?" in _node(graph, OUTPUT_ID)


def test_after_the_run_shapes_and_inferred_sizes_are_shown(traces: dict) -> None:
    graph = render_graph(MLP, traces["mlp-after-run"])
    assert _edges(graph) == ["(2, 20)", "(2, 256)", "(2, 256)", "(2, 10)"]
    first = _node(graph, "layer-1")
    assert "weight: (256, 20)" in first and "bias: (256,)" in first
    assert "in_features = 20" in first
    assert "UninitializedParameter" not in graph.source
    assert "dashed" not in graph.source  # materialized lazy layers look like the others
    assert "output\\n(2, 10)" in _node(graph, OUTPUT_ID)


def test_without_a_trace_only_the_design_is_drawn() -> None:
    graph = render_graph(MLP)
    assert _edges(graph) == ["(2, 20)", "?", "?", "?"]
    assert "LazyLinear(out_features=256)" in _node(graph, "layer-1")
    assert "dashed" in _node(graph, "layer-1")
    assert "weight" not in graph.source


def test_failing_layer_is_red_with_its_diagnosis_and_later_layers_grey(traces: dict) -> None:
    graph = render_graph(FAILING, traces["failing"])
    failing = _node(graph, "layer-3")
    assert f'color="{RED}"' in failing
    assert "set\\nin_features=64" in failing or "set in_features=64" in failing
    assert f'color="{RED}"' not in _node(graph, "layer-2")
    unreached = _node(graph, "layer-4")
    assert 'fontcolor="#9e9e9e"' in unreached and RED not in unreached
    assert _edges(graph) == ["(2, 20)", "(2, 64)", "(2, 64)", "?", "?"]
    assert "output\\n?" in _node(graph, OUTPUT_ID)


def test_diagnosis_is_wrapped(traces: dict) -> None:
    label = re.search(r'label="([^"]*)"', _node(render_graph(FAILING, traces["failing"]), "layer-3")).group(1)
    lines = label.split("\\n")
    assert len(lines) > 3
    assert max(len(line) for line in lines) <= WRAP


def test_node_ids_come_from_positions_not_layer_ids_and_output_is_deterministic() -> None:
    design = Design(
        input=InputSpec(shape=(2, 20)),
        layers=(
            LayerSpec(type="ReLU", id="layer-7"),
            LayerSpec(type="Linear", params={"in_features": 20, "out_features": 3}, id="head", label="classifier"),
        ),
    )
    first = render_graph(design, infer_shapes(design)).source
    assert first == render_graph(design, infer_shapes(design)).source
    graph = render_graph(design, infer_shapes(design))
    assert "classifier\\nLinear(in_features=20, out_features=3)" in _node(graph, "layer-2")
    assert "ReLU()" in _node(graph, "layer-1")
    assert "head" not in graph.source and "layer-7" not in graph.source
    edges = re.findall(r"^\t(\S+) -> (\S+) ", graph.source, flags=re.MULTILINE)
    assert edges == [(INPUT_ID, '"layer-1"'), ('"layer-1"', '"layer-2"'), ('"layer-2"', OUTPUT_ID)]


def test_key_args_leave_out_torch_defaults() -> None:
    spec = LayerSpec(type="Conv2d", params={"in_channels": 1, "out_channels": 6, "kernel_size": 5, "padding": 0})
    assert key_args(spec) == {"in_channels": 1, "out_channels": 6, "kernel_size": 5}
    assert key_args(LayerSpec(type="Dropout", params={"p": 0.2})) == {"p": 0.2}
    assert key_args(LayerSpec(type="Dropout", params={"p": 0.5})) == {}
    assert key_args(LayerSpec(type="Mine", params={"units": 8})) == {"units": 8}  # custom: all shown


def test_write_graph_as_dot_source(tmp_path: Path) -> None:
    graph = render_graph(MLP)
    path = write_graph(graph, tmp_path / "mlp.gv")
    assert path.read_text(encoding="utf-8") == graph.source


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot binary is not installed")
@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_write_graph_as_an_image(tmp_path: Path, suffix: str, magic: bytes) -> None:
    path = write_graph(render_graph(MLP), tmp_path / f"mlp{suffix}")
    assert path.read_bytes().startswith(magic)


def test_images_without_dot_say_to_install_graphviz_or_write_gv(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GraphError, match="install graphviz") as caught:
        write_graph(render_graph(MLP), tmp_path / "mlp.svg")
    assert ".gv" in str(caught.value)
    assert not (tmp_path / "mlp.svg").exists()


def test_unknown_suffix_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match=r"\.gv.*\.png.*\.svg"):
        write_graph(render_graph(MLP), tmp_path / "mlp.pdf")


# ---------------------------------------------------------------------------------------------------------------
# Blocks: a cluster each, a fork and a merge node, the identity as an edge, repeats drawn once, collapsing


def _conv(cin: int, cout: int, stride: int = 1) -> dict:
    params = {"in_channels": cin, "out_channels": cout, "kernel_size": 3, "padding": 1}
    return {"type": "Conv2d", "params": params | ({"stride": stride} if stride != 1 else {})}


BLOCKS = design_from_dict({
    "version": 2, "name": "blocks", "input": {"shape": [1, 8, 8, 8]},
    "layers": [
        {"type": "Residual", "label": "res", "repeat": 3, "body": [_conv(8, 8), {"type": "ReLU"}]},
        {"type": "Parallel", "label": "mix", "branches": [[_conv(8, 4)], [], [{"type": "Sequential", "layers": [
            {"type": "LazyConv2d", "params": {"out_channels": 2, "kernel_size": 1}}]}]]},
        {"type": "ReLU"},
    ],
})  # fmt: skip
BROKEN_MERGE = design_from_dict({
    "version": 2, "name": "broken merge", "input": {"shape": [1, 8, 8, 8]},
    "layers": [{"type": "Residual", "label": "down", "body": [_conv(8, 16, 2)]}, {"type": "ReLU"}],
})  # fmt: skip
BLOCK_CASES: dict[str, tuple[Design, str, dict]] = {
    "blocks-no-trace": (BLOCKS, "none", {}),
    "blocks-after-run": (BLOCKS, "run", {}),
    "blocks-collapsed": (BLOCKS, "run", {"depth": 1}),
    "blocks-failing-merge": (BROKEN_MERGE, "run", {}),
}


def _block_graph(case: str) -> graphviz.Digraph:
    design, traced, options = BLOCK_CASES[case]
    return render_graph(design, infer_shapes(design) if traced == "run" else None, **options)


@pytest.mark.parametrize("case", list(BLOCK_CASES))
def test_block_graph_matches_golden_file(case: str) -> None:
    _check_golden(case, _block_graph(case).source)


def _edge_labels(graph: graphviz.Digraph, head: str) -> list[str]:
    """Labels of the edges into ``head``."""
    quoted = re.escape(f'"{head}"')
    return re.findall(rf'-> {quoted} \[label="([^"]*)"', graph.source)


def test_a_block_is_a_cluster_with_a_fork_a_merge_and_the_identity_as_an_edge() -> None:
    graph = _block_graph("blocks-after-run")
    assert 'subgraph "cluster_layer-1"' in graph.source and 'label="res\\nResidual x 3 (add)' in graph.source
    assert _node(graph, "layer-1/merge").startswith('\t\t"layer-1/merge" [label="+ add"')
    assert _edge_labels(graph, "layer-1/merge") == ["(1, 8, 8, 8)", "(1, 8, 8, 8)"]  # the body and the identity
    assert '"layer-1/fork" -> "layer-1/merge"' in graph.source
    assert "concat dim=1" in _node(graph, "layer-2/merge")
    assert _edge_labels(graph, "layer-2/merge") == ["(1, 4, 8, 8)", "(1, 8, 8, 8)", "(1, 2, 8, 8)"]
    assert _edge_labels(graph, "layer-3") == ["(1, 14, 8, 8)"]  # out of the merge: the block's output
    assert 'subgraph "cluster_layer-2/branches/2/0"' in graph.source  # a block inside a branch: nested


def test_a_repeated_block_is_drawn_once() -> None:
    graph = _block_graph("blocks-after-run")
    assert graph.source.count("Conv2d(in_channels=8, out_channels=8") == 1


def test_every_edge_has_a_shape_after_the_run() -> None:
    assert "?" not in re.findall(r'-> \S+ \[label="([^"]*)"', _block_graph("blocks-after-run").source)


def test_a_block_can_be_drawn_as_one_node() -> None:
    graph = _block_graph("blocks-collapsed")
    assert "cluster" not in graph.source
    assert "res\\nResidual x 3 (add)\\n1,752 params" in _node(graph, "layer-1")
    assert "Conv2d" not in graph.source
    one = render_graph(BLOCKS, infer_shapes(BLOCKS), collapse=["layer-4"]).source
    assert 'subgraph "cluster_layer-1"' in one and 'subgraph "cluster_layer-2"' not in one


def test_a_merge_that_does_not_fit_is_red_with_its_diagnosis_and_the_body_kept() -> None:
    graph = _block_graph("blocks-failing-merge")
    merge = _node(graph, "layer-1/merge")
    assert f'color="{RED}"' in merge and "projection shortcut" in merge
    assert f'color="{RED}"' not in _node(graph, "layer-1/body/0")
    assert _edge_labels(graph, "layer-1/merge") == ["(1, 16, 4, 4)", "(1, 8, 8, 8)"]
    assert 'fontcolor="#9e9e9e"' in _node(graph, "layer-2")
