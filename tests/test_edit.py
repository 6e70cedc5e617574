"""Pure design edits: custom layers carry their checked arguments, rename follows the stack, delete is guarded."""

from __future__ import annotations

import pytest

from builder.design import DesignError, design_from_dict, dump_design, load_design
from builder.edit import (
    add_layer,
    parse_shape,
    rename_class,
    renamed_custom_layer,
    with_custom_layer,
    without_custom_layer,
)
from builder.inference import infer_shapes

MY_LINEAR = (
    "class MyLinear(nn.Module):\n"
    "    def __init__(self, in_units, units):\n"
    "        super().__init__()\n"
    "        self.weight = nn.Parameter(torch.randn(in_units, units))\n"
    "        self.bias = nn.Parameter(torch.randn(units,))\n"
    "    def forward(self, X):\n"
    "        linear = torch.matmul(X, self.weight.data) + self.bias.data\n"
    "        return F.relu(linear)\n"
)


def _base():
    return design_from_dict({"input": {"shape": [2, 20]}, "layers": [{"type": "ReLU"}]})


def test_a_checked_custom_layer_enters_the_stack_with_its_checked_arguments() -> None:
    design = with_custom_layer(_base(), "MyLinear", MY_LINEAR, {"in_units": 20, "units": 8})
    design = add_layer(design, "MyLinear")
    assert design.layers[-1].params == {"in_units": 20, "units": 8}
    assert infer_shapes(design).output_shape == (2, 8)
    assert load_design(dump_design(design)) == design


def test_rename_changes_the_class_and_the_stack_but_not_strings() -> None:
    source = (
        'class A(nn.Module):\n    """A is here."""\n'
        "    def forward(self, x):\n        return super(A, self).forward(x)\n"
    )
    assert rename_class(source, "A", "B").splitlines() == [
        "class B(nn.Module):",
        '    """A is here."""',
        "    def forward(self, x):",
        "        return super(B, self).forward(x)",
    ]
    design = add_layer(with_custom_layer(_base(), "MyLinear", MY_LINEAR, {"in_units": 20, "units": 8}), "MyLinear")
    renamed = renamed_custom_layer(design, "MyLinear", "Dense")
    assert renamed.custom_names() == ["Dense"]
    assert renamed.layers[-1].type == "Dense"
    assert renamed.custom_layers[0].params == {"in_units": 20, "units": 8}
    with pytest.raises(DesignError, match="not a class name"):
        renamed_custom_layer(design, "MyLinear", "2fast")


def test_deleting_a_custom_layer_the_stack_uses_is_refused_with_the_layers_named() -> None:
    design = add_layer(with_custom_layer(_base(), "MyLinear", MY_LINEAR, {"in_units": 20, "units": 8}), "MyLinear")
    with pytest.raises(DesignError, match="used by the stack's layer 2"):
        without_custom_layer(design, "MyLinear")
    unused = with_custom_layer(_base(), "MyLinear", MY_LINEAR)
    assert without_custom_layer(unused, "MyLinear").custom_layers == ()


@pytest.mark.parametrize(
    ("text", "shape"), [("2, 20", (2, 20)), ("(1, 3, 224, 224)", (1, 3, 224, 224)), ("1x3x32x32", (1, 3, 32, 32))]
)
def test_parse_shape(text: str, shape: tuple[int, ...]) -> None:
    assert parse_shape(text) == shape


@pytest.mark.parametrize(
    ("text", "message"), [("2,x", "'x' is not a whole number"), ("", "sizes"), ("2, 0", "at least 1")]
)
def test_parse_shape_refuses(text: str, message: str) -> None:
    with pytest.raises(DesignError, match=message):
        parse_shape(text)
