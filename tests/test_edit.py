"""Pure design edits: new layers fit the shape they receive (inside blocks too), custom layers carry their checked
arguments, rename follows the stack, delete is guarded, entries move anywhere in the tree of blocks but inside
themselves."""

from __future__ import annotations

import pytest

from builder.design import BlockType, DesignError, design_from_dict, dump_design, load_design, validate_design, walk
from builder.edit import (
    TOP,
    Place,
    add_from_palette,
    add_layer,
    ancestors,
    apply_fix,
    duplicate_entry,
    incoming_at,
    insert_entry,
    move_by,
    move_entry,
    parse_shape,
    place_of,
    rename_class,
    renamed_custom_layer,
    stack_of,
    users_of,
    with_custom_layer,
    without_custom_layer,
)
from builder.examples import load_example
from builder.inference import infer_shapes
from builder.samples import fitted_params, incoming_shape

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


# ---------------------------------------------------------------- new layers fit the shape they receive

LENET = load_example("lenet")  # (1, 1, 28, 28) -> Conv2d(1, 6, 5, padding=2) -> Sigmoid -> AvgPool2d(2, 2) -> ...


@pytest.mark.parametrize(
    ("layer_type", "incoming", "expected"),
    [
        ("Conv2d", (1, 6, 14, 14), {"in_channels": 6, "out_channels": 8, "kernel_size": 3}),
        ("Conv2d", (6, 14, 14), {"in_channels": 6, "out_channels": 8, "kernel_size": 3}),  # unbatched (C, H, W)
        ("Conv1d", (2, 20), {"in_channels": 2, "out_channels": 8, "kernel_size": 3}),  # unbatched (C, L)
        ("ConvTranspose2d", (1, 16, 5, 5), {"in_channels": 16, "out_channels": 8, "kernel_size": 3}),
        ("Linear", (1, 400), {"in_features": 400, "out_features": 10}),
        ("Bilinear", (2, 7), {"in1_features": 7, "in2_features": 7, "out_features": 10}),
        ("BatchNorm1d", (2, 20), {"num_features": 20}),  # (N, C): always batched
        ("BatchNorm2d", (1, 6, 14, 14), {"num_features": 6}),
        ("InstanceNorm1d", (4, 12, 9), {"num_features": 12}),
        ("GroupNorm", (1, 6, 14, 14), {"num_groups": 1, "num_channels": 6}),
        ("LayerNorm", (2, 5, 12), {"normalized_shape": [12]}),
        ("LSTM", (5, 2, 12), {"input_size": 12, "hidden_size": 32}),
        ("TransformerEncoderLayer", (2, 5, 15), {"d_model": 15, "nhead": 1}),  # heads must divide d_model
        ("MultiheadAttention", (2, 5, 24), {"embed_dim": 24, "num_heads": 2}),
        ("Embedding", (2, 16), {"num_embeddings": 100, "embedding_dim": 16}),  # token ids say nothing of sizes
    ],
)
def test_a_new_layer_reads_the_sizes_torch_asks_of_its_input(layer_type, incoming, expected) -> None:
    assert fitted_params(layer_type, incoming) == expected


@pytest.mark.parametrize("incoming", [None, ()])
def test_without_a_shape_a_new_layer_keeps_the_catalog_samples(incoming) -> None:
    assert fitted_params("Conv2d", incoming) == {"in_channels": 3, "out_channels": 8, "kernel_size": 3}


def test_a_shape_too_short_for_a_size_keeps_that_sample() -> None:
    assert fitted_params("Conv2d", (2, 10))["in_channels"] == 3, "a Conv2d needs at least (C, H, W)"


def test_the_incoming_shape_is_the_input_or_the_output_of_the_layer_before() -> None:
    assert incoming_shape(LENET, 0) == (1, 1, 28, 28)
    assert incoming_shape(LENET, 3) == (1, 6, 14, 14)
    assert incoming_shape(LENET, len(LENET.layers)) == (1, 10)


def test_a_conv2d_dropped_after_a_pool_starts_with_its_channels() -> None:
    design = add_from_palette(LENET, "Conv2d", 3)
    added = design.layers[3]
    assert added.type == "Conv2d" and added.id not in {layer.id for layer in LENET.layers}
    assert added.params["in_channels"] == 6
    assert infer_shapes(design.model_copy(update={"layers": design.layers[:4]})).ok, "the new layer fits"
    assert add_from_palette(LENET, "Linear").layers[-1].params["in_features"] == 10


def test_a_trace_of_the_design_gives_the_shape_without_another_pass() -> None:
    trace = infer_shapes(LENET)
    assert incoming_shape(LENET, 7, trace) == (1, 400)
    other = LENET.model_copy(update={"input": LENET.input.model_copy(update={"shape": (1, 1, 32, 32)})})
    assert incoming_shape(other, 7, trace) == (1, 576), "a trace of another input is not used"


def test_a_custom_layer_before_is_never_run_for_the_shape() -> None:
    design = with_custom_layer(_base(), "MyLinear", MY_LINEAR, {"in_units": 20, "units": 8})
    design = add_layer(design, "MyLinear")
    assert infer_shapes(design).output_shape == (2, 8), "running it would tell"
    assert incoming_shape(design, 2) is None, "the custom layer's output is unknown without running it"
    assert add_from_palette(design, "Linear").layers[-1].params["in_features"] == 20, "the catalog's sample"


def test_a_custom_layer_before_is_read_from_a_trace_the_caller_has() -> None:
    design = with_custom_layer(_base(), "MyLinear", MY_LINEAR, {"in_units": 20, "units": 8})
    design = add_layer(design, "MyLinear")
    trace = infer_shapes(design)
    assert incoming_shape(design, 2, trace) == (2, 8)
    assert add_from_palette(design, "Linear", trace=trace).layers[-1].params["in_features"] == 8


def test_a_failing_layer_before_leaves_the_shape_unknown() -> None:
    broken = design_from_dict(
        {"input": {"shape": [2, 20]}, "layers": [{"type": "Linear", "params": {"in_features": 30, "out_features": 8}}]}
    )
    assert incoming_shape(broken, 1) is None
    assert add_from_palette(broken, "Linear").layers[-1].params["in_features"] == 20


# ---------------------------------------------------------------- the tree: stacks inside blocks


def _blocks():
    """Conv2d -> Residual "res1" (body: BatchNorm2d, ReLU) -> Parallel (two branches) -> Flatten, on (1, 8, 16, 16)."""
    return design_from_dict(
        {
            "version": 2,
            "input": {"shape": [1, 8, 16, 16]},
            "layers": [
                {"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 16, "kernel_size": 3, "padding": 1}},
                {
                    "type": "Residual",
                    "label": "res1",
                    "body": [{"type": "BatchNorm2d", "params": {"num_features": 16}}, {"type": "ReLU"}],
                },
                {"type": "Parallel", "branches": [[{"type": "ReLU"}], []]},
                {"type": "Flatten"},
            ],
        }
    )


def _ids(entries) -> list[str]:
    return [entry.id for entry in entries]


def test_every_entry_has_a_place_and_its_blocks() -> None:
    design = _blocks()
    assert place_of(design, "layer-4") == Place("layer-2", "body", 1)
    assert place_of(design, "layer-6") == Place("layer-5", "branches/0", 0)
    assert place_of(design, "layer-7") == Place(TOP, "layers", 3)
    assert place_of(design, "layer-99") is None
    assert ancestors(design, "layer-4") == ["layer-2"] and ancestors(design, "layer-2") == []
    assert _ids(stack_of(design, "layer-5", "branches/1")) == []
    with pytest.raises(DesignError, match="no stack 'shortcut'"):
        stack_of(design, "layer-5", "shortcut")


def test_a_layer_dropped_into_a_block_fits_the_tensor_it_receives_there() -> None:
    design = _blocks()
    inside, new = insert_entry(design, "Conv2d", "layer-2", "body", 1)
    assert _ids(stack_of(inside, "layer-2", "body")) == ["layer-3", new, "layer-4"]
    assert stack_of(inside, "layer-2", "body")[1].params["in_channels"] == 16, "(1, 16, 16, 16) comes in"
    first, new = insert_entry(design, "Linear", "layer-5", "branches/1", 0)
    assert stack_of(first, "layer-5", "branches/1")[0].params["in_features"] == 16, "a branch gets the block's input"
    after, new = insert_entry(design, "Linear", TOP, "layers", 4)
    assert after.layers[-1].params["in_features"] == 16 * 16 * 16 * 2, "after the blocks: Flatten of the concat"
    assert len({located.entry.id for located in walk(after.layers)}) == 8, "fresh ids, unique across the tree"


def test_a_trace_of_the_design_gives_a_nested_shape_without_another_pass() -> None:
    design = _blocks()
    trace = infer_shapes(design)
    assert incoming_at(design, "layer-2", "body", 0, trace) == (1, 16, 16, 16)
    assert incoming_at(design, "layer-2", "body", 2, trace) == (1, 16, 16, 16)
    assert incoming_at(design, TOP, "layers", 3, trace) == (1, 32, 16, 16)


def test_a_custom_layer_before_a_block_is_never_run_for_the_shape() -> None:
    design = with_custom_layer(_blocks(), "MyLinear", MY_LINEAR, {"in_units": 16, "units": 16})
    design, _ = insert_entry(design, "MyLinear", TOP, "layers", 0)
    assert incoming_at(design, "layer-2", "body", 0) is None


@pytest.mark.parametrize("block_type", list(BlockType))
def test_a_block_from_the_palette_is_a_valid_entry(block_type) -> None:
    design, new = insert_entry(_base(), block_type)
    validate_design(design)
    assert design.layers[-1].type == block_type and design.layers[-1].id == new


def test_moves_keep_ids_and_go_anywhere_but_inside_themselves() -> None:
    design = _blocks()
    moved = move_entry(design, "layer-4", "layer-5", "branches/1", 0)
    assert _ids(stack_of(moved, "layer-2", "body")) == ["layer-3"]
    assert _ids(stack_of(moved, "layer-5", "branches/1")) == ["layer-4"]
    out = move_entry(design, "layer-3", TOP, "layers", 2)
    assert _ids(out.layers) == ["layer-1", "layer-2", "layer-3", "layer-5", "layer-7"]
    down = move_entry(design, "layer-1", TOP, "layers", 3)
    assert _ids(down.layers) == ["layer-2", "layer-5", "layer-7", "layer-1"], "the position counts without the entry"
    nested = move_entry(design, "layer-2", "layer-5", "branches/1", 0)
    assert _ids(stack_of(nested, "layer-5", "branches/1")) == ["layer-2"]
    with pytest.raises(DesignError, match="cannot go inside itself"):
        move_entry(design, "layer-2", "layer-2", "body", 0)
    with pytest.raises(DesignError, match="cannot go inside itself"):
        move_entry(nested, "layer-5", "layer-2", "body", 0)
    with pytest.raises(KeyError):
        move_entry(design, "layer-99", TOP, "layers", 0)


def test_an_empty_body_is_refused_by_validation_not_by_the_move() -> None:
    emptied = move_entry(move_entry(_blocks(), "layer-3", TOP, "layers", 0), "layer-4", TOP, "layers", 0)
    with pytest.raises(DesignError, match="a Residual needs a body"):
        validate_design(emptied)


def test_up_down_and_duplicate_act_in_the_entry_s_own_stack() -> None:
    design = _blocks()
    assert _ids(stack_of(move_by(design, "layer-4", -1), "layer-2", "body")) == ["layer-4", "layer-3"]
    assert _ids(move_by(design, "layer-7", 1).layers) == _ids(design.layers), "the last stays last"
    copied, copy = duplicate_entry(design, "layer-2")
    assert _ids(copied.layers) == ["layer-1", "layer-2", copy, "layer-5", "layer-7"]
    assert copied.layers[2].body[0].params == {"num_features": 16}
    assert len({located.entry.id for located in walk(copied.layers)}) == 10, "the copy's layers get new ids too"
    validate_design(copied)


def test_ids_custom_users_and_renames_see_the_whole_tree() -> None:
    design = with_custom_layer(_blocks(), "MyLinear", MY_LINEAR, {"in_units": 16, "units": 16})
    design, _ = insert_entry(design, "MyLinear", "layer-5", "branches/1", 0)
    assert add_layer(design, "ReLU").layers[-1].id == "layer-9", "after every id in the tree"
    assert users_of(design, "MyLinear") == [3]
    with pytest.raises(DesignError, match="stack's layer 3"):
        without_custom_layer(design, "MyLinear")
    renamed = renamed_custom_layer(design, "MyLinear", "Dense")
    assert stack_of(renamed, "layer-5", "branches/1")[0].type == "Dense"


def test_a_fix_inside_a_block_applies_where_the_error_is() -> None:
    design = design_from_dict(
        {
            "version": 2,
            "input": {"shape": [1, 8, 16, 16]},
            "layers": [
                {
                    "type": "Residual",
                    "body": [{"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 16, "kernel_size": 1}}],
                }
            ],
        }
    )
    error = infer_shapes(design).error
    fix = next(fix for fix in error.fixes if fix.certain)
    fixed = apply_fix(design, error, fix)
    assert [layer.type for layer in fixed.layers[0].shortcut] == ["Conv2d", "BatchNorm2d"]
    assert infer_shapes(fixed).error is None


def test_set_name_renames_the_design_and_refuses_a_name_that_cannot_stand():
    from builder.edit import set_name

    seed = load_example("d2l-mlp")
    assert set_name(seed, "  LeNet 5 ").name == "LeNet 5"
    assert set_name(seed, "   ").name == "untitled"
    with pytest.raises(DesignError, match="at most 100"):
        set_name(seed, "x" * 101)
