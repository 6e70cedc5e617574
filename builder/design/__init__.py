"""The design: a validated, serialisable description of a model (versioned JSON).

A design is immutable data. Editing functions return a new design, so the app's undo history is a list of
designs and inference can be cached by the design's JSON.

A stack entry is a layer or, from format 2 on, a block holding stacks of its own, nested to any depth: a
``Sequential`` (its ``layers``), a ``Residual`` (``merge(shortcut(x), body(x))``) or a ``Parallel``
(``merge(b1(x), b2(x), ...)``). ``walk`` visits every entry of the tree with its place in the file
(``layers[4].body[2]``, as messages name it) and in the trace (``layer-5/body/2``). A file is written in the
lowest format that holds it, so a design without blocks stays a version 1 file.

Every string and number of a design reaches a generated file (the exported code, the DOT graph) or torch, so
``validate_design`` bounds them all: sizes, counts and lengths (``limits``), finite numbers, identifiers where code
names things, and a safe pattern for layer ids. ``load_design`` and ``design_from_dict`` raise only
``DesignError``, whatever they are given.

The package, by responsibility:

- ``limits``: format versions, sizes and counts, reserved names and unsafe characters.
- ``messages``: ``DesignError``, ``HugeNumber`` and how messages show a user's values.
- ``models``: the pydantic models of the input, the stack's entries (layers, ``Shared``, blocks) and custom layers.
- ``tree``: ``walk`` and ``Located``; finding entries, counting runs, the format a design needs.
- ``document``: ``Design``, the root model, which gives every entry its id.
- ``values``: checks of one value: arguments against the catalog, input shapes, names and labels.
- ``custom_layers``: checks of custom layers' names, sources, the names they bind and their arguments.
- ``validate``: ``validate_design`` and the checks of each layer, block and Shared entry.
- ``files``: ``load_design``/``design_from_dict`` (versions, messages from pydantic's errors) and ``dump_design``.
"""

from builder.design.custom_layers import source_bindings
from builder.design.document import Design
from builder.design.files import design_from_dict, design_key, dump_design, file_stem, load_design
from builder.design.limits import (
    BLOCK_EXPORT_NAMES,
    BLOCKS_VERSION,
    EXPORT_NAMES,
    FORMAT_VERSION,
    FORMAT_VERSIONS,
    ID_PATTERN,
    ID_RULE,
    IDENTIFIER,
    MAX_BLOCK_DEPTH,
    MAX_BRANCHES,
    MAX_CUSTOM_LAYERS,
    MAX_DESIGN_CHARS,
    MAX_DIGITS,
    MAX_DIM,
    MAX_INPUT_ELEMENTS,
    MAX_INT,
    MAX_LABEL_CHARS,
    MAX_LAYERS,
    MAX_LIST_ITEMS,
    MAX_NAME_CHARS,
    MAX_NESTING,
    MAX_PARAMS,
    MAX_REPEAT,
    MAX_RUN_LAYERS,
    MAX_SOURCE_CHARS,
    MAX_TEXT_CHARS,
    MODULE_NAMES,
    RESERVED_NAMES,
    UNSAFE_CODE,
    UNSAFE_TEXT,
)
from builder.design.messages import DesignError, HugeNumber
from builder.design.models import (
    BLOCK_TYPES,
    DEFAULT_DIM,
    ENTRY_TAGS,
    FORMAT2_KINDS,
    SHARED,
    BlockSpec,
    BlockType,
    CustomLayerSpec,
    DType,
    Entry,
    InputSpec,
    LayerSpec,
    Merge,
    ParallelBlock,
    ResidualBlock,
    SequentialBlock,
    SharedSpec,
    Stack,
)
from builder.design.tree import (
    Located,
    block_dim,
    block_merge,
    design_path,
    entry_at,
    find_entry,
    format_version,
    has_blocks,
    has_shared,
    is_block,
    is_shared,
    run_count,
    shared_targets,
    walk,
)
from builder.design.validate import COUNTED, validate_block, validate_design, validate_layer, validate_shared
from builder.design.values import check_value, literal_problem, shape_problem

__all__ = [
    "BLOCKS_VERSION",
    "BLOCK_EXPORT_NAMES",
    "BLOCK_TYPES",
    "COUNTED",
    "DEFAULT_DIM",
    "ENTRY_TAGS",
    "EXPORT_NAMES",
    "FORMAT2_KINDS",
    "FORMAT_VERSION",
    "FORMAT_VERSIONS",
    "IDENTIFIER",
    "ID_PATTERN",
    "ID_RULE",
    "MAX_BLOCK_DEPTH",
    "MAX_BRANCHES",
    "MAX_CUSTOM_LAYERS",
    "MAX_DESIGN_CHARS",
    "MAX_DIGITS",
    "MAX_DIM",
    "MAX_INPUT_ELEMENTS",
    "MAX_INT",
    "MAX_LABEL_CHARS",
    "MAX_LAYERS",
    "MAX_LIST_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_NESTING",
    "MAX_PARAMS",
    "MAX_REPEAT",
    "MAX_RUN_LAYERS",
    "MAX_SOURCE_CHARS",
    "MAX_TEXT_CHARS",
    "MODULE_NAMES",
    "RESERVED_NAMES",
    "SHARED",
    "UNSAFE_CODE",
    "UNSAFE_TEXT",
    "BlockSpec",
    "BlockType",
    "CustomLayerSpec",
    "DType",
    "Design",
    "DesignError",
    "Entry",
    "HugeNumber",
    "InputSpec",
    "LayerSpec",
    "Located",
    "Merge",
    "ParallelBlock",
    "ResidualBlock",
    "SequentialBlock",
    "SharedSpec",
    "Stack",
    "block_dim",
    "block_merge",
    "check_value",
    "design_from_dict",
    "design_key",
    "design_path",
    "dump_design",
    "entry_at",
    "file_stem",
    "find_entry",
    "format_version",
    "has_blocks",
    "has_shared",
    "is_block",
    "is_shared",
    "literal_problem",
    "load_design",
    "run_count",
    "shape_problem",
    "shared_targets",
    "source_bindings",
    "validate_block",
    "validate_design",
    "validate_layer",
    "validate_shared",
    "walk",
]
