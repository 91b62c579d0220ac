"""Whether a process still runs, and what it is: for pid files and consumer names that outlive it.

A pid means something only inside one pid namespace of one running kernel:
two containers that share a hostname can both run their service as pid 1, and
a pid that has ended in one says nothing about the other. ``pid_scope()``
names that space, so a record of a pid can say where the pid was taken.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

__all__ = ["cmdline", "pid_alive", "pid_scope"]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie nobody has reaped yet counts as ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cmdline(pid: int) -> list[str] | None:
    """The command line ``pid`` shows in ``/proc`` (as rewritten by the process), or None.

    Programs that set their process title (redis-server does) write it over
    their arguments: the words are split on spaces as well as NULs.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return os.fsdecode(raw).replace("\0", " ").split()


@functools.cache  # a process keeps its pid namespace (a fork too), the kernel its boot
def pid_scope() -> str | None:
    """12 hex digits naming the space this process's pids live in, or None if unknown.

    The space is this kernel's boot (``/proc/sys/kernel/random/boot_id``, a
    random UUID per boot, the same in every container on the kernel) and this
    process's pid namespace (the inode of ``/proc/self/ns/pid``, unique among
    the kernel's live namespaces). Two processes with the same scope see the
    same pids; a namespace whose inode is reused after it ended held no process
    any more.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        return None
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:12]
