"""Starting the AWS emulator (scripts/moto_server.py) on a free loopback port, for test tooling
that needs a server of its own (with its own settings, or its whole state to itself).

Standard library only, like the rest of testkit.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(log: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """The emulator's URL while it runs, with `env` added to its environment (the rules'
    LEW_EMULATOR_* settings); its output goes to `log`. Stopped on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()  # noqa: S310
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"the emulator exited: {log.read_text()[-2000:]}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("the emulator did not answer within 30 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
