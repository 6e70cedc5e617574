"""``python -m builder doctor``: the machine's report, and a failing exit status when the sandbox cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from builder.doctor import Finding, render

ROOT = Path(__file__).resolve().parent.parent


def doctor(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    command = [sys.executable, "-m", "builder", "doctor", "--quick"]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120)


def test_doctor_reports_each_part(tmp_path: Path) -> None:
    result = doctor(tmp_path)
    names = [line.split()[1] for line in result.stdout.splitlines()]
    assert names[:4] == ["python", "torch", "graphviz", "chromium"], result.stdout
    assert "custom-layer sandbox" in result.stdout
    level = "jail" if "jail:" in result.stdout else "process"
    assert f"custom-layer sandbox  {level}: " in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_doctor_fails_when_the_required_jail_cannot_run(tmp_path: Path) -> None:
    result = doctor(tmp_path, PATH=str(tmp_path), BUILDER_SANDBOX="jail")  # no bwrap, dot or chromium on PATH
    assert result.returncode == 1
    assert "FAIL custom-layer sandbox  BUILDER_SANDBOX=jail, but the jail cannot run here" in result.stdout
    assert "--   graphviz dot" in result.stdout  # optional: reported, not failed


def test_doctor_names_a_bad_setting(tmp_path: Path) -> None:
    result = doctor(tmp_path, BUILDER_SANDBOX_TIMEOUT="nan")
    assert result.returncode == 1
    assert "BUILDER_SANDBOX_TIMEOUT must be a number of seconds from 0.1 to 600; got 'nan'" in result.stdout


def test_render_marks_optional_findings() -> None:
    text = render([Finding("a", True, "fine"), Finding("bb", False, "missing", required=False)])
    assert text.splitlines() == ["ok   a   fine", "--   bb  missing"]
