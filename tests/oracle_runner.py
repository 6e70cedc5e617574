"""Run exported model files in one fresh process and report what each model did, as JSON on the last line.

Usage: python tests/oracle_runner.py FILE.py [FILE.py ...]

Each file runs with ``runpy.run_path`` in its own namespace (not as ``__main__``, so its own ``main()`` stays idle);
then ``build_model()`` is called and fed an input of ``INPUT_SHAPE`` and ``INPUT_DTYPE`` in eval mode under
``torch.no_grad()``. Token-id inputs are zeros, a valid id for any vocabulary. The report per file is
``{"shape": [...], "params": N, "dtype": "torch.float32"}`` or ``{"error": "..."}``, plus ``imports_builder``:
whether this project's ``builder`` package has been imported so far (an exported file must never import it).
Importing torch once for many files is the point: a fresh interpreter per file costs over a second each.
"""

from __future__ import annotations

import json
import runpy
import sys
import traceback
from typing import Any

import torch


def _input(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    if dtype.is_floating_point:
        return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    return torch.zeros(shape, dtype=dtype)


def run_file(path: str) -> dict[str, Any]:
    """Build the file's model, run the dummy forward pass, count parameters afterwards (lazy ones are set then)."""
    namespace = runpy.run_path(path, run_name="exported_model")
    model = namespace["build_model"]()
    model.eval()
    with torch.no_grad():
        out = model(_input(tuple(namespace["INPUT_SHAPE"]), namespace["INPUT_DTYPE"]))
    return {"shape": list(out.shape), "params": sum(p.numel() for p in model.parameters()), "dtype": str(out.dtype)}


def _imports_builder() -> bool:
    return any(name == "builder" or name.startswith("builder.") for name in sys.modules)


def main(paths: list[str]) -> None:
    results: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            results[path] = run_file(path)
        except Exception as error:
            last = traceback.extract_tb(error.__traceback__)[-1]
            results[path] = {"error": f"{type(error).__name__}: {error} (at {last.filename}:{last.lineno})"}
        results[path]["imports_builder"] = _imports_builder()
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
