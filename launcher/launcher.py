"""lew launcher: turns S3 ObjectCreated events into SQS jobs and starts ECS Fargate workers.

Runs on AWS Lambda (python3.12) as ``launcher.handler``, with the standard library and the
runtime's boto3 only. It is configured through environment variables (see ``load_config``),
which lew sets on the function.

It is invoked three ways: by S3 for new scenes, by EventBridge when one of lew's worker tasks
stops (rule ``lew-<app>-task-stopped``), and by EventBridge on a schedule (rule
``lew-<app>-reconcile``). For every object in an S3 event that matches the input filter it
sends one job message to the queue, or one per part when ``lew render`` split the scene (the
object's ``lew-parts`` metadata: runs of an animation's frames, or bands of a still's rows).
Then, whatever invoked it, it reconciles (``reconcile``): the jobs in the queue, waiting or
in progress, against the worker tasks running or starting, and starts
``min(jobs - running, max_tasks - running)`` more; one code path decides how many workers run.
Every decision is logged as one JSON line on stdout.

Anything that leaves an upload's work undone raises, so Lambda retries the event; a re-sent
job is harmless because the worker skips jobs whose output already exists. A reconcile that an
EventBridge event asked for and that fails is logged and not raised: the jobs stay queued, the
next task stop or the schedule reconciles again, and Lambda's retries would only end with the
event in the dead-letter queue, among the jobs.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_STARTED_BY = "lew-launcher"  # lew sets LEW_STARTED_BY to the same value
MESSAGE_VERSION = 1
SQS_BATCH_SIZE = 10  # SendMessageBatch limit
RUN_TASK_MAX_COUNT = 10  # RunTask limit per call
SEND_ATTEMPTS = 3  # first try + 2 retries of the entries SQS reports as failed
SEND_BACKOFF_S = 0.2  # doubled after each retry
PARTS_METADATA = "lew-parts"  # x-amz-meta-lew-parts, written by `lew render` (src/parts.rs)
MAX_PARTS = (
    10_000  # one scene's jobs at most (lew makes ~4 per worker; a scene has <= 10000 frames)
)
MAX_BANDS = 64
# What EventBridge's events say in `source` and `detail-type`.
ECS_SOURCE, TASK_STATE_CHANGE = "aws.ecs", "ECS Task State Change"
SCHEDULE_SOURCE, SCHEDULED_EVENT = "aws.events", "Scheduled Event"
# ECS's stopCode for a task that never ran: its image could not be pulled, its subnet has no
# route to ECR, its log group is missing. Another started at once would fail the same way.
FAILED_TO_START = "TaskFailedToStart"
# The worker's own exit codes for "I cannot work here" (worker/worker.py: 1 the queue cannot be
# read or a job left files it could not clear, 2 a bad configuration); a worker killed by a
# signal (137 for SIGKILL, an out-of-memory kill), interrupted or done exits otherwise.
WORKER_CANNOT_WORK = (1, 2)

T = TypeVar("T")


class ConfigError(ValueError):
    """The function's environment is missing or has an invalid LEW_* variable."""


class LauncherError(RuntimeError):
    """Work was left undone; raised so that Lambda retries the event."""


def log(event: str, **fields: Any) -> None:
    """Write one decision as one JSON line to stdout (CloudWatch Logs)."""
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    queue_url: str
    cluster: str
    task_family: str
    container_name: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: str
    max_tasks: int
    capacity_provider: str
    input_prefix: str
    input_suffix: str
    started_by: str = DEFAULT_STARTED_BY


def split_ids(value: str) -> tuple[str, ...]:
    """``"subnet-a, ,subnet-b,"`` -> ``("subnet-a", "subnet-b")``."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read the LEW_* variables; raise ConfigError naming every missing or invalid one."""
    env = os.environ if environ is None else environ
    errors: list[str] = []

    def required(name: str, what: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            errors.append(f"{name} is not set (the {what})")
        return value

    def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = env.get(name, "").strip().upper() or default
        if value not in allowed:
            errors.append(f"{name} must be one of {', '.join(allowed)} (got {env.get(name)!r})")
        return value

    queue_url = required("LEW_QUEUE_URL", "URL of the job queue")
    cluster = required("LEW_CLUSTER", "ECS cluster name or ARN")
    task_family = required("LEW_TASK_FAMILY", "worker task definition family")
    subnets = split_ids(env.get("LEW_SUBNETS", ""))
    if not subnets:
        errors.append("LEW_SUBNETS is not set (comma-separated subnet ids for the worker tasks)")
    security_groups = split_ids(env.get("LEW_SECURITY_GROUPS", ""))
    assign_public_ip = choice("LEW_ASSIGN_PUBLIC_IP", "ENABLED", ("ENABLED", "DISABLED"))
    capacity_provider = choice("LEW_CAPACITY_PROVIDER", "FARGATE", ("FARGATE", "FARGATE_SPOT"))

    raw_max = env.get("LEW_MAX_TASKS", "").strip() or "4"
    try:
        max_tasks = int(raw_max)
    except ValueError:
        max_tasks = 0
    if max_tasks < 1:
        errors.append(f"LEW_MAX_TASKS must be an integer >= 1 (got {raw_max!r})")

    if errors:
        raise ConfigError("launcher misconfigured: " + "; ".join(errors))
    return Config(
        queue_url=queue_url,
        cluster=cluster,
        task_family=task_family,
        container_name=env.get("LEW_CONTAINER_NAME", "").strip() or "worker",
        subnets=subnets,
        security_groups=security_groups,
        assign_public_ip=assign_public_ip,
        max_tasks=max_tasks,
        capacity_provider=capacity_provider,
        input_prefix=env.get("LEW_INPUT_PREFIX", "scenes/"),
        input_suffix=env.get("LEW_INPUT_SUFFIX", ".zip"),
        started_by=env.get("LEW_STARTED_BY", "").strip() or DEFAULT_STARTED_BY,
    )


# --- S3 event -> objects (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str  # decoded
    size: int
    etag: str
    job_id: str


@dataclass(frozen=True)
class Skip:
    key: str | None
    reason: str


def decode_key(raw: str) -> str:
    """S3 event keys are form-encoded: AWS writes a space as ``+``; moto also encodes ``/``."""
    return urllib.parse.unquote_plus(raw)


def job_id_for_key(key: str, prefix: str, suffix: str) -> str | None:
    """``scenes/<job>/<name>.zip`` -> ``<job>``; ``scenes/<name>.zip`` -> ``<name>``.

    Returns None when the key is outside the filter or leaves no job id.
    """
    if not key.startswith(prefix) or not key.endswith(suffix):
        return None
    rest = key[len(prefix) :]
    job = rest.split("/", 1)[0] if "/" in rest else rest[: len(rest) - len(suffix)]
    return job or None


def is_test_event(event: Mapping[str, Any]) -> bool:
    return event.get("Event") == "s3:TestEvent" and not event.get("Records")


def parse_records(
    event: Mapping[str, Any], prefix: str, suffix: str
) -> tuple[list[S3Object], list[Skip]]:
    """Every record of the event -> the objects to queue (unique, in order) and the skips."""
    objects: list[S3Object] = []
    skips: list[Skip] = []
    seen: set[tuple[str, str, str]] = set()
    for record in event.get("Records") or []:
        name = str(record.get("eventName", "")).removeprefix("s3:")
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        raw_key = obj.get("key")
        key = decode_key(raw_key) if isinstance(raw_key, str) else None
        if not name.startswith("ObjectCreated:"):
            skips.append(Skip(key, f"event {name or '(none)'} is not ObjectCreated"))
            continue
        if not bucket or key is None:
            skips.append(Skip(key, "record has no bucket name or object key"))
            continue
        if not key.startswith(prefix):
            skips.append(Skip(key, f"key does not start with {prefix!r}"))
            continue
        if not key.endswith(suffix):
            skips.append(Skip(key, f"key does not end with {suffix!r}"))
            continue
        job_id = job_id_for_key(key, prefix, suffix)
        if job_id is None:
            skips.append(Skip(key, "key has no job id"))
            continue
        etag = str(obj.get("eTag") or "")
        identity = (bucket, key, etag or str(obj.get("sequencer") or ""))
        if identity in seen:
            skips.append(Skip(key, "duplicate record for the same object"))
            continue
        seen.add(identity)
        objects.append(S3Object(bucket, key, int(obj.get("size") or 0), etag, job_id))
    return objects, skips


@dataclass(frozen=True)
class Job:
    """One job message: an object, or one part of it (frames or a band, see ``parse_parts``)."""

    obj: S3Object
    part: Mapping[str, Any] | None = None


def job_message(job: Job) -> dict[str, Any]:
    """The body of one job message (the contract with the worker)."""
    obj = job.obj
    body: dict[str, Any] = {
        "version": MESSAGE_VERSION,
        "job_id": obj.job_id,
        "bucket": obj.bucket,
        "key": obj.key,
        "size": obj.size,
        "etag": obj.etag,
    }
    if job.part is not None:
        body["part"] = dict(job.part)
    return body


def parse_parts(text: str) -> list[dict[str, Any]]:
    """The parts of ``lew render``'s plan: ``frames=FIRST-LAST/PER_JOB`` (runs of PER_JOB
    frames) or ``rows=A-B,C-D,...`` (bands of rows, top to bottom). ValueError when it is not
    one of these."""
    kind, _, value = text.strip().partition("=")
    if kind == "frames":
        span, _, per = value.partition("/")
        first_text, _, last_text = span.partition("-")
        first, last, per_job = int(first_text), int(last_text), int(per)
        if first < 0 or last < first or per_job < 1:
            raise ValueError(f"bad frame range {value!r}")
        if (last - first) // per_job + 1 > MAX_PARTS:
            raise ValueError(f"more than {MAX_PARTS} jobs")
        return [
            {"frames": [start, min(start + per_job - 1, last)]}
            for start in range(first, last + 1, per_job)
        ]
    if kind == "rows":
        rows = []
        for band in value.split(","):
            start_text, _, end_text = band.partition("-")
            start, end = int(start_text), int(end_text)
            if start < 1 or end < start or (rows and start != rows[-1][1] + 1):
                raise ValueError(f"bands {value!r} are not consecutive rows")
            rows.append([start, end])
        if not 2 <= len(rows) <= MAX_BANDS:
            raise ValueError(f"{len(rows)} bands (2 to {MAX_BANDS} make sense)")
        return [{"band": i, "rows": rows} for i in range(1, len(rows) + 1)]
    raise ValueError(f"unknown plan {text!r}")


def jobs_for(obj: S3Object, metadata: Mapping[str, str]) -> list[Job]:
    """The jobs of one object: one per part of ``lew render``'s plan, else one for all of it
    (an upload by other means; a plan that cannot be read is logged and rendered whole)."""
    text = metadata.get(PARTS_METADATA)
    if not text:
        return [Job(obj)]
    try:
        parts = parse_parts(text)
    except ValueError as error:
        log("bad_parts", key=obj.key, parts=text[:200], reason=str(error))
        return [Job(obj)]
    return [Job(obj, part) for part in parts]


def batched(items: Sequence[T], size: int) -> Iterator[list[T]]:
    if size < 1:
        raise ValueError("batch size must be >= 1")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def entry_id(index: int) -> str:
    """A SendMessageBatch entry Id (alphanumeric, ``-``, ``_``, at most 80 characters)."""
    return f"job-{index}"


def tasks_to_start(jobs: int, max_tasks: int, running: int) -> int:
    """How many tasks to start for `jobs` in the queue (waiting or in progress) when `running`
    tasks run or are starting: one for every job no task covers, never above the cap, never
    fewer than none."""
    return max(0, min(jobs - running, max_tasks - running))


# --- what invoked the launcher (pure) ------------------------------------------------------


def trigger_of(event: Mapping[str, Any]) -> str:
    """``s3`` (an upload), ``task_stopped`` (EventBridge: one of the cluster's tasks stopped),
    ``schedule`` (EventBridge: the schedule), or ``other`` (S3's test event, anything else)."""
    if event.get("Records"):
        return "s3"
    source, kind = event.get("source"), event.get("detail-type")
    if source == ECS_SOURCE and kind == TASK_STATE_CHANGE:
        return "task_stopped"
    if source == SCHEDULE_SOURCE and kind == SCHEDULED_EVENT:
        return "schedule"
    return "other"


def exit_code(detail: Mapping[str, Any], container: str) -> int | None:
    """The exit code of the worker's container in an ECS task event, if it has one."""
    containers = [c for c in detail.get("containers") or [] if isinstance(c, dict)]
    mine = [c for c in containers if c.get("name") == container] or containers[:1]
    code = mine[0].get("exitCode") if mine else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def restart_now(detail: Mapping[str, Any], container: str) -> tuple[bool, str]:
    """Whether a task's stop should start workers for the jobs at once, and why.

    Not when the task never ran (ECS's stopCode ``TaskFailedToStart``) or its worker said it
    cannot work (exit code 1 or 2): another task would stop the same way, and each stop would
    start the next, round and round. Those jobs wait for the schedule's next reconcile (every
    few minutes) instead. Every other stop reconciles now: a worker that finished, was
    interrupted (Fargate Spot), or was killed mid-job (its job comes back to the queue)."""
    if detail.get("stopCode") == FAILED_TO_START:
        return False, f"the task failed to start ({detail.get('stoppedReason') or 'no reason'})"
    code = exit_code(detail, container)
    if code in WORKER_CANNOT_WORK:
        return False, f"the worker exited with code {code}: it cannot work (see its log)"
    return True, "a task stopped"


def run_task_params(config: Config, count: int) -> dict[str, Any]:
    """The RunTask request for ``count`` (1-10) worker tasks."""
    awsvpc: dict[str, Any] = {
        "subnets": list(config.subnets),
        "assignPublicIp": config.assign_public_ip,
    }
    if config.security_groups:
        awsvpc["securityGroups"] = list(config.security_groups)
    params: dict[str, Any] = {
        "cluster": config.cluster,
        "taskDefinition": config.task_family,  # family only: the latest ACTIVE revision
        "count": count,
        "startedBy": config.started_by,
        "networkConfiguration": {"awsvpcConfiguration": awsvpc},
    }
    if config.capacity_provider == "FARGATE_SPOT":
        params["capacityProviderStrategy"] = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    else:
        params["launchType"] = "FARGATE"
    return params


# --- AWS side ------------------------------------------------------------------------------

_CLIENTS: dict[str, Any] = {}


def client(service: str) -> Any:
    """A cached boto3 client, created on first use (importing this module needs no AWS)."""
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(
            service, config=BotoConfig(retries={"mode": "standard", "max_attempts": 3})
        )
    return _CLIENTS[service]


@dataclass(frozen=True)
class SendFailure:
    obj: S3Object
    code: str
    message: str


def send_jobs(
    sqs: Any,
    queue_url: str,
    jobs: Sequence[Job],
    *,
    attempts: int | None = None,
    backoff_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[S3Object], list[SendFailure]]:
    """Send one message per job with SendMessageBatch; retry entries SQS reports as Failed.

    Returns the jobs queued and those still failing after the last attempt. Exceptions of
    the call itself (throttling beyond boto3's retries, access denied, ...) propagate.
    """
    attempts = SEND_ATTEMPTS if attempts is None else attempts
    backoff_s = SEND_BACKOFF_S if backoff_s is None else backoff_s
    sent: list[Job] = []
    failed: list[SendFailure] = []
    for batch in batched(list(enumerate(jobs)), SQS_BATCH_SIZE):
        pending = {entry_id(i): job for i, job in batch}
        last: dict[str, Mapping[str, Any]] = {}
        for attempt in range(1, attempts + 1):
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": eid, "MessageBody": json.dumps(job_message(job))}
                    for eid, job in pending.items()
                ],
            )
            for ok in response.get("Successful") or []:
                job = pending.pop(ok["Id"], None)
                if job is not None:
                    sent.append(job)
                    log(
                        "queued",
                        job_id=job.obj.job_id,
                        key=job.obj.key,
                        message_id=ok.get("MessageId"),
                        **({"part": job.part} if job.part is not None else {}),
                    )
            last = {f["Id"]: f for f in response.get("Failed") or []}
            if not pending:
                break
            if attempt < attempts:
                delay = backoff_s * 2 ** (attempt - 1)
                log(
                    "send_retry",
                    attempt=attempt,
                    delay_s=delay,
                    failed=[
                        {"key": job.obj.key, "code": last.get(eid, {}).get("Code", "NoResult")}
                        for eid, job in pending.items()
                    ],
                )
                sleep(delay)
        for eid, job in pending.items():
            f = last.get(eid, {})
            failure = SendFailure(
                job.obj,
                str(f.get("Code", "NoResult")),
                str(f.get("Message", "SQS returned no result for this entry")),
            )
            failed.append(failure)
            log("send_failed", key=job.obj.key, code=failure.code, message=failure.message)
    return sent, failed


def object_metadata(s3: Any, obj: S3Object) -> Mapping[str, str] | None:
    """The object's user metadata (HeadObject), or None when the object is gone (deleted since
    the event: nothing to render). Other errors propagate, so Lambda retries the event."""
    from botocore.exceptions import ClientError

    try:
        response = s3.head_object(Bucket=obj.bucket, Key=obj.key)
    except ClientError as error:
        code = str((error.response.get("Error") or {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return response.get("Metadata") or {}


def expand(s3: Any, objects: Sequence[S3Object]) -> tuple[list[Job], list[Skip]]:
    """Every object's jobs, from its metadata."""
    jobs: list[Job] = []
    skips: list[Skip] = []
    for obj in objects:
        metadata = object_metadata(s3, obj)
        if metadata is None:
            skips.append(Skip(obj.key, "object no longer exists"))
            continue
        jobs.extend(jobs_for(obj, metadata))
    return jobs, skips


def queue_depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(waiting, in progress) jobs of the queue: SQS's approximate numbers of visible messages
    and of messages received but not deleted (a job being rendered, or one whose worker died
    until its visibility lapses)."""
    attributes = (
        sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        ).get("Attributes")
        or {}
    )
    return (
        int(attributes.get("ApproximateNumberOfMessages") or 0),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible") or 0),
    )


def count_running(ecs: Any, cluster: str, started_by: str) -> int:
    """Tasks this launcher started that are pending or running (desired status RUNNING).

    ListTasks refuses startedBy with any other filter ("When you specify startedBy as the
    filter, it must be the only filter that you use"), and lists desired status RUNNING when
    no status is given: startedBy alone is exactly these tasks."""
    pages = ecs.get_paginator("list_tasks").paginate(cluster=cluster, startedBy=started_by)
    return sum(len(page.get("taskArns") or []) for page in pages)


def start_tasks(ecs: Any, config: Config, count: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Start ``count`` tasks, at most 10 per RunTask call; return started ARNs and failures."""
    started: list[str] = []
    failures: list[dict[str, Any]] = []
    remaining = count
    while remaining > 0:
        n = min(remaining, RUN_TASK_MAX_COUNT)
        remaining -= n
        response = ecs.run_task(**run_task_params(config, n))
        arns = [t["taskArn"] for t in response.get("tasks") or []]
        started.extend(arns)
        if arns:
            log(
                "started",
                task_arns=arns,
                task_family=config.task_family,
                container=config.container_name,
                capacity_provider=config.capacity_provider,
            )
        for f in response.get("failures") or []:
            failures.append(f)
            log(
                "run_task_failure",
                arn=f.get("arn"),
                reason=f.get("reason"),
                detail=f.get("detail"),
            )
    return started, failures


def reconcile(
    config: Config, sqs: Any, ecs: Any, trigger: str, *, at_least: int = 0
) -> dict[str, int]:
    """Starts a task for every job in the queue (waiting or in progress) that no running or
    starting task covers, up to ``max_tasks``; the one place that decides how many workers run.

    Jobs in progress count because a worker that died holding one (SIGKILL, out of memory)
    leaves it invisible until its visibility lapses: the task started now takes it then.
    ``at_least`` is the number of jobs this invocation just queued: SQS's counts are
    approximate and may not show them yet. An empty queue costs one SQS call and starts
    nothing. Raises LauncherError when jobs wait and RunTask started nothing while nothing runs.
    """
    visible, in_flight = queue_depth(sqs, config.queue_url)
    jobs = max(visible + in_flight, at_least)
    running = count_running(ecs, config.cluster, config.started_by) if jobs else 0
    starting = tasks_to_start(jobs, config.max_tasks, running)
    log(
        "reconcile",
        trigger=trigger,
        waiting=visible,
        in_progress=in_flight,
        jobs=jobs,
        running=running if jobs else None,  # not counted (no ListTasks) when no job waits
        starting=starting,
        max_tasks=config.max_tasks,
    )
    started: list[str] = []
    if starting:
        started, run_failures = start_tasks(ecs, config, starting)
        if not started and running == 0:
            reasons = sorted({str(f.get("reason")) for f in run_failures}) or ["no tasks"]
            raise LauncherError(
                f"RunTask started no task of {config.task_family} in {config.cluster} and "
                f"none is running, so {jobs} queued job(s) would wait: " + ", ".join(reasons)
            )
    return {"jobs": jobs, "running": running, "started": len(started)}


def process(
    event: Mapping[str, Any], config: Config, sqs: Any, ecs: Any, s3: Any
) -> dict[str, int]:
    """The launcher's work for one event, with the clients passed in."""
    summary = {"queued": 0, "skipped": 0, "jobs": 0, "running": 0, "started": 0}
    trigger = trigger_of(event)
    sent: list[Job] = []
    send_failures: list[SendFailure] = []
    if trigger == "s3":
        objects, skips = parse_records(event, config.input_prefix, config.input_suffix)
        jobs, gone = expand(s3, objects)
        for skip in skips + gone:
            log("skipped", key=skip.key, reason=skip.reason)
        summary["skipped"] = len(skips) + len(gone)
        sent, send_failures = send_jobs(sqs, config.queue_url, jobs)
        summary["queued"] = len(sent)
    elif trigger == "task_stopped":
        detail = event.get("detail") or {}
        now, why = restart_now(detail, config.container_name)
        log(
            "task_stopped",
            task=detail.get("taskArn"),
            started_by=detail.get("startedBy"),
            stop_code=detail.get("stopCode"),
            stopped_reason=detail.get("stoppedReason"),
            exit_code=exit_code(detail, config.container_name),
            reconcile=now,
            reason=why,
        )
        if not now:
            log("done", **summary)
            return summary
    elif trigger == "schedule":
        log("scheduled", rule=(event.get("resources") or [None])[0])
    elif is_test_event(event):
        log("ignored", reason="s3:TestEvent", bucket=event.get("Bucket"))
    else:
        log("ignored", reason="not an S3, ECS task or schedule event")

    try:
        summary.update(reconcile(config, sqs, ecs, trigger, at_least=len(sent)))
    except (LauncherError, BotoCoreError, ClientError) as error:
        if trigger not in ("task_stopped", "schedule"):
            raise
        # Nothing is lost: the jobs stay queued for the next stop or the schedule.
        log("reconcile_failed", trigger=trigger, error=f"{type(error).__name__}: {error}")

    if send_failures:
        raise LauncherError(
            f"SendMessageBatch failed for {len(send_failures)} object(s) after "
            f"{SEND_ATTEMPTS} attempts: "
            + "; ".join(f"{f.obj.bucket}/{f.obj.key}: {f.code} {f.message}" for f in send_failures)
        )
    log("done", **summary)
    return summary


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, int]:
    """Lambda entry point (``launcher.handler``)."""
    config = load_config()
    return process(event, config, client("sqs"), client("ecs"), client("s3"))
