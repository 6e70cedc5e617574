"""``python -m builder doctor``: what this machine offers the builder, and at which level custom code runs.

Reports torch, Graphviz's ``dot`` (server-side graph images), Chromium (the browser tests), the sandbox's settings
and isolation level (jail or process, seccomp), and how long a sandbox worker takes to start. Exit status 0 when
the builder can run here as configured, 1 when something it needs is missing (a broken setting, or
``BUILDER_SANDBOX=jail`` where the jail cannot run).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

CHROMIUM_ENV = "BUILDER_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, whether it is fine, and what was found."""

    name: str
    ok: bool
    detail: str
    required: bool = True  # a missing optional item (the browser for tests) does not fail the doctor


def _version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"does not run ({error})"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else f"exit code {done.returncode}"


def check_torch() -> Finding:
    import torch

    return Finding("torch", True, f"{torch.__version__}, {torch.get_num_threads()} CPU threads")


def check_dot() -> Finding:
    dot = shutil.which("dot")
    if dot is None:
        return Finding("graphviz dot", False, "not installed: graph images (.svg/.png) need Debian's graphviz", False)
    return Finding("graphviz dot", True, f"{dot}: {_version([dot, '-V'])}")


def check_chromium() -> Finding:
    path = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
    if not os.path.exists(path):
        return Finding("chromium (tests)", False, f"{path} not found; browser tests use playwright's own", False)
    return Finding("chromium (tests)", True, f"{path}: {_version([path, '--version'])}", False)


def check_sandbox(start_worker: bool) -> list[Finding]:
    from builder import sandbox

    try:
        level = sandbox.isolation()
    except sandbox.SandboxError as error:
        return [Finding("custom-layer sandbox", False, str(error))]
    findings = [Finding("custom-layer sandbox", True, level.describe())]
    if start_worker and level.level != "off":
        findings.append(_worker_start())
    return findings


def _worker_start() -> Finding:
    from builder import sandbox

    sandbox.shutdown()
    start = time.monotonic()
    try:
        sandbox.warm_up(wait=True)
    except sandbox.SandboxError as error:
        return Finding("sandbox worker", False, str(error))
    seconds = time.monotonic() - start
    facts = sandbox.worker_facts()
    where = "in the jail" if facts and facts[0].get("jail") else "as a plain process"
    sandbox.shutdown()
    return Finding("sandbox worker", True, f"{len(facts)} started {where} in {seconds:.1f} s")


def diagnose(start_worker: bool = True) -> list[Finding]:
    """Every finding, in the order they are printed."""
    python = Finding("python", True, f"{platform.python_version()} ({sys.executable})")
    return [python, check_torch(), check_dot(), check_chromium(), *check_sandbox(start_worker)]


def render(findings: list[Finding]) -> str:
    width = max(len(f.name) for f in findings)
    marks = {True: "ok  ", False: "FAIL"}
    lines = []
    for finding in findings:
        mark = marks[finding.ok] if finding.ok or finding.required else "--  "
        lines.append(f"{mark} {finding.name.ljust(width)}  {finding.detail}")
    return "\n".join(lines)


def run_doctor(args: argparse.Namespace) -> int:
    findings = diagnose(start_worker=not args.quick)
    print(render(findings))
    return 0 if all(f.ok or not f.required for f in findings) else 1


def register_doctor_command(commands: argparse._SubParsersAction) -> None:
    """Add ``doctor`` to the CLI's sub-commands."""
    doctor = commands.add_parser("doctor", help="check torch, graphviz, chromium and the custom-layer sandbox")
    doctor.add_argument("--quick", action="store_true", help="do not start a sandbox worker to time it")
    doctor.set_defaults(run=run_doctor)
