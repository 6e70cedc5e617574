"""The operating-system boundary around the worker: a bubblewrap (``bwrap``) jail.

The worker runs with every namespace unshared (no network at all; its own PID space, so it can neither see nor
signal the server; its own user namespace, so root inside holds no power outside), all capabilities dropped,
``--die-with-parent`` and ``--new-session``, a clean environment, and a filesystem of read-only binds of exactly
what Python and torch need plus an empty ``/tmp``: the interpreter's prefix and the ``sys.path`` directories of the
running interpreter (found from it, not hard-coded), the system's libraries under ``/usr``, and this package's
``builder/`` directory at ``/sandbox/builder``. The project's other files, the home directory and the rest of the
machine are not there.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from builder.sandbox.protocol import ESCAPE_TESTS_ENV, JAIL_ENV

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds builder/
BUILDER_DIR = PACKAGE_ROOT / "builder"
MOUNT_POINT = "/sandbox"
SYSTEM_LINKS: tuple[str, ...] = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES: tuple[str, ...] = ("/etc/ld.so.cache", "/etc/ld.so.conf")  # how libraries are found
PROBE_TIMEOUT = 30.0


def bwrap_path() -> str | None:
    """The bubblewrap binary, if installed."""
    return shutil.which("bwrap")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def python_paths() -> list[str]:
    """The directories the interpreter needs, from the running interpreter: its prefixes and sys.path."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    candidates += [p for p in sys.path if p and os.path.isabs(p)]
    candidates.append(str(Path(sys.executable).resolve().parent))
    chosen: list[Path] = []
    for raw in candidates:
        path = Path(raw).resolve()
        if not path.is_dir() or _inside(PACKAGE_ROOT, path):
            continue  # the project's folder (or a folder holding it) is never bound whole
        if _inside(path, PACKAGE_ROOT) and not _is_environment(path):
            continue
        chosen.append(path)
    return _outermost(chosen)


def _is_environment(path: Path) -> bool:
    """A virtual environment or site-packages inside the project folder (``.venv``) is the interpreter's own."""
    return any(part in ("site-packages", "dist-packages") for part in path.parts) or (path / "pyvenv.cfg").exists()


def _outermost(paths: list[Path]) -> list[str]:
    """The paths without those inside another one of them, in a stable order."""
    unique = sorted(set(paths), key=lambda p: (len(p.parts), str(p)))
    kept: list[Path] = []
    for path in unique:
        if not any(_inside(path, outer) for outer in kept):
            kept.append(path)
    return [str(p) for p in kept]


def _system_args() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    for name in SYSTEM_FILES:
        if os.path.exists(name):
            args += ["--ro-bind", name, name]
    return args


def _environment() -> dict[str, str]:
    threads = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
    paths = [MOUNT_POINT, *(p for p in sys.path if p and os.path.isabs(p) and not _inside(Path(p), PACKAGE_ROOT))]
    testing = {ESCAPE_TESTS_ENV: "1"} if os.environ.get(ESCAPE_TESTS_ENV) == "1" else {}
    return (
        threads
        | testing
        | {
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
            "PYTHONDONTWRITEBYTECODE": "1",
            JAIL_ENV: "1",
        }
    )


def jail_command(argv: list[str]) -> list[str]:
    """``argv`` (a Python command line) wrapped in the jail."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise FileNotFoundError("bwrap (Debian's bubblewrap package) is not installed")
    command = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for name, value in _environment().items():
        command += ["--setenv", name, value]
    command += _system_args()
    for path in python_paths():
        command += ["--ro-bind", path, path]
    command += ["--ro-bind", str(BUILDER_DIR), f"{MOUNT_POINT}/builder"]
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/", "--"]
    return command + argv


@functools.cache
def probe() -> str | None:
    """None when a jailed Python runs here; else why not (cached for the process)."""
    if sys.platform != "linux":
        return "bubblewrap needs Linux"
    if bwrap_path() is None:
        return "bwrap is not installed (Debian's bubblewrap package)"
    script = f"import os, sys; sys.exit(0 if os.path.isdir({MOUNT_POINT + '/builder'!r}) else 3)"
    try:
        done = subprocess.run(
            jail_command([sys.executable, "-c", script]),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not start: {error}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bwrap failed here ({last})"
    return None
