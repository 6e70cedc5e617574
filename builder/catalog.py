"""The layer catalog, derived from ``torch.nn`` itself.

Every ``nn.Module`` subclass that can stand in a stack becomes a :class:`LayerEntry` whose parameters come
from the class signature (names, defaults, annotations) and whose summary is the first line of its docstring.
The few facts torch does not state in a machine-readable way (string choices, value ranges, which layers take
several inputs or return tuples) live in the small data tables at the top of this module.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from typing import Any

from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from builder import tensor_ops


class Category(StrEnum):
    """Palette groups, in display order."""

    LINEAR = "linear"
    CONVOLUTION = "convolution"
    POOLING = "pooling"
    NORMALIZATION = "normalization"
    ACTIVATION = "activation"
    DROPOUT = "dropout"
    PADDING = "padding"
    RECURRENT = "recurrent"
    TRANSFORMER = "transformer and attention"
    EMBEDDING = "embedding"
    SHAPE = "shape"
    TENSOR_OPS = "tensor ops"  # the builder's own layers (builder.tensor_ops)
    LAZY = "lazy"
    CUSTOM = "custom"


class ParamKind(StrEnum):
    """What a form field must accept."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    CHOICE = "choice"
    INT_OR_TUPLE = "int-or-tuple"
    FLOAT_OR_TUPLE = "float-or-tuple"
    SHAPE = "shape"  # a list of ints, such as LayerNorm's normalized_shape
    ANY = "any"


class CallStyle(StrEnum):
    """How a layer is called inside a stack (see ``builder.adapters.Stackable``)."""

    SINGLE = "single"  # y = layer(x)
    FIRST_OUTPUT = "first-output"  # y = layer(x)[0]: LSTM, GRU, RNN return (output, state)
    SELF_ATTENTION = "self-attention"  # y = layer(x, x, x)[0]: MultiheadAttention
    PAIR = "pair"  # y = layer(x, x): Transformer (src = tgt = x), decoders (memory = x), Bilinear


# torch.nn's module file -> palette group.
MODULE_CATEGORIES: dict[str, Category] = {
    "linear": Category.LINEAR,
    "conv": Category.CONVOLUTION,
    "pooling": Category.POOLING,
    "batchnorm": Category.NORMALIZATION,
    "instancenorm": Category.NORMALIZATION,
    "normalization": Category.NORMALIZATION,
    "activation": Category.ACTIVATION,
    "dropout": Category.DROPOUT,
    "padding": Category.PADDING,
    "rnn": Category.RECURRENT,
    "transformer": Category.TRANSFORMER,
    "sparse": Category.EMBEDDING,
    "flatten": Category.SHAPE,
    "fold": Category.SHAPE,
    "pixelshuffle": Category.SHAPE,
    "upsampling": Category.SHAPE,
    "channelshuffle": Category.SHAPE,
}

# Classes that cannot stand in a stack: they need a target, indices, a process group or a module argument.
EXCLUDED: frozenset[str] = frozenset(
    {
        "AdaptiveLogSoftmaxWithLoss",  # needs a target tensor
        "MaxUnpool1d",  # needs the indices of a MaxPool
        "MaxUnpool2d",
        "MaxUnpool3d",
        "SyncBatchNorm",  # needs torch.distributed
        "RNNBase",  # abstract bases
        "RNNCellBase",
    }
)

CALL_STYLES: dict[str, CallStyle] = {
    "LSTM": CallStyle.FIRST_OUTPUT,
    "GRU": CallStyle.FIRST_OUTPUT,
    "RNN": CallStyle.FIRST_OUTPUT,
    "LSTMCell": CallStyle.FIRST_OUTPUT,
    "MultiheadAttention": CallStyle.SELF_ATTENTION,
    "Transformer": CallStyle.PAIR,
    "TransformerDecoder": CallStyle.PAIR,
    "TransformerDecoderLayer": CallStyle.PAIR,
    "Bilinear": CallStyle.PAIR,
}

CALL_NOTES: dict[CallStyle, str] = {
    CallStyle.SINGLE: "",
    CallStyle.FIRST_OUTPUT: "returns a tuple; the stack passes its first element (the output) on",
    CallStyle.SELF_ATTENTION: "self-attention: x is query, key and value; the stack passes the output on",
    CallStyle.PAIR: "called as layer(x, x): x is both inputs (source and target, or target and memory)",
}

# String parameters with a closed set of values that torch checks at run time.
CHOICES: dict[str, tuple[str, ...]] = {
    "padding_mode": ("zeros", "reflect", "replicate", "circular"),
    "nonlinearity": ("tanh", "relu"),
    "activation": ("relu", "gelu"),
    "approximate": ("none", "tanh"),
    "mode": ("nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact"),
    "padding": ("valid", "same"),  # Conv padding accepts these strings as well as sizes
}
BAG_MODES: tuple[str, ...] = ("mean", "sum", "max")

# Value ranges torch implies (it raises outside them).
POSITIVE: frozenset[str] = frozenset(
    {
        "in_features", "out_features", "in1_features", "in2_features", "in_channels", "out_channels",
        "num_features", "num_channels", "num_groups", "groups", "embed_dim", "num_heads", "nhead",
        "d_model", "dim_feedforward", "hidden_size", "input_size", "num_layers", "num_embeddings",
        "embedding_dim", "num_encoder_layers", "num_decoder_layers", "upscale_factor",
        "downscale_factor", "num_parameters", "kernel_size", "stride", "dilation", "size", "output_size",
    }
)  # fmt: skip
NON_NEGATIVE: frozenset[str] = frozenset({"padding", "output_padding", "proj_size"})
PROBABILITY: frozenset[str] = frozenset({"p", "dropout"})

# Parameters that are never shown: torch plumbing or objects a stack cannot hold.
HIDDEN: frozenset[str] = frozenset(
    {"self", "device", "dtype", "_weight", "_freeze", "custom_encoder", "custom_decoder", "norm",
     "process_group", "enable_nested_tensor", "min_value", "max_value", "mode_rnn"}
)  # fmt: skip

# Unannotated parameters whose kind the default value does not tell.
NAMED_KINDS: dict[str, ParamKind] = {
    "embed_dim": ParamKind.INT,
    "num_heads": ParamKind.INT,
    "kdim": ParamKind.INT,
    "vdim": ParamKind.INT,
    "normalized_shape": ParamKind.SHAPE,
    "unflattened_size": ParamKind.SHAPE,
}


def _rnn_signature(extra: dict[str, Any]) -> list[inspect.Parameter]:
    base = list(inspect.signature(nn.RNNBase.__init__).parameters.values())
    params = [p for p in base if p.name != "mode"]
    kw = inspect.Parameter.KEYWORD_ONLY
    params += [inspect.Parameter(name, kw, default=d, annotation=type(d)) for name, d in extra.items()]
    return params


def _encoder_signature(layer_cls: type[nn.Module]) -> list[inspect.Parameter]:
    layer = list(inspect.signature(layer_cls.__init__).parameters.values())
    pos = inspect.Parameter.POSITIONAL_OR_KEYWORD
    num_layers = inspect.Parameter("num_layers", pos, annotation=int)
    return [*layer[:3], num_layers, *layer[3:]]


# Signatures torch hides behind *args (RNN, LSTM, GRU) or that take a sub-module (TransformerEncoder/Decoder).
SIGNATURE_OVERRIDES: dict[str, Any] = {
    "RNN": lambda: [p for p in _rnn_signature({"nonlinearity": "tanh"}) if p.name != "proj_size"],
    "LSTM": lambda: _rnn_signature({}),
    "GRU": lambda: [p for p in _rnn_signature({}) if p.name != "proj_size"],  # only LSTM projects
    "TransformerEncoder": lambda: _encoder_signature(nn.TransformerEncoderLayer),
    "TransformerDecoder": lambda: _encoder_signature(nn.TransformerDecoderLayer),
}

# Values used when a layer is added to a stack and its parameter has no default in torch.
SAMPLE_VALUES: dict[str, Any] = {
    "in_features": 20, "out_features": 10, "in1_features": 20, "in2_features": 20,
    "in_channels": 3, "out_channels": 8, "kernel_size": 3, "num_features": 3, "num_channels": 3,
    "num_groups": 1, "normalized_shape": [16], "embed_dim": 16, "num_heads": 2, "d_model": 16,
    "nhead": 2, "num_layers": 1, "input_size": 16, "hidden_size": 32, "num_embeddings": 100,
    "embedding_dim": 16, "output_size": 2, "padding": 1, "value": 0.0, "threshold": 0.1,
    "groups": 1, "upscale_factor": 2, "downscale_factor": 2, "norm_type": 2.0, "dim": 1,
    "unflattened_size": [4, 5], "size": 2, "n_classes": 10,
}  # fmt: skip


@dataclass(frozen=True)
class ParamSpec:
    """One constructor argument of a layer, as a form needs it."""

    name: str
    kind: ParamKind
    default: Any = None
    required: bool = False
    optional: bool = False  # None is an accepted value
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    arity: int | None = None  # the tuple length for INT_OR_TUPLE / FLOAT_OR_TUPLE, when fixed
    keyword_only: bool = False


@dataclass(frozen=True)
class LayerEntry:
    """A layer type that can stand in a stack."""

    name: str
    category: Category
    summary: str
    params: tuple[ParamSpec, ...]
    call_style: CallStyle = CallStyle.SINGLE
    lazy: bool = False
    doc_url: str = ""
    factory: Any = field(default=None, compare=False, repr=False)
    samples: dict[str, Any] = field(default_factory=dict, compare=False)  # sample values of this layer's own

    @property
    def builtin(self) -> bool:
        """True for a torch.nn class; False for the builder's own (builder.tensor_ops), written without ``nn.``."""
        return self.name not in tensor_ops.TENSOR_OPS

    def param(self, name: str) -> ParamSpec | None:
        """The parameter called ``name``, if the layer has one."""
        return next((p for p in self.params if p.name == name), None)

    def sample_params(self) -> dict[str, Any]:
        """Values for the required parameters, so a freshly added layer can be built."""
        return {p.name: self.samples.get(p.name, SAMPLE_VALUES.get(p.name, 1)) for p in self.params if p.required}


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    lines = [ln.strip() for ln in doc.split("\n\n")[0].splitlines()]
    text = " ".join(ln for ln in lines if ln and not ln.startswith("__init__"))
    if not text:
        paragraphs = [p for p in doc.split("\n\n") if not p.strip().startswith("__init__")]
        text = " ".join(paragraphs[0].split()) if paragraphs else cls.__name__
    return re.sub(r":(class|func|math|attr):`~?([^`]*)`", r"\2", text).split(". ")[0].rstrip(".") + "."


def _kind_of(param: inspect.Parameter) -> tuple[ParamKind, bool, int | None]:
    """(kind, accepts None, tuple arity) from an annotation, falling back on the default's type."""
    text = "" if param.annotation is inspect.Parameter.empty else str(param.annotation)
    text = text.replace("typing.", "").replace("torch.Size", "Size")
    optional = "None" in text or param.default is None
    if param.name in NAMED_KINDS:
        return NAMED_KINDS[param.name], optional, None
    if not text:
        default = param.default
        kinds = {bool: ParamKind.BOOL, int: ParamKind.INT, float: ParamKind.FLOAT, str: ParamKind.STR}
        return kinds.get(type(default), ParamKind.ANY), optional, None
    if "tuple" in text:
        arity = None if "..." in text else text.split("tuple[", 1)[1].split("]", 1)[0].count(",") + 1
        kind = ParamKind.FLOAT_OR_TUPLE if "float" in text else ParamKind.INT_OR_TUPLE
        return kind, optional, arity
    if "list[int]" in text or "Size" in text:
        return ParamKind.SHAPE, optional, None
    for token, kind in (("bool", ParamKind.BOOL), ("float", ParamKind.FLOAT), ("int", ParamKind.INT)):
        if re.search(rf"\b{token}\b", text):
            return kind, optional, None
    if "str" in text:
        return ParamKind.STR, optional, None
    return ParamKind.ANY, optional, None


def param_spec(layer: str, param: inspect.Parameter) -> ParamSpec:
    """A form field for one constructor argument (also used for custom layers' signatures)."""
    kind, optional, arity = _kind_of(param)
    required = param.default is inspect.Parameter.empty
    default = None if required else param.default
    choices: tuple[str, ...] = ()
    if layer == "EmbeddingBag" and param.name == "mode":
        kind, choices = ParamKind.CHOICE, BAG_MODES
    elif param.name in CHOICES and (kind in (ParamKind.STR, ParamKind.ANY) or param.name == "activation"):
        kind, choices = ParamKind.CHOICE, CHOICES[param.name]
    elif param.name == "padding" and "str" in str(param.annotation):
        choices = CHOICES["padding"]
    if callable(default):  # activation=F.relu in the transformer layers
        default = default.__name__
    minimum = maximum = None
    if param.name in POSITIVE and kind in (ParamKind.INT, ParamKind.INT_OR_TUPLE, ParamKind.SHAPE):
        minimum = 1
    elif param.name in NON_NEGATIVE or param.name in PROBABILITY:
        minimum = 0
    if param.name in PROBABILITY:
        maximum = 1
    return ParamSpec(
        name=param.name,
        kind=kind,
        default=default,
        required=required,
        optional=optional and not required,
        choices=choices,
        minimum=minimum,
        maximum=maximum,
        arity=arity,
        keyword_only=param.kind is inspect.Parameter.KEYWORD_ONLY,
    )


def _signature(name: str, cls: type) -> list[inspect.Parameter]:
    if name in SIGNATURE_OVERRIDES:
        return SIGNATURE_OVERRIDES[name]()
    params = inspect.signature(cls.__init__).parameters.values()
    return [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _category(name: str, cls: type) -> Category | None:
    if issubclass(cls, LazyModuleMixin):
        return Category.LAZY
    if name == "MultiheadAttention":
        return Category.TRANSFORMER
    return MODULE_CATEGORIES.get(cls.__module__.rsplit(".", 1)[-1])


def _factory(name: str, cls: type[nn.Module]) -> Any:
    """How to construct the layer from its (flat) parameters."""
    if name in ("TransformerEncoder", "TransformerDecoder"):
        inner = nn.TransformerEncoderLayer if name == "TransformerEncoder" else nn.TransformerDecoderLayer

        def build(num_layers: int, **kwargs: Any) -> nn.Module:
            return cls(inner(**kwargs), num_layers=num_layers)

        return build
    return cls


def _entry(name: str, cls: type[nn.Module]) -> LayerEntry | None:
    category = _category(name, cls)
    if category is None or name in EXCLUDED:
        return None
    params = tuple(param_spec(name, p) for p in _signature(name, cls) if p.name not in HIDDEN)
    return LayerEntry(
        name=name,
        category=category,
        summary=_summary(cls),
        params=params,
        call_style=CALL_STYLES.get(name, CallStyle.SINGLE),
        lazy=category is Category.LAZY,
        doc_url=f"https://pytorch.org/docs/stable/generated/torch.nn.{name}.html",
        factory=_factory(name, cls),
    )


def _tensor_op_spec(layer: str, param: inspect.Parameter) -> ParamSpec:
    return replace(param_spec(layer, param), **tensor_ops.ARGUMENT_RULES.get((layer, param.name), {}))


def _tensor_op_entry(name: str, cls: type[nn.Module]) -> LayerEntry:
    """One of the builder's own layers: its arguments from its signature, its summary from its docstring."""
    return LayerEntry(
        name=name,
        category=Category.TENSOR_OPS,
        summary=" ".join((inspect.getdoc(cls) or name).split("\n\n")[0].split()),
        params=tuple(_tensor_op_spec(name, p) for p in _signature(name, cls) if p.name != "self"),
        doc_url=tensor_ops.doc_url(name),
        factory=cls,
        samples=tensor_ops.SAMPLES.get(name, {}),
    )


@cache
def catalog() -> dict[str, LayerEntry]:
    """Every layer that can stand in a stack, by class name, grouped then sorted (tensor ops in their own order)."""
    entries = [_tensor_op_entry(name, cls) for name, cls in tensor_ops.TENSOR_OPS.items()]
    for name in dir(nn):
        cls = getattr(nn, name)
        if inspect.isclass(cls) and issubclass(cls, nn.Module) and not name.startswith("_"):
            entry = _entry(name, cls)
            if entry is not None:
                entries.append(entry)
    order, ops = list(Category), list(tensor_ops.TENSOR_OPS)
    entries.sort(key=lambda e: (order.index(e.category), ops.index(e.name) if e.name in ops else 0, e.name))
    return {e.name: e for e in entries}


def by_category() -> dict[Category, list[LayerEntry]]:
    """The catalog grouped for a palette (categories in display order, empty ones left out); torch.nn's tensor
    operations (Flatten, Unflatten, ChannelShuffle) are listed in the Tensor ops group as well as in their own."""
    groups: dict[Category, list[LayerEntry]] = {}
    for entry in catalog().values():
        groups.setdefault(entry.category, []).append(entry)
    also = [catalog()[name] for name in tensor_ops.ALSO_TENSOR_OPS if name in catalog()]
    groups[Category.TENSOR_OPS] = [*groups.get(Category.TENSOR_OPS, []), *also]
    return groups


def call_style(layer_type: str, params: dict[str, Any]) -> CallStyle:
    """The call convention of a layer in a stack; pools returning indices pass their output on."""
    if params.get("return_indices"):
        return CallStyle.FIRST_OUTPUT
    return CALL_STYLES.get(layer_type, CallStyle.SINGLE)
