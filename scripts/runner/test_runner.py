"""End-to-end tests of the local runner: moto (scripts/moto_server.py) + `lew setup` + the runner
playing Lambda and Fargate + the real worker and POV-Ray.

Run with `.venv/bin/pytest scripts/runner`. Each test deploys its own app on a moto server of
its own (started here), so nothing is shared with other tests.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "runner.py"
# The lew binary: LEW_BIN, else target/debug/lew under CARGO_TARGET_DIR when that is set.
LEW = Path(
    os.environ.get("LEW_BIN")
    or REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "lew"
)
DEMO = REPO / "assets" / "lew-demo"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
LAMBDA_STREAM = re.compile(r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")

needs_lew = pytest.mark.skipif(
    not LEW.is_file(),
    reason=f"the lew binary is missing at {LEW} (run `cargo build`, or set LEW_BIN)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server of this module's own (the wrapper that evaluates bucket policies)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("moto")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTO_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "moto_server.py"),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Stack:
    """An app deployed with `lew setup`, and clients to look at it."""

    def __init__(self, endpoint: str, app: str) -> None:
        self.endpoint = endpoint
        self.app = app
        self.env = _base_env(endpoint)
        self.bucket = f"lew-{app}-{ACCOUNT}-{REGION}"
        self.cluster = f"lew-{app}"
        self.function = f"lew-{app}-launcher"
        kw: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.ecs = boto3.client("ecs", **kw)
        self.logs = boto3.client("logs", **kw)
        self.lambda_ = boto3.client("lambda", **kw)

    def setup(self, workdir: Path) -> None:
        (workdir / "lew.toml").write_text(f'app = "{self.app}"\nregion = "{REGION}"\n')
        result = subprocess.run(
            [str(LEW), "setup"],
            cwd=workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"lew setup failed:\n{result.stdout}\n{result.stderr}"

    def queue_depth(self, name: str) -> int:
        url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def log_messages(self, group: str, stream: str) -> list[str]:
        events = self.logs.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=True
        )["events"]
        return [e["message"] for e in events]

    def log_streams(self, group: str) -> list[str]:
        streams = self.logs.describe_log_streams(logGroupName=group)["logStreams"]
        return [s["logStreamName"] for s in streams]


@pytest.fixture
def stack(moto: str, tmp_path: Path) -> Stack:
    if not LEW.is_file():
        pytest.skip(f"the lew binary is missing at {LEW} (run `cargo build`, or set LEW_BIN)")
    stack = Stack(moto, "rt" + uuid.uuid4().hex[:8])
    stack.setup(tmp_path)
    return stack


class Runner:
    """The runner as a subprocess; its JSON lines are collected as they come."""

    def __init__(self, stack: Stack, *args: str) -> None:
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, str(RUNNER), "--app", stack.app, "--poll", "0.2", *args],
            env=stack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._drain_stderr, daemon=True),
        ]
        self.stderr: list[str] = []
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.raw.append(line)
                try:
                    self.lines.append(json.loads(line))
                except ValueError:
                    self.lines.append({"event": "not-json", "line": line})
                self._cond.notify_all()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._cond:
            return [line for line in self.lines if line.get("event") == name]

    def wait_for(self, name: str, timeout: float, count: int = 1) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self.lines if line.get("event") == name]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {name!r} line from the runner:\n{self.dump()}")
                self._cond.wait(min(left, 0.5))

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=5)
        return code

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def dump(self) -> str:
        return "".join(self.raw) + "\n--- stderr ---\n" + "".join(self.stderr)


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, path.name)
    return buffer.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR", "the first PNG chunk is not IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def wait_for_object(stack: Stack, key: str, fail_key: str, runner: Runner, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for candidate in (key, fail_key):
            try:
                body = stack.s3.get_object(Bucket=stack.bucket, Key=candidate)["Body"].read()
            except stack.s3.exceptions.NoSuchKey:
                continue
            assert candidate == key, f"the worker reported an error: {body.decode()}"
            return body
        if runner.proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"{key} did not appear within {timeout} s:\n{runner.dump()}")


@needs_lew
@pytest.mark.skipif(shutil.which("povray") is None, reason="POV-Ray is not installed")
@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no /usr/bin/python3")
def test_a_scene_upload_renders_through_the_deployed_wiring(stack: Stack) -> None:
    # The worker waits LEW_WAIT_TIME_S on its last (empty) poll; 1 s instead of 20 keeps the
    # test short. Everything else comes from the task definition in moto.
    runner = Runner(stack, "--task-env", "LEW_WAIT_TIME_S=1", "--task-env", "LEW_IDLE_S=0")
    try:
        runner.wait_for("watching", 30)
        job = "job-" + uuid.uuid4().hex[:8]
        stack.s3.put_object(
            Bucket=stack.bucket, Key=f"scenes/{job}/lew-demo.zip", Body=zip_folder(DEMO)
        )

        png = wait_for_object(
            stack,
            f"renders/{job}/lew-demo.png",
            f"renders/{job}/lew-demo.error.txt",
            runner,
            timeout=120,
        )
        assert png_size(png) == (640, 360)

        # The task ends when the worker has found the queue empty.
        stopped = runner.wait_for("task_stopped", 60)
        assert stopped[0]["last_status"] == "STOPPED"
        exited = runner.events("task_exited")
        assert [e["code"] for e in exited] == [0]
        task_arn = stopped[0]["task"]
        task = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[task_arn])["tasks"][0]
        assert task["lastStatus"] == "STOPPED"
        assert task["desiredStatus"] == "STOPPED"
        assert task["startedBy"] == "lew-launcher"
        # startedBy must be ListTasks' only filter; alone it lists running tasks.
        running = stack.ecs.list_tasks(cluster=stack.cluster, startedBy="lew-launcher")["taskArns"]
        assert running == []

        # One invocation, of the function the notification names, that queued the job.
        invoked = runner.events("invoked")
        assert len(invoked) == 1, runner.dump()
        assert invoked[0]["ok"] is True
        assert invoked[0]["function"].endswith(f":function:{stack.function}")
        assert invoked[0]["result"]["queued"] == 1
        assert invoked[0]["result"]["started"] == 1

        assert stack.queue_depth(f"lew-{stack.app}-jobs") == 0
        assert stack.queue_depth(f"lew-{stack.app}-jobs-dlq") == 0

        # The launcher's output is in its Lambda log group, in a Lambda-style stream.
        group = f"/aws/lambda/{stack.function}"
        stream = invoked[0]["log_stream"]
        assert LAMBDA_STREAM.match(stream), stream
        assert stream in stack.log_streams(group)
        launcher_log = stack.log_messages(group, stream)
        assert launcher_log[0].startswith("START RequestId: ")
        assert launcher_log[-1].startswith("REPORT RequestId: ")
        assert any('"event": "queued"' in m and job in m for m in launcher_log), launcher_log

        # The worker's output is where the awslogs driver would put it.
        task_id = task_arn.rsplit("/", 1)[-1]
        worker_log = stack.log_messages(f"/lew/{stack.app}/worker", f"worker/worker/{task_id}")
        assert any('"event": "rendered"' in m and job in m for m in worker_log), worker_log

        assert runner.stop() == 0
        assert runner.events("stopped")
    finally:
        runner.kill()


@needs_lew
def test_keys_outside_the_notification_filter_invoke_nothing(stack: Stack) -> None:
    for key in ("uploads/x.zip", "scenes/notes.txt", "renders/j/x.zip"):
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=b"PK")
    runner = Runner(stack, "--once")
    try:
        assert runner.finish() == 0, runner.dump()
    finally:
        runner.kill()
    objects = runner.events("object")
    assert sorted(o["key"] for o in objects) == [
        "renders/j/x.zip",
        "scenes/notes.txt",
        "uploads/x.zip",
    ]
    assert all(o["notifies"] == [] for o in objects)
    assert runner.events("invoked") == []
    assert runner.events("task_started") == []
    for status in ("RUNNING", "STOPPED"):  # no task was ever started
        assert stack.ecs.list_tasks(cluster=stack.cluster, desiredStatus=status)["taskArns"] == []
    assert stack.queue_depth(f"lew-{stack.app}-jobs") == 0


@needs_lew
def test_a_failing_launcher_is_retried_as_configured_then_dropped(stack: Stack) -> None:
    # Break the deployed function (no queue URL) and allow one retry: the runner must read
    # both back from moto.
    configuration = stack.lambda_.get_function_configuration(FunctionName=stack.function)
    variables = dict(configuration["Environment"]["Variables"])
    del variables["LEW_QUEUE_URL"]
    stack.lambda_.update_function_configuration(
        FunctionName=stack.function, Environment={"Variables": variables}
    )
    # moto 5.2.5 appends on Put/Update and Get returns the first config: delete, then put.
    stack.lambda_.delete_function_event_invoke_config(FunctionName=stack.function)
    stack.lambda_.put_function_event_invoke_config(
        FunctionName=stack.function, MaximumRetryAttempts=1
    )
    stack.s3.put_object(Bucket=stack.bucket, Key="scenes/j1/broken.zip", Body=b"PK")

    runner = Runner(stack, "--once", "--retry-delay", "0.1")
    try:
        assert runner.finish() == 1, runner.dump()
    finally:
        runner.kill()
    invoked = runner.events("invoked")
    assert [(i["attempt"], i["of"], i["ok"]) for i in invoked] == [(1, 2, False), (2, 2, False)]
    assert all(i["error_type"] == "ConfigError" for i in invoked)
    assert "LEW_QUEUE_URL" in invoked[0]["error"]
    assert any("failed 2 time(s)" in e["error"] for e in runner.events("error"))
    log = stack.log_messages(f"/aws/lambda/{stack.function}", invoked[0]["log_stream"])
    assert any(m.startswith("[ERROR] ConfigError: ") for m in log), log
    for status in ("RUNNING", "STOPPED"):  # no task was ever started
        assert stack.ecs.list_tasks(cluster=stack.cluster, desiredStatus=status)["taskArns"] == []


@needs_lew
def test_a_launch_that_fails_for_good_goes_to_the_on_failure_destination(stack: Stack) -> None:
    # lew's own invocation settings (2 retries, on failure to the dead-letter queue), read back
    # from moto; the function is broken so that every attempt fails.
    configuration = stack.lambda_.get_function_configuration(FunctionName=stack.function)
    variables = dict(configuration["Environment"]["Variables"])
    del variables["LEW_QUEUE_URL"]
    stack.lambda_.update_function_configuration(
        FunctionName=stack.function, Environment={"Variables": variables}
    )
    key = "scenes/j2/lost.zip"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=b"PK")

    runner = Runner(stack, "--once", "--retry-delay", "0.1")
    try:
        assert runner.finish() == 0, runner.dump()
    finally:
        runner.kill()
    assert [i["ok"] for i in runner.events("invoked")] == [False, False, False]
    (sent,) = runner.events("invoke_failed_to_destination")
    assert sent["destination"].endswith(f":lew-{stack.app}-jobs-dlq")
    url = stack.sqs.get_queue_url(QueueName=f"lew-{stack.app}-jobs-dlq")["QueueUrl"]
    messages = stack.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    # The S3 event the launcher could not queue: the worker takes it when it is redriven.
    sys.path.insert(0, str(REPO / "worker"))
    import worker

    assert [job.key for job in worker.parse_body(messages[0]["Body"])] == [key]


@needs_lew
@pytest.mark.skipif(shutil.which("povray") is None, reason="POV-Ray is not installed")
def test_sigterm_stops_a_rendering_worker_which_hands_its_job_back(stack: Stack) -> None:
    runner = Runner(stack)
    try:
        runner.wait_for("watching", 30)
        job = "job-" + uuid.uuid4().hex[:8]
        # The 1920x1080 variant renders for a while: long enough to be interrupted.
        stack.s3.put_object(
            Bucket=stack.bucket, Key=f"scenes/{job}/lew-demo-large.zip", Body=zip_folder(DEMO)
        )
        wait_for_object(
            stack,
            f"renders/{job}/lew-demo-large.started.json",
            f"renders/{job}/lew-demo-large.error.txt",
            runner,
            timeout=60,
        )
        assert runner.stop() == 0, runner.dump()
    finally:
        runner.kill()
    assert [s["signal"] for s in runner.events("task_signalled")] == ["SIGTERM"]
    stopped = runner.events("task_stopped")
    assert len(stopped) == 1
    assert stopped[0]["stopped_reason"].startswith("lew local runner")
    task = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[stopped[0]["task"]])["tasks"][0]
    assert (task["lastStatus"], task["desiredStatus"]) == ("STOPPED", "STOPPED")
    # The worker made its message visible again, so another task can take the job.
    assert stack.queue_depth(f"lew-{stack.app}-jobs") == 1
    with pytest.raises(stack.s3.exceptions.ClientError):
        stack.s3.head_object(Bucket=stack.bucket, Key=f"renders/{job}/lew-demo-large.png")


@needs_lew
def test_without_the_lambda_permission_s3_cannot_invoke(stack: Stack) -> None:
    policy = json.loads(stack.lambda_.get_policy(FunctionName=stack.function)["Policy"])
    for statement in policy["Statement"]:
        stack.lambda_.remove_permission(FunctionName=stack.function, StatementId=statement["Sid"])
    stack.s3.put_object(Bucket=stack.bucket, Key="scenes/j1/x.zip", Body=b"PK")
    runner = Runner(stack, "--once")
    try:
        assert runner.finish() == 1, runner.dump()
    finally:
        runner.kill()
    assert runner.events("invoked") == []
    errors = runner.events("error")
    assert [e["where"] for e in errors] == ["s3_notification"], runner.dump()
    assert "S3 cannot invoke" in errors[0]["error"]


def reports(messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith("REPORT RequestId: ")]


@needs_lew
def test_uploads_share_a_warm_environment_until_the_configuration_changes(
    stack: Stack, tmp_path: Path
) -> None:
    # The tasks the launcher starts run a worker that exits at once: only Lambda matters here.
    worker = tmp_path / "noop_worker.py"
    worker.write_text('print(\'{"event": "exit", "reason": "test"}\')\n')
    runner = Runner(stack, "--worker", str(worker), "--python", sys.executable)
    try:
        runner.wait_for("watching", 30)
        stack.s3.put_object(Bucket=stack.bucket, Key="scenes/j1/a.zip", Body=b"PK")
        runner.wait_for("invoked", 60)
        stack.s3.put_object(Bucket=stack.bucket, Key="scenes/j2/b.zip", Body=b"PK")
        runner.wait_for("invoked", 60, count=2)

        # Any change of the function's configuration retires its warm environments.
        configuration = stack.lambda_.get_function_configuration(FunctionName=stack.function)
        variables = dict(configuration["Environment"]["Variables"], LEW_RUNNER_TEST="changed")
        stack.lambda_.update_function_configuration(
            FunctionName=stack.function, Environment={"Variables": variables}
        )
        stack.s3.put_object(Bucket=stack.bucket, Key="scenes/j3/c.zip", Body=b"PK")
        invoked = runner.wait_for("invoked", 60, count=3)
        assert runner.stop() == 0, runner.dump()
    finally:
        runner.kill()

    assert [i["ok"] for i in invoked] == [True, True, True], runner.dump()
    assert [i["cold_start"] for i in invoked] == [True, False, True]
    assert invoked[0]["init_s"] is not None and invoked[1].get("init_s") is None
    first, second, third = (i["log_stream"] for i in invoked)
    assert first == second != third
    assert LAMBDA_STREAM.match(third), third

    started = runner.events("environment_started")
    assert [s["log_stream"] for s in started] == [first, third]
    assert started[0]["pid"] != started[1]["pid"]
    closed = runner.events("environment_closed")
    assert [(c["log_stream"], c["invocations"]) for c in closed] == [(first, 2), (third, 1)]
    assert "changed" in closed[0]["reason"] and closed[1]["reason"] == "shutdown"

    # One stream per environment; Init Duration only in the REPORT of its cold start. (moto
    # adds streams of its own to the group: its failed attempts to run the function in Docker.)
    group = f"/aws/lambda/{stack.function}"
    assert {first, third} <= set(stack.log_streams(group))
    warm_log = stack.log_messages(group, first)
    assert sum(m.startswith("START RequestId: ") for m in warm_log) == 2
    assert ["Init Duration" in r for r in reports(warm_log)] == [True, False], warm_log
    assert sum("Init Duration" in m for m in warm_log) == 1
    assert sum('"event": "queued"' in m for m in warm_log) == 2, warm_log
    new_log = stack.log_messages(group, third)
    assert ["Init Duration" in r for r in reports(new_log)] == [True], new_log


FLAKY_LAUNCHER = """
import time
from urllib.parse import unquote_plus

INITS = []
INITS.append(time.time())


def handler(event, context):
    key = unquote_plus(event["Records"][0]["s3"]["object"]["key"])
    print("handling", key, "inits", len(INITS), "remaining", context.get_remaining_time_in_millis())
    if "boom" in key:
        raise RuntimeError("boom: " + key)
    if "slow" in key:
        time.sleep(60)
    return {"key": key}
"""


@needs_lew
def test_an_exception_keeps_the_environment_a_timeout_replaces_it(
    stack: Stack, tmp_path: Path
) -> None:
    code = tmp_path / "launcher.py"  # the deployed handler is launcher.handler
    code.write_text(FLAKY_LAUNCHER)
    stack.lambda_.update_function_configuration(FunctionName=stack.function, Timeout=2)
    stack.lambda_.delete_function_event_invoke_config(FunctionName=stack.function)
    stack.lambda_.put_function_event_invoke_config(
        FunctionName=stack.function, MaximumRetryAttempts=0
    )
    runner = Runner(stack, "--launcher-code", str(code))
    try:
        runner.wait_for("watching", 30)
        for count, name in enumerate(("boom", "fine", "slow", "after"), start=1):
            stack.s3.put_object(Bucket=stack.bucket, Key=f"scenes/{name}/{name}.zip", Body=b"PK")
            invoked = runner.wait_for("invoked", 60, count=count)
        assert runner.stop() == 0, runner.dump()
    finally:
        runner.kill()

    outcomes = [(i["ok"], i.get("error_type"), i["cold_start"]) for i in invoked]
    assert outcomes == [
        (False, "RuntimeError", True),  # the environment survives an uncaught exception
        (True, None, False),
        (False, "Sandbox.Timedout", False),  # ... but not a timeout
        (True, None, True),
    ], runner.dump()
    assert invoked[2]["error"] == "Task timed out after 2.00 seconds"
    streams = [i["log_stream"] for i in invoked]
    assert streams[0] == streams[1] == streams[2] != streams[3]
    assert invoked[2]["seconds"] > 1.5  # it ran into its 2 s timeout (no upper bound: noisy)

    group = f"/aws/lambda/{stack.function}"
    old_log = stack.log_messages(group, streams[0])
    assert any(m.startswith("[ERROR] RuntimeError: boom: scenes/boom/boom.zip") for m in old_log)
    assert any(m.endswith("Task timed out after 2.00 seconds") for m in old_log), old_log
    assert any("handling scenes/fine/fine.zip inits 1" in m for m in old_log), old_log
    assert ["Init Duration" in r for r in reports(old_log)] == [True, False, False]
    assert ["Status: timeout" in r for r in reports(old_log)] == [False, False, True]
    new_log = stack.log_messages(group, streams[3])
    assert any("handling scenes/after/after.zip inits 1" in m for m in new_log), new_log
    assert ["Init Duration" in r for r in reports(new_log)] == [True]
