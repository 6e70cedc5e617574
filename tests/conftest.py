"""Shared test set-up: torch is imported once, and meta-device machinery warmed, before any test runs."""

from __future__ import annotations

import torch

# The first meta op imports torch._dynamo and sympy (over a second): pay it once here, not inside a test's timeout.
_meta = torch.empty(1, 1, device="meta")
torch.nn.functional.linear(_meta, _meta, torch.empty(1, device="meta"))
