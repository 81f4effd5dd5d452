#!/usr/bin/env python3
"""The local runner: plays AWS Lambda and ECS Fargate for a lew stack deployed to moto.

moto stores the launcher function and the worker tasks but runs neither. This process does,
reading everything it acts on back from moto, so the wiring lew produced is what gets exercised:

Lambda side (S3 -> launcher)
    Polls the bucket (ListObjectsV2) for new objects. For each, it reads the bucket's
    notification configuration and, for every LambdaFunctionConfiguration whose events and
    prefix/suffix filter match, checks that the function's resource policy lets S3 invoke it,
    builds the S3 event the way S3 does and runs the deployed handler (GetFunction: Handler,
    Runtime, Timeout, environment; code from Code.Location). A failure is retried like an async
    invocation (MaximumRetryAttempts from GetFunctionEventInvokeConfig, default 2), then the
    event goes to the configured SQS on-failure destination as Lambda's record of it; the
    function's reserved concurrency is honoured.

    Like Lambda, it keeps execution environments warm: an environment is one Python process
    that imports the handler once (INIT, a cold start) and then runs invocations one at a time,
    events in and outcomes out over pipes. A free environment is reused as long as the function's
    code and configuration (CodeSha256, Handler, Runtime, MemorySize, Timeout, environment
    variables) are unchanged; any change retires the old ones, so the next invocation is a cold
    start again. An uncaught exception fails the invocation and keeps the environment; exceeding
    the function's Timeout ("Task timed out after N seconds") or the process ending kills it.
    Each environment writes to its own stream in /aws/lambda/<function> (named like Lambda's):
    its output as it comes, START/END/REPORT lines per invocation, "Init Duration" only in the
    REPORT of a cold start. Environments are closed when the runner stops.

Fargate side (RunTask -> worker)
    Polls ListTasks(cluster, desiredStatus=RUNNING). For each task not seen yet it reads the
    task (DescribeTasks: definition and overrides) and the task definition (the container's
    environment, awslogs options, stopTimeout) and runs worker/worker.py as a local process with
    that environment plus the endpoint, credentials and a fresh LEW_WORK_DIR. Output goes to the
    awslogs group and stream. When the process exits the task is stopped (StopTask), which is
    what makes the launcher's count of running tasks drop. S3 and ECS are polled by separate
    threads every --poll seconds, and ECS also right after each launcher invocation (whose
    RunTask is what starts tasks), so a task's worker starts without waiting for a poll.

Usage (endpoint and credentials from the usual AWS variables):
    export AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=eu-west-1 \\
        AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    .venv/bin/python scripts/runner/runner.py --app NAME [--once] [--include-existing]

Every action is one JSON line on stdout. SIGTERM/SIGINT close the Lambda environments, stop the
workers (SIGTERM, then SIGKILL after the container's stopTimeout), stop their tasks and exit 0.

What moto 5.2.5 does that this runner works around:
- GetFunction's Code.Location names a real AWS host and moto serves the package nowhere, so
  the runner falls back to the launcher source lew embeds (launcher/launcher.py, or
  --launcher-code) and says so in a `launcher_code` line.
- Every DescribeTasks call moves a task one step towards STOPPED (RUNNING, DEACTIVATING, ...)
  while desiredStatus stays RUNNING. The runner sets moto's `ecs::task` transition to manual so
  a task stays RUNNING while its worker runs, and StopTask (which sets both statuses to
  STOPPED) marks its end. moto keeps no exit code, stoppedAt or stopCode: a non-zero exit code
  is written into stoppedReason.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fnmatch
import hashlib
import json
import math
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORKER = REPO / "worker" / "worker.py"
DEFAULT_LAUNCHER_CODE = REPO / "launcher" / "launcher.py"

# What a container gets when its definition sets no stopTimeout (ECS's default).
DEFAULT_STOP_TIMEOUT_S = 30
# Lambda's default for async invocations without an event invoke config.
DEFAULT_ASYNC_RETRIES = 2
# Concurrent launcher invocations when the function reserves no concurrency.
MAX_INVOCATIONS = 8
# Lambda's limit for the INIT phase of an on-demand execution environment.
LAMBDA_INIT_LIMIT_S = 10
# CloudWatch Logs limits (PutLogEvents).
LOG_BATCH_EVENTS = 10_000
LOG_BATCH_BYTES = 1_048_576
LOG_EVENT_OVERHEAD = 26
LOG_EVENT_MAX_BYTES = 256 * 1024 - LOG_EVENT_OVERHEAD
LOG_FLUSH_S = 0.5
# A task whose description keeps failing is given up after this many polls.
TASK_START_ATTEMPTS = 3
# Reasons written into StopTask.
REASON_EXITED = "Essential container in task exited"
REASON_SHUTDOWN = "lew local runner: stopped on shutdown"
# Environment every child gets so nothing of the host's AWS setup leaks in.
ISOLATION_ENV = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "LANG": "C.UTF-8",
}
# How moto's task state machine is held (a task stays RUNNING until StopTask).
HOLD_TRANSITION = {"progression": "manual", "times": 2**31}

# Lambda's Python runtime, one process per execution environment: it imports the handler once
# (the INIT phase) and then runs one invocation per request line, as a warm environment does.
# Requests come on a private copy of stdin (fd 0 itself is /dev/null, so the handler cannot read
# them); the handler's stdout and stderr are the log stream. Every outcome (of INIT, then of each
# invocation) is one line on stdout that starts with a nonce only the runner and this bootstrap
# know; whatever precedes the nonce on that line is the handler's unterminated last output.
LAMBDA_BOOTSTRAP = r"""
import importlib, json, os, resource, sys, time, traceback
handler, function_name, version, memory_mb, function_arn = sys.argv[1:6]
del sys.argv[1:]
requests = os.fdopen(os.dup(0), "rb")
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
nonce = json.loads(requests.readline())["nonce"]

class Context:
    function_name = function_name
    function_version = version
    invoked_function_arn = function_arn
    memory_limit_in_mb = memory_mb
    log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
    def __init__(self, request_id, deadline):
        self.aws_request_id = request_id
        self._deadline = deadline
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.time()) * 1000))

def send(outcome):
    outcome["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    data = (nonce + json.dumps(outcome, default=str) + "\n").encode()
    while data:
        data = data[os.write(1, data):]

def error(kind, exc):
    lines = traceback.format_exception(exc)
    print("[ERROR] %s: %s\r%s" % (kind, exc, "\r".join(l.rstrip("\n") for l in lines)), flush=True)
    return {"ok": False, "errorType": kind, "errorMessage": str(exc)}

module_name, _, func_name = handler.rpartition(".")
try:
    module = importlib.import_module(module_name)
except Exception as exc:
    send(error("Runtime.ImportModuleError", exc))
    sys.exit(1)
func = getattr(module, func_name, None)
if not callable(func):
    exc = AttributeError("Handler '%s' missing on module '%s'" % (func_name, module_name))
    send(error("Runtime.HandlerNotFound", exc))
    sys.exit(1)
send({"ok": True})
for raw in requests:
    request = json.loads(raw)
    request_id = request["request_id"]
    try:
        result = func(request["event"], Context(request_id, request["deadline"]))
    except Exception as exc:
        send({**error(type(exc).__name__, exc), "request_id": request_id})
        continue
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        send({**error("Runtime.MarshalError", exc), "request_id": request_id})
        continue
    send({"ok": True, "result": result, "request_id": request_id})
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return int(time.time() * 1000)


def describe_error(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def error_code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


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


# ---------------------------------------------------------------------------------------------
# AWS clients


class Aws:
    """boto3 clients for the endpoint (clients are thread-safe; the session is used only here)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = boto3.session.Session(region_name=region)
        self._config = Config(retries={"mode": "standard", "max_attempts": 3})
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self.s3 = self.client("s3")
        self.lambda_ = self.client("lambda")
        self.ecs = self.client("ecs")
        self.sts = self.client("sts")

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.region
        with self._lock:
            if (service, region) not in self._clients:
                config = self._config
                if service == "s3":
                    config = config.merge(Config(s3={"addressing_style": "path"}))
                self._clients[(service, region)] = self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=config
                )
            return self._clients[(service, region)]

    def credentials_env(self) -> dict[str, str]:
        creds = self._session.get_credentials()
        if creds is None:
            raise RuntimeError("no AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        frozen = creds.get_frozen_credentials()
        env = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
        return env

    def moto_api(self, path: str, body: dict[str, Any] | None = None) -> bytes:
        url = self.endpoint_url.rstrip("/") + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310 (the endpoint)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.read()


# ---------------------------------------------------------------------------------------------
# CloudWatch Logs


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


# ---------------------------------------------------------------------------------------------
# Processes


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


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and everything it started (as a container's teardown does)."""
    for pid in [process.pid, *descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def pump_lines(process: subprocess.Popen[bytes], on_line: Callable[[int, str], None]) -> None:
    """Calls on_line(timestamp_ms, line) for every line of the process's stdout until EOF."""
    assert process.stdout is not None
    for raw in process.stdout:
        on_line(now_ms(), raw.decode("utf-8", "replace").rstrip("\r\n"))


# ---------------------------------------------------------------------------------------------
# S3 side: objects, notification configuration, events


@dataclass(frozen=True)
class S3Object:
    key: str
    etag: str  # without quotes
    size: int
    last_modified: datetime

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.key, self.etag, self.last_modified.isoformat())

    @property
    def event_name(self) -> str:
        # A multipart upload's ETag is "<md5>-<parts>"; S3 then sends CompleteMultipartUpload.
        return "ObjectCreated:CompleteMultipartUpload" if "-" in self.etag else "ObjectCreated:Put"


def filter_rules(configuration: dict[str, Any]) -> tuple[str, str]:
    """(prefix, suffix) of a notification configuration's key filter (names are any case)."""
    prefix = suffix = ""
    for rule in (configuration.get("Filter") or {}).get("Key", {}).get("FilterRules") or []:
        name = str(rule.get("Name", "")).lower()
        if name == "prefix":
            prefix = str(rule.get("Value", ""))
        elif name == "suffix":
            suffix = str(rule.get("Value", ""))
    return prefix, suffix


def event_matches(patterns: Iterable[str], event_name: str) -> bool:
    """Whether S3 event `ObjectCreated:Put` is covered by e.g. `s3:ObjectCreated:*`."""
    return any(fnmatch.fnmatchcase(f"s3:{event_name}", p) for p in patterns)


def matching_lambda_configurations(
    notification: dict[str, Any], key: str, event_name: str
) -> list[dict[str, Any]]:
    """The LambdaFunctionConfigurations S3 would notify for this key and event."""
    matches = []
    for configuration in notification.get("LambdaFunctionConfigurations") or []:
        prefix, suffix = filter_rules(configuration)
        if not (key.startswith(prefix) and key.endswith(suffix)):
            continue
        if event_matches(configuration.get("Events") or [], event_name):
            matches.append(configuration)
    return matches


def encode_event_key(key: str) -> str:
    """S3 event keys are form-encoded: space -> `+`, other specials -> %XX; AWS keeps `/`."""
    return urllib.parse.quote_plus(key, safe="/")


def s3_event(
    *,
    bucket: str,
    region: str,
    account: str,
    obj: S3Object,
    configuration_id: str,
    sequencer: str,
) -> dict[str, Any]:
    """The event S3 sends to a Lambda function for one new object."""
    request_id = uuid.uuid4().hex[:16].upper()
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": obj.last_modified.astimezone(UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "eventName": obj.event_name,
                "userIdentity": {"principalId": f"AWS:{account}"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": request_id,
                    "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes * 2).decode(),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": configuration_id,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": account},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": encode_event_key(obj.key),
                        "size": obj.size,
                        "eTag": obj.etag,
                        "sequencer": sequencer,
                    },
                },
            }
        ]
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    actual = context.get(key.lower())
    if actual is None:
        return operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    values = [str(v) for v in _as_list(expected)]
    if operator in ("ArnEquals", "StringEquals"):
        return actual in values
    if operator in ("ArnLike", "StringLike"):
        return any(fnmatch.fnmatchcase(actual, v) for v in values)
    return False  # an operator this check does not know: the statement does not apply


def s3_may_invoke(policy: str | None, bucket: str, account: str) -> tuple[bool, str]:
    """Whether the function's resource policy lets S3 (this bucket, this account) invoke it."""
    if not policy:
        return False, "the function has no resource policy (no permission for s3.amazonaws.com)"
    context = {"aws:sourcearn": f"arn:aws:s3:::{bucket}", "aws:sourceaccount": account}
    for statement in _as_list(json.loads(policy).get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
        if principal != "*" and "s3.amazonaws.com" not in services:
            continue
        actions = _as_list(statement.get("Action", []))
        if not any(fnmatch.fnmatchcase("lambda:InvokeFunction", a) for a in actions):
            continue
        conditions = statement.get("Condition") or {}
        if all(
            _condition_holds(op, k, v, context)
            for op, pairs in conditions.items()
            for k, v in pairs.items()
        ):
            return True, f"statement {statement.get('Sid', '?')}"
    return False, (
        "no statement of the function's resource policy allows s3.amazonaws.com to call "
        f"lambda:InvokeFunction for {context['aws:sourcearn']} in account {account}"
    )


class BucketWatcher:
    """New objects (key + ETag + LastModified not seen before) in a bucket, by polling."""

    def __init__(self, aws: Aws, bucket: str, out: Output, include_existing: bool) -> None:
        self._aws = aws
        self.bucket = bucket
        self._out = out
        self._skip_first = not include_existing
        self._seen: set[tuple[str, str, str]] = set()
        self._waiting_reported = False
        self._watching = False

    def _list(self) -> Iterator[S3Object]:
        pages = self._aws.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        for page in pages:
            for item in page.get("Contents") or []:
                yield S3Object(
                    key=item["Key"],
                    etag=str(item.get("ETag", "")).strip('"'),
                    size=int(item.get("Size", 0)),
                    last_modified=item["LastModified"],
                )

    def poll(self) -> list[S3Object]:
        try:
            objects = list(self._list())
        except ClientError as error:
            if error_code(error) != "NoSuchBucket":
                raise
            if not self._waiting_reported:
                self._waiting_reported = True
                self._out("waiting", what="bucket", bucket=self.bucket, reason="NoSuchBucket")
            self._skip_first = False  # whatever lands in a bucket created later is new
            return []
        new = [o for o in objects if o.identity not in self._seen]
        self._seen.update(o.identity for o in new)
        if not self._watching:
            self._watching = True
            self._out(
                "watching",
                bucket=self.bucket,
                existing_objects=len(new),
                existing="skipped" if self._skip_first else "notified",
            )
        if self._skip_first:
            self._skip_first = False
            return []
        return sorted(new, key=lambda o: (o.last_modified, o.key))


# ---------------------------------------------------------------------------------------------
# Lambda side: code, invocation


class CodeUnavailable(RuntimeError):
    pass


def _safe_extract(package: bytes, dest: Path) -> None:
    import io

    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if info.filename.startswith("/") or ".." in parts:
                raise CodeUnavailable(f"unsafe path in the code package: {info.filename!r}")
        archive.extractall(dest)


def code_sha256(package: bytes) -> str:
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


class CodeStore:
    """The function's code, extracted once per CodeSha256."""

    def __init__(self, aws: Aws, out: Output, root: Path, fallback: Path | None) -> None:
        self._aws = aws
        self._out = out
        self._root = root
        self._fallback = fallback
        self._lock = threading.Lock()
        self._dirs: dict[tuple[str, str], Path] = {}

    def get(self, function: dict[str, Any]) -> Path:
        configuration = function["Configuration"]
        name = configuration["FunctionName"]
        sha = str(configuration.get("CodeSha256", ""))
        with self._lock:
            cached = self._dirs.get((name, sha))
            if cached is not None:
                return cached
            dest = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self._root))
            location = (function.get("Code") or {}).get("Location", "")
            try:
                package = self._download(location)
            except CodeUnavailable as error:
                self._use_fallback(function, dest, str(error))
            else:
                if code_sha256(package) != sha:
                    raise CodeUnavailable(
                        f"the package at Code.Location has SHA-256 {code_sha256(package)}, "
                        f"the function reports {sha}"
                    )
                _safe_extract(package, dest)
                self._out(
                    "launcher_code",
                    function=name,
                    source="deployed",
                    location=location,
                    code_sha256=sha,
                )
            self._dirs[(name, sha)] = dest
            return dest

    def _download(self, location: str) -> bytes:
        """The package at Code.Location, looked up on the endpoint (never on the internet)."""
        if not location:
            raise CodeUnavailable("GetFunction returned no Code.Location")
        url = urllib.parse.urlsplit(location)
        match = re.match(r"^(?P<bucket>[^.]+)\.s3[.-]", url.hostname or "")
        if match is None:
            raise CodeUnavailable(
                f"Code.Location {location} is not an S3 address the runner can ask the endpoint for"
            )
        bucket, key = match["bucket"], urllib.parse.unquote(url.path.lstrip("/"))
        try:
            response = self._aws.s3.get_object(Bucket=bucket, Key=key)
            return response["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise CodeUnavailable(
                f"Code.Location is {location} (a real AWS host); the endpoint has no such "
                f"object ({error_code(error) or describe_error(error)} for s3://{bucket}/{key}): "
                "moto keeps the package in memory and serves it nowhere"
            ) from None

    def _use_fallback(self, function: dict[str, Any], dest: Path, reason: str) -> None:
        configuration = function["Configuration"]
        if self._fallback is None:
            raise CodeUnavailable(reason + " (and --require-deployed-code is set)")
        path = self._fallback
        if path.suffix == ".zip":
            _safe_extract(path.read_bytes(), dest)
        elif path.is_dir():
            shutil.copytree(path, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(path, dest / path.name)
        fields: dict[str, Any] = {}
        if path.is_file():
            fields["local_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            deployed = _parse_lambda_time(str(configuration.get("LastModified", "")))
            if deployed is not None and modified > deployed:
                fields["warning"] = (
                    f"{path} changed after the function was last deployed "
                    f"({configuration.get('LastModified')}); run `lew deploy-lambda`"
                )
        self._out(
            "launcher_code",
            function=configuration["FunctionName"],
            source="fallback",
            path=str(path),
            reason=reason,
            deployed_code_sha256=configuration.get("CodeSha256"),
            deployed_code_size=configuration.get("CodeSize"),
            handler=configuration.get("Handler"),
            **fields,
        )


def _parse_lambda_time(value: str) -> datetime | None:
    # "2026-11-27T20:31:54.126214000Z" or "2026-11-27T20:31:54.126+0000"
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", value)
    if match is None:
        return None
    micro = (match[2] or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(match[1]).replace(microsecond=int(micro), tzinfo=UTC)


# What makes Lambda start a new execution environment: any change of the function's code or
# configuration (UpdateFunctionCode, UpdateFunctionConfiguration) retires the old ones.
EnvironmentKey = tuple[Any, ...]


def environment_key(configuration: dict[str, Any]) -> EnvironmentKey:
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    return (
        configuration["FunctionName"],
        str(configuration.get("Version", "$LATEST")),
        str(configuration.get("CodeSha256", "")),
        str(configuration.get("Handler", "")),
        str(configuration.get("Runtime", "")),
        int(configuration.get("MemorySize", 128)),
        float(configuration.get("Timeout", 3)),
        tuple(sorted((str(k), str(v)) for k, v in variables.items())),
    )


class ExecutionEnvironment:
    """One warm Lambda execution environment: a runtime process that imported the handler once.

    It runs one invocation at a time. Its output goes, as it comes, to its own log stream (Lambda
    uses one stream per environment); each outcome arrives on `outcomes` (None when the process
    has ended).
    """

    def __init__(
        self,
        *,
        key: EnvironmentKey,
        process: subprocess.Popen[bytes],
        nonce: str,
        log: Callable[[int, str], None],
        stream: str,
    ) -> None:
        self.key = key
        self.function = str(key[0])
        self.process = process
        self.stream = stream
        self.invocations = 0
        self.started = time.monotonic()  # when the runtime was started (INIT began)
        self.outcomes: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._nonce = nonce
        self._log = log
        self._closed = False
        self.end_reason: str | None = None
        self._reader = threading.Thread(
            target=self._read, name=f"lambda-env-{process.pid}", daemon=True
        )
        self._reader.start()
        self._send({"nonce": nonce})

    def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            for raw in self.process.stdout:
                ts = now_ms()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                before, marker, payload = line.partition(self._nonce)
                if not marker:
                    self._log(ts, line)
                    continue
                if before:
                    self._log(ts, before)
                try:
                    outcome = json.loads(payload)
                except ValueError:
                    outcome = {
                        "ok": False,
                        "errorType": "Runtime.InvalidResponse",
                        "errorMessage": f"the runtime sent an unreadable outcome: {payload[:200]}",
                    }
                self.outcomes.put(outcome)
        finally:
            self.outcomes.put(None)

    def _send(self, message: dict[str, Any]) -> bool:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def invoke(self, request_id: str, event: dict[str, Any], deadline: float) -> bool:
        """Sends one event; False if the runtime is gone."""
        self.invocations += 1
        return self._send({"request_id": request_id, "event": event, "deadline": deadline})

    def wait(self, timeout: float) -> tuple[dict[str, Any] | None, bool]:
        """(the next outcome, or None if the runtime ended first; whether `timeout` passed)."""
        try:
            return self.outcomes.get(timeout=timeout), False
        except queue.Empty:
            return None, True

    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def exit_code(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(timeout=5)
        return None

    def kill(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._closed = True
        kill_tree(self.process)

    def close(self, grace: float = 2.0) -> None:
        """Ends the runtime: EOF on its request pipe, SIGKILL (with its children) after `grace`."""
        self._closed = True
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        kill_tree(self.process)
        self.process.wait()
        self._reader.join(timeout=5)


class Invoker:
    """Runs the deployed launcher for S3 events, like Lambda's asynchronous invocation.

    Execution environments are kept warm between invocations and reused, one invocation at a
    time each, as long as the function's code and configuration stay the same; a new one is
    started (a cold start, with an INIT phase and an Init Duration in its REPORT line) when none
    is free. A timed-out invocation ends its environment, an uncaught exception does not.
    """

    def __init__(
        self,
        *,
        aws: Aws,
        out: Output,
        shipper: LogShipper,
        code: CodeStore,
        python: str,
        child_env: dict[str, str],
        retry_delay: float,
        stop: threading.Event,
        on_invoked: Callable[[], None] | None = None,
    ) -> None:
        self._aws = aws
        self._out = out
        self._shipper = shipper
        self._code = code
        self._python = python
        self._child_env = child_env
        self._retry_delay = retry_delay
        self._stop = stop
        self._on_invoked = on_invoked
        self._pool = ThreadPoolExecutor(max_workers=MAX_INVOCATIONS, thread_name_prefix="invoke")
        self._lock = threading.Lock()
        self._limits: dict[str, threading.Semaphore] = {}
        self._pending: set[Future[None]] = set()
        # Execution environments: the free ones by key, all of them, each function's current key.
        self._idle: dict[EnvironmentKey, list[ExecutionEnvironment]] = {}
        self._environments: set[ExecutionEnvironment] = set()
        self._current: dict[str, EnvironmentKey] = {}
        self._closing = False

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def submit(self, function_arn: str, event: dict[str, Any], key: str) -> None:
        future = self._pool.submit(self._invoke_async, function_arn, event, key)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self._out.error("invoke", future.exception())  # type: ignore[arg-type]

    def _limit(self, function_arn: str) -> threading.Semaphore:
        with self._lock:
            if function_arn in self._limits:
                return self._limits[function_arn]
        reserved = None
        try:
            reserved = self._aws.lambda_.get_function_concurrency(FunctionName=function_arn).get(
                "ReservedConcurrentExecutions"
            )
        except (ClientError, BotoCoreError) as error:
            self._out.error("get_function_concurrency", error, function=function_arn)
        limit = max(1, min(int(reserved), MAX_INVOCATIONS)) if reserved else MAX_INVOCATIONS
        with self._lock:
            return self._limits.setdefault(function_arn, threading.Semaphore(limit))

    def _invoke_config(self, function_arn: str) -> dict[str, Any]:
        """The function's async-invocation settings (retries, on-failure destination)."""
        try:
            return self._aws.lambda_.get_function_event_invoke_config(FunctionName=function_arn)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return {}
            raise

    def _send_to_destination(
        self, destination: str, function_arn: str, event: dict[str, Any], attempts: int
    ) -> None:
        """Delivers Lambda's on-failure record to an SQS destination, as Lambda does."""
        _, _, _, region, account, name = destination.split(":", 5)
        record = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": function_arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        }
        sqs = self._aws.client("sqs", region)
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    def _invoke_async(self, function_arn: str, event: dict[str, Any], key: str) -> None:
        config = self._invoke_config(function_arn)
        retries = int(config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
        delay = self._retry_delay
        limit = self._limit(function_arn)
        for attempt in range(1, retries + 2):
            if self._stop.is_set():
                self._out("invoke_dropped", function=function_arn, key=key, reason="shutdown")
                return
            with limit:
                try:
                    ok = self._invoke_once(function_arn, event, key, attempt, retries + 1)
                finally:
                    if self._on_invoked is not None:
                        self._on_invoked()
            if ok:
                return
            if attempt <= retries:
                self._out("invoke_retry", function=function_arn, key=key, delay_s=delay)
                if self._stop.wait(delay):
                    continue
                delay *= 2
        destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        if destination and destination.startswith("arn:aws:sqs:"):
            try:
                self._send_to_destination(destination, function_arn, event, retries + 1)
            except (ClientError, BotoCoreError) as error:
                self._out.error("invoke_destination", error, function=function_arn, key=key)
                return
            self._out(
                "invoke_failed_to_destination",
                function=function_arn,
                key=key,
                destination=destination,
            )
            return
        self._out.error(
            "invoke",
            f"{function_arn} failed {retries + 1} time(s) for {key}; the event is dropped "
            "(no on-failure destination)",
            function=function_arn,
            key=key,
        )

    # -- execution environments

    def _acquire(self, key: EnvironmentKey) -> ExecutionEnvironment | None:
        """A free warm environment for `key`; retires the function's environments of other keys."""
        name = str(key[0])
        stale: list[ExecutionEnvironment] = []
        found = None
        with self._lock:
            self._current[name] = key
            for other in [k for k in self._idle if k[0] == name and k != key]:
                stale.extend(self._idle.pop(other))
            free = self._idle.get(key, [])
            while free:
                env = free.pop()
                if env.alive():
                    found = env
                    break
                stale.append(env)
            for env in stale:
                self._environments.discard(env)
        self._retire(stale, "the function's code or configuration changed")
        return found

    def _release(self, env: ExecutionEnvironment) -> None:
        with self._lock:
            keep = env.alive() and not self._closing and self._current.get(env.function) == env.key
            if keep:
                self._idle.setdefault(env.key, []).append(env)
            else:
                self._environments.discard(env)
        if not keep:
            self._retire([env], "shutdown" if self._closing else "not reusable")

    def _retire(self, envs: list[ExecutionEnvironment], reason: str) -> None:
        for env in envs:
            self._out(
                "environment_closed",
                function=env.function,
                log_stream=env.stream,
                pid=env.process.pid,
                invocations=env.invocations,
                reason=env.end_reason or (reason if env.alive() else "the runtime ended"),
            )
            threading.Thread(target=env.close, name="lambda-env-close", daemon=True).start()

    def _start_environment(
        self, configuration: dict[str, Any], code_dir: Path, key: EnvironmentKey, group: str
    ) -> ExecutionEnvironment:
        name = configuration["FunctionName"]
        version = str(configuration.get("Version", "$LATEST"))
        memory = int(configuration.get("MemorySize", 128))
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"
        env = {
            **self._child_env,
            **((configuration.get("Environment") or {}).get("Variables") or {}),
            # Lambda's reserved variables (they win over the function's own).
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{configuration.get('Runtime', 'python')}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": str(configuration.get("Handler", "")),
            "TZ": ":UTC",
        }
        started = time.monotonic()
        process = subprocess.Popen(
            [
                self._python,
                "-c",
                LAMBDA_BOOTSTRAP,
                env["_HANDLER"],
                name,
                version,
                str(memory),
                str(configuration.get("FunctionArn", name)),
            ],
            cwd=code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        # The runtime starts first and its stream is created while it imports the handler; its
        # output waits for the stream.
        held: list[tuple[int, str]] | None = []
        held_lock = threading.Lock()

        def log(ts: int, line: str) -> None:
            self._out.child_line(name, line)
            with held_lock:
                if held is not None:
                    held.append((ts, line))
                    return
            self._shipper.add(self._aws.region, group, stream, line, ts)

        environment = ExecutionEnvironment(
            key=key, process=process, nonce=uuid.uuid4().hex, log=log, stream=stream
        )
        environment.started = started
        with self._lock:
            self._environments.add(environment)
        try:
            self._shipper.open_stream(self._aws.region, group, stream, create_group=True)
        except (ClientError, BotoCoreError, LogSetupError) as error:
            self._out.error("logs", error, log_group=group, log_stream=stream)
        except BaseException:
            environment.kill("could not be set up")
            with self._lock:
                self._environments.discard(environment)
            raise
        with held_lock:
            for ts, line in held or []:
                self._shipper.add(self._aws.region, group, stream, line, ts)
            held = None
        self._out(
            "environment_started",
            function=name,
            code_sha256=configuration.get("CodeSha256"),
            log_stream=stream,
            pid=process.pid,
        )
        return environment

    # -- one invocation

    def _invoke_once(
        self, function_arn: str, event: dict[str, Any], key: str, attempt: int, attempts: int
    ) -> bool:
        request_id = str(uuid.uuid4())
        ids = {"function": function_arn, "key": key, "request_id": request_id}
        try:
            function = self._aws.lambda_.get_function(FunctionName=function_arn)
            configuration = function["Configuration"]
            problem = runnable_problem(configuration)
            if problem:
                raise CodeUnavailable(problem)
            code_dir = self._code.get(function)
        except (ClientError, BotoCoreError, CodeUnavailable, OSError, zipfile.BadZipFile) as e:
            self._out(
                "invoked", **ids, attempt=attempt, of=attempts, ok=False, error=describe_error(e)
            )
            return False
        group = f"/aws/lambda/{configuration['FunctionName']}"
        env_key = environment_key(configuration)
        started = time.monotonic()
        env = self._acquire(env_key)
        cold = env is None
        try:
            if env is None:
                env = self._start_environment(configuration, code_dir, env_key, group)
        except OSError as e:
            self._out(
                "invoked", **ids, attempt=attempt, of=attempts, ok=False, error=describe_error(e)
            )
            return False
        try:
            outcome = self._run(configuration, env, cold, event, request_id, group)
        finally:
            self._release(env)
        ok = bool(outcome.get("ok"))
        self._out(
            "invoked",
            **ids,
            attempt=attempt,
            of=attempts,
            ok=ok,
            seconds=round(time.monotonic() - started, 3),
            cold_start=cold,
            init_s=outcome.get("init_s"),
            result=outcome.get("result"),
            error=None if ok else outcome.get("errorMessage"),
            error_type=None if ok else outcome.get("errorType"),
            log_group=group,
            log_stream=env.stream,
        )
        return ok

    def _run(
        self,
        configuration: dict[str, Any],
        env: ExecutionEnvironment,
        cold: bool,
        event: dict[str, Any],
        request_id: str,
        group: str,
    ) -> dict[str, Any]:
        version = str(configuration.get("Version", "$LATEST"))
        memory = int(configuration.get("MemorySize", 128))
        timeout = float(configuration.get("Timeout", 3))

        def log(line: str) -> None:
            self._shipper.add(self._aws.region, group, env.stream, line, now_ms())

        init_ms: float | None = None
        outcome: dict[str, Any] | None = {"ok": True}
        if cold:
            # INIT: Lambda gives it 10 s, then tries again within the invocation's timeout.
            limit = LAMBDA_INIT_LIMIT_S + timeout
            outcome, timed_out = env.wait(max(0.0, limit - (time.monotonic() - env.started)))
            init_ms = (time.monotonic() - env.started) * 1000
            if timed_out:
                env.kill("INIT timed out")
                message = f"INIT timed out after {limit:.2f} seconds"
                outcome = {"ok": False, "errorType": "Sandbox.Timedout", "errorMessage": message}
            elif outcome is None:
                message = f"the runtime exited with code {env.exit_code()} during INIT"
                outcome = {"ok": False, "errorType": "Runtime.ExitError", "errorMessage": message}
        assert outcome is not None
        log(f"START RequestId: {request_id} Version: {version}")
        started = time.monotonic()
        if outcome.get("ok"):
            outcome, timed_out = None, False
            if env.invoke(request_id, event, time.time() + timeout):
                outcome, timed_out = env.wait(timeout)
            if timed_out:
                # Lambda stops the runtime; the next invocation gets a new environment.
                env.kill("the invocation timed out")
                message = f"Task timed out after {timeout:.2f} seconds"
                log(f"{now_iso()} {request_id} {message}")
                outcome = {"ok": False, "errorType": "Sandbox.Timedout", "errorMessage": message}
            elif outcome is None:
                code = env.exit_code()
                env.kill(f"the runtime exited with code {code}")
                log(f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}")
                message = f"the runtime exited with code {code} without a result"
                outcome = {"ok": False, "errorType": "Runtime.ExitError", "errorMessage": message}
        duration = (time.monotonic() - started) * 1000
        log(f"END RequestId: {request_id}")
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: {memory} MB"
        )
        if "max_rss_mb" in outcome:
            report += f"\tMax Memory Used: {outcome['max_rss_mb']} MB"
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
            outcome["init_s"] = round(init_ms / 1000, 3)
        # What Lambda adds when the runtime did not come back with a result.
        if outcome.get("errorType") == "Sandbox.Timedout":
            report += "\tStatus: timeout"
        elif str(outcome.get("errorType", "")).startswith("Runtime.ExitError"):
            report += "\tStatus: error\tError Type: Runtime.ExitError"
        log(report)
        return outcome

    def shutdown(self) -> None:
        """Drops queued events, ends the invocations in flight, closes every environment."""
        with self._lock:
            self._closing = True
            idle = [env for envs in self._idle.values() for env in envs]
            self._idle.clear()
            busy = [env for env in self._environments if env not in idle]
        self._pool.shutdown(wait=False, cancel_futures=True)
        for env in busy:
            env.kill("shutdown")
        self._pool.shutdown(wait=True)
        with self._lock:
            remaining = list(self._environments)
            self._environments.clear()
        for env in remaining:
            self._out(
                "environment_closed",
                function=env.function,
                log_stream=env.stream,
                pid=env.process.pid,
                invocations=env.invocations,
                reason="shutdown",
            )
        threads = [threading.Thread(target=env.close, daemon=True) for env in remaining]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)


def runnable_problem(configuration: dict[str, Any]) -> str | None:
    """Why this runner cannot run the function as Lambda would, or None."""
    if configuration.get("PackageType", "Zip") != "Zip":
        return f"package type {configuration.get('PackageType')} (only Zip functions run here)"
    runtime = str(configuration.get("Runtime", ""))
    if not runtime.startswith("python"):
        return f"runtime {runtime or '(none)'} (only Python functions run here)"
    if "." not in str(configuration.get("Handler", "")):
        return f"handler {configuration.get('Handler')!r} is not module.function"
    state = configuration.get("State", "Active")
    if state != "Active":
        return f"the function is {state}, not Active"
    return None


# ---------------------------------------------------------------------------------------------
# ECS side: tasks


@dataclass
class RunningTask:
    arn: str
    task_id: str
    process: subprocess.Popen[bytes]
    work_dir: Path
    stop_timeout: float
    thread: threading.Thread | None = None
    stopping: bool = False


def container_environment(definition: dict[str, Any], overrides: dict[str, Any]) -> dict[str, str]:
    """The container's environment: the definition's, then the task's container overrides."""
    env = {e["name"]: str(e.get("value", "")) for e in definition.get("environment") or []}
    for override in overrides.get("containerOverrides") or []:
        if override.get("name") == definition.get("name"):
            env.update(
                {e["name"]: str(e.get("value", "")) for e in override.get("environment") or []}
            )
    return env


def others_can_traverse(path: Path) -> bool:
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))


class TaskRunner:
    """Runs a local worker process for every RUNNING task of the cluster."""

    def __init__(
        self,
        *,
        aws: Aws,
        out: Output,
        shipper: LogShipper,
        cluster: str,
        container: str,
        python: str,
        worker: Path,
        work_root: Path,
        child_env: dict[str, str],
        extra_env: dict[str, str],
        keep_work: bool,
    ) -> None:
        self._aws = aws
        self._out = out
        self._shipper = shipper
        self.cluster = cluster
        self._container = container
        self._python = python
        self._worker = worker
        self._work_root = work_root
        self._child_env = child_env
        self._extra_env = extra_env
        self._keep_work = keep_work
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._definitions: dict[str, dict[str, Any]] = {}
        self._seen: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._running: dict[str, RunningTask] = {}
        self._waiting_reported = False

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def poll(self) -> int:
        """Starts the tasks not seen yet; returns how many were new (one poll at a time)."""
        with self._poll_lock:
            return self._poll()

    def _poll(self) -> int:
        try:
            arns: list[str] = []
            pages = self._aws.ecs.get_paginator("list_tasks").paginate(
                cluster=self.cluster, desiredStatus="RUNNING"
            )
            for page in pages:
                arns.extend(page.get("taskArns") or [])
        except ClientError as error:
            if error_code(error) != "ClusterNotFoundException":
                raise
            if not self._waiting_reported:
                self._waiting_reported = True
                self._out("waiting", what="cluster", cluster=self.cluster, reason=error_code(error))
            return 0
        new = [a for a in arns if a not in self._seen]
        for start in range(0, len(new), 100):
            chunk = new[start : start + 100]
            try:
                described = self._aws.ecs.describe_tasks(cluster=self.cluster, tasks=chunk)
            except (ClientError, BotoCoreError) as error:
                for arn in chunk:
                    self._failed_attempt(arn, f"DescribeTasks failed: {describe_error(error)}")
                continue
            by_arn = {t["taskArn"]: t for t in described.get("tasks") or []}
            for arn in chunk:
                task = by_arn.get(arn)
                if task is None:
                    self._failed_attempt(arn, "DescribeTasks did not return the task")
                    continue
                self._seen.add(arn)
                try:
                    self._start(task)
                except Exception as error:
                    self._out.error("task_start", error, task=arn)
                    self._stop_task(arn, f"CannotStartContainerError: {describe_error(error)}")
        return len(new)

    def _failed_attempt(self, arn: str, reason: str) -> None:
        self._attempts[arn] = self._attempts.get(arn, 0) + 1
        if self._attempts[arn] >= TASK_START_ATTEMPTS:
            self._seen.add(arn)
            self._out.error("task_start", reason + "; giving up", task=arn)

    def _start(self, task: dict[str, Any]) -> None:
        arn = task["taskArn"]
        task_id = arn.rsplit("/", 1)[-1]
        definition = self._task_definition(task["taskDefinitionArn"])
        containers = definition.get("containerDefinitions") or []
        container = next((c for c in containers if c.get("name") == self._container), None)
        if container is None:
            names = ", ".join(str(c.get("name")) for c in containers)
            reason = (
                f"task definition {definition.get('taskDefinitionArn')} has no container "
                f"named {self._container!r} (it has: {names})"
            )
            self._out.error("task_start", reason, task=arn)
            self._stop_task(arn, f"CannotStartContainerError: {reason}")
            return
        env = container_environment(container, task.get("overrides") or {})
        env.update(self._extra_env)
        log_target = self._log_target(container, task_id)
        if isinstance(log_target, str):
            self._out.error("task_start", log_target, task=arn)
            self._stop_task(arn, f"ResourceInitializationError: {log_target}")
            return
        work_dir = self._work_root / task_id
        work_dir.mkdir(mode=0o755)
        os.chmod(work_dir, 0o755)  # noqa: S103 (the worker's render user must traverse it)
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or self._aws.region
        full_env = {
            **self._child_env,
            "HOME": str(work_dir),
            "AWS_REGION": region,
            **env,
            "LEW_WORK_DIR": str(work_dir),
        }
        process = subprocess.Popen(
            [self._python, str(self._worker)],
            cwd=work_dir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches the runner, not the worker
        )
        stop_timeout = float(container.get("stopTimeout") or DEFAULT_STOP_TIMEOUT_S)
        running = RunningTask(arn, task_id, process, work_dir, stop_timeout)
        with self._lock:
            self._running[arn] = running
        group, stream = (log_target[1], log_target[2]) if log_target else (None, None)
        self._out(
            "task_started",
            task=arn,
            task_definition=definition.get("taskDefinitionArn"),
            container=self._container,
            image=container.get("image"),
            started_by=task.get("startedBy"),
            pid=process.pid,
            work_dir=str(work_dir),
            log_group=group,
            log_stream=stream,
            overridden=sorted(set(env) - set(container_environment(container, {}))) or None,
        )
        running.thread = threading.Thread(
            target=self._watch,
            args=(running, log_target if log_target else None),
            name=f"task-{task_id[:8]}",
            daemon=True,
        )
        running.thread.start()

    def _task_definition(self, arn: str) -> dict[str, Any]:
        """A task definition revision (they are immutable, so each is read once)."""
        if arn not in self._definitions:
            self._definitions[arn] = self._aws.ecs.describe_task_definition(taskDefinition=arn)[
                "taskDefinition"
            ]
        return self._definitions[arn]

    def _log_target(
        self, container: dict[str, Any], task_id: str
    ) -> tuple[str, str, str] | str | None:
        """(region, group, stream) of the awslogs driver; a string says why it cannot log."""
        log_config = container.get("logConfiguration") or {}
        if log_config.get("logDriver") != "awslogs":
            return None
        options = log_config.get("options") or {}
        group = options.get("awslogs-group")
        if not group:
            return "awslogs has no awslogs-group option"
        region = options.get("awslogs-region") or self._aws.region
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{container.get('name')}/{task_id}" if prefix else task_id
        create = str(options.get("awslogs-create-group", "")).lower() == "true"
        try:
            self._shipper.open_stream(region, group, stream, create_group=create)
        except LogSetupError as error:
            return f"failed to validate logger args: {error}"
        except (ClientError, BotoCoreError) as error:
            return f"failed to create the log stream {group}:{stream}: {describe_error(error)}"
        return region, group, stream

    def _watch(self, running: RunningTask, log_target: tuple[str, str, str] | None) -> None:
        def on_line(ts: int, line: str) -> None:
            if log_target:
                region, group, stream = log_target
                self._shipper.add(region, group, stream, line, ts)
            self._out.child_line(f"task {running.task_id[:8]}", line)

        try:
            pump_lines(running.process, on_line)
        except Exception as error:
            self._out.error("task_output", error, task=running.arn)
        code = running.process.wait()
        if running.stopping:
            reason = REASON_SHUTDOWN
        elif code == 0:
            reason = REASON_EXITED
        else:
            # moto records no container exit code, so the reason carries it.
            reason = f"Essential container ({self._container}) exited with code {code}"
        if code != 0 and not running.stopping:
            self._out.count_failure()
        self._out("task_exited", task=running.arn, code=code, stopped_reason=reason)
        self._stop_task(running.arn, reason)
        if not self._keep_work:
            shutil.rmtree(running.work_dir, ignore_errors=True)
        with self._lock:
            self._running.pop(running.arn, None)

    def _stop_task(self, arn: str, reason: str) -> None:
        try:
            task = self._aws.ecs.stop_task(cluster=self.cluster, task=arn, reason=reason)["task"]
        except (ClientError, BotoCoreError) as error:
            self._out.error("stop_task", error, task=arn)
            return
        self._out(
            "task_stopped",
            task=arn,
            last_status=task.get("lastStatus"),
            desired_status=task.get("desiredStatus"),
            stopped_reason=task.get("stoppedReason"),
        )

    def shutdown(self, force: threading.Event) -> None:
        """SIGTERM every worker, SIGKILL after its stopTimeout, wait for the tasks to stop."""
        with self._lock:
            tasks = list(self._running.values())
        for task in tasks:
            task.stopping = True
            with contextlib.suppress(ProcessLookupError):
                task.process.send_signal(signal.SIGTERM)
            self._out("task_signalled", task=task.arn, signal="SIGTERM", grace_s=task.stop_timeout)
        for task in tasks:
            deadline = time.monotonic() + task.stop_timeout
            while task.process.poll() is None and time.monotonic() < deadline:
                if force.wait(0.1):
                    break
            if task.process.poll() is None:
                self._out("task_signalled", task=task.arn, signal="SIGKILL")
                kill_tree(task.process)
        for task in tasks:
            if task.thread is not None:
                task.thread.join(timeout=30)


# ---------------------------------------------------------------------------------------------
# Main


def dispatch(
    objects: list[S3Object],
    *,
    aws: Aws,
    out: Output,
    invoker: Invoker,
    bucket: str,
    account: str,
) -> None:
    """S3's part for new objects: match the notification configuration, invoke.

    The configuration and each function's policy are read once per batch of objects (those
    one poll found), not once per object: the objects were created within one poll interval.
    """
    if not objects:
        return
    try:
        notification = aws.s3.get_bucket_notification_configuration(Bucket=bucket)
    except (ClientError, BotoCoreError) as error:
        for obj in objects:
            out.error("s3_notification", error, key=obj.key)
        return
    permissions: dict[str, tuple[bool, str]] = {}
    for obj in objects:
        try:
            dispatch_one(
                obj,
                notification=notification,
                permissions=permissions,
                aws=aws,
                out=out,
                invoker=invoker,
                bucket=bucket,
                account=account,
            )
        except (ClientError, BotoCoreError) as error:
            out.error("s3_notification", error, key=obj.key)


def dispatch_one(
    obj: S3Object,
    *,
    notification: dict[str, Any],
    permissions: dict[str, tuple[bool, str]],
    aws: Aws,
    out: Output,
    invoker: Invoker,
    bucket: str,
    account: str,
) -> None:
    configurations = matching_lambda_configurations(notification, obj.key, obj.event_name)
    out(
        "object",
        key=obj.key,
        etag=obj.etag,
        size=obj.size,
        event_name=obj.event_name,
        notifies=[c.get("LambdaFunctionArn") for c in configurations],
    )
    for configuration in configurations:
        function_arn = configuration["LambdaFunctionArn"]
        if function_arn not in permissions:
            try:
                policy = aws.lambda_.get_policy(FunctionName=function_arn).get("Policy")
            except ClientError as error:
                if error_code(error) != "ResourceNotFoundException":
                    raise
                policy = None
            permissions[function_arn] = s3_may_invoke(policy, bucket, account)
        allowed, why = permissions[function_arn]
        if not allowed:
            out.error("s3_notification", f"S3 cannot invoke {function_arn}: {why}", key=obj.key)
            continue
        event = s3_event(
            bucket=bucket,
            region=aws.region,
            account=account,
            obj=obj,
            configuration_id=str(configuration.get("Id", "")),
            sequencer=f"{time.time_ns():016X}",
        )
        invoker.submit(function_arn, event, obj.key)


def hold_task_states(aws: Aws, out: Output) -> None:
    """Keep moto's tasks RUNNING until StopTask (DescribeTasks otherwise walks them to STOPPED)."""
    try:
        previous = aws.moto_api("/moto-api/state-manager/get-transition?model_name=ecs::task")
        aws.moto_api(
            "/moto-api/state-manager/set-transition",
            {"model_name": "ecs::task", "transition": HOLD_TRANSITION},
        )
    except OSError as error:
        out.error(
            "moto_transition",
            f"cannot set moto's ecs::task transition ({describe_error(error)}); "
            "DescribeTasks will show tasks stopping while their workers run",
        )
        return
    out(
        "moto_transition",
        model="ecs::task",
        previous=json.loads(previous or b"null"),
        now=HOLD_TRANSITION,
    )


def lambda_python_problem(python: str) -> str | None:
    """Why `python` cannot stand in for the Lambda runtime, or None.

    The launcher creates its clients with `boto3.client(service)`, so only a botocore that
    reads AWS_ENDPOINT_URL (1.31.57 and later) sends its calls to the emulator.
    """
    probe = "import sys, botocore; print(botocore.__version__); print(sys.version.split()[0])"
    try:
        result = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as error:
        return f"cannot run {python}: {describe_error(error)}"
    if result.returncode != 0:
        return f"{python} has no boto3/botocore: {result.stderr.strip()[-300:]}"
    version = result.stdout.split()[0]
    if tuple(int(p) for p in re.findall(r"\d+", version)[:3]) < (1, 31, 57):
        return (
            f"{python} has botocore {version}, which ignores AWS_ENDPOINT_URL (1.31.57+ "
            "reads it): the launcher would call real AWS; pass --lambda-python"
        )
    return None


def parse_env_pairs(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--task-env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Play Lambda (launcher) and Fargate (worker) for a lew stack in moto.",
    )
    parser.add_argument("--app", required=True, help="lew app name (resources lew-<app>-...)")
    parser.add_argument("--region", help="default: AWS_REGION / AWS_DEFAULT_REGION")
    parser.add_argument("--endpoint-url", help="default: AWS_ENDPOINT_URL (required)")
    parser.add_argument("--bucket", help="default: lew-<app>-<account>-<region>")
    parser.add_argument("--cluster", help="default: lew-<app>")
    parser.add_argument("--container", default="worker", help="container to run (worker)")
    parser.add_argument(
        "--poll", type=float, default=0.5, help="seconds between polls of S3 and of ECS (0.5)"
    )
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder")
    parser.add_argument(
        "--python", default="/usr/bin/python3", help="Python for the worker (the image's)"
    )
    parser.add_argument(
        "--lambda-python",
        default=sys.executable,
        help="Python for the launcher (needs a boto3 that reads AWS_ENDPOINT_URL)",
    )
    parser.add_argument("--worker", type=Path, default=DEFAULT_WORKER, help="worker script")
    parser.add_argument(
        "--launcher-code",
        type=Path,
        default=DEFAULT_LAUNCHER_CODE,
        help="code used when Code.Location cannot be fetched (.py, .zip or folder)",
    )
    parser.add_argument(
        "--require-deployed-code",
        action="store_true",
        help="fail invocations instead of using --launcher-code",
    )
    parser.add_argument(
        "--include-existing", action="store_true", help="notify objects present at start too"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="notify the objects there now, run the tasks that follow, wait, exit",
    )
    parser.add_argument(
        "--retry-delay",
        type=float,
        default=1.0,
        help="seconds before the first retry of a failed invocation (doubles; Lambda: 60)",
    )
    parser.add_argument(
        "--task-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra container environment, applied after the overrides (e.g. LEW_WAIT_TIME_S=1)",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the task folders")
    parser.add_argument(
        "--no-hold-task-state",
        action="store_true",
        help="leave moto's ecs::task state transitions as they are",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="copy launcher and worker output to stderr"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Output(echo=args.verbose)
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not endpoint:
        out("fatal", reason="no endpoint: set AWS_ENDPOINT_URL (this runner is for emulators)")
        return 2
    if not region:
        out("fatal", reason="no region: pass --region or set AWS_REGION")
        return 2
    task_env = parse_env_pairs(args.task_env)
    problem = lambda_python_problem(args.lambda_python)
    if problem:
        out("fatal", reason=problem)
        return 2

    stop = threading.Event()
    force = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            force.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    aws = Aws(endpoint, region)
    try:
        account = aws.sts.get_caller_identity()["Account"]
        credentials = aws.credentials_env()
    except (ClientError, BotoCoreError, RuntimeError) as error:
        out("fatal", reason=f"cannot reach {endpoint}: {describe_error(error)}")
        return 1
    bucket = args.bucket or f"lew-{args.app}-{account}-{region}"
    cluster = args.cluster or f"lew-{args.app}"

    own_work_dir = args.work_dir is None
    work_root = Path(tempfile.mkdtemp(prefix="lew-runner-")) if own_work_dir else args.work_dir
    work_root = work_root.absolute()
    work_root.mkdir(parents=True, exist_ok=True)
    os.chmod(work_root, 0o755)  # noqa: S103 (the worker's render user must traverse it)
    if os.geteuid() == 0 and not others_can_traverse(work_root):
        out(
            "warning",
            reason=f"{work_root} is not reachable by `nobody` (o+x on every parent folder); "
            "the worker will refuse to start",
        )

    child_env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        **ISOLATION_ENV,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **credentials,
    }
    out(
        "runner_started",
        app=args.app,
        endpoint=endpoint,
        region=region,
        account=account,
        bucket=bucket,
        cluster=cluster,
        work_dir=str(work_root),
        worker=str(args.worker),
        python=args.python,
        lambda_python=args.lambda_python,
        task_env=task_env or None,
        once=args.once or None,
    )
    if not args.no_hold_task_state:
        hold_task_states(aws, out)

    shipper = LogShipper(aws, out)
    code = CodeStore(
        aws, out, work_root, None if args.require_deployed_code else args.launcher_code
    )
    # The launcher's RunTask is what starts a task here: after each invocation ECS is looked at
    # at once (a task starts as soon as RunTask returns), besides every --poll seconds.
    ecs_wake = threading.Event()
    invoker = Invoker(
        aws=aws,
        out=out,
        shipper=shipper,
        code=code,
        python=args.lambda_python,
        child_env=child_env,
        retry_delay=args.retry_delay,
        stop=stop,
        on_invoked=ecs_wake.set,
    )
    tasks = TaskRunner(
        aws=aws,
        out=out,
        shipper=shipper,
        cluster=cluster,
        container=args.container,
        python=args.python,
        worker=args.worker,
        work_root=work_root,
        child_env=child_env,
        extra_env=task_env,
        keep_work=args.keep_work,
    )
    watcher = BucketWatcher(aws, bucket, out, include_existing=args.include_existing or args.once)
    polling = threading.Event()  # cleared when the runner ends

    def poll_tasks() -> int:
        try:
            return tasks.poll()
        except (ClientError, BotoCoreError) as error:
            out.error("ecs_poll", error, cluster=cluster)
            return 0

    def ecs_loop() -> None:
        # S3 and ECS are polled independently, so a slow call to one does not delay the other.
        while polling.is_set() and not stop.is_set():
            ecs_wake.wait(args.poll)
            ecs_wake.clear()
            if polling.is_set() and not stop.is_set():
                try:
                    poll_tasks()
                except Exception as error:  # a bug here must not silently end ECS polling
                    out.error("ecs_poll", error, cluster=cluster)

    polling.set()
    ecs_thread = threading.Thread(target=ecs_loop, name="ecs-poll", daemon=True)
    ecs_thread.start()
    first = True
    try:
        while not stop.is_set():
            if first or not args.once:
                try:
                    new_objects = watcher.poll()
                except (ClientError, BotoCoreError) as error:
                    out.error("s3_poll", error, bucket=bucket)
                else:
                    dispatch(
                        new_objects,
                        aws=aws,
                        out=out,
                        invoker=invoker,
                        bucket=bucket,
                        account=account,
                    )
            first = False
            # --once ends when nothing is pending, ECS has no new task and none runs.
            if args.once and invoker.pending() == 0 and poll_tasks() == 0 and tasks.running() == 0:
                break
            stop.wait(args.poll)
    finally:
        if stop.is_set():
            out("stopping", reason="signal")
        polling.clear()
        ecs_wake.set()
        ecs_thread.join(timeout=60)
        invoker.shutdown()
        tasks.shutdown(force)
        shipper.close()
        if own_work_dir and not args.keep_work:
            shutil.rmtree(work_root, ignore_errors=True)
    failures = out.failures
    out("stopped", failures=failures)
    if args.once and not stop.is_set():
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
