"""The block examples against models written here with plain torch, the way the book and torchvision write them.

Three checks per example: the builder's trace has the independent model's output shape and parameter count; the
exported code, in every style, computes what the independent model computes (same weights, copied in order:
the exported modules register their parameters in the order a person would); and every exported file runs in a
fresh process that never imports this project (tests/oracle_runner.py).
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from builder.examples import load_example
from builder.export import ExportStyle, export_code
from builder.inference import infer_shapes
from builder.layer_run import token_range
from builder.trace import Trace

RUNNER = Path(__file__).parent / "oracle_runner.py"
STYLES: dict[str, tuple[ExportStyle, bool]] = {
    "sequential": (ExportStyle.SEQUENTIAL, False),
    "module": (ExportStyle.MODULE, False),
    "sequential-materialized": (ExportStyle.SEQUENTIAL, True),
    "module-materialized": (ExportStyle.MODULE, True),
}


# ---------------------------------------------------------------------------------------------- ResNet-18


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3x3 convolutions, a projection when the shape changes, ReLU after the add."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.down is None else self.down(x)
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + identity)


def resnet18() -> nn.Module:
    blocks = [BasicBlock(64, 64, 1), BasicBlock(64, 64, 1)]
    for cin, cout in ((64, 128), (128, 256), (256, 512)):
        blocks += [BasicBlock(cin, cout, 2), BasicBlock(cout, cout, 1)]
    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    return nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000))


# ---------------------------------------------------------------------------------------------- GoogLeNet (D2L)


class Inception(nn.Module):
    """D2L 8.4's Inception block, as the book writes it."""

    def __init__(self, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        b1 = relu(self.b1_1(x))
        b2 = relu(self.b2_2(relu(self.b2_1(x))))
        b3 = relu(self.b3_2(relu(self.b3_1(x))))
        b4 = relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


def googlenet() -> nn.Module:
    pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    b1 = nn.Sequential(nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3), nn.ReLU(), pool)
    b2 = nn.Sequential(nn.LazyConv2d(64, kernel_size=1), nn.ReLU(), nn.LazyConv2d(192, kernel_size=3, padding=1),
                       nn.ReLU(), pool)  # fmt: skip
    b3 = nn.Sequential(Inception(64, (96, 128), (16, 32), 32), Inception(128, (128, 192), (32, 96), 64), pool)
    b4 = nn.Sequential(Inception(192, (96, 208), (16, 48), 64), Inception(160, (112, 224), (24, 64), 64),
                       Inception(128, (128, 256), (24, 64), 64), Inception(112, (144, 288), (32, 64), 64),
                       Inception(256, (160, 320), (32, 128), 128), pool)  # fmt: skip
    b5 = nn.Sequential(Inception(256, (160, 320), (32, 128), 128), Inception(384, (192, 384), (48, 128), 128),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())  # fmt: skip
    return nn.Sequential(b1, b2, b3, b4, b5, nn.LazyLinear(10))


# ---------------------------------------------------------------------------------------------- DenseNet (D2L)


def conv_block(num_channels: int) -> nn.Module:
    return nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    """D2L 8.7: each convolution block's output is concatenated to its input."""

    def __init__(self, num_convs: int, num_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*[conv_block(num_channels) for _ in range(num_convs)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.net:
            x = torch.cat((x, block(x)), dim=1)
        return x


def densenet_block() -> nn.Module:
    transition = nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(10, kernel_size=1),
                               nn.AvgPool2d(kernel_size=2, stride=2))  # fmt: skip
    return nn.Sequential(DenseBlock(2, 10), transition)


# ---------------------------------------------------------------------------------------------- squeeze-excitation


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * gate


def se_block() -> nn.Module:
    return nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         SqueezeExcite(64, 16))  # fmt: skip


# ---------------------------------------------------------------------------------------------- U-Net


def double_conv(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    """Two levels down and up; each level concatenates its encoder features with what comes back up."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1, self.enc2, self.bottom = double_conv(1, 16), double_conv(16, 32), double_conv(32, 64)
        self.up2, self.dec2 = nn.ConvTranspose2d(64, 32, 2, stride=2), double_conv(64, 32)
        self.up1, self.dec1 = nn.ConvTranspose2d(32, 16, 2, stride=2), double_conv(32, 16)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(nn.functional.max_pool2d(e1, 2))
        bottom = self.bottom(nn.functional.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat((e2, self.up2(bottom)), dim=1))
        d1 = self.dec1(torch.cat((e1, self.up1(d2)), dim=1))
        return self.head(d1)


# ---------------------------------------------------------------------------------------------- MobileNetV2


class InvertedResidual(nn.Module):
    """MobileNetV2: expand (1x1), depthwise (3x3), project (1x1); a skip when the shape is kept."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]  # fmt: skip
        self.conv = nn.Sequential(*layers)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.skip else self.conv(x)


def mobilenetv2() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),
        InvertedResidual(32, 16, 1, 1), InvertedResidual(16, 24, 6, 2), InvertedResidual(24, 24, 6, 1),
        InvertedResidual(24, 32, 6, 2), InvertedResidual(32, 32, 6, 1), InvertedResidual(32, 32, 6, 1),
        nn.Conv2d(32, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, 10),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- pre-norm Transformer


class PreNormBlock(nn.Module):
    """x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attention(h, h, h)[0]
        return x + self.mlp(self.norm2(x))


def transformer_block() -> nn.Module:
    return nn.Sequential(PreNormBlock(64, 4), PreNormBlock(64, 4), nn.LayerNorm(64))


# ---------------------------------------------------------------------------------------------- ViT-Tiny


class ViT(nn.Module):
    """torchvision's VisionTransformer, CIFAR-sized: 4x4 patches, a class token, a learned position embedding,
    a pre-norm encoder, the class token's features to the head."""

    def __init__(self, patch: int = 4, width: int = 192, depth: int = 12, heads: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(3, width, kernel_size=patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embedding = nn.Parameter(torch.empty(1, (32 // patch) ** 2 + 1, width).normal_(std=0.02))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, 0.0, "gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.ln(self.encoder(x + self.pos_embedding))
        return self.head(x[:, 0])


# ---------------------------------------------------------------------------------------------- RNN LM (D2L 9.6)


class RNNLM(nn.Module):
    """D2L's concise RNN language model, as the book writes it: one-hot of X.T, an RNN, a linear output layer,
    swapaxes back to batch first."""

    def __init__(self, vocab_size: int = 28, num_hiddens: int = 32) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, num_hiddens)
        self.linear = nn.LazyLinear(vocab_size)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        embs = nn.functional.one_hot(X.T, self.vocab_size).type(torch.float32)
        rnn_outputs, _ = self.rnn(embs)
        return self.linear(rnn_outputs).swapaxes(0, 1)


# ---------------------------------------------------------------------------------------------- ConvNeXt block


class LayerScale(nn.Module):
    """timm's LayerScale: a learned factor per channel (a module, so it registers after the layers before it)."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class ConvNeXtBlock(nn.Module):
    """The ConvNeXt paper's Block: depthwise 7x7, channels-last LayerNorm and MLP, layer scale, residual."""

    def __init__(self, dim: int = 96, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = LayerScale(dim, layer_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma(self.pwconv2(self.act(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


INDEPENDENT: dict[str, Callable[[], nn.Module]] = {
    "resnet18": resnet18,
    "googlenet": googlenet,
    "densenet-block": densenet_block,
    "se-block": se_block,
    "unet": UNet,
    "mobilenetv2": mobilenetv2,
    "transformer-block": transformer_block,
    "vit-tiny": ViT,
    "rnn-lm": RNNLM,
    "convnext-block": ConvNeXtBlock,
}


# ---------------------------------------------------------------------------------------------- checks


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    return {name: infer_shapes(load_example(name)) for name in INDEPENDENT}


def _ran(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """The model in eval mode after one forward pass (lazy modules materialized), and its output."""
    model.eval()
    with torch.no_grad():
        return model, model(x)


def _input(name: str) -> torch.Tensor:
    design = load_example(name)
    generator = torch.Generator().manual_seed(0)
    if design.input.dtype == "int64":
        return torch.randint(0, token_range(design), design.input.shape, generator=generator)
    return torch.randn(design.input.shape, generator=generator)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(INDEPENDENT))
def test_block_example_has_the_independent_models_shape_and_size(name: str, traces: dict[str, Trace]) -> None:
    trace = traces[name]
    assert trace.ok, trace.error and trace.error.message
    model, out = _ran(INDEPENDENT[name](), _input(name))
    assert (trace.output_shape, trace.total_params) == (tuple(out.shape), _count(model))


def test_tensor_op_examples_have_their_figures(traces: dict[str, Trace]) -> None:
    """ViT-Tiny: patch conv 9,408 + class token 192 + positions 65 x 192 + 12 layers of 444,864 + norm + head."""
    assert (traces["vit-tiny"].output_shape, traces["vit-tiny"].total_params) == ((1, 10), 5_362_762)
    assert (traces["rnn-lm"].output_shape, traces["rnn-lm"].total_params) == ((2, 16, 28), 2_908)
    assert (traces["convnext-block"].output_shape, traces["convnext-block"].total_params) == ((2, 96, 14, 14), 79_296)


def test_resnet18_has_the_issues_figures(traces: dict[str, Trace]) -> None:
    assert (traces["resnet18"].output_shape, traces["resnet18"].total_params) == ((1, 1000), 11_689_512)


def _by_shape(tensors: list[torch.Tensor]) -> dict[tuple[int, ...], list[torch.Tensor]]:
    groups: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault(tuple(tensor.shape), []).append(tensor)
    return groups


def _copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters and buffers in registration order, shape by shape: a module's own parameters (a class
    token) come before its children's in one export style and among them in the other, the rest keeps its order."""
    for kind in (nn.Module.parameters, nn.Module.buffers):
        theirs, ours = _by_shape(list(kind(source))), _by_shape(list(kind(target)))
        assert {shape: len(group) for shape, group in theirs.items()} == {s: len(g) for s, g in ours.items()}
        with torch.no_grad():
            for shape, group in theirs.items():
                for their, our in zip(group, ours[shape], strict=True):
                    our.copy_(their)


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("name", list(INDEPENDENT))
def test_exported_block_example_computes_what_the_independent_model_computes(
    name: str, style: str, traces: dict[str, Trace], tmp_path: Path
) -> None:
    export_style, materialize = STYLES[style]
    path = tmp_path / "model.py"
    path.write_text(export_code(load_example(name), traces[name], export_style, materialize))
    x = _input(name)
    exported, _ = _ran(runpy.run_path(str(path), run_name="exported")["build_model"](), x)
    independent, expected = _ran(INDEPENDENT[name](), x)
    _copy_weights(independent, exported)
    with torch.no_grad():
        assert torch.allclose(exported(x), expected, atol=1e-5)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory, traces: dict[str, Trace]) -> dict[str, dict]:
    """Every block example in every style, written to files and run by one fresh process."""
    folder = tmp_path_factory.mktemp("block-exports")
    paths = {}
    for name in INDEPENDENT:
        for style, (export_style, materialize) in STYLES.items():
            paths[name, style] = folder / f"{name}_{style}.py".replace("-", "_")
            paths[name, style].write_text(export_code(load_example(name), traces[name], export_style, materialize))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, str(RUNNER), *map(str, paths.values())]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    return {f"{name}-{style}": results[str(path)] for (name, style), path in paths.items()}


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("name", list(INDEPENDENT))
def test_exported_block_example_runs_in_a_fresh_process(
    name: str, style: str, oracle: dict[str, dict], traces: dict[str, Trace]
) -> None:
    result = oracle[f"{name}-{style}"]
    assert "error" not in result, result.get("error")
    assert (tuple(result["shape"]), result["params"]) == (traces[name].output_shape, traces[name].total_params)
    assert not result["imports_builder"]
