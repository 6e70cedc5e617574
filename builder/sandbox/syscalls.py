"""A seccomp filter for the job process, through libseccomp (the ``pyseccomp`` binding).

Installed in each job's process after torch is loaded and before custom code runs, it makes the system calls an
escaped job would need fail with EPERM: starting programs, new processes (threads may stay), signals to other
processes, sockets, changing or removing files, raising limits, namespaces, mounts, tracing and the kernel's
attack surface (bpf, perf, keyrings, io_uring, modules). The default stays "allow": torch's forward passes use a
long tail of harmless calls (memory, futexes, clocks), and the jail (``builder.sandbox.jail``) already empties the
filesystem and the network.
"""

from __future__ import annotations

import errno
import os
from typing import Any

CLONE_THREAD = 0x00010000
DENIED_SYSCALLS: tuple[str, ...] = (
    # programs and processes
    "execve", "execveat", "fork", "vfork", "tkill", "ptrace", "process_vm_readv", "process_vm_writev",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "setsid", "setpgid",
    # the network
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    # files and their names
    "unlink", "unlinkat", "rename", "renameat", "renameat2", "chmod", "fchmod", "fchmodat", "chown", "fchown",
    "lchown", "fchownat", "link", "linkat", "symlink", "symlinkat", "mkdir", "mkdirat", "rmdir", "mknod", "mknodat",
    "truncate", "ftruncate", "utime", "utimes", "utimensat", "futimesat", "open_by_handle_at", "name_to_handle_at",
    "chdir", "fchdir", "chroot", "pivot_root", "acct", "memfd_create",
    # limits, identity, namespaces, mounts
    "setrlimit", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid",
    "setfsgid", "capset", "unshare", "setns", "mount", "umount2", "move_mount", "fsopen", "fsmount", "open_tree",
    # the kernel's attack surface
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "syslog", "iopl", "ioperm", "settimeofday", "clock_settime",
    "adjtimex", "clock_adjtime", "quotactl", "personality", "lookup_dcookie", "fanotify_init", "inotify_init",
    "inotify_init1",
)  # fmt: skip

try:
    import pyseccomp as seccomp
except (ImportError, RuntimeError, OSError):  # no binding, or no libseccomp on this machine
    seccomp = None


def available() -> bool:
    """Whether this process can install the filter (libseccomp and its binding are present)."""
    return seccomp is not None


def build_filter(pid: int) -> Any:
    """The filter for the process ``pid`` (built before the process loses its file descriptors)."""
    if seccomp is None:
        raise RuntimeError("libseccomp or its Python binding (pyseccomp) is missing")
    refused = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(refused, name)
        except (ValueError, RuntimeError, OSError):  # a call this architecture does not have
            continue
    rules.add_rule(refused, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))  # a process, not a thread
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # its flags are out of reach; libc falls back to clone
    rules.add_rule(refused, "kill", seccomp.Arg(0, seccomp.NE, pid))
    rules.add_rule(refused, "tgkill", seccomp.Arg(0, seccomp.NE, pid))
    rules.add_rule(refused, "rt_sigqueueinfo", seccomp.Arg(0, seccomp.NE, pid))
    rules.add_rule(refused, "prlimit64", seccomp.Arg(2, seccomp.NE, 0))  # reading limits is fine, setting is not
    return rules


def install(rules: Any) -> None:
    """Load the filter into this process: from now on, for good."""
    rules.load()


def install_for_this_process() -> None:
    """Build and load the filter for the calling process (tests and the escape simulation)."""
    install(build_filter(os.getpid()))
