"""Custom layers: user-written nn.Module subclasses carried as source in the design."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from builder.design import CustomLayerSpec, DesignError


def define_trusted(specs: Iterable[CustomLayerSpec]) -> dict[str, type[nn.Module]]:
    """Define custom layer classes in this process, with ``torch``, ``nn`` and ``F`` bound as in D2L.

    Only for sources the user trusts (the CLI with ``--trust``, tests, the sandbox worker itself).
    """
    classes: dict[str, type[nn.Module]] = {}
    for spec in specs:
        namespace: dict[str, object] = {"torch": torch, "nn": nn, "F": F, "__name__": f"custom_{spec.name}"}
        try:
            exec(compile(spec.source, f"<custom layer {spec.name}>", "exec"), namespace)  # noqa: S102 - trusted
        except SyntaxError as error:
            raise DesignError(f"custom layer {spec.name}: syntax error at line {error.lineno}: {error.msg}") from None
        cls = namespace.get(spec.name)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise DesignError(f"custom layer {spec.name}: the source must define class {spec.name}(nn.Module)")
        classes[spec.name] = cls
    return classes
