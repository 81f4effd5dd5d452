"""The Fargate side (RunTask -> worker): a local worker process for every RUNNING task.

Polls ListTasks(cluster, desiredStatus=RUNNING). For each task not seen yet it reads the task
(DescribeTasks: definition and overrides) and the task definition (the container's environment,
awslogs options, stopTimeout) and runs worker/worker.py as a local process with that environment
plus the endpoint, credentials and a fresh LEW_WORK_DIR. Output goes to the awslogs group and
stream. When the process exits the task is stopped (StopTask), which is what makes the
launcher's count of running tasks drop, and ECS's event for the stopped task goes to
EventBridge's part (events_side) with what moto does not keep: the container's exit code (a
signal N as 128 + N, as Docker reports it) and the stop code (EssentialContainerExited, or
TaskFailedToStart for a task whose worker could not be started). On shutdown every worker gets
SIGTERM, then SIGKILL after the container's stopTimeout.

What moto 5.2.5 does that this works around: every DescribeTasks call moves a task one step
towards STOPPED (RUNNING, DEACTIVATING, ...) while desiredStatus stays RUNNING. The runner sets
moto's `ecs::task` transition to manual (`hold_task_states`) so a task stays RUNNING while its
worker runs, and StopTask (which sets both statuses to STOPPED) marks its end. moto keeps no
exit code, stoppedAt or stopCode: a non-zero exit code is written into stoppedReason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from testkit.processes import kill_tree

from .aws import Aws, error_code
from .logs import LogSetupError, LogShipper
from .output import Output, describe_error, now_ms

# What a container gets when its definition sets no stopTimeout (ECS's default).
DEFAULT_STOP_TIMEOUT_S = 30
# A task whose description keeps failing is given up after this many polls.
TASK_START_ATTEMPTS = 3
# Reasons written into StopTask.
REASON_EXITED = "Essential container in task exited"
REASON_SHUTDOWN = "lew local runner: stopped on shutdown"
# How moto's task state machine is held (a task stays RUNNING until StopTask).
HOLD_TRANSITION = {"progression": "manual", "times": 2**31}
# ECS's stop codes for the events of stopped tasks.
EXITED, FAILED_TO_START, USER_INITIATED = (
    "EssentialContainerExited",
    "TaskFailedToStart",
    "UserInitiated",
)


def container_exit_code(returncode: int) -> int:
    """A process's exit status as ECS reports a container's: a signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def pump_lines(process: subprocess.Popen[bytes], on_line: Callable[[int, str], None]) -> None:
    """Calls on_line(timestamp_ms, line) for every line of the process's stdout until EOF."""
    assert process.stdout is not None
    for raw in process.stdout:
        on_line(now_ms(), raw.decode("utf-8", "replace").rstrip("\r\n"))


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
        on_stopped: Callable[..., None] | None = None,
    ) -> None:
        self._aws = aws
        # Told of every task this runner stopped: task (as StopTask returned it), container,
        # exit_code, stop_code (EventBridge's part delivers ECS's event for it).
        self._on_stopped = on_stopped
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
                    self._stop_task(
                        arn,
                        f"CannotStartContainerError: {describe_error(error)}",
                        stop_code=FAILED_TO_START,
                    )
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
            self._stop_task(arn, f"CannotStartContainerError: {reason}", stop_code=FAILED_TO_START)
            return
        env = container_environment(container, task.get("overrides") or {})
        env.update(self._extra_env)
        log_target = self._log_target(container, task_id)
        if isinstance(log_target, str):
            self._out.error("task_start", log_target, task=arn)
            self._stop_task(
                arn, f"ResourceInitializationError: {log_target}", stop_code=FAILED_TO_START
            )
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
        self._stop_task(
            running.arn,
            reason,
            exit_code=container_exit_code(code),
            stop_code=USER_INITIATED if running.stopping else EXITED,
        )
        if not self._keep_work:
            shutil.rmtree(running.work_dir, ignore_errors=True)
        with self._lock:
            self._running.pop(running.arn, None)

    def _stop_task(
        self,
        arn: str,
        reason: str,
        *,
        exit_code: int | None = None,
        stop_code: str = USER_INITIATED,
    ) -> None:
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
        if self._on_stopped is not None:
            try:
                self._on_stopped(
                    task, container=self._container, exit_code=exit_code, stop_code=stop_code
                )
            except Exception as error:  # the task stopped either way; say why no event went
                self._out.error("task_event", error, task=arn)

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
                kill_tree(task.process.pid)
        for task in tasks:
            if task.thread is not None:
                task.thread.join(timeout=30)


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
