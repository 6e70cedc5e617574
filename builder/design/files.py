"""The design file: JSON text or a parsed object read into a design (any format version, every error naming the
field), and a design written back as JSON in the lowest format that holds it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from builder.design.document import Design
from builder.design.limits import (
    FORMAT_VERSION,
    FORMAT_VERSIONS,
    IDENTIFIER,
    MAX_BLOCK_DEPTH,
    MAX_CUSTOM_LAYERS,
    MAX_DESIGN_CHARS,
    MAX_DIGITS,
    MAX_LAYERS,
)
from builder.design.messages import DesignError, HugeNumber, _is_int, _plain, _show
from builder.design.models import (
    _READING_V1,
    ENTRY_TAGS,
    FORMAT2_KINDS,
    SHARED,
    BlockSpec,
    Entry,
    LayerSpec,
    ParallelBlock,
    SharedSpec,
)
from builder.design.tree import format_version, has_blocks, is_block
from builder.design.validate import _check_block_names, _too_many, validate_design


def _location(loc: list[Any]) -> str:
    parts = []
    for position, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in ENTRY_TAGS and position and isinstance(loc[position - 1], int):
            continue  # pydantic's name for the kind of entry, not a field of the file
        else:
            parts.append(f".{part}" if isinstance(part, str) and IDENTIFIER.fullmatch(part) else f"[{_show(part)}]")
    return "".join(parts).lstrip(".")


def _entry_type(data: Any, loc: list[Any]) -> str | None:
    """The type of the innermost entry the location passes through, as the file spells it."""
    found, node = None, data
    with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
        for position, part in enumerate(loc):
            if part in ENTRY_TAGS and position and isinstance(loc[position - 1], int):
                continue
            node = node[part]
            tagged = position + 1 < len(loc) and loc[position + 1] in ENTRY_TAGS
            if isinstance(part, int) and isinstance(node, dict) and tagged:
                found = node.get("type", "?")
    return found


def _pydantic_message(error: ValidationError, data: Any) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    path = _location(loc)
    message = first["msg"].removeprefix("Value error, ")
    if not loc and message.startswith("layers["):
        return message  # a check across the tree (unique ids) names its entry itself
    entry_type = _entry_type(data, loc)
    if entry_type is not None:
        path += f" (layer type {_plain(entry_type)})"
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{path or 'design'}: {message}"


def _raw_children(entry: dict[str, Any]) -> Iterator[Any]:
    """The stacks of a block as the file holds them (not yet validated): lists of entries."""
    for field in ("layers", "body", "shortcut"):
        if isinstance(entry.get(field), list):
            yield entry[field]
    branches = entry.get("branches")
    if isinstance(branches, list):
        yield from (branch for branch in branches if isinstance(branch, list))


def _check_counts(data: dict[str, Any]) -> None:
    """Refuse a huge or deeply nested tree before pydantic reads it entry by entry (iteratively: no recursion)."""
    items = data.get("custom_layers")
    if isinstance(items, list | tuple) and len(items) > MAX_CUSTOM_LAYERS:
        raise DesignError(_too_many("custom_layers", len(items), MAX_CUSTOM_LAYERS))
    top = data.get("layers")
    count, todo = 0, [(top, 0)] if isinstance(top, list | tuple) else []
    while todo:  # the file's size bounds the work: a 2,000,000-character file holds under 200,000 entries
        entries, depth = todo.pop()
        count += len(entries)
        if depth > MAX_BLOCK_DEPTH:
            raise DesignError(f"layers: blocks nest more than {MAX_BLOCK_DEPTH} deep; flatten an inner block")
        for entry in entries:
            if isinstance(entry, dict):
                todo += [(stack, depth + 1) for stack in _raw_children(entry)]
    if count > MAX_LAYERS:
        raise DesignError(_too_many("layers", count, MAX_LAYERS))


def _raw_custom_names(data: dict[str, Any]) -> set[str]:
    """The custom layers' names as the file holds them (not yet validated)."""
    customs = data.get("custom_layers")
    if not isinstance(customs, list):
        return set()
    return {c["name"] for c in customs if isinstance(c, dict) and isinstance(c.get("name"), str)}


def _read_version(data: dict[str, Any]) -> int:
    """The file's format; without a "version", format 2 unless a custom layer takes a block's name (format 1)."""
    if "version" not in data:
        return 1 if _raw_custom_names(data) & FORMAT2_KINDS else FORMAT_VERSION
    version = data["version"]
    if isinstance(version, bool) or not _is_int(version) or version not in FORMAT_VERSIONS:
        formats = " and ".join(map(str, FORMAT_VERSIONS))
        raise DesignError(f"version: this builder reads design formats {formats}, the file has {_show(version)}")
    return version


def _check_v1_entries(data: dict[str, Any]) -> None:
    """A version 1 file holds layers only: a block there is named, with the fix."""
    names = _raw_custom_names(data)
    layers = data.get("layers")
    for index, entry in enumerate(layers if isinstance(layers, list) else []):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(kind, str) and kind in FORMAT2_KINDS and kind not in names:
            what = "shared layers" if kind == SHARED else "blocks"
            raise DesignError(
                f'layers[{index}] ({kind}): {what} need design format 2; set "version": 2 at the top of the file'
            )


def design_from_dict(data: Any) -> Design:
    """Validate a parsed JSON object into a design, or raise DesignError naming the field and the layer."""
    if not isinstance(data, dict):
        raise DesignError("a design file must hold a JSON object with 'input' and 'layers'")
    version = _read_version(data)
    _check_counts(data)
    if version == 1:
        _check_v1_entries(data)
    token = _READING_V1.set(version == 1)
    try:
        design = Design.model_validate(data)
    except ValidationError as error:
        raise DesignError(_pydantic_message(error, data)) from None
    except RecursionError:
        raise DesignError("design: the data is nested too deeply; a design nests only a few levels") from None
    finally:
        _READING_V1.reset(token)
    if version == 2 and not has_blocks(design):
        _check_block_names(design)  # its custom layers could not be used: their entries would read as blocks
    return validate_design(design)


def _parse_int(text: str) -> int | HugeNumber:
    return int(text) if len(text) <= MAX_DIGITS else HugeNumber(text)


def load_design(text: str) -> Design:
    """Parse design JSON; malformed JSON is reported with its line and column."""
    if not isinstance(text, str):
        raise DesignError(f"a design is JSON text, not {type(text).__name__}")
    if len(text) > MAX_DESIGN_CHARS:
        size = f"the design is {len(text):,} characters long; a design file holds at most {MAX_DESIGN_CHARS:,}"
        raise DesignError(size)
    try:
        data = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as error:
        raise DesignError(f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    except RecursionError:
        raise DesignError("not a design: the JSON is nested too deeply; a design nests only a few levels") from None
    return design_from_dict(data)


def _layer_json(layer: LayerSpec | SharedSpec) -> dict[str, Any]:
    data = layer.model_dump(mode="json")
    if not data["label"]:
        del data["label"]
    return data


def _block_json(block: BlockSpec) -> dict[str, Any]:
    """A block as the file holds it: type, id, label, merge, dim, repeat, then its stacks; defaults left out."""
    data: dict[str, Any] = {"type": str(block.type), "id": block.id}
    if block.label:
        data["label"] = block.label
    if getattr(block, "merge", None) is not None:
        data["merge"] = str(block.merge)
    if getattr(block, "dim", None) is not None:
        data["dim"] = block.dim
    if block.repeat != 1:
        data["repeat"] = block.repeat
    if isinstance(block, ParallelBlock):
        data["branches"] = [[_entry_json(entry) for entry in branch] for branch in block.branches]
        return data
    for stack in block.stacks():
        if stack.entries or stack.field != "shortcut":  # an identity shortcut is left out
            data[stack.field] = [_entry_json(entry) for entry in stack.entries]
    return data


def _entry_json(entry: Entry) -> dict[str, Any]:
    return _block_json(entry) if is_block(entry) else _layer_json(entry)


def dump_design(design: Design) -> str:
    """The design as pretty, stable JSON (the file format), in the lowest format version that holds it."""
    data = design.model_dump(mode="json", exclude={"layers"})
    data |= {"version": format_version(design), "layers": [_entry_json(entry) for entry in design.layers]}
    data = {key: data[key] for key in ("version", "name", "input", "layers", "custom_layers")}
    for custom in data["custom_layers"]:
        if not custom["params"]:
            del custom["params"]
    return json.dumps(data, indent=2) + "\n"


def file_stem(design: Design) -> str:
    """A safe file name (no suffix) for the design's downloads: "d2l mlp" -> "d2l_mlp"; letters, digits and _."""
    stem = "_".join(re.findall(r"[A-Za-z0-9]+", design.name))[:64].strip("_")
    if not stem:
        return "model"
    return f"model_{stem}" if stem[0].isdigit() else stem


def design_key(design: Design) -> str:
    """A compact, canonical string for caching results by design."""
    return json.dumps(design.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
