"""The sandbox's settings: ``configure()`` over the environment over the defaults, each checked once, clearly.

| setting | environment | default |
|---|---|---|
| custom code on/off | ``BUILDER_DISABLE_CUSTOM=1`` (always wins) | on |
| isolation | ``BUILDER_SANDBOX`` = ``auto``, ``jail`` or ``process`` | auto (the jail where it runs) |
| wall-clock seconds per job | ``BUILDER_SANDBOX_TIMEOUT`` | 10 |
| memory per job beyond torch's own | ``BUILDER_SANDBOX_MEMORY_MB`` | 2048 |
| workers (checks at once) | ``BUILDER_SANDBOX_WORKERS`` | 2 |
| checks per minute per session | ``BUILDER_SANDBOX_RATE`` | 60 |
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from builder.design import DesignError

GiB = 2**30
MiB = 2**20
DISABLE_ENV = "BUILDER_DISABLE_CUSTOM"
MODE_ENV = "BUILDER_SANDBOX"
TIMEOUT_ENV = "BUILDER_SANDBOX_TIMEOUT"
MEMORY_ENV = "BUILDER_SANDBOX_MEMORY_MB"
WORKERS_ENV = "BUILDER_SANDBOX_WORKERS"
RATE_ENV = "BUILDER_SANDBOX_RATE"


class SandboxError(DesignError):
    """The sandbox itself failed or is misconfigured: not the layer's fault. The message says what to change."""


class Mode(StrEnum):
    """Which isolation the server asks for."""

    AUTO = "auto"  # the jail where bubblewrap runs, else process limits only
    JAIL = "jail"  # the jail or nothing: custom code is refused without it
    PROCESS = "process"  # process limits only


@dataclass(frozen=True)
class SandboxSettings:
    """How custom code runs: whether at all, where, and its limits per job."""

    enabled: bool = True
    mode: Mode = Mode.AUTO
    timeout: float = 10.0  # wall-clock seconds per job; the CPU limit is this, rounded up, plus one
    memory: int = 2 * GiB  # address space a job may add to what torch itself uses
    workers: int = 2
    rate: int = 60  # checks per minute per session (live mode runs one per edit)
    startup_timeout: float = 120.0  # seconds to wait for a worker to import torch


# (environment variable, field, lowest, highest, unit, convert)
_NUMBERS: tuple[tuple[str, str, float, float, str], ...] = (
    (TIMEOUT_ENV, "timeout", 0.1, 600.0, "seconds"),
    (MEMORY_ENV, "memory", 64.0, 1024.0 * 1024, "megabytes"),
    (WORKERS_ENV, "workers", 1, 16, "workers"),
    (RATE_ENV, "rate", 1, 10_000, "checks per minute"),
)
_overrides: dict[str, Any] = {}


def configure(**changes: Any) -> None:
    """Set sandbox settings for this process (fields of SandboxSettings); None restores the default."""
    unknown = set(changes) - set(SandboxSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown sandbox setting(s): {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        if value is None:
            _overrides.pop(name, None)
        else:
            _overrides[name] = Mode(value) if name == "mode" else value


def settings() -> SandboxSettings:
    """The settings in force; SandboxError naming the variable when one is not usable."""
    base = SandboxSettings(mode=_env_mode())
    for variable, name, low, high, unit in _NUMBERS:
        raw = os.environ.get(variable, "").strip()
        if raw:
            value = _number(variable, raw, low, high, unit, whole=name in ("workers", "rate"))
            base = replace(base, **{name: int(value * MiB) if name == "memory" else value})
    current = replace(base, **_overrides)
    _check(current)
    env_off = os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return replace(current, enabled=False) if env_off else current


def _env_mode() -> Mode:
    raw = os.environ.get(MODE_ENV, "").strip().lower() or Mode.AUTO.value
    try:
        return Mode(raw)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise SandboxError(f"{MODE_ENV} must be one of {choices}; got {raw!r}") from None


def _number(variable: str, raw: str, low: float, high: float, unit: str, whole: bool) -> float:
    kind = "a whole number" if whole else "a number"
    message = f"{variable} must be {kind} of {unit} from {low:g} to {high:g}; got {raw!r}"
    try:
        value = float(raw)
    except ValueError:
        raise SandboxError(message) from None
    if not math.isfinite(value) or not low <= value <= high or (whole and value != int(value)):
        raise SandboxError(message)
    return int(value) if whole else value


def _check(current: SandboxSettings) -> None:
    """Settings given through configure() obey the same bounds."""
    for _, name, low, high, unit in _NUMBERS:
        value = getattr(current, name)
        value = value / MiB if name == "memory" else value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SandboxError(f"sandbox setting {name} must be a number of {unit}; got {value!r}")
        if not low <= value <= high:
            raise SandboxError(f"sandbox setting {name} must be from {low:g} to {high:g} {unit}; got {value:g}")
    if not isinstance(current.mode, Mode):
        raise SandboxError(f"sandbox setting mode must be one of {', '.join(m.value for m in Mode)}")


def disabled_message() -> str:
    return (
        f"custom code is turned off on this server ({DISABLE_ENV}=1 or sandbox.configure(enabled=False)); "
        "remove the custom layers, or run the builder on your own machine to use them"
    )
