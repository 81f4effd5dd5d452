"""CloudWatch Logs for the launcher's and the workers' output: lines are buffered per stream and
sent with PutLogEvents every LOG_FLUSH_S, within PutLogEvents' limits.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .aws import Aws, error_code
from .output import Output, now_ms

# CloudWatch Logs limits (PutLogEvents).
LOG_BATCH_EVENTS = 10_000
LOG_BATCH_BYTES = 1_048_576
LOG_EVENT_OVERHEAD = 26
LOG_EVENT_MAX_BYTES = 256 * 1024 - LOG_EVENT_OVERHEAD
LOG_FLUSH_S = 0.5


class LogSetupError(RuntimeError):
    pass


class LogShipper:
    """Buffers lines per log stream and sends them with PutLogEvents every LOG_FLUSH_S."""

    def __init__(self, aws: Aws, out: Output) -> None:
        self._aws = aws
        self._out = out
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffers: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        self._failed: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    def open_stream(self, region: str, group: str, stream: str, create_group: bool) -> None:
        """Creates the stream; the group too when `create_group`, else LogSetupError if absent."""
        logs = self._aws.client("logs", region)
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except ClientError as error:
            code = error_code(error)
            if code == "ResourceAlreadyExistsException":
                return
            if code != "ResourceNotFoundException":
                raise
            if not create_group:
                raise LogSetupError(f"the log group {group} does not exist in {region}") from None
            with contextlib.suppress(ClientError):
                logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName=stream)

    def add(
        self, region: str, group: str, stream: str, message: str, ts: int | None = None
    ) -> None:
        encoded = message.encode("utf-8", "replace")
        if len(encoded) > LOG_EVENT_MAX_BYTES:
            message = encoded[:LOG_EVENT_MAX_BYTES].decode("utf-8", "ignore")
        if not message:
            message = " "  # CloudWatch rejects empty messages
        with self._lock:
            self._buffers.setdefault((region, group, stream), []).append(
                (ts if ts is not None else now_ms(), message)
            )

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                buffers, self._buffers = self._buffers, {}
            for (region, group, stream), events in buffers.items():
                try:
                    self._put(region, group, stream, sorted(events, key=lambda e: e[0]))
                except (ClientError, BotoCoreError) as error:
                    if (region, group, stream) not in self._failed:
                        self._failed.add((region, group, stream))
                        self._out.error("logs", error, log_group=group, log_stream=stream)

    def _put(self, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        logs = self._aws.client("logs", region)
        batch: list[dict[str, Any]] = []
        size = 0
        for ts, message in events:
            cost = len(message.encode("utf-8")) + LOG_EVENT_OVERHEAD
            if batch and (len(batch) >= LOG_BATCH_EVENTS or size + cost > LOG_BATCH_BYTES):
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
                batch, size = [], 0
            batch.append({"timestamp": ts, "message": message})
            size += cost
        if batch:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)

    def _run(self) -> None:
        while not self._stop.wait(LOG_FLUSH_S):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()
