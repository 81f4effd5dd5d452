"""The shared process helpers against real processes: a tree with a grandchild in a session of
its own (as the runner's workers and the worker's POV-Ray run), stopped and then killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit.processes import descendants, kill_tree, others_can_traverse

# A parent with a plain child and a child in a new session which itself has a grandchild in
# yet another session: none of them shares the parent's process group but the plain child.
TREE = """
import subprocess, sys, time
subprocess.Popen(["sleep", "300"])
subprocess.Popen(
    [sys.executable, "-c",
     "import subprocess, time; subprocess.Popen(['sleep', '300'], start_new_session=True); "
     "time.sleep(300)"],
    start_new_session=True,
)
time.sleep(300)
"""


def _state(pid: int) -> str:
    """The process state letter (T stopped, Z exited but not reaped), "" once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _wait(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Polls until `condition()` holds; the deadline bounds a hang, it is not a timing."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s"
        time.sleep(0.02)


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[bytes]]:
    parent = subprocess.Popen([sys.executable, "-c", TREE])
    started = [parent.pid]
    try:
        # Both sleeps have started (exec comes after a child's setsid): the tree is complete.
        _wait(
            lambda: [_comm(pid) for pid in descendants(parent.pid)].count("sleep") == 2,
            "the tree of four processes",
        )
        started += descendants(parent.pid)
        yield parent
    finally:
        # Whatever a failed check left behind, also once reparented away from the parent.
        for pid in {*started, *descendants(parent.pid)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_descendants_reach_across_sessions(tree: subprocess.Popen[bytes]) -> None:
    below = descendants(tree.pid)
    assert len(below) == 3 and tree.pid not in below
    sessions = {os.getsid(pid) for pid in below}
    assert len(sessions) == 3, "the grandchild should be in a session of its own"
    assert sorted(len(descendants(pid)) for pid in below) == [0, 0, 1]


def test_kill_tree_kills_a_stopped_tree_across_sessions(tree: subprocess.Popen[bytes]) -> None:
    below = descendants(tree.pid)
    for pid in [tree.pid, *below]:
        os.kill(pid, signal.SIGSTOP)
    _wait(lambda: all(_state(pid) == "T" for pid in [tree.pid, *below]), "the tree stopped")

    victims = kill_tree(tree.pid)

    assert sorted(victims) == sorted([tree.pid, *below])
    assert tree.wait(timeout=30) == -signal.SIGKILL
    # The others were reparented when the parent died: gone, or dead and not yet reaped.
    _wait(lambda: all(_state(pid) in ("", "Z") for pid in below), "every descendant dead")


def test_kill_tree_of_a_process_that_is_gone() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    assert kill_tree(process.pid) == [process.pid]


def test_others_can_traverse_needs_o_x_on_every_folder_on_the_way() -> None:
    assert others_can_traverse(Path("/tmp")), "the checks below need /tmp to be o+x"
    top = Path(tempfile.mkdtemp(prefix="lew-testkit-", dir="/tmp"))
    try:
        inner = top / "a" / "b"
        inner.mkdir(parents=True)
        for folder in (top, top / "a", inner):
            folder.chmod(0o755)
        assert others_can_traverse(inner)
        (top / "a").chmod(0o750)  # no o+x on one folder on the way
        assert not others_can_traverse(inner)
        assert others_can_traverse(top)
        (top / "a").chmod(0o701)  # o+x without o+r is enough to pass through
        assert others_can_traverse(inner)
        inner.chmod(0o700)  # the folder itself counts too
        assert not others_can_traverse(inner)
    finally:
        (top / "a").chmod(0o755)
        shutil.rmtree(top)
