"""The Lambda side's second half (S3 event -> launcher): Lambda's asynchronous invocation.

For each event S3's part (s3_side) hands over, it runs the deployed handler (GetFunction:
Handler, Runtime, Timeout, environment; code from Code.Location, see lambda_code). A failure is
retried like an async invocation (MaximumRetryAttempts from GetFunctionEventInvokeConfig,
default 2), then the event goes to the configured SQS on-failure destination as Lambda's record
of it; the function's reserved concurrency is honoured.

Like Lambda, it keeps execution environments warm (lambda_environment): a free one is reused
while the function's code and configuration are unchanged, and a new one (a cold start) is
started when none is free. Each environment writes to its own stream in /aws/lambda/<function>
(named like Lambda's): its output as it comes, START/END/REPORT lines per invocation, "Init
Duration" only in the REPORT of a cold start. Environments are closed when the runner stops.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from testkit.iam import as_list, service_allowed

from .aws import Aws, error_code
from .lambda_code import CodeStore, CodeUnavailable
from .lambda_environment import (
    LAMBDA_BOOTSTRAP,
    EnvironmentKey,
    ExecutionEnvironment,
    environment_key,
)
from .logs import LogSetupError, LogShipper
from .output import Output, describe_error, now_iso, now_ms

# Lambda's default for async invocations without an event invoke config.
DEFAULT_ASYNC_RETRIES = 2
# Concurrent launcher invocations when the function reserves no concurrency.
MAX_INVOCATIONS = 8
# Lambda's limit for the INIT phase of an on-demand execution environment.
LAMBDA_INIT_LIMIT_S = 10


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


def invoke_allowed(policy: str | None, service: str, context: dict[str, str]) -> tuple[bool, str]:
    """Whether a function's resource policy lets `service` (e.g. s3.amazonaws.com) invoke it
    for a request with `context` (aws:sourcearn, aws:sourceaccount), and which statement does."""
    if not policy:
        return False, f"the function has no resource policy (no permission for {service})"
    # The policy is the function's own: its statements apply to it whatever their Resource.
    document = json.loads(policy)
    for statement in as_list(document.get("Statement", [])):
        statement.pop("Resource", None)
    sid = service_allowed(document, service, "lambda:InvokeFunction", "", context)
    if sid is not None:
        return True, f"statement {sid}"
    return False, (
        f"no statement of the function's resource policy allows {service} to call "
        f"lambda:InvokeFunction for {context.get('aws:sourcearn')} in account "
        f"{context.get('aws:sourceaccount')}"
    )


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
