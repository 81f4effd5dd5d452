"""The runner at work: the Lambda side, the Fargate side and EventBridge's part wired together,
and their loops.

S3 and ECS are polled by separate threads every --poll seconds, so a slow call to one does not
delay the other, and ECS also right after each launcher invocation (whose RunTask is what starts
tasks), so a task's worker starts without waiting for a poll. With --once the runner notifies
the objects there at start, runs the tasks that follow and ends when no invocation is pending,
ECS has no new task and none runs. A task that stops sends ECS's event through EventBridge's
part (events_side), whose schedules fire from a thread of their own. Closing it ends the
deliveries and schedules, closes the Lambda environments, stops the workers and their tasks and
sends the last log lines.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from .aws import Aws
from .events_side import EventBus
from .fargate_side import TaskRunner
from .lambda_code import CodeStore
from .lambda_side import Invoker
from .logs import LogShipper
from .output import Output
from .s3_side import BucketWatcher, dispatch


class Pipeline:
    """S3 -> launcher -> RunTask -> worker for one app, polled until stopped."""

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        aws: Aws,
        out: Output,
        account: str,
        bucket: str,
        cluster: str,
        work_root: Path,
        child_env: dict[str, str],
        task_env: dict[str, str],
        stop: threading.Event,
    ) -> None:
        self._aws = aws
        self._out = out
        self._account = account
        self._bucket = bucket
        self._cluster = cluster
        self._once = args.once
        self._poll_s = args.poll
        self._stop = stop
        self.shipper = LogShipper(aws, out)
        code = CodeStore(
            aws, out, work_root, None if args.require_deployed_code else args.launcher_code
        )
        # The launcher's RunTask is what starts a task here: after each invocation ECS is looked
        # at at once (a task starts as soon as RunTask returns), besides every --poll seconds.
        self._ecs_wake = threading.Event()
        self.invoker = Invoker(
            aws=aws,
            out=out,
            shipper=self.shipper,
            code=code,
            python=args.lambda_python,
            child_env=child_env,
            retry_delay=args.retry_delay,
            stop=stop,
            on_invoked=self._ecs_wake.set,
        )
        self.events = EventBus(
            aws=aws,
            out=out,
            invoker=self.invoker,
            account=account,
            rule_prefix=f"lew-{args.app}-",
            schedule_every=args.schedule_every,
            drop_task_events=args.drop_task_events,
        )
        self.tasks = TaskRunner(
            aws=aws,
            out=out,
            shipper=self.shipper,
            cluster=cluster,
            container=args.container,
            python=args.python,
            worker=args.worker,
            work_root=work_root,
            child_env=child_env,
            extra_env=task_env,
            keep_work=args.keep_work,
            on_stopped=self.events.task_stopped,
        )
        self._watcher = BucketWatcher(
            aws, bucket, out, include_existing=args.include_existing or args.once
        )
        self._polling = threading.Event()  # cleared when the runner ends
        self._ecs_thread = threading.Thread(target=self._ecs_loop, name="ecs-poll", daemon=True)

    def run(self) -> None:
        """Polls S3 here and ECS in a thread until stopped (or, with --once, until done)."""
        self._polling.set()
        self._ecs_thread.start()
        self.events.start()
        first = True
        while not self._stop.is_set():
            if first or not self._once:
                self._poll_s3()
            first = False
            if self._once and self._done():
                break
            self._stop.wait(self._poll_s)

    def _done(self) -> bool:
        """--once ends when nothing is pending, ECS has no new task and none runs."""
        return self.invoker.pending() == 0 and self._poll_tasks() == 0 and self.tasks.running() == 0

    def _poll_s3(self) -> None:
        try:
            new_objects = self._watcher.poll()
        except (ClientError, BotoCoreError) as error:
            self._out.error("s3_poll", error, bucket=self._bucket)
            return
        dispatch(
            new_objects,
            aws=self._aws,
            out=self._out,
            invoker=self.invoker,
            bucket=self._bucket,
            account=self._account,
        )

    def _poll_tasks(self) -> int:
        try:
            return self.tasks.poll()
        except (ClientError, BotoCoreError) as error:
            self._out.error("ecs_poll", error, cluster=self._cluster)
            return 0

    def _ecs_loop(self) -> None:
        # S3 and ECS are polled independently, so a slow call to one does not delay the other.
        while self._polling.is_set() and not self._stop.is_set():
            self._ecs_wake.wait(self._poll_s)
            self._ecs_wake.clear()
            if self._polling.is_set() and not self._stop.is_set():
                try:
                    self._poll_tasks()
                except Exception as error:  # a bug here must not silently end ECS polling
                    self._out.error("ecs_poll", error, cluster=self._cluster)

    def close(self, force: threading.Event) -> None:
        """Ends the polling, the Lambda environments and the workers (`force`: a second signal)."""
        if self._stop.is_set():
            self._out("stopping", reason="signal")
        self._polling.clear()
        self._ecs_wake.set()
        if self._ecs_thread.ident is not None:
            self._ecs_thread.join(timeout=60)
        self.events.close()
        self.invoker.shutdown()
        self.tasks.shutdown(force)
        self.shipper.close()
