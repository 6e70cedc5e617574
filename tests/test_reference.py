"""The layer reference over the whole catalog: every layer gets a summary, a signature, its docstring's shape rule
as clean text, and a mini example whose code, run with real torch, prints the output shape the reference shows."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from builder.catalog import Category, catalog
from builder.reference import (
    NO_DOC,
    find_shape_rule,
    grouped,
    latex_text,
    layer_reference,
    reference,
    rst_text,
    search,
    sections,
)

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")  # batch_first=False

LAYER_TYPES = list(catalog())
MARKUP = (":math:", ":attr:", ":class:", "``", "\\", "{", "}", ".. math")


def _layer_class(name: str) -> type:
    return getattr(nn, name) if catalog()[name].builtin else catalog()[name].factory


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_every_layer_has_a_summary_and_a_signature_with_its_defaults(layer_type: str) -> None:
    entry = catalog()[layer_type]
    ref = layer_reference(layer_type)
    assert ref.summary and ref.summary.endswith((".", ")"))
    assert ref.signature.startswith(f"{'nn.' if entry.builtin else ''}{layer_type}(")
    for spec in entry.params:
        shown = spec.name if spec.required else f"{spec.name}="
        assert shown in ref.signature
    assert [a.name for a in ref.arguments] == [p.name for p in entry.params]
    assert ref.category is entry.category


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_the_example_prints_the_shape_a_real_torch_run_gives(layer_type: str) -> None:
    example = layer_reference(layer_type).example
    assert not example.problem and example.output_shape is not None
    namespace = {"torch": torch, "nn": nn, "print": lambda *args: None}
    torch.manual_seed(0)
    exec(example.code, namespace)  # the code the page shows, run as a reader would run it
    assert tuple(namespace["y"].shape) == example.output_shape
    assert example.code.endswith(f"# torch.Size({list(example.output_shape)})")


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_the_formula_counts_the_examples_parameters(layer_type: str) -> None:
    ref = layer_reference(layer_type)
    namespace = {"torch": torch, "nn": nn, "print": lambda *args: None}
    exec(ref.example.code, namespace)
    assert ref.formula is not None
    # a tensor op's example holds its parameter (pos_embedding = nn.Parameter(...)) rather than a layer
    held = namespace["layer"].parameters() if "layer" in namespace else namespace.values()
    assert ref.formula.total == sum(p.numel() for p in held if isinstance(p, nn.Parameter))


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_shape_rules_and_summaries_are_clean_text(layer_type: str) -> None:
    ref = layer_reference(layer_type)
    for line in (ref.summary, *ref.shape_rule):
        assert not any(mark in line for mark in MARKUP), line


@pytest.mark.parametrize(
    "layer_type",
    [name for name in LAYER_TYPES if "\nShape:" in "\n" + (inspect.getdoc(_layer_class(name)) or "")],
)
def test_a_docstring_with_a_shape_section_gives_an_input_and_an_output_rule(layer_type: str) -> None:
    rule = "\n".join(layer_reference(layer_type).shape_rule).lower()
    assert "input" in rule and "output" in rule


def test_conv2d_reads_as_the_docs_render_it() -> None:
    ref = layer_reference("Conv2d")
    assert ref.shape_rule[:2] == (
        "- Input: (N, C_in, H_in, W_in) or (C_in, H_in, W_in)",
        "- Output: (N, C_out, H_out, W_out) or (C_out, H_out, W_out), where",
    )
    assert "    H_out = ⌊(H_in + 2 × padding[0] - dilation[0] × (kernel_size[0] - 1) - 1) / stride[0] + 1⌋" in (
        ref.shape_rule
    )
    assert ref.signature.startswith("nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0")
    assert ref.example.output_shape == (2, 8, 14, 14)
    assert ref.formula is not None and ref.formula.text() == "Conv2d(3, 8, 3): 8 x 3 x 3 x 3 + 8 = 224"
    assert ref.arguments[0].description == "Number of channels in the input image"
    stride = ref.arguments[3]
    assert (stride.name, stride.default, stride.description) == ("stride", "1", "Stride of the convolution.")


def test_lazy_layers_take_the_rule_of_the_class_they_become() -> None:
    ref = layer_reference("LazyLinear")
    assert ref.shape_source == "Linear"
    assert ref.shape_rule == layer_reference("Linear").shape_rule
    assert ref.formula is not None and ref.formula.text() == "LazyLinear(10) on 20 features: 10 x 20 + 10 = 210"


def test_recurrent_layers_give_their_inputs_and_outputs_and_the_stack_note() -> None:
    ref = layer_reference("LSTM")
    assert ref.shape_rule[0] == "Inputs: input, (h_0, c_0)"
    assert "    H_in = input_size" in ref.shape_rule
    assert any(line.startswith("Outputs: output") for line in ref.shape_rule)
    assert "first element" in ref.stack_note
    assert "y = layer(x)[0]" in ref.example.code


def test_transformer_layers_follow_see_the_docs_in_transformer_and_leave_masks_out() -> None:
    ref = layer_reference("TransformerEncoderLayer")
    assert ref.shape_source == "Transformer"
    assert ref.shape_rule[0].startswith("- src: (S, E)")
    assert not any("mask" in line.split(":")[0] for line in ref.shape_rule)
    encoder = layer_reference("TransformerEncoder")
    assert "nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, dim_feedforward=32), num_layers=1)" in (
        encoder.example.code
    )
    assert encoder.arguments[0].description.startswith("the number of expected features")


def test_a_layer_without_a_docstring_says_so_rather_than_borrowing_nn_modules() -> None:
    ref = layer_reference("CrossMapLRN2d")
    assert ref.summary == NO_DOC
    assert ref.shape_rule == ()


def test_latex_becomes_readable_text() -> None:
    assert latex_text(r"H_{out} = \left\lfloor\frac{H_{in} + 1}{\text{stride}}\right\rfloor") == (
        "H_out = ⌊(H_in + 1) / stride⌋"
    )
    assert latex_text(r"C \times \prod(\text{kernel\_size})") == "C × ∏(kernel_size)"
    aligned = r"\begin{aligned} N ={} & \text{batch size} \\ L ={} & 5 \end{aligned}"
    assert latex_text(aligned).splitlines() == ["N = batch size", "L = 5"]
    assert latex_text(r"\sqrt{k}") == "√k"


def test_rst_markup_is_removed() -> None:
    text = "If ``True``, adds :attr:`bias`; see :class:`~torch.nn.Linear` and `the docs <https://x.org>`_"
    assert rst_text(text) == "If True, adds bias; see Linear and the docs"


def test_sections_split_a_docstring_at_its_headings() -> None:
    found = sections("Summary.\n\nArgs:\n    p: a value\n\nShape:\n    - Input: x\n\nExamples::\n    >>> m\n")
    assert found[""] == ["Summary.", ""]
    assert found["Args"] == ["    p: a value", ""]
    assert found["Shape"] == ["    - Input: x", ""]
    assert find_shape_rule(nn.ReLU)[0] == (
        "- Input: (*), where * means any number of dimensions.",
        "- Output: (*), same shape as the input.",
    )


def test_search_finds_by_name_group_and_summary_exact_name_first() -> None:
    names = [ref.name for ref in search("conv2d")]
    assert names == ["Conv2d", "LazyConv2d"]
    assert {"Conv2d", "ConvTranspose2d", "LazyConvTranspose2d"} <= {ref.name for ref in search("conv 2d")}
    assert {ref.name for ref in search("rectified")} >= {"ReLU"}
    assert all(ref.category is Category.DROPOUT or "dropout" in ref.summary.lower() for ref in search("dropout"))
    assert len(search("")) == len(catalog())
    assert search("no such layer") == []


def test_grouped_follows_the_palettes_order() -> None:
    groups = grouped(reference().values())
    order = list(Category)
    assert list(groups) == sorted(groups, key=order.index)
    assert sum(len(g) for g in groups.values()) == len(catalog())
