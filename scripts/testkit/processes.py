"""Local processes of the test tooling: everything a process started, ending all of it at once,
and whether an unprivileged process can reach a folder.

The local runner ends Lambda runtimes and workers with `kill_tree` (as a container's teardown
ends everything in it), the bench the runner when it does not stop, the killed-worker tests a
worker in the middle of a render. Their children often run in sessions of their own (the runner
starts each worker and runtime with start_new_session, the worker starts POV-Ray so), so a
process group does not hold them: the tree is found through /proc (Linux).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), children first found first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> list[int]:
    """SIGKILLs `pid` and every process below it; returns their ids (gone ones included).

    A stopped process (SIGSTOP) dies of SIGKILL as well: the kernel delivers it without a
    SIGCONT first.
    """
    victims = [pid, *descendants(pid)]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    return victims


def others_can_traverse(path: Path) -> bool:
    """Whether a user owning nothing (the worker's render user) can reach `path`: o+x on it and
    on every parent folder."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))
