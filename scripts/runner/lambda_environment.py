"""One Lambda execution environment, kept warm as Lambda keeps it.

An environment is one Python process that imports the handler once (INIT, a cold start) and then
runs invocations one at a time, events in and outcomes out over pipes. A free environment is
reused as long as the function's code and configuration (CodeSha256, Handler, Runtime,
MemorySize, Timeout, environment variables: `environment_key`) are unchanged; any change retires
the old ones, so the next invocation is a cold start again. An uncaught exception fails the
invocation and keeps the environment; exceeding the function's Timeout ("Task timed out after N
seconds") or the process ending kills it. (The Invoker in lambda_side decides which environment
runs what; this module is the process and its pipes.)
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from testkit.processes import kill_tree

from .output import now_ms

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
        kill_tree(self.process.pid)

    def close(self, grace: float = 2.0) -> None:
        """Ends the runtime: EOF on its request pipe, SIGKILL (with its children) after `grace`."""
        self._closed = True
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        kill_tree(self.process.pid)
        self.process.wait()
        self._reader.join(timeout=5)
