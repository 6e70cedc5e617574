"""The operating-system boundary: the bubblewrap jail, the pool of workers, and the escape simulation.

The escape simulation runs trusted raw Python in a jailed job's process with every Python-level guard off, as if
an attacker had got past all of them, and shows that the OS layers alone hold. These tests need bubblewrap: where
it cannot run they are skipped, except in CI (``BUILDER_REQUIRE_JAIL=1``, set by ``.ci/run``), where that fails.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from builder import sandbox
from builder.sandbox import jail, protocol

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 4.0
MARKER = "/tmp/builder-jail-marker"
REQUIRED = os.environ.get("BUILDER_REQUIRE_JAIL") == "1"


def _require_jail() -> None:
    reason = jail.probe()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"the jail must run in CI: {reason}")
        pytest.skip(f"no jail here: {reason}")


@pytest.fixture(scope="module", autouse=True)
def jailed_workers():
    _require_jail()
    sandbox.shutdown()
    os.environ[protocol.ESCAPE_TESTS_ENV] = "1"
    sandbox.configure(timeout=TIMEOUT, workers=2, mode="jail")
    sandbox.warm_up(wait=True)
    yield
    sandbox.shutdown()
    sandbox.configure(timeout=None, workers=None, mode=None)
    del os.environ[protocol.ESCAPE_TESTS_ENV]


@pytest.fixture(autouse=True)
def untouched(tmp_path_factory):
    """A file of the project the attacks try to read, change and delete; a marker they try to create."""
    victim = ROOT / "tests" / "artifacts" / "jail-victim.txt"
    victim.parent.mkdir(exist_ok=True)
    victim.write_text("keep me\n")
    Path(MARKER).unlink(missing_ok=True)
    yield victim
    assert victim.read_text() == "keep me\n", "a jailed job changed the project's files"
    victim.unlink()
    assert not Path(MARKER).exists(), "a jailed job wrote to the server's /tmp"


CENTERED = "class CenteredLayer(nn.Module):\n    def forward(self, X):\n        return X - X.mean()\n"
LOOP = "class Loop(nn.Module):\n    def forward(self, X):\n        while True:\n            pass\n"


def test_custom_layers_run_in_the_jail() -> None:
    assert sandbox.isolation().level == "jail"
    facts = sandbox.worker_facts()
    assert facts and all(f["jail"] and f["seccomp"] for f in facts), facts
    report = sandbox.check_layer(CENTERED, "CenteredLayer")
    assert report.ok, report.message


def test_the_worker_sees_none_of_the_machine() -> None:
    top = sandbox.worker_pid()
    jailed = [pid for pid in _descendants(top) if Path(f"/proc/{pid}/exe").resolve().name.startswith("python")]
    assert jailed, "no Python worker under bwrap"
    pid = jailed[0]
    for space in ("pid", "net", "user", "mnt", "ipc", "uts"):
        assert os.readlink(f"/proc/{pid}/ns/{space}") != os.readlink(f"/proc/self/ns/{space}"), space
    root = Path(f"/proc/{pid}/root")
    assert not (root / ROOT.relative_to("/") / "README.md").exists()
    assert not (root / "etc" / "shadow").exists()
    assert (root / "sandbox" / "builder" / "sandbox" / "worker.py").exists()


ATTACKS = {
    "read-project": f"open({str(ROOT / 'README.md')!r}).read()",
    "read-shadow": "open('/etc/shadow').read()",
    "write-project": f"open({str(ROOT / 'tests' / 'artifacts' / 'jail-victim.txt')!r}, 'w').write('gone')",
    "delete-project": f"import os; os.unlink({str(ROOT / 'tests' / 'artifacts' / 'jail-victim.txt')!r})",
    "write-tmp": f"open({MARKER!r}, 'w').write('x')",
    "kill-server": "import os, signal; os.kill(SERVER, signal.SIGTERM)",
    "fork": "import os; pid = os.fork(); os._exit(0) if pid == 0 else None",
    "exec-shell": "import os; os.execv('/bin/sh', ['sh', '-c', 'true'])",
    "tcp-socket": "import socket; socket.create_connection(('127.0.0.1', PORT), timeout=1)",
    "raise-memory-limit": "import resource; resource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
}
JAIL_ALONE = ("read-project", "read-shadow", "write-project", "delete-project", "kill-server", "tcp-socket")


def _attack_source(action: str, port: int) -> str:
    return (
        f"SERVER, PORT = {os.getpid()}, {port}\n"
        "try:\n"
        f"    {ATTACKS[action]}\n"
        "    report.append('DONE')\n"
        "except BaseException as error:\n"
        "    report.append(f'refused {type(error).__name__}: {error}')\n"
    )


@pytest.fixture
def listener():
    """A TCP server on loopback that must receive no connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    yield server
    try:
        connection, _ = server.accept()
        connection.close()
        accepted = True
    except OSError:
        accepted = False
    server.close()
    assert not accepted, "a jailed job reached a socket on the server's loopback"


@pytest.mark.parametrize("action", list(ATTACKS), ids=list(ATTACKS))
def test_the_os_layers_hold_alone(action: str, listener) -> None:
    """Raw Python, every Python-level guard off, under limits + seccomp + the jail."""
    raw, outcome = sandbox.simulate_escape(_attack_source(action, listener.getsockname()[1]))
    assert raw is not None and raw[0].startswith("refused"), (raw, outcome)
    assert not outcome.ending.get("leftovers")


@pytest.mark.parametrize("action", JAIL_ALONE, ids=JAIL_ALONE)
def test_the_jail_alone_holds(action: str, listener) -> None:
    """Even without the job's limits and seccomp, the jail keeps files, signals and the network out of reach."""
    raw, _ = sandbox.simulate_escape(_attack_source(action, listener.getsockname()[1]), os_limits=False)
    assert raw is not None and raw[0].startswith("refused"), raw


def test_the_jails_tmp_is_its_own(listener) -> None:
    """Without the limits a job can write to /tmp: the jail's own empty tmpfs, not the server's (see the fixture)."""
    raw, _ = sandbox.simulate_escape(_attack_source("write-tmp", listener.getsockname()[1]), os_limits=False)
    assert raw == ("DONE",)


def test_ten_checks_at_once_all_answer() -> None:
    """Ten sessions submit together, one of them an endless loop: the others answer within their normal time."""
    answers: dict[int, tuple[float, sandbox.CheckReport]] = {}

    def submit(index: int) -> None:
        start = time.monotonic()
        source, name = (LOOP, "Loop") if index == 0 else (CENTERED, "CenteredLayer")
        report = sandbox.check_layer(source, name, session=f"session-{index}")
        answers[index] = (time.monotonic() - start, report)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == list(range(10))
    assert "did not finish" in answers[0][1].message
    slowest = max(seconds for index, (seconds, report) in answers.items() if index)
    assert all(report.ok for index, (_, report) in answers.items() if index)
    assert slowest < TIMEOUT  # they did not wait for the loop: the pool's other worker served them


def test_a_newer_check_of_the_same_session_cancels_the_earlier() -> None:
    earlier: list[sandbox.CheckReport] = []
    thread = threading.Thread(target=lambda: earlier.append(sandbox.check_layer(LOOP, "Loop", session="one")))
    thread.start()
    time.sleep(0.5)  # the loop is running
    start = time.monotonic()
    report = sandbox.check_layer(CENTERED, "CenteredLayer", session="one")
    thread.join(timeout=30)
    assert report.ok, report.message
    assert "cancelled" in earlier[0].message, earlier[0].message
    assert time.monotonic() - start < TIMEOUT


def test_a_session_is_limited_per_minute() -> None:
    sandbox.configure(rate=3)
    try:
        reports = [sandbox.check_layer(CENTERED, "CenteredLayer", session="busy") for _ in range(4)]
    finally:
        sandbox.configure(rate=None)
    assert [r.ok for r in reports] == [True, True, True, False]
    assert "too many checks: at most 3 a minute" in reports[3].message
    assert sandbox.check_layer(CENTERED, "CenteredLayer", session="someone-else").ok


def test_jail_mode_refuses_custom_code_without_the_jail(monkeypatch, tmp_path) -> None:
    sandbox.shutdown()
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on the PATH
    jail.probe.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxError, match="BUILDER_SANDBOX=jail, but the jail cannot run here"):
            sandbox.isolation()
        report = sandbox.check_layer(CENTERED, "CenteredLayer")
        assert not report.ok and "the jail cannot run here" in report.message
        sandbox.configure(mode="auto")
        assert sandbox.isolation().level == "process"
    finally:
        monkeypatch.undo()
        jail.probe.cache_clear()
        sandbox.shutdown()
        sandbox.configure(mode="jail")
        sandbox.warm_up(wait=True)


def _descendants(pid: int | None) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found
