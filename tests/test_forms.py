"""Inspector fields: widget choice per parameter kind, and typed text -> parameter values."""

from __future__ import annotations

import pytest

from builder.catalog import ParamKind, ParamSpec, catalog
from builder.design import DesignError, check_value
from builder.forms import Field, field_for, field_text, parse_field, same_value


def spec_of(layer: str, name: str) -> ParamSpec:
    spec = catalog()[layer].param(name)
    assert spec is not None
    return spec


@pytest.mark.parametrize(
    ("layer", "name", "field"),
    [
        ("Linear", "out_features", Field.INT),
        ("Linear", "bias", Field.BOOL),
        ("Dropout", "p", Field.FLOAT),
        ("Conv2d", "kernel_size", Field.TEXT),
        ("Conv2d", "padding_mode", Field.CHOICE),
        ("LayerNorm", "normalized_shape", Field.TEXT),
    ],
)
def test_widget_follows_the_catalog(layer, name, field):
    assert field_for(spec_of(layer, name)) is field


@pytest.mark.parametrize(
    ("layer", "name", "text", "value"),
    [
        ("Conv2d", "kernel_size", "3", 3),
        ("Conv2d", "kernel_size", "3, 5", [3, 5]),
        ("Conv2d", "kernel_size", "(3, 5)", [3, 5]),
        ("Conv2d", "padding", "same", "same"),
        ("LayerNorm", "normalized_shape", "16", [16]),
        ("LayerNorm", "normalized_shape", "4 x 16", None),
        ("Conv2d", "kernel_size", "", None),
        ("AdaptiveAvgPool2d", "output_size", "None, 7", [None, 7]),
    ],
)
def test_text_becomes_a_value(layer, name, text, value):
    spec = spec_of(layer, name)
    if value is None and text:
        with pytest.raises(DesignError):
            parse_field(spec, text)
    else:
        assert parse_field(spec, text) == value


def test_any_kind_reads_literals_and_falls_back_to_text():
    spec = ParamSpec("x", ParamKind.ANY)
    assert parse_field(spec, "[1, 2]") == [1, 2]
    assert parse_field(spec, "hello") == "hello"


def test_text_round_trips_for_sizes():
    spec = spec_of("Conv2d", "kernel_size")
    assert parse_field(spec, field_text([3, 5])) == [3, 5]
    assert field_text(None) == ""


def test_a_parsed_value_is_checked_by_the_design_rules():
    spec = spec_of("Conv2d", "kernel_size")
    assert check_value(spec, parse_field(spec, "0")) == "must be at least 1, got 0"
    assert check_value(spec, parse_field(spec, "1.5")) is not None


TEXT_DEFAULTS = [
    pytest.param(spec, id=f"{entry.name}.{spec.name}")
    for entry in catalog().values()
    for spec in entry.params
    if not spec.required and field_for(spec) is Field.TEXT
]


@pytest.mark.parametrize("spec", TEXT_DEFAULTS)
def test_a_text_field_showing_its_default_is_no_edit(spec):
    """The inspector ignores a field that holds the value the design already has (the browser may send it again)."""
    assert same_value(parse_field(spec, field_text(spec.default)), spec.default)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ([3, 3], (3, 3), True),  # the design's JSON list and torch's tuple default
        ([[1, 2], 3], ((1, 2), 3), True),
        (3, [3, 3], False),
        (1, True, False),  # a bool is not a number here
        (0, False, False),
        (0.5, 0.5, True),
        (None, None, True),
        ("same", "same", True),
        ("zeros", "reflect", False),
    ],
)
def test_same_value_compares_as_torch_would(a, b, same):
    assert same_value(a, b) is same
