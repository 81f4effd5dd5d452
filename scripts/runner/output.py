"""The runner's record of what it does: one JSON line per action on stdout.

Every line has `time` (UTC, milliseconds) and `event`; fields that are None are left out. An
`error` line counts as a failure (the exit code of --once says whether there was one). With
--verbose, the launcher's and the workers' output is copied to stderr as well.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return int(time.time() * 1000)


def describe_error(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


class Output:
    """One JSON line per action on stdout (thread-safe)."""

    def __init__(self, stream: Any = None, echo: bool = False) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self.echo = echo
        self.failures = 0

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"time": now_iso(), "event": event}
        record.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(record, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def error(self, where: str, error: BaseException | str, **fields: Any) -> None:
        self.count_failure()
        message = error if isinstance(error, str) else describe_error(error)
        self("error", where=where, error=message, **fields)

    def count_failure(self) -> None:
        with self._lock:
            self.failures += 1

    def child_line(self, source: str, line: str) -> None:
        if self.echo:
            sys.stderr.write(f"[{source}] {line}\n")
            sys.stderr.flush()
