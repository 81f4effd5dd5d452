"""Shared pytest fixtures for the launcher and worker tests.

Tests talk to a real moto server. `scripts/test` starts one (through `scripts/moto_server.py`) and
exports AWS_ENDPOINT_URL; when pytest is run on its own, a server is started here the same way
for the session and stopped at the end.
moto's state is global to a server, so every test names its own resources (see `unique`).

With CI set, a skipped test is a failure: tests skip where this machine lacks what they need
(POV-Ray, root, the registry, the lew binary), and CI must run every one of them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # noqa: S310 (http only)
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # An expected failure (xfail) is reported as skipped too: it ran, and is not a skip.
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"
    return report


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a running moto server, with dummy credentials in the environment."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    # The Python tests create their resources in us-east-1 (buckets without a location
    # constraint), whatever region the Rust tests around them use.
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ["AWS_REGION"] = "us-east-1"
    existing = os.environ.get("AWS_ENDPOINT_URL")
    if existing:
        _wait_until_up(existing)
        yield existing
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "moto_server.py"),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(url)
        os.environ["AWS_ENDPOINT_URL"] = url
        yield url
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def unique() -> str:
    """A short random suffix so each test's resources do not collide on the shared server."""
    return uuid.uuid4().hex[:10]
