"""The layer reference: for every catalog layer, what torch's docstring says and what the layer does on an input.

Each :class:`LayerReference` is derived, never written by hand: the summary, the arguments' descriptions and the
input/output shape rule come from the class's docstring (its ``Shape:``, ``Inputs:``/``Outputs:`` sections, or its
``forward``'s), cleaned of reStructuredText and LaTeX; the signature from the catalog; the mini example and the
parameter formula from a meta-device forward pass of the layer's sample design (``builder.samples``). Lazy layers
take the shape rule of the class they become. ``reference()`` derives all of them once per process.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from torch import nn

from builder.catalog import CALL_NOTES, CallStyle, Category, LayerEntry, ParamSpec, call_style, catalog
from builder.design import DType, LayerSpec
from builder.formulas import Formula, call_text, design_formula
from builder.inference import infer_shapes
from builder.layer_run import token_range
from builder.samples import sample_design
from builder.tensor_code import inline_op, uses_functional
from builder.tensor_ops import TENSOR_OPS

Shape = tuple[int, ...]

# ---------------------------------------------------------------- LaTeX and reStructuredText, as plain text

# LaTeX commands and the characters they stand for; any other \command becomes its bare name.
LATEX_SYMBOLS: dict[str, str] = {
    "times": "×", "cdot": "·", "odot": "⊙", "ast": "*", "geq": "≥", "ge": "≥", "leq": "≤", "le": "≤",
    "neq": "≠", "ne": "≠", "approx": "≈", "infty": "∞", "in": "∈", "sum": "Σ", "prod": "∏", "ldots": "…",
    "dots": "…", "cdots": "…", "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "rightarrow": "→",
    "to": "→", "pm": "±", "div": "÷", "lvert": "|", "rvert": "|", "vert": "|", "mid": "|", "quad": " ", "qquad": " ",
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ", "eta": "η",
    "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
    "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Sigma": "Σ", "Pi": "Π",
    "left": "", "right": "", "big": "", "Big": "", "bigg": "", "limits": "", "displaystyle": "",
}  # fmt: skip
# Commands whose one argument is kept as text: \text{in} -> in.
LATEX_TEXT = frozenset({"text", "mathrm", "textbf", "mathbf", "textit", "mathit", "operatorname", "mathcal", "mathbb"})
LATEX_ESCAPES: dict[str, str] = {"_": "_", "{": "{", "}": "}", "%": "%", ",": " ", ";": " ", "!": "", " ": " "}
ROLE = re.compile(r":(?:math|attr|class|func|meth|mod|ref|obj|data|exc):`([^`]*)`")
SECTION = re.compile(r"^([A-Z][A-Za-z ]*?):(?::)?(.*)$")  # "Shape:", "Inputs: input, h_0", "Examples::"
ITEM = re.compile(r"^\s*([-*])\s+")
WHOLE_MATH = re.compile(r":math:`([^`]*)`")
NO_DOC = "torch gives this layer no description."
TRAILING_DEFAULT = re.compile(r"\s*(?:\(default\s*=?[^)]*\)|Default:?\s*[^\s()]+)\.?\s*$", re.IGNORECASE)


def _group(tex: str, start: int) -> tuple[str, int]:
    """The brace group (or single token) starting at ``start``: (its content, the index after it)."""
    while start < len(tex) and tex[start] == " ":
        start += 1
    if start >= len(tex):
        return "", start
    if tex[start] != "{":
        if tex[start] == "\\":
            match = re.match(r"\\[A-Za-z]+|\\.", tex[start:])
            end = start + (match.end() if match else 1)
            return tex[start:end], end
        return tex[start], start + 1
    depth = 0
    for index in range(start, len(tex)):
        depth += {"{": 1, "}": -1}.get(tex[index], 0)
        if depth == 0:
            return tex[start + 1 : index], index + 1
    return tex[start + 1 :], len(tex)


def _wrapped(text: str) -> str:
    """A fraction's part in parentheses unless it is one token."""
    return text if re.fullmatch(r"[\w.\[\]]+", text) else f"({text})"


def latex_text(tex: str) -> str:
    """LaTeX math as readable text: ``H_{out} = \\lfloor\\frac{H_{in}}{2}\\rfloor`` -> ``H_out = ⌊H_in / 2⌋``."""
    out: list[str] = []
    index = 0
    while index < len(tex):
        char = tex[index]
        if char == "\\":
            index = _command(tex, index, out)
        elif char in "_^":
            content, index = _group(tex, index + 1)
            text = latex_text(content)
            out.append(char + (text if re.fullmatch(r"[\w.]*", text) else f"({text})"))
        elif char in "{}&":
            index += 1
        else:
            out.append(char)
            index += 1
    lines = re.sub(r"[ \t]+", " ", "".join(out)).splitlines()
    return "\n".join(line.strip() for line in lines if line.strip())


def _command(tex: str, index: int, out: list[str]) -> int:
    """Turn the command at ``index`` into text appended to ``out``; return the index after it."""
    match = re.match(r"\\([A-Za-z]+)|\\(.)", tex[index:])
    if match is None:
        return index + 1
    name, escaped = match.group(1), match.group(2)
    index += match.end()
    if escaped is not None:
        out.append("\n" if escaped == "\\" else LATEX_ESCAPES.get(escaped, escaped))
    elif name == "frac":
        top, index = _group(tex, index)
        bottom, index = _group(tex, index)
        out.append(f"{_wrapped(latex_text(top))} / {_wrapped(latex_text(bottom))}")
    elif name == "sqrt":
        content, index = _group(tex, index)
        out.append(f"√{_wrapped(latex_text(content))}")
    elif name in LATEX_TEXT:
        content, index = _group(tex, index)
        out.append(latex_text(content))
    elif name in ("begin", "end"):
        _, index = _group(tex, index)
        if name == "begin" and tex[index : index + 1] == "{":  # the column spec of an array: {ll}
            _, index = _group(tex, index)
        out.append("\n")
    else:
        out.append(LATEX_SYMBOLS.get(name, name))
    return index


def _role(match: re.Match[str]) -> str:
    """The text a reStructuredText role shows: math as text, ``~a.b.C`` as C, ``text <target>`` as text."""
    content = match.group(1)
    if match.group(0).startswith(":math:"):
        return latex_text(content)
    content = re.sub(r"\s*<[^>]*>$", "", content)
    return content.rsplit(".", 1)[-1] if content.startswith("~") else content


def rst_text(text: str) -> str:
    """One line of a docstring without its markup: roles, literals, links, bold."""
    text = ROLE.sub(_role, text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"`([^`<]*?)\s*(?:<[^>]*>)?`_{0,2}", r"\1", text)
    text = text.replace("**", "")
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------- docstring sections


def sections(doc: str) -> dict[str, list[str]]:
    """A docstring's sections by heading (``Shape``, ``Args``, ``Inputs``...): the heading's rest, then its body.

    A section is a heading at the left margin followed by its indented lines; the first paragraph is ``""``.
    """
    found: dict[str, list[str]] = {"": []}
    current = ""
    for line in doc.splitlines():
        heading = SECTION.match(line) if line and not line[0].isspace() else None
        if heading is not None and len(heading.group(1).split()) <= 3:
            current = heading.group(1)
            found.setdefault(current, [])
            if heading.group(2).strip(" :"):
                found[current].append(heading.group(2).strip(" :"))
        elif line and not line[0].isspace() and current and not line.startswith(".. math::"):
            current = "_"  # text at the margin after a section ends it (a formula at the margin belongs to it)
            found.setdefault(current, []).append(line)
        else:
            found.setdefault(current, []).append(line)
    return found


def _blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """A section's body as (kind, lines) blocks: "item", "math" or "text"; notes and other directives dropped."""
    blocks: list[tuple[str, list[str]]] = []
    mode, base, item, after_blank = "", 0, -1, False
    for line in lines:
        stripped, indent = line.strip(), len(line) - len(line.lstrip())
        formula = WHOLE_MATH.fullmatch(stripped) if after_blank else None  # a paragraph of its own
        after_blank = not stripped
        if not stripped:
            mode = "" if mode in ("text", "drop") else mode
        elif stripped.startswith(".. math::"):
            blocks.append(("math", [stripped.removeprefix(".. math::")]))
            mode, base = "math", indent
        elif stripped.startswith(".."):
            mode, base = "drop", indent
        elif mode in ("math", "drop") and indent > base:
            if mode == "math":
                blocks[-1][1].append(stripped)
        elif ITEM.match(line):
            blocks.append(("item", [ITEM.sub("", line)]))
            mode, base, item = "item", indent, len(blocks) - 1
        elif mode == "item" and indent > base and formula:  # a formula on its own line within an item
            blocks.append(("math", [formula.group(1)]))
        elif mode == "item" and indent > base:
            blocks[item][1].append(stripped)
        elif stripped.lower().startswith("note"):
            mode, base = "drop", indent - 1
        else:
            if mode != "text":
                blocks.append(("text", []))
            blocks[-1][1].append(stripped)
            mode, base = "text", indent
    return blocks


def rule_lines(lines: list[str]) -> tuple[str, ...]:
    """A shape section as text lines: ``- item`` for each item, indented lines for each formula."""
    out: list[str] = []
    for kind, block in _blocks(lines):
        text = " ".join(block)
        if kind == "math":
            out += [f"    {row.strip()}" for row in latex_text(text).splitlines() if row.strip()]
        elif kind == "item":
            if "mask" not in text.split(":", 1)[0]:  # a stack never passes masks
                out.append(f"- {rst_text(text)}")
        elif kind == "text":
            out.append(rst_text(text))
    return tuple(line for line in out if line.strip(" -"))


def _shaped_args(lines: list[str]) -> list[str]:
    """Items of a forward's Args that state a shape (not masks), as shape-section items."""
    items = _arguments(lines)
    return [f"- {name}: {text}" for name, text in items.items() if "shape" in text and "mask" not in name]


def find_shape_rule(cls: type) -> tuple[tuple[str, ...], type]:
    """The input/output shape rule torch's docstring gives for ``cls``, in words, and the class that gives it.

    Looked for in the class's ``Shape:`` section, else its ``Inputs:`` and ``Outputs:`` sections, else the same
    sections of its ``forward`` (Transformer, MultiheadAttention; their Args state the inputs' shapes), else what
    its ``forward`` returns. A rule that only says "see the docs in Transformer" is Transformer's. The rule is
    ``()`` when the docstrings state none.
    """
    doc = sections(own_doc(cls))
    if doc.get("Shape"):
        return rule_lines(doc["Shape"]), cls
    if doc.get("Inputs") or doc.get("Outputs"):
        return _inputs_outputs(doc), cls
    forward = sections(inspect.getdoc(cls.forward) or "") if cls.forward.__doc__ else {}
    rule = _forward_rule(forward)
    see = re.fullmatch(r"see the docs in (\w+)\.?", " ".join(rule))
    if see and isinstance(getattr(nn, see.group(1), None), type):
        return find_shape_rule(getattr(nn, see.group(1)))
    return rule, cls


def shape_rule(cls: type) -> tuple[str, ...]:
    """The shape rule of ``cls`` in words (see ``find_shape_rule``)."""
    return find_shape_rule(cls)[0]


def _forward_rule(forward: dict[str, list[str]]) -> tuple[str, ...]:
    if forward.get("Shape"):
        return rule_lines(forward["Shape"])
    if forward.get("Outputs"):
        inputs = [line for item in _shaped_args(forward.get("Args", [])) for line in rule_lines([item])]
        return (*(["Inputs:", *inputs] if inputs else []), "Outputs:", *rule_lines(forward["Outputs"]))
    returns = " ".join(line.strip() for line in forward.get("Returns", []))
    return (f"Output: {rst_text(returns)}",) if "shape" in returns else ()


def _inputs_outputs(doc: dict[str, list[str]]) -> tuple[str, ...]:
    lines: list[str] = []
    for heading in ("Inputs", "Outputs"):
        body = doc.get(heading, [])
        if body:
            head, rest = (body[0], body[1:]) if body[0] and not body[0][0].isspace() else ("", body)
            lines += [f"{heading}: {rst_text(head)}".rstrip(": "), *rule_lines(rest)]
    return tuple(lines)


def _arguments(lines: list[str]) -> dict[str, str]:
    """An ``Args:`` section as {name: description}; ``name (int, optional): text`` gives ``name``."""
    items: dict[str, list[str]] = {}
    base = None
    name = ""
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        base = indent if base is None else base
        match = re.match(r"^\s*\*?\*?(\w+)\*?\*?\s*(\([^)]*\))?\s*:\s*(.*)$", line)
        if indent == base and match:
            name = match.group(1)
            items[name] = [match.group(3)]
        elif name and indent > base:
            items[name].append(line.strip())
    return {key: rst_text(" ".join(text)) for key, text in items.items()}


def own_doc(cls: type) -> str:
    """The class's own docstring, dedented ("" when it has none: ``inspect.getdoc`` would give nn.Module's)."""
    return inspect.cleandoc(cls.__doc__) if cls.__doc__ else ""


def summary_text(cls: type) -> str:
    """The docstring's first paragraph, without markup (``__init__(...)`` lines of RNNs left out).

    A paragraph that leads into a formula ("... computes the following function:") keeps its sentences before.
    """
    paragraphs = [p for p in own_doc(cls).split("\n\n") if p.strip() and not p.strip().startswith(("__init__", ".."))]
    text = rst_text(paragraphs[0]) if paragraphs else ""
    if text.endswith(":") and ". " in text:
        text = text.rsplit(". ", 1)[0] + "."
    return text or NO_DOC


# ---------------------------------------------------------------- one layer's reference


@dataclass(frozen=True)
class Argument:
    """One constructor argument: its name, default (as Python writes it) and torch's description."""

    name: str
    default: str  # "" when required
    description: str
    keyword_only: bool = False


@dataclass(frozen=True)
class Example:
    """The layer built from its sample arguments and run on a small input (on the meta device)."""

    code: str  # runnable PyTorch that shows the example: build, input, call, print the shape
    input_shape: Shape
    input_dtype: DType
    output_shape: Shape | None
    problem: str = ""


@dataclass(frozen=True)
class LayerReference:
    """Everything the reference shows for one catalog layer."""

    name: str
    category: Category
    summary: str
    signature: str  # "nn.Linear(in_features, out_features, bias=True)"
    arguments: tuple[Argument, ...]
    shape_rule: tuple[str, ...]
    shape_source: str  # the class whose docstring gave the rule, when it is another (lazy layers)
    stack_note: str  # how the stack calls it (tuples, self-attention), when not plainly layer(x)
    example: Example
    formula: Formula | None
    doc_url: str

    def matches(self, query: str) -> bool:
        """Whether every word of ``query`` occurs in the layer's name, group or summary."""
        words = query.lower().split()
        haystack = " ".join([self.name, str(self.category), self.summary]).lower()
        return all(word in haystack for word in words)


def _default_text(spec: ParamSpec) -> str:
    if spec.required:
        return ""
    return repr(tuple(spec.default) if isinstance(spec.default, list) else spec.default)


def signature_text(entry: LayerEntry) -> str:
    """The constructor as the builder offers it: ``nn.Conv2d(in_channels, ..., padding_mode='zeros')``."""
    parts: list[str] = []
    for spec in entry.params:
        if spec.keyword_only and "*" not in parts:
            parts.append("*")
        parts.append(spec.name if spec.required else f"{spec.name}={_default_text(spec)}")
    return f"{'nn.' if entry.builtin else ''}{entry.name}({', '.join(parts)})"


def _layer_class(entry: LayerEntry) -> type:
    """The torch.nn class, or the builder's own (builder.tensor_ops)."""
    return getattr(nn, entry.name) if entry.builtin else entry.factory


def _documented_class(entry: LayerEntry) -> type:
    cls = _layer_class(entry)
    return cls.cls_to_become if entry.lazy else cls


def _argument_docs(entry: LayerEntry) -> dict[str, str]:
    """Descriptions from the layer's Args (a lazy layer's own first, then its concrete class's)."""
    docs: dict[str, str] = {}
    inner = [getattr(nn, ENCODERS[entry.name])] if entry.name in ENCODERS else []
    for cls in dict.fromkeys([_layer_class(entry), _documented_class(entry), *inner]):
        found = sections(own_doc(cls))
        for name, text in _arguments(found.get("Args", []) + found.get("Parameters", [])).items():
            docs.setdefault(name, text)
    return docs


def _without_default(text: str) -> str:
    """A description without its closing "Default: 1" (the reference shows the default beside it)."""
    shorter = TRAILING_DEFAULT.sub("", text).rstrip()
    return shorter if shorter else text


def _arguments_of(entry: LayerEntry) -> tuple[Argument, ...]:
    docs = _argument_docs(entry)
    return tuple(
        Argument(p.name, _default_text(p), _without_default(docs.get(p.name, "")), p.keyword_only) for p in entry.params
    )


# The stack's convention for layers that are not plainly y = layer(x), as the example's call line.
CALL_LINES: dict[CallStyle, str] = {
    CallStyle.SINGLE: "y = layer(x)",
    CallStyle.FIRST_OUTPUT: "y = layer(x)[0]  # it returns a tuple: the output comes first",
    CallStyle.SELF_ATTENTION: "y, weights = layer(x, x, x)  # self-attention: x is query, key and value",
    CallStyle.PAIR: "y = layer(x, x)  # x is both of its inputs",
}
ENCODERS: dict[str, str] = {
    "TransformerEncoder": "TransformerEncoderLayer",
    "TransformerDecoder": "TransformerDecoderLayer",
}


def _construction(spec: LayerSpec) -> str:
    """The torch call that builds the layer; encoders get their inner layer, as torch takes it."""
    inner = ENCODERS.get(spec.type)
    if inner is None:
        return call_text(spec.type, spec.params, prefix="nn.")
    params = dict(spec.params)
    num_layers = params.pop("num_layers")
    return f"nn.{spec.type}({call_text(inner, params, prefix='nn.')}, num_layers={num_layers})"


def _tensor_op_lines(spec: LayerSpec) -> tuple[list[str], str]:
    """A tensor op as plain torch: the lines before the input (an import, its parameter), and the call line."""
    inline = inline_op(spec.type, spec.params)
    if inline is None:
        raise ValueError(f"{spec.type} has an 'auto' size: give the example the size its trace inferred")
    before = ["import torch.nn.functional as F"] if uses_functional(spec.type) else []
    reference = ""
    if inline.parameter is not None:
        reference, constructor = inline.parameter
        before.append(f"{reference} = {constructor}")
    return before, f"y = {inline.code(reference)}  # {call_text(spec.type, spec.params)} in a stack"


def example_code(spec: LayerSpec, input_shape: Shape, dtype: DType, high: int, output: Shape | None) -> str:
    """A runnable example: build the layer, make the input, call it, print the output shape; a tensor op is
    written as the torch call it stands for (``y = x.permute(0, 2, 1)``)."""
    sizes = ", ".join(map(str, input_shape))
    if dtype is DType.INT64:
        make = f"torch.randint(0, {high}, ({sizes}{',' if len(input_shape) == 1 else ''}))"
    else:
        make = f"torch.randn({sizes}{', dtype=torch.float64' if dtype is DType.FLOAT64 else ''})"
    shown = f"torch.Size({list(output)})" if output is not None else "?"
    if spec.type in TENSOR_OPS:
        before, call = _tensor_op_lines(spec)
    else:
        before, call = [f"layer = {_construction(spec)}"], CALL_LINES[call_style(spec.type, spec.params)]
    return "\n".join([*before, f"x = {make}", call, f"print(y.shape)  # {shown}"])


def _example_and_formula(name: str) -> tuple[Example, Formula | None]:
    design = sample_design(name)
    spec = design.layers[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. enable_nested_tensor with batch_first=False: not the reader's concern
        trace = infer_shapes(design)
        formula = design_formula(spec, trace.layers[0], design.input.dtype) if trace.layers else None
    output = trace.output_shape
    if trace.layers and trace.layers[0].inferred and spec.type in TENSOR_OPS:  # an "auto" size, as it was inferred
        spec = spec.model_copy(update={"params": {**spec.params, **trace.layers[0].inferred}})
    code = example_code(spec, design.input.shape, design.input.dtype, token_range(design), output)
    example = Example(code, design.input.shape, design.input.dtype, output, trace.error.message if trace.error else "")
    return example, formula


def layer_reference(name: str) -> LayerReference:
    """The reference of one catalog layer.

    Args:
        name: a catalog name, such as "Conv2d" or "LazyLinear".

    Returns:
        Its LayerReference; ``shape_rule`` is empty when torch's docstring states none.

    Raises:
        KeyError: the catalog has no layer of that name.
    """
    return reference()[name]


def _derive(entry: LayerEntry) -> LayerReference:
    cls = _layer_class(entry)
    rule, source = find_shape_rule(_documented_class(entry))
    example, formula = _example_and_formula(entry.name)
    return LayerReference(
        name=entry.name,
        category=entry.category,
        summary=summary_text(cls),
        signature=signature_text(entry),
        arguments=_arguments_of(entry),
        shape_rule=rule,
        shape_source=source.__name__ if source is not cls else "",
        stack_note=CALL_NOTES[entry.call_style],
        example=example,
        formula=formula,
        doc_url=entry.doc_url,
    )


@cache
def reference() -> dict[str, LayerReference]:
    """Every catalog layer's reference, in catalog order (derived once per process: about a second)."""
    return {name: _derive(entry) for name, entry in catalog().items()}


def search(query: str, entries: Iterable[LayerReference] | None = None) -> list[LayerReference]:
    """The layers whose name, group or summary hold every word of ``query``; exact name matches first."""
    chosen = [e for e in (reference().values() if entries is None else entries) if e.matches(query)]
    name = query.strip().lower()
    return sorted(chosen, key=lambda e: e.name.lower() != name)


def grouped(entries: Iterable[LayerReference]) -> dict[Category, list[LayerReference]]:
    """Entries by catalog category, in the palette's order."""
    groups: dict[Category, list[LayerReference]] = {}
    for entry in entries:
        groups.setdefault(entry.category, []).append(entry)
    order = list(Category)
    return dict(sorted(groups.items(), key=lambda item: order.index(item[0])))
