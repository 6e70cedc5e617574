"""What custom layer code may use: the modules, each module's attributes (an allowlist), names and attributes refused.

One policy serves both defences: the static check (``builder.sandbox.static``) reads the source against it before
anything runs, and the restricted namespace (``builder.sandbox.restrict``) enforces it again at run time in the job
process. A module's attributes are an allowlist derived from torch itself (its compiled tensor functions, the
``torch.nn`` layer classes, ``torch.nn.functional``'s functions), so a new torch helper that returns a raw module or
reads attributes by name (``torch.get_device_module``, ``operator.attrgetter``) is closed until it is added here.
"""

from __future__ import annotations

import functools
import inspect
import math
import types

import torch
import torch.functional
import torch.nn.functional as F
from torch import nn

# Modules a custom layer may import (each already imported by torch itself).
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {"torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.linalg", "torch.fft", "torch.special",
     "torch.autograd", "math", "__future__"}
)  # fmt: skip
PREBOUND: tuple[str, ...] = ("torch", "nn", "F")
# Dunder attributes code may read (``super().__init__(...)``, ``type(self).__name__``).
READABLE_DUNDERS: frozenset[str] = frozenset({"__init__", "__name__"})
# Dunder methods a layer may define; every other dunder name is refused wherever it stands.
DEFINABLE_DUNDERS: frozenset[str] = frozenset(
    {"__init__", "__repr__", "__str__", "__len__", "__getitem__", "__iter__", "__name__"}
)
# Name prefix reserved for the sandbox's own helpers in the rewritten code.
RESERVED_PREFIX = "_sandbox"

# Builtins a custom layer may not name, and why.
DENIED_NAMES: dict[str, str] = {
    "open": "a layer cannot read or write files",
    "eval": "a layer cannot run code from strings",
    "exec": "a layer cannot run code from strings",
    "compile": "a layer cannot run code from strings",
    "__import__": "write `import torch` or `import math` at the top instead",
    "getattr": "write the attribute out (self.weight), not its name as a string",
    "setattr": "assign the attribute directly (self.weight = ...)",
    "delattr": "delete the attribute directly (del self.cache)",
    "hasattr": "write the attribute out; a layer knows its own attributes",
    "globals": "a layer cannot inspect the program's namespaces",
    "locals": "a layer cannot inspect the program's namespaces",
    "vars": "a layer cannot inspect objects' namespaces",
    "dir": "a layer cannot inspect objects' namespaces",
    "input": "a layer cannot wait for input",
    "breakpoint": "a layer cannot start a debugger",
    "help": "a layer cannot start the help system",
    "exit": "a layer cannot stop the program; raise an exception with a message instead",
    "quit": "a layer cannot stop the program; raise an exception with a message instead",
    "memoryview": "a layer works on tensors, not raw memory",
}

# Attribute names refused on any object, and why.
FRAME_ATTRIBUTES: tuple[str, ...] = (
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "f_back",
    "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame", "tb_next", "cell_contents",
)  # fmt: skip
MODULE_ATTRIBUTES: tuple[str, ...] = (
    "os", "sys", "subprocess", "builtins", "importlib", "shutil", "socket", "ctypes", "pickle", "io", "pathlib",
    "inspect", "signal", "resource", "threading", "tempfile", "glob", "warnings", "types", "operator", "functools",
)  # fmt: skip
DENIED_ATTRIBUTES: dict[str, str] = {
    **dict.fromkeys(("save", "load", "from_file", "fromfile", "tofile", "serialization"), "it reads or writes files"),
    **dict.fromkeys(("hub", "package", "onnx", "export", "profiler"), "it downloads, reads or writes files"),
    **dict.fromkeys(("ops", "classes", "library", "cpp_extension", "utils"), "it loads or registers native code"),
    **dict.fromkeys(("jit", "compile"), "it compiles code outside the layer"),
    **dict.fromkeys(("distributed", "multiprocessing"), "it starts processes or opens connections"),
    **dict.fromkeys(("share_memory_", "set_num_threads", "set_num_interop_threads"), "it changes the worker process"),
    "numpy": "it leaves torch (numpy arrays can write files); stay with tensors",
    **dict.fromkeys(("format", "format_map"), "it can read attributes by name; use an f-string instead"),
    **dict.fromkeys(("attrgetter", "methodcaller", "get_device_module"), "it reads attributes or modules by name"),
    "mro": "it leads from a class to the interpreter's internals",
    **dict.fromkeys(FRAME_ATTRIBUTES, "it leads from an object to the interpreter's frames"),
    **dict.fromkeys(MODULE_ATTRIBUTES, "it is a module a layer may not use"),
}
INTERNALS = "special names lead to the interpreter's internals"
ALLOWED_MODULES_HINT = (
    "custom layers may import only torch (with torch.nn, torch.nn.functional) and math; "
    "torch, nn and F are already there"
)

# torch's own functions beyond its compiled tensor functions, and its constants, classes and submodules.
TORCH_EXTRAS: frozenset[str] = frozenset(
    {"Tensor", "Size", "dtype", "device", "no_grad", "enable_grad", "inference_mode", "set_grad_enabled",
     "is_grad_enabled", "set_default_dtype", "get_default_dtype", "is_tensor", "finfo", "iinfo", "manual_seed",
     "pi", "e", "inf", "nan", "newaxis", "nn", "linalg", "fft", "special", "autograd", *torch.functional.__all__}
)  # fmt: skip
TORCH_EXCLUDED: frozenset[str] = frozenset({"from_file", "from_numpy", "frombuffer"})
AUTOGRAD_NAMES: frozenset[str] = frozenset({"Function", "grad", "no_grad", "enable_grad", "set_grad_enabled"})
NN_EXTRAS: frozenset[str] = frozenset(
    {"Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer", "init", "functional"}
)


def _public(module: types.ModuleType) -> dict[str, object]:
    return {name: value for name, value in vars(module).items() if not name.startswith("_")}


def _torch_names() -> frozenset[str]:
    compiled = torch._C._VariableFunctions
    names = {n for n, v in _public(torch).items() if getattr(compiled, n, None) is v and not n.startswith("sym_")}
    names |= {n for n, v in _public(torch).items() if isinstance(v, torch.dtype)}
    return frozenset((names | TORCH_EXTRAS) - TORCH_EXCLUDED)


def _nn_names() -> frozenset[str]:
    layers = {n for n, v in _public(nn).items() if isinstance(v, type) and issubclass(v, nn.Module)}
    return frozenset(layers | NN_EXTRAS)


def _functions_of(module: types.ModuleType, *homes: str) -> frozenset[str]:
    """Public functions defined in ``module`` (or in ``homes``) and torch's compiled ones it re-exports."""
    names = set()
    for name, value in _public(module).items():
        if isinstance(value, type | types.ModuleType) or not callable(value):
            continue
        home = getattr(value, "__module__", None) or ""
        if inspect.isbuiltin(value) or home in (module.__name__, *homes):
            names.add(name)
    return frozenset(names)


def _math_names() -> frozenset[str]:
    return frozenset(_public(math))


@functools.cache
def module_allowlist(module_name: str) -> frozenset[str]:
    """The attributes custom code may read on an allowed module (minus the denied attributes)."""
    derive = {
        "torch": _torch_names,
        "torch.nn": _nn_names,
        "torch.nn.functional": lambda: _functions_of(F),
        "torch.nn.init": lambda: _functions_of(nn.init),
        "torch.linalg": lambda: _functions_of(torch.linalg),
        "torch.fft": lambda: _functions_of(torch.fft),
        "torch.special": lambda: _functions_of(torch.special),
        "torch.autograd": lambda: AUTOGRAD_NAMES,
        "math": _math_names,
        "__future__": lambda: frozenset({"annotations"}),
    }.get(module_name)
    if derive is None:
        return frozenset()
    return frozenset(name for name in derive() if name not in DENIED_ATTRIBUTES)


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def attribute_refusal(name: str, private_ok: bool) -> str | None:
    """Why reading attribute ``name`` is refused (None when it may be read); ``private_ok`` on the layer itself."""
    if is_dunder(name) or name.startswith("__"):
        return None if name in READABLE_DUNDERS else f"`{name}` is not allowed: {INTERNALS}"
    if name.startswith("_") and not private_ok:
        return f"`{name}` is not allowed: a layer may use private attributes only of self"
    if name in DENIED_ATTRIBUTES:
        return f"`.{name}` is not allowed: {DENIED_ATTRIBUTES[name]}"
    return None


def module_refusal(module_name: str, name: str) -> str | None:
    """Why ``module.name`` is refused to custom code (None when it is on the module's allowlist)."""
    if name in module_allowlist(module_name):
        return None
    reason = DENIED_ATTRIBUTES.get(name, "it is not on the list of what a layer may use")
    return f"`{module_name}.{name}` is not available in custom layers: {reason}"
