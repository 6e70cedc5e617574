"""The bounds of a design: its format versions, sizes and counts, and the names and characters it may not use."""

from __future__ import annotations

import builtins
import keyword
import re

FORMAT_VERSION = 2  # the newest format this builder reads and writes
FORMAT_VERSIONS: tuple[int, ...] = (1, 2)  # 2 adds blocks
BLOCKS_VERSION = 2

# Limits: generous for any real design, small enough that a hostile file or link is refused at once.
MAX_DESIGN_CHARS = 2_000_000  # a design file, or the JSON a link inflates to
MAX_LAYERS = 1_000  # entries in the file: layers and blocks, at any depth
MAX_RUN_LAYERS = 10_000  # layers the forward pass runs, each copy of a repeated block counted
MAX_BLOCK_DEPTH = 16  # blocks inside blocks
MAX_REPEAT = 1_000
MAX_BRANCHES = 64  # branches of one Parallel
MAX_DIM = 16  # |dim| of a concat; tensors have at most this many dimensions here
MAX_CUSTOM_LAYERS = 32
MAX_SOURCE_CHARS = 50_000  # one custom layer's code
MAX_NAME_CHARS = 100  # the design's name, a layer type, a custom layer's name
MAX_LABEL_CHARS = 200
MAX_PARAMS = 64  # arguments of one layer
MAX_TEXT_CHARS = 1_000  # a text argument
MAX_LIST_ITEMS = 256  # a list argument (each nested list too)
MAX_NESTING = 4  # lists inside lists inside an argument
MAX_INT = 2**31 - 1  # a whole-number argument (either sign), and each input size
MAX_INPUT_ELEMENTS = 2**40  # the input's sizes multiplied; the meta device holds it without memory
MAX_DIGITS = 20  # JSON integers longer than this are kept as HugeNumber (int() refuses past 4,300 digits)
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_RULE = "1 to 64 letters, digits, '-' or '_' (the pattern [A-Za-z0-9_-]{1,64})"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Modules custom code uses by these names; a custom source may bind them only to these modules.
MODULE_NAMES: dict[str, str] = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "math": "math"}
# What builder.export binds at the top of the exported file (tests/test_hostile_designs.py keeps this in step).
EXPORT_NAMES: frozenset[str] = frozenset(
    {*MODULE_NAMES, "build_model", "Stackable", "INPUT_SHAPE", "INPUT_DTYPE", "dummy_input", "main"}
)
# What it binds besides, for designs with blocks (the sequential style's helpers); format 2 reserves these names.
BLOCK_EXPORT_NAMES: frozenset[str] = frozenset({"Residual", "Parallel"})
# Names no custom layer, and nothing a custom source defines, may take: the exported file or Python needs them.
RESERVED_NAMES: frozenset[str] = EXPORT_NAMES | frozenset({*keyword.kwlist, *keyword.softkwlist, *dir(builtins)})
# Characters that end a line, drive a terminal or reorder text on screen: refused in names and labels ...
UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# ... and in code, except tab, line feed, carriage return and form feed (so code reads as it runs: Trojan Source).
UNSAFE_CODE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
