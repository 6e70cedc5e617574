"""Real values: the book's checks reproduce (CenteredLayer, MyLinear), inputs are read safely, big runs are refused
with the reason, and a run's result crosses a process boundary as plain data."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from torch import nn

from builder.custom import define_trusted
from builder.design import Design, DType, InputSpec, LayerSpec
from builder.examples import load_example
from builder.values import (
    MAX_INPUT_VALUES,
    MAX_PARAMS,
    InputKind,
    ValueInput,
    ValueRun,
    make_input,
    parse_values,
    real_values,
    run_values,
    summarize,
)

BOOK_INPUT = "torch.tensor([1.0, 2, 3, 4, 5])"


def _design(*layers: LayerSpec, shape: tuple[int, ...] = (2, 20), custom=()) -> Design:
    return Design(name="values", input=InputSpec(shape=shape), layers=layers, custom_layers=custom)


@pytest.fixture(scope="module")
def centered() -> tuple[Design, dict[str, type[nn.Module]]]:
    design = load_example("centered-layer")
    return design, define_trusted(design.custom_layers)


@pytest.fixture(scope="module")
def my_linear() -> tuple[Design, dict[str, type[nn.Module]]]:
    design = load_example("my-linear")
    return design, define_trusted(design.custom_layers)


# ---------------------------------------------------------------- the book's checks


def test_centered_layer_on_one_to_five_gives_minus_two_to_two(centered) -> None:
    design, classes = centered
    alone = design.model_copy(update={"layers": design.layers[1:]})  # CenteredLayer() alone, as the book calls it
    run = real_values(alone, classes, parse_values(BOOK_INPUT))
    assert run.ok, run.problem
    assert run.input is not None and run.input.first == (1.0, 2.0, 3.0, 4.0, 5.0)
    output = run.layers[0].output
    assert output.first == (-2.0, -1.0, 0.0, 1.0, 2.0)
    assert output.preview() == "[-2.0, -1.0, 0.0, 1.0, 2.0]"
    assert output.shape == (5,)


def test_a_linear_layer_then_centered_layer_has_a_mean_of_about_zero(centered) -> None:
    design, classes = centered  # nn.Sequential(nn.LazyLinear(128), CenteredLayer()) on torch.rand(4, 8)
    x = make_input(ValueInput(InputKind.RAND, design.input.shape))
    run = real_values(design, classes, x)
    assert run.ok, run.problem
    linear, centred = run.layers
    assert linear.output.shape == centred.output.shape == (4, 128)
    assert abs(linear.output.mean) > 1e-3  # the linear layer's mean is not zero...
    assert abs(centred.output.mean) < 1e-6  # ...CenteredLayer's is, up to float32 rounding
    assert "mean ≈ 0" in centred.output.notes()
    assert [p.name for p in linear.params] == ["weight", "bias"]
    assert linear.params[0].values.shape == (128, 8)


def test_my_linear_outputs_after_its_relu_are_never_negative(my_linear) -> None:
    design, classes = my_linear
    run = real_values(design, classes, make_input(ValueInput(InputKind.RAND, (2, 20))))
    assert run.ok, run.problem
    output = run.layers[-1].output
    assert output.shape == (2, 8)
    assert output.minimum >= 0 and all(v >= 0 for v in output.first)
    assert "all values >= 0" in output.notes()
    weight = run.layers[-1].params[0]
    assert weight.name == "weight" and weight.values.shape == (64, 8)


def test_the_same_seed_gives_the_same_values_and_leaves_the_global_generator_alone(my_linear) -> None:
    design, classes = my_linear
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = real_values(design, classes, make_input(ValueInput(shape=(2, 20), seed=7)), seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = real_values(design, classes, make_input(ValueInput(shape=(2, 20), seed=7)), seed=7)
    third = real_values(design, classes, make_input(ValueInput(shape=(2, 20), seed=8)), seed=8)
    assert first == second
    assert first.layers[-1].output.first != third.layers[-1].output.first


def test_real_values_agree_with_the_same_model_in_plain_torch() -> None:
    design = _design(LayerSpec(type="LazyLinear", params={"out_features": 4}), LayerSpec(type="ReLU"), shape=(3, 5))
    x = make_input(ValueInput(shape=(3, 5), seed=1))
    run = real_values(design, {}, x, seed=1)
    torch.manual_seed(1)
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU()).eval()
    with torch.no_grad():
        expected = model(x)
    assert run.layers[-1].output.first == pytest.approx(expected.reshape(-1)[:8].tolist())
    assert run.layers[-1].output.mean == pytest.approx(float(expected.mean()))
    assert run.layers[-1].output.std == pytest.approx(float(expected.std()), rel=1e-5)


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        (BOOK_INPUT, (5,)),
        ("[1, 2, 3]", (3,)),
        ("1, 2, 3", (3,)),
        ("[[1, 2], [3, 4], [5, 6]]", (3, 2)),
        ("tensor([0.5, -1e-3])", (2,)),
    ],
)
def test_typed_values_are_read_as_literals(text: str, shape: tuple[int, ...]) -> None:
    tensor = parse_values(text)
    assert tuple(tensor.shape) == shape and tensor.dtype is torch.float32


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "type the input's values"),
        ("3", "a single number"),
        ("[1, 'a']", "is not a number"),
        ("[True, 2]", "is not a number"),
        ("[[1, 2], [3]]", "same length"),
        ("__import__('os').system('true')", "type a list of numbers"),
        ("torch.ones(3)", "type a list of numbers"),
        ("[1, 2", "cannot read that"),
        ("[" * 5000 + "]" * 5000, "cannot read that"),
        ("[1.5, 2]", None),  # fine as float...
    ],
)
def test_typed_values_that_are_not_numbers_are_refused_with_what_to_type(text: str, message: str | None) -> None:
    if message is None:
        parse_values(text)
        with pytest.raises(ValueError, match="whole numbers"):  # ...but not as token ids
            parse_values(text, DType.INT64)
        return
    with pytest.raises(ValueError, match=message):
        parse_values(text)


def test_random_inputs_follow_the_kind_shape_and_dtype() -> None:
    normal = make_input(ValueInput(InputKind.RANDN, (1000,)))
    uniform = make_input(ValueInput(InputKind.RAND, (1000,)))
    ids = make_input(ValueInput(InputKind.RANDN, (2, 8), DType.INT64), high=100)
    assert normal.min() < 0 < normal.max()
    assert float(uniform.min()) >= 0 and float(uniform.max()) < 1
    assert ids.dtype is torch.int64 and int(ids.min()) >= 0 and int(ids.max()) < 100
    with pytest.raises(ValueError, match="smaller input shape"):
        make_input(ValueInput(shape=(MAX_INPUT_VALUES + 1,)))


# ---------------------------------------------------------------- refusals and failures


def test_a_model_too_big_for_the_cpu_is_refused_with_the_reason_and_nothing_built() -> None:
    wide = LayerSpec(type="Linear", params={"in_features": 8192, "out_features": 8192})
    run = real_values(_design(wide, shape=(1, 8192)), {}, torch.zeros(1, 8192))
    assert not run.ok and not run.layers
    assert f"{MAX_PARAMS:,} parameters" in run.problem and "67,117,056" in run.problem


def test_a_layer_that_does_not_fit_the_typed_input_is_named() -> None:
    design = _design(LayerSpec(type="Linear", params={"in_features": 20, "out_features": 4}))
    run = run_values(design, ValueInput(InputKind.TYPED, text=BOOK_INPUT))
    assert not run.ok and not run.layers
    assert "(5,)" in run.problem and "Linear" in run.problem


def test_a_layer_failing_on_real_values_is_named_and_the_layers_before_keep_theirs() -> None:
    source = (
        "class NoFortyTwo(nn.Module):\n"
        "    def forward(self, X):\n"
        "        if bool((X == 42).any()):\n"
        "            raise ValueError('42 is not allowed')\n"
        "        return X\n"
    )
    custom = ({"name": "NoFortyTwo", "source": source},)
    design = Design.model_validate(
        {
            "name": "fails",
            "input": {"shape": [2, 3]},
            "layers": [{"type": "Identity"}, {"type": "NoFortyTwo"}],
            "custom_layers": custom,
        }
    )
    classes = define_trusted(design.custom_layers)
    run = real_values(design, classes, torch.tensor([[1.0, 42, 3], [4, 5, 6]]))  # the meta pass ran on others
    assert [layer.type for layer in run.layers] == ["Identity"]
    assert run.problem == "layer 2 (NoFortyTwo) failed on real values: 42 is not allowed"


def test_designs_with_custom_layers_run_their_values_in_the_sandbox(centered, monkeypatch) -> None:
    """The book's CenteredLayer check, through the sandbox: [1, 2, 3, 4, 5] becomes [-2, -1, 0, 1, 2]."""
    design, _ = centered
    monkeypatch.setattr("builder.custom.define_trusted", None)  # nothing may define the code in this process
    one = Design(name="c", input=InputSpec(shape=(5,)), layers=design.layers[-1:], custom_layers=design.custom_layers)
    typed = ValueInput(InputKind.TYPED, (5,), text="[1.0, 2, 3, 4, 5]")
    run = run_values(one, typed)
    assert run.ok, run.problem
    assert run.layers[-1].output.first == (-2.0, -1.0, 0.0, 1.0, 2.0)


def test_run_values_runs_a_built_in_design_with_token_ids() -> None:
    design = load_example("text-lstm")
    run = run_values(design, ValueInput(shape=design.input.shape, dtype=design.input.dtype))
    assert run.ok, run.problem
    assert [layer.id for layer in run.layers] == [layer.id for layer in design.layers]


# ---------------------------------------------------------------- summaries as plain data


def test_summaries_of_odd_tensors() -> None:
    one = summarize(torch.tensor([3.0]))
    assert one.std is None and one.preview() == "[3.0]"
    odd = summarize(torch.tensor([1.0, float("nan"), float("inf"), -1.0]))
    assert odd.nonfinite == 2 and odd.minimum == -1.0 and odd.maximum == 1.0
    assert odd.notes() == ("2 NaN or infinite values",)
    ints = summarize(torch.arange(20))
    assert ints.preview() == "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, ...] (20 values)"
    assert ints.mean == 9.5


def test_a_run_crosses_a_process_boundary_as_plain_data(my_linear) -> None:
    design, classes = my_linear
    run = real_values(design, classes, make_input(ValueInput(shape=(2, 20))))
    data = run.to_dict()
    assert json.loads(json.dumps(data)) == data  # plain data: JSON keeps all of it
    assert ValueRun.from_dict(json.loads(json.dumps(data))) == run
    assert pickle.loads(pickle.dumps(data)) == data


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.pop("layers"),
        lambda d: d.update(problem=["not", "text"]),
        lambda d: d["layers"][0]["output"].update(first=[1.0] * 1000),
        lambda d: d["layers"][0]["output"].update(shape=[2**70]),
        lambda d: d["layers"][0].update(id=7),
        lambda d: d.update(problem="x" * 100_000),
        lambda d: d["layers"][0]["output"].update(mean="0.0"),
    ],
)
def test_from_dict_refuses_malformed_data(corrupt, my_linear) -> None:
    design, classes = my_linear
    data = real_values(design, classes, make_input(ValueInput(shape=(2, 20)))).to_dict()
    corrupt(data)
    with pytest.raises(ValueError, match="value run"):
        ValueRun.from_dict(data)


def test_a_huge_random_input_is_refused_before_anything_is_allocated() -> None:
    with pytest.raises(ValueError, match=f"{(2**31 - 1) ** 2:,} values"):
        make_input(ValueInput(shape=(2**31 - 1, 2**31 - 1)))


# ---------------------------------------------------------------- blocks


TANH = {"type": "Tanh"}
RESIDUAL = {
    "version": 2,
    "name": "residual",
    "input": {"shape": [1, 3, 6, 6]},
    "layers": [
        {"type": "Conv2d", "params": {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}},
        {
            "type": "Residual",
            "body": [
                {"type": "Conv2d", "params": {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 1}},
                {"type": "ReLU"},
            ],
        },
        {
            "type": "Parallel",
            "branches": [[{"type": "Identity"}], [{"type": "Sequential", "layers": [{"type": "Tanh"}]}]],
        },
    ],
}


def test_blocks_run_with_real_values_as_plain_torch_runs_them() -> None:
    design = Design.model_validate(RESIDUAL)
    x = make_input(ValueInput(shape=(1, 3, 6, 6), seed=2))
    run = real_values(design, {}, x, seed=2)
    assert run.ok, run.problem
    torch.manual_seed(2)
    stem, body = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
    with torch.no_grad():
        y = stem(x)
        y = y + torch.relu(body(y))
        expected = torch.cat([y, torch.tanh(y)], dim=1)
    rows = [(layer.type, layer.path) for layer in run.layers]
    assert rows[:4] == [("Conv2d", ""), ("Residual", ""), ("Conv2d", "layer-2/body/0"), ("ReLU", "layer-2/body/1")]
    assert rows[4][0] == "Parallel" and rows[-1] == ("Tanh", "layer-5/branches/1/0/layers/0")
    assert run.layers[4].output.shape == (1, 8, 6, 6)
    assert run.layers[4].output.first == pytest.approx(expected.reshape(-1)[:8].tolist(), abs=1e-6)
    assert run.layers[4].output.mean == pytest.approx(float(expected.mean()), abs=1e-6)


def test_a_failure_inside_a_block_names_its_place() -> None:
    source = (
        "class NoFortyTwo(nn.Module):\n"
        "    def forward(self, X):\n"
        "        assert not bool((X == 42).any()), 'no 42'\n"
        "        return X\n"
    )
    data = {
        "version": 2,
        "name": "inner",
        "input": {"shape": [1, 3]},
        "layers": [{"type": "Sequential", "layers": [{"type": "Identity"}, {"type": "NoFortyTwo"}]}],
        "custom_layers": [{"name": "NoFortyTwo", "source": source}],
    }
    design = Design.model_validate(data)
    run = real_values(design, define_trusted(design.custom_layers), torch.tensor([[1.0, 42, 3]]))
    assert run.problem == "layer 1, layer-1/layers/1 (NoFortyTwo) failed on real values: no 42"
    assert [layer.type for layer in run.layers] == ["Identity"]
