"""Importing a ViT written as torchvision writes it (tests/fixtures/import/torchvision_vit.py).

What it builds is checked against the executed code in tests/test_import_models.py; here its export runs in a fresh
process in every style, and each idiom that cannot be read exactly is refused with its line and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from builder.export import ExportStyle, export_code
from builder.importer import ImportFailed, import_code
from builder.inference import infer_shapes

FIXTURE = Path(__file__).parent / "fixtures" / "import" / "torchvision_vit.py"
RUNNER = Path(__file__).parent / "oracle_runner.py"
CODE = FIXTURE.read_text()
RESHAPE = "x = x.reshape(n, self.hidden_dim, n_h * n_w)"


def _executed(code: str) -> tuple[tuple[int, ...], int]:
    namespace: dict[str, Any] = {}
    exec(compile(code, "fixture", "exec"), namespace)
    model = namespace["model"].eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    return tuple(out.shape), sum(p.numel() for p in model.parameters())


def _refusal(code: str) -> str:
    with pytest.raises(ImportFailed) as caught:
        import_code(code)
    return str(caught.value)


def _line_of(code: str, text: str) -> int:
    return next(n for n, line in enumerate(code.splitlines(), 1) if text in line)


def test_the_imported_vit_exports_in_every_style_and_the_exported_code_runs(tmp_path: Path) -> None:
    design = import_code(CODE).design
    trace = infer_shapes(design)
    assert (trace.output_shape, trace.total_params) == _executed(CODE)
    paths = []
    for style in ExportStyle:
        paths.append(tmp_path / f"vit_{style.value}.py")
        paths[-1].write_text(export_code(design, trace, style))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, str(RUNNER), *map(str, paths)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    for path in paths:
        result = results[str(path)]
        assert "error" not in result, result.get("error")
        assert (tuple(result["shape"]), result["params"]) == (trace.output_shape, trace.total_params)
        assert not result["imports_builder"]


def test_the_reshape_reads_as_a_flatten_of_the_patch_grid_and_says_why() -> None:
    result = import_code(CODE)
    types = [getattr(entry, "type", type(entry).__name__) for entry in result.design.layers]
    assert types[:5] == ["Conv2d", "Flatten", "Permute", "PrependToken", "AddParameter"]
    assert result.design.layers[1].params == {"start_dim": 2}
    note = next(n for n in result.notes if n.line == _line_of(CODE, RESHAPE))
    assert note.severity == "info" and "read as Flatten(start_dim=2)" in note.message
    assert "(2, 96, 8, 8)" in note.message  # the tensor at the fed input; the batch itself is never baked in
    checks = [n for n in result.notes if "torch._assert(...) checks the input and computes nothing" in n.message]
    assert len(checks) == 5 and all(n.severity == "info" for n in checks)


def test_without_the_mlp_class_the_refusal_names_it_and_asks_for_its_definition() -> None:
    start, end = CODE.index("class MLP(torch.nn.Sequential):"), CODE.index("class MLPBlock(MLP):")
    code = CODE[:start].replace("import torch.nn as nn\n", "import torch.nn as nn\n\nfrom ..ops.misc import MLP\n")
    code += CODE[end:]
    message = _refusal(code)
    line = _line_of(code, "super().__init__(in_dim, [mlp_dim, in_dim]")
    assert f"line {line}: warning:" in message
    assert "MLPBlock derives from MLP, imported from ..ops.misc, which is not in the pasted code: paste its " \
        "definition as well" in message  # fmt: skip


@pytest.mark.parametrize(
    ("reshape", "why"),
    [
        ("x.reshape(n, self.hidden_dim // 2, 2 * n_h * n_w)", "the sizes before the last must be its own dimensions"),
        ("x.reshape(c, self.hidden_dim, n_h * n_w)", "keeps no batch first"),
        ("x.reshape(n, h, n_h * n_w)", "sizes read off the tensor after the batch have no tensor op"),
        ("x.reshape(2, self.hidden_dim, n_h * n_w)", "keeps no batch first"),
    ],
)
def test_a_reshape_that_is_not_provably_a_flatten_is_refused_naming_its_line(reshape: str, why: str) -> None:
    code = CODE.replace(RESHAPE, f"x = {reshape}")
    message = _refusal(code)
    line = _line_of(code, reshape)
    assert f"line {line}: warning: `{reshape}`" in message
    assert why in message and "class VisionTransformer is refused as a whole" in message


def test_a_reshape_of_sizes_read_off_the_tensor_needs_the_input_the_code_feeds() -> None:
    code = CODE.replace("model(torch.randn(2, 3, 32, 32)).shape\n", "")
    assert "read only with the input the code feeds the model" in _refusal(code)
    design = import_code(code, input_shape=(2, 3, 32, 32)).design  # a given input shape is the input fed
    assert infer_shapes(design).output_shape == (2, 10)


def test_self_attention_with_a_mask_is_refused() -> None:
    code = CODE.replace("need_weights=False)", "need_weights=False, attn_mask=None)")
    assert "MultiheadAttention with attn_mask: a stack passes no masks" in _refusal(code)


def test_keyword_arguments_from_a_dict_the_code_builds_are_read() -> None:
    code = "import torch\nfrom torch import nn\nkw = {'bias': False}\nnet = nn.Sequential(nn.Linear(2, 3, **kw))\n"
    layer = import_code(code).design.layers[0]
    assert (layer.type, layer.params) == ("Linear", {"in_features": 2, "out_features": 3, "bias": False})


SPATIAL = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        n = x.shape[0]
        x = self.conv(x){permute}
        return x.reshape(n, {size}, -1)


model = Net()
model(torch.randn(2, 3, 16, 16))
"""


def test_a_number_equal_to_a_size_only_at_the_fed_input_is_not_taken_for_it() -> None:
    """After the permute, dim 1 is the height: 16 at the fed input, 32 at a taller one, where a Flatten differs."""
    code = SPATIAL.format(permute=".permute(0, 2, 1, 3)", size=16)
    with pytest.raises(ImportFailed) as caught:
        import_code(code, model="Net")  # evaluation's reason (the chain reader names the line too, more briefly)
    expected = "line 13: warning: `x.reshape(n, 16, -1)`: at the input (2, 3, 32, 16) "
    assert expected + "the tensor is (2, 32, 8, 16), not [16] after the batch" in str(caught.value)
    design = import_code(SPATIAL.format(permute="", size=8)).design  # the channels: 8 at every input
    assert [(layer.type, layer.params) for layer in design.layers][1] == ("Flatten", {"start_dim": 2})
    assert infer_shapes(design).output_shape == (2, 8, 256)


def test_a_layer_set_by_a_base_class_the_paste_lacks_names_that_base() -> None:
    code = (
        "import torch\nfrom torch import nn\nfrom mylib import Backbone\n\n\n"
        "class Net(Backbone):\n    def __init__(self):\n        super().__init__(16)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n\n\nmodel = Net()\n"
    )
    with pytest.raises(ImportFailed) as caught:
        import_code(code, model="Net")
    assert "Net derives from mylib.Backbone, which is not in the pasted code: paste its definition" in str(caught.value)


def test_isinstance_and_attributes_in_init_are_answered_by_torch_for_layers_and_pasted_subclasses() -> None:
    code = (
        "import torch\nfrom torch import nn\n\n\nclass Wide(nn.Linear):\n    pass\n\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        probe, wide = nn.Conv1d(4, 6, 3), Wide(4, 4)\n"
        "        width = probe.out_channels + probe.kernel_size[0] if isinstance(wide, nn.Linear) else 1\n"
        "        if isinstance(probe, (nn.Linear, nn.BatchNorm1d)):\n            width = 100\n"
        "        self.fc = nn.Linear(4, width)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n\n\nmodel = Net()\nmodel(torch.randn(2, 4))\n"
    )
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    layer = import_code(code).design.layers[0]
    assert (layer.type, layer.params["out_features"]) == ("Linear", namespace["model"].fc.out_features) == ("Linear", 9)
