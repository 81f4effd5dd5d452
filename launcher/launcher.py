"""lew launcher: turns S3 ObjectCreated events into SQS jobs and starts ECS Fargate workers.

Runs on AWS Lambda (python3.12) as ``launcher.handler``, with the standard library and the
runtime's boto3 only. It is configured through environment variables (see ``load_config``),
which lew sets on the function.

For every object in the event that matches the input filter it sends one job message to the
queue, or one per part when ``lew render`` split the scene (the object's ``lew-parts`` metadata:
runs of an animation's frames, or bands of a still's rows), then starts
``min(new jobs, max_tasks - running)`` worker tasks. Every decision is logged
as one JSON line on stdout. Anything that leaves work undone raises, so Lambda retries the
event; a re-sent job is harmless because the worker skips jobs whose output already exists.
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


def tasks_to_start(new_jobs: int, max_tasks: int, running: int) -> int:
    """How many tasks to start: never more than the new jobs, nor above the cap, nor < 0."""
    return max(0, min(new_jobs, max_tasks - running))


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


def process(
    event: Mapping[str, Any], config: Config, sqs: Any, ecs: Any, s3: Any
) -> dict[str, int]:
    """The launcher's work for one event, with the clients passed in."""
    summary = {"queued": 0, "skipped": 0, "started": 0, "running": 0}
    if not event.get("Records"):
        if is_test_event(event):
            log("ignored", reason="s3:TestEvent", bucket=event.get("Bucket"))
        else:
            log("ignored", reason="event has no Records")
        return summary

    objects, skips = parse_records(event, config.input_prefix, config.input_suffix)
    jobs, gone = expand(s3, objects)
    for skip in skips + gone:
        log("skipped", key=skip.key, reason=skip.reason)
    summary["skipped"] = len(skips) + len(gone)

    sent, send_failures = send_jobs(sqs, config.queue_url, jobs)
    summary["queued"] = len(sent)

    if sent:
        running = count_running(ecs, config.cluster, config.started_by)
        starting = tasks_to_start(len(sent), config.max_tasks, running)
        log(
            "tasks",
            running=running,
            starting=starting,
            max_tasks=config.max_tasks,
            new_jobs=len(sent),
        )
        summary["running"] = running
        if starting:
            arns, run_failures = start_tasks(ecs, config, starting)
            summary["started"] = len(arns)
            if not arns and running == 0:
                reasons = sorted({str(f.get("reason")) for f in run_failures}) or ["no tasks"]
                raise LauncherError(
                    f"RunTask started no task of {config.task_family} in {config.cluster} and "
                    f"none is running, so {len(sent)} queued job(s) would wait: "
                    + ", ".join(reasons)
                )

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
