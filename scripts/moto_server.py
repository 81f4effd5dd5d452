"""Starts moto's server (same arguments as `moto_server`) with S3 bucket policies evaluated
the way S3 evaluates them for a request made over TLS.

moto 5.2.5 applies bucket policies to object requests but ignores condition operators it does
not implement (such as `Bool`) and treats a statement whose condition fails as a deny. lew's
bucket policy denies every request with `aws:SecureTransport = false`, so under moto that one
statement would deny all object access. Here a statement applies only when its conditions hold
for the request context, and every request counts as made over TLS: the emulator stands in for
S3's HTTPS endpoint.

One more correction: CloudWatch Logs stores event timestamps as integer milliseconds, but
moto's own Lambda invoker (which cannot run code without Docker and logs that failure into the
function's log group) writes a fractional one, which a strict client such as the AWS SDK for
Rust refuses to parse. Timestamps are stored as integers.

And Lambda's AddPermission refuses a StatementId the function's policy already has, with
409 ResourceConflictException as AWS does; moto 5.2.5 stores the statement a second time, so a
retried AddPermission would go unnoticed.

Then the rules AWS enforces and moto does not (the section "Rules AWS enforces and moto 5.2.5
does not" below, each quoting its AWS page, each tested in scripts/test_moto_rules.py): ECS
ListTasks, RunTask, DescribeTasks, StopTask, RegisterTaskDefinition and tasks' createdAt; S3
notification overlaps and destinations; Lambda function states; SQS queues not usable for a
second, attribute ranges, and the 12 hours a received message can stay hidden.

With LEW_EMULATOR_ECR_REGISTRY=localhost:PORT (a Docker registry; see the ECR section at the
end), ECR answers as if that registry were the account's ECR registry. Nothing else of moto is
changed.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction, lambda_backends
from moto.awslambda.policy import Policy
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.serialize import S3Serializer
from moto.core.utils import unix_time
from moto.ecr.models import ECRBackend, Image, Repository
from moto.ecr.responses import ECRResponse
from moto.ecs.exceptions import EcsClientException
from moto.ecs.exceptions import InvalidParameterException as EcsInvalidParameter
from moto.ecs.models import EC2ContainerServiceBackend
from moto.ecs.models import Task as EcsTask
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.iam.access_control import PermissionResult
from moto.logs.models import LogEvent
from moto.s3.exceptions import S3ClientError
from moto.s3.models import FakeBucket
from moto.server import main
from moto.sns.models import sns_backends
from moto.sqs.exceptions import (
    InvalidAttributeValue,
    InvalidParameterValue,
    ReceiptHandleIsInvalid,
)
from moto.sqs.models import Message as SqsMessage
from moto.sqs.models import Queue, SQSBackend, sqs_backends

# One evaluator for the conditions of every stand-in's policies (scripts/ is on sys.path).
from testkit.iam import conditions_hold, service_allowed

# What S3 knows about every request to the emulator.
REQUEST_CONTEXT = {"aws:securetransport": "true"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    # IAM wildcards: `*` any run of characters, `?` one character; case-sensitive.
    return any(fnmatch.fnmatchcase(value, str(p)) for p in _as_list(patterns))


def _statement_applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    principal = statement.get("Principal")
    if principal not in ("*", {"AWS": "*"}):
        return False  # moto does not model callers; only "everyone" statements are evaluated
    if "NotAction" in statement:
        if _matches(statement["NotAction"], action):
            return False
    elif not _matches(statement.get("Action", []), action):
        return False
    if not _matches(statement.get("Resource", []), resource):
        return False
    return conditions_hold(statement.get("Condition"), REQUEST_CONTEXT)


def get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy.decode())
    result = PermissionResult.NEUTRAL
    for statement in _as_list(policy.get("Statement", [])):
        if _statement_applies(statement, action, resource):
            if statement.get("Effect") == "Deny":
                return PermissionResult.DENIED
            result = PermissionResult.PERMITTED
    return result


FakeBucket.get_permission = get_permission  # type: ignore[method-assign]

_log_event_init = LogEvent.__init__


def _integer_timestamps(self: LogEvent, ingestion_time: int, log_event: dict[str, Any]) -> None:
    _log_event_init(
        self, int(ingestion_time), {**log_event, "timestamp": int(log_event["timestamp"])}
    )


LogEvent.__init__ = _integer_timestamps  # type: ignore[method-assign]


class StatementIdConflict(LambdaClientError):
    code = 409

    def __init__(self, sid: str) -> None:
        super().__init__(
            "ResourceConflictException",
            f"The statement id ({sid}) provided already exists. Please provide a new statement "
            "id, or remove the existing statement.",
        )


_add_statement = Policy.add_statement


def _unique_statement_ids(self: Policy, raw: str, qualifier: str | None = None) -> tuple[Any, str]:
    sid = json.loads(raw).get("StatementId")
    if sid is not None and any(st.get("Sid") == sid for st in self.statements):
        raise StatementIdConflict(sid)
    return _add_statement(self, raw, qualifier)


Policy.add_statement = _unique_statement_ids  # type: ignore[method-assign]

# ---------------------------------------------------------------------------------------------
# Rules AWS enforces and moto 5.2.5 does not. Each quotes the AWS documentation it follows (the
# page's title, then the sentence) and has its own test in scripts/test_moto_rules.py. The
# waits AWS imposes on new resources are short and configurable, so a suite can run them at
# their documented length:
#   LEW_EMULATOR_LAMBDA_PENDING_S  a new function's Pending time, and an update's InProgress
#                                  time (default 1 s);
#   LEW_EMULATOR_SQS_READY_S       how long a new queue cannot be used (default 1 s).


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


LAMBDA_PENDING_S = _seconds("LEW_EMULATOR_LAMBDA_PENDING_S", 1.0)
SQS_READY_S = _seconds("LEW_EMULATOR_SQS_READY_S", 1.0)


# -- ECS ListTasks ----------------------------------------------------------------------------
# AWS, "ListTasks" (ECS API reference), startedBy: "When you specify startedBy as the filter, it
# must be the only filter that you use." (cluster names where to look; it is no filter.) And
# desiredStatus: "The default status filter is RUNNING, which shows tasks that Amazon ECS has
# set the desired status to RUNNING." (moto lists every task when no desiredStatus is given.)
LIST_TASKS_FILTERS = ("containerInstance", "family", "serviceName", "desiredStatus", "launchType")

_list_tasks_response = EC2ContainerServiceResponse.list_tasks


def _list_tasks_as_aws(self: EC2ContainerServiceResponse) -> ActionResult:
    if self._get_param("startedBy") is not None:
        others = [f for f in LIST_TASKS_FILTERS if self._get_param(f) is not None]
        if others:
            raise EcsInvalidParameter(
                "startedBy must be the only filter of ListTasks; also given: " + ", ".join(others)
            )
    return _list_tasks_response(self)


_list_tasks_backend = EC2ContainerServiceBackend.list_tasks


def _running_by_default(
    self: EC2ContainerServiceBackend,
    cluster_str: str | None = None,
    container_instance: str | None = None,
    family: str | None = None,
    started_by: str | None = None,
    service_name: str | None = None,
    desiredStatus: str | None = None,
) -> list[Any]:
    return _list_tasks_backend(
        self,
        cluster_str,
        container_instance,
        family,
        started_by,
        service_name,
        desiredStatus or "RUNNING",
    )


EC2ContainerServiceResponse.list_tasks = _list_tasks_as_aws  # type: ignore[method-assign]
EC2ContainerServiceBackend.list_tasks = _running_by_default  # type: ignore[method-assign]


# -- ECS RunTask, DescribeTasks, StopTask: their documented limits -----------------------------
_run_task = EC2ContainerServiceResponse.run_task
_describe_tasks = EC2ContainerServiceResponse.describe_tasks
_stop_task = EC2ContainerServiceResponse.stop_task


def _run_task_as_aws(self: EC2ContainerServiceResponse) -> ActionResult:
    # AWS, "RunTask" (ECS API reference), count: "You can specify up to 10 tasks for each call."
    count = self._get_int_param("count", 1)
    if not 1 <= count <= 10:
        raise EcsInvalidParameter(f"count must be between 1 and 10 (got {count})")
    # AWS, "CapacityProviderStrategyItem" (ECS API reference): "A capacity provider must be
    # associated with a cluster before it can be included as part of the default capacity
    # provider strategy of the cluster or used in a capacity provider strategy."
    strategy = self._get_param("capacityProviderStrategy") or []
    if strategy:
        cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
        associated = cluster.capacity_providers or []
        for item in strategy:
            if item.get("capacityProvider") not in associated:
                raise EcsInvalidParameter(
                    "The specified capacity provider strategy cannot contain a capacity provider "
                    f"that is not associated with the cluster ({item.get('capacityProvider')}). "
                    "Associate the capacity provider with the cluster or specify a valid "
                    "capacity provider and try again."
                )
    return _run_task(self)


def _describe_tasks_as_aws(self: EC2ContainerServiceResponse) -> ActionResult:
    # AWS, "DescribeTasks" (ECS API reference), tasks: "A list of up to 100 task IDs or full ARN
    # entries."
    tasks = self._get_param("tasks", []) or []
    if len(tasks) > 100:
        raise EcsInvalidParameter(f"tasks can have at most 100 entries (got {len(tasks)})")
    return _describe_tasks(self)


def _stop_task_as_aws(self: EC2ContainerServiceResponse) -> ActionResult:
    # AWS, "StopTask" (ECS API reference), reason: "Up to 255 characters are allowed in this
    # message."
    reason = self._get_param("reason") or ""
    if len(reason) > 255:
        raise EcsInvalidParameter(f"reason can be at most 255 characters (got {len(reason)})")
    return _stop_task(self)


EC2ContainerServiceResponse.run_task = _run_task_as_aws  # type: ignore[method-assign]
EC2ContainerServiceResponse.describe_tasks = _describe_tasks_as_aws  # type: ignore[method-assign]
EC2ContainerServiceResponse.stop_task = _stop_task_as_aws  # type: ignore[method-assign]


# -- ECS RegisterTaskDefinition: Fargate's task sizes ----------------------------------------
# AWS, "RegisterTaskDefinition" (ECS API reference), cpu: "If you're using the Fargate launch
# type, this field is required. You must use one of the following values. The value that you
# choose determines your range of valid values for the memory parameter", then the table of
# pairs (256: 512, 1024 or 2048 MiB; 512: 1-4 GB; 1024: 2-8 GB; 2048: 4-16 GB and 4096: 8-30 GB
# in 1 GB steps; 8192: 16-60 GB in 4 GB steps; 16384: 32-120 GB in 8 GB steps). moto registers
# any pair, which RunTask on AWS never starts.
FARGATE_SIZES = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}

_register_task_definition = EC2ContainerServiceResponse.register_task_definition


def _fargate_sizes_only(self: EC2ContainerServiceResponse) -> ActionResult:
    if "FARGATE" in (self._get_param("requiresCompatibilities") or []):
        cpu, memory = self._get_param("cpu"), self._get_param("memory")
        try:
            valid = int(memory) in FARGATE_SIZES.get(int(cpu), [])
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise EcsClientException(
                f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
                "See the Amazon ECS documentation for the valid values."
            )
    return _register_task_definition(self)


EC2ContainerServiceResponse.register_task_definition = _fargate_sizes_only  # type: ignore[method-assign]


# -- ECS Task.createdAt -------------------------------------------------------------------------
# AWS, "Task" (ECS API reference): "createdAt: The Unix timestamp for the time when the task was
# created. More specifically, it's for the time when the task entered the PENDING state." moto
# leaves it out of every task it describes, so a client that asks "which tasks started since I
# began" finds none.
_task_init = EcsTask.__init__


def _task_with_creation_time(self: EcsTask, *args: Any, **kwargs: Any) -> None:
    _task_init(self, *args, **kwargs)
    self.created_at = datetime.now(UTC)


EcsTask.__init__ = _task_with_creation_time  # type: ignore[method-assign]


# -- S3 PutBucketNotificationConfiguration ----------------------------------------------------
# S3 checks the whole notification document on every write, entries carried over included.
#
# AWS, "Configuring event notifications using object key name filtering" (S3 User Guide):
# "Notification configurations that use Filter cannot define filtering rules with overlapping
# prefixes, overlapping suffixes, or prefix and suffix overlapping." S3 answers InvalidArgument,
# "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if the
# prefixes are overlapping for the same event type." (AWS Knowledge Center, "Why do I get the
# error "Configuration is ambiguously defined" when I create an Amazon S3 event notification to
# trigger my Lambda function?"), and for two entries without filters "Configurations overlap.
# Configurations on the same bucket cannot share a common event type."
#
# And every destination is tested: AWS, "Granting permissions to publish event notification
# messages to a destination" (S3 User Guide): "You must grant the Amazon S3 principal the
# necessary permissions to call the relevant API to publish messages to an SNS topic, an SQS
# queue, or a Lambda function. This is so that Amazon S3 can publish event notification
# messages to a destination." A destination that is missing, or does not let
# s3.amazonaws.com (this bucket, this account) send to it, fails the whole write with
# InvalidArgument "Unable to validate the following destination configurations", each failing
# destination named in ArgumentName<n> (its ARN) and ArgumentValue<n> (why).

DESTINATION_KEYS = {
    "CloudFunctionConfiguration": "CloudFunction",
    "QueueConfiguration": "Queue",
    "TopicConfiguration": "Topic",
}


class NotificationRefused(S3ClientError):
    """InvalidArgument, with the ArgumentName<n>/ArgumentValue<n> pairs S3 adds."""

    def __init__(self, message: str, arguments: list[tuple[str, str]] | None = None) -> None:
        super().__init__("InvalidArgument", message)
        self.lew_arguments = arguments or []


_s3_error_metadata = S3Serializer._serialize_error_metadata


def _with_arguments(self: S3Serializer, serialized: Any, error: Exception, shape: Any) -> None:
    _s3_error_metadata(self, serialized, error, shape)
    for n, (name, value) in enumerate(getattr(error, "lew_arguments", []), start=1):
        serialized[f"ArgumentName{n}"] = name
        serialized[f"ArgumentValue{n}"] = value


S3Serializer._serialize_error_metadata = _with_arguments  # type: ignore[method-assign]


def _entries(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every destination entry of a parsed notification document, as (ARN key, entry)."""
    found = []
    for kind, arn_key in DESTINATION_KEYS.items():
        for entry in _as_list(config.get(kind) or []):
            found.append((arn_key, entry))
    return found


def _filter_rules(entry: dict[str, Any]) -> tuple[str, str] | None:
    """(prefix, suffix) of an entry, or None when it has no filter."""
    rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("FilterRule")
    if not rules:
        return None
    prefix = suffix = ""
    for rule in _as_list(rules):
        if str(rule.get("Name", "")).lower() == "prefix":
            prefix = str(rule.get("Value", ""))
        elif str(rule.get("Name", "")).lower() == "suffix":
            suffix = str(rule.get("Value", ""))
    return prefix, suffix


def _events_overlap(a: list[str], b: list[str]) -> bool:
    # `s3:ObjectCreated:*` covers `s3:ObjectCreated:Put`.
    return any(
        x == y or fnmatch.fnmatchcase(x, y) or fnmatch.fnmatchcase(y, x) for x in a for y in b
    )


def _check_overlaps(config: dict[str, Any]) -> None:
    entries = [entry for _, entry in _entries(config)]
    for i, a in enumerate(entries):
        for b in entries[i + 1 :]:
            if not _events_overlap(_as_list(a.get("Event") or []), _as_list(b.get("Event") or [])):
                continue
            fa, fb = _filter_rules(a), _filter_rules(b)
            if fa is None and fb is None:
                raise NotificationRefused(
                    "Configurations overlap. Configurations on the same bucket cannot share a "
                    "common event type."
                )
            (pa, sa), (pb, sb) = fa or ("", ""), fb or ("", "")
            if (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa)):
                raise NotificationRefused(
                    "Configuration is ambiguously defined. Cannot have overlapping suffixes in "
                    "two rules if the prefixes are overlapping for the same event type."
                )


def _destination_problem(bucket: FakeBucket, arn_key: str, arn: str) -> str | None:
    """Why S3 could not publish to this destination, or None when it can."""
    parts = arn.split(":")
    if len(parts) < 6:
        return "The ARN is not well formed"
    region, account = parts[3], parts[4]
    context = {
        "aws:sourcearn": f"arn:aws:s3:::{bucket.name}",
        "aws:sourceaccount": bucket.account_id,
    }
    if arn_key == "CloudFunction":
        try:
            function = lambda_backends[account][region].get_function(arn)
        except Exception:
            return f"The destination function {arn} does not exist"
        statements = function.policy.statements
        # A function's own policy applies to it whatever its statements' Resource says.
        document = {
            "Statement": [{k: v for k, v in st.items() if k != "Resource"} for st in statements]
        }
        if service_allowed(document, "s3.amazonaws.com", "lambda:InvokeFunction", "", context):
            return None
        return f"Not authorized to invoke function [{arn}]."
    if arn_key == "Queue":
        queue = next(
            (q for q in sqs_backends[account][region].queues.values() if q.queue_arn == arn), None
        )
        if queue is None:
            return f"The destination queue {arn} does not exist"
        if service_allowed(queue.policy, "s3.amazonaws.com", "sqs:SendMessage", arn, context):
            return None
        return (
            "Permissions on the destination queue do not allow S3 to publish notifications from "
            "this bucket"
        )
    topic = sns_backends[account][region].topics.get(arn)
    if topic is None:
        return f"The destination topic {arn} does not exist"
    if service_allowed(topic.policy, "s3.amazonaws.com", "SNS:Publish", arn, context):
        return None
    return (
        "Permissions on the destination topic do not allow S3 to publish notifications from "
        "this bucket"
    )


def _check_destinations(bucket: FakeBucket, config: dict[str, Any]) -> None:
    failing = []
    for arn_key, entry in _entries(config):
        arn = str(entry.get(arn_key, ""))
        problem = _destination_problem(bucket, arn_key, arn)
        if problem is not None:
            failing.append((arn, problem))
    if failing:
        raise NotificationRefused(
            "Unable to validate the following destination configurations", failing
        )


_set_notification_configuration = FakeBucket.set_notification_configuration


def _checked_notification_configuration(
    self: FakeBucket, notification_config: dict[str, Any] | None
) -> None:
    if notification_config:
        _check_overlaps(notification_config)
        _check_destinations(self, notification_config)
    _set_notification_configuration(self, notification_config)


FakeBucket.set_notification_configuration = _checked_notification_configuration  # type: ignore[method-assign]


# -- Lambda function states --------------------------------------------------------------------
# AWS, "Lambda function states" (Lambda Developer Guide): "Pending - After Lambda creates the
# function, it sets the state to pending. While in pending state, Lambda attempts to create or
# configure resources for the function, such as VPC or EFS resources. Lambda does not invoke a
# function during pending state. Any invocations or other API actions that operate on the
# function will fail." The page names Invoke, UpdateFunctionCode, UpdateFunctionConfiguration
# and PublishVersion, which also fail "while an update is in progress (when "LastUpdateStatus":
# "InProgress")". A new function is Pending, and an updated one InProgress, for
# LEW_EMULATOR_LAMBDA_PENDING_S; meanwhile those calls, and the configuration calls that operate
# on the function (PutFunctionEventInvokeConfig, PutFunctionConcurrency), answer 409
# ResourceConflictException with AWS's message.


class FunctionNotReady(LambdaClientError):
    code = 409

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


def _pending(function: LambdaFunction) -> bool:
    return time.monotonic() < getattr(function, "lew_pending_until", 0.0)


def _updating(function: LambdaFunction) -> bool:
    return time.monotonic() < getattr(function, "lew_updating_until", 0.0)


def _refuse_unless_ready(function: LambdaFunction, during_update_too: bool) -> None:
    if _pending(function):
        raise FunctionNotReady(
            "The operation cannot be performed at this time. The function is currently in the "
            "following state: Pending"
        )
    if during_update_too and _updating(function):
        raise FunctionNotReady(
            "The operation cannot be performed at this time. An update is in progress for "
            f"resource: {function.function_arn}"
        )


_get_configuration = LambdaFunction.get_configuration


def _configuration_with_state(self: LambdaFunction, on_create: bool = False) -> dict[str, Any]:
    config = _get_configuration(self, on_create)
    if _pending(self):
        config["State"] = "Pending"
        config["StateReason"] = "The function is being created."
        config["StateReasonCode"] = "Creating"
    if _updating(self) and not on_create:
        config["LastUpdateStatus"] = "InProgress"
        config["LastUpdateStatusReason"] = "The function is being updated."
        config["LastUpdateStatusReasonCode"] = "Updating"
    return config


LambdaFunction.get_configuration = _configuration_with_state  # type: ignore[method-assign]

_create_function = LambdaBackend.create_function


def _created_pending(self: LambdaBackend, spec: dict[str, Any]) -> LambdaFunction:
    function = _create_function(self, spec)
    function.lew_pending_until = time.monotonic() + LAMBDA_PENDING_S  # type: ignore[attr-defined]
    return function


LambdaBackend.create_function = _created_pending  # type: ignore[method-assign]


def _needs_ready(name: str, during_update_too: bool, starts_update: bool) -> None:
    original = getattr(LambdaBackend, name)

    @functools.wraps(original)
    def checked(self: LambdaBackend, function_name: str, *args: Any, **kwargs: Any) -> Any:
        function = self.get_function(function_name)
        _refuse_unless_ready(function, during_update_too)
        result = original(self, function_name, *args, **kwargs)
        if starts_update:
            function.lew_updating_until = time.monotonic() + LAMBDA_PENDING_S
        return result

    setattr(LambdaBackend, name, checked)


for _name, _during_update, _starts_update in (
    ("invoke", False, False),  # an update does not stop invocations (the previous code runs)
    ("update_function_code", True, True),
    ("update_function_configuration", True, True),
    ("publish_version", True, False),
    ("put_function_event_invoke_config", False, False),
    ("put_function_concurrency", False, False),
):
    _needs_ready(_name, _during_update, _starts_update)


# -- SQS: a new queue, and the 12 hours a received message can be kept ------------------------
# AWS, "CreateQueue" (SQS API reference): "After you create a queue, you must wait at least one
# second after the queue is created to be able to use the queue." Naming a queue younger than
# LEW_EMULATOR_SQS_READY_S as a dead-letter target is refused as AWS refuses a target it cannot
# see yet.
_setup_dlq = Queue._setup_dlq


def _dlq_ready(self: Queue, policy: Any) -> None:
    try:
        parsed = json.loads(policy) if isinstance(policy, str) else policy
        target = (parsed or {}).get("deadLetterTargetArn")
    except ValueError:
        target = None
    if target:
        backend = sqs_backends[self.account_id][self.region]
        dlq = next((q for q in backend.queues.values() if q.queue_arn == target), None)
        if dlq is not None and unix_time() - dlq.created_timestamp < SQS_READY_S:
            raise InvalidParameterValue(
                f"Value {json.dumps(parsed)} for parameter RedrivePolicy is invalid. Reason: "
                "Dead letter target does not exist."
            )
    _setup_dlq(self, policy)


Queue._setup_dlq = _dlq_ready  # type: ignore[method-assign]

# AWS, "CreateQueue" and "SetQueueAttributes" (SQS API reference): "DelaySeconds ... Valid
# values: An integer from 0 to 900 seconds (15 minutes)", "MessageRetentionPeriod ... from 60
# seconds (1 minute) to 1,209,600 seconds (14 days)", "ReceiveMessageWaitTimeSeconds ... from 0
# to 20 (seconds)", "VisibilityTimeout ... from 0 to 43,200 (12 hours)", and the redrive
# policy's "maxReceiveCount ... Valid values: 1 to 1,000" (moto checks only the message size).
SQS_RANGES = {
    "DelaySeconds": (0, 900),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "VisibilityTimeout": (0, 43_200),
}


def _check_queue_attributes(attributes: dict[str, Any]) -> None:
    for name, (low, high) in SQS_RANGES.items():
        if name in attributes:
            try:
                ok = low <= int(attributes[name]) <= high
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InvalidAttributeValue(name)
    redrive = attributes.get("RedrivePolicy")
    if redrive:
        try:
            count = int(json.loads(redrive).get("maxReceiveCount"))
        except (TypeError, ValueError, AttributeError):
            count = 0
        if not 1 <= count <= 1000:
            raise InvalidParameterValue(
                f"Value {redrive} for parameter RedrivePolicy is invalid. Reason: Invalid value "
                "for maxReceiveCount: must be an integer from 1 to 1000."
            )


_create_queue = SQSBackend.create_queue
_set_queue_attributes = SQSBackend.set_queue_attributes


def _create_queue_in_range(
    self: SQSBackend, name: str, tags: dict[str, str] | None = None, **kwargs: Any
) -> Queue:
    _check_queue_attributes(kwargs)
    return _create_queue(self, name, tags, **kwargs)


def _set_queue_attributes_in_range(
    self: SQSBackend, queue_name: str, attributes: dict[str, Any]
) -> Queue:
    _check_queue_attributes(attributes)
    return _set_queue_attributes(self, queue_name, attributes)


SQSBackend.create_queue = _create_queue_in_range  # type: ignore[method-assign]
SQSBackend.set_queue_attributes = _set_queue_attributes_in_range  # type: ignore[method-assign]

# AWS, "ChangeMessageVisibility" (SQS API reference): "You can continue to call
# ChangeMessageVisibility to extend the visibility timeout to the maximum allowed time. If you
# try to extend the visibility timeout beyond the maximum, your request is rejected." and "If
# you attempt to set the VisibilityTimeout to a value greater than the maximum time left,
# Amazon SQS returns an error." The maximum is 12 hours from the receive that handed out the
# receipt handle (the page's worked example: a 30-minute timeout extended by 2 hours leaves at
# most 9 hours 30 minutes). moto counts the 12 hours from when the message was sent.
MAX_VISIBILITY_S = 43200

_mark_received = SqsMessage.mark_received


def _remember_receipt(self: SqsMessage, visibility_timeout: int | None = None) -> None:
    _mark_received(self, visibility_timeout)
    received = getattr(self, "lew_received_at", {})
    received[self.receipt_handle] = unix_time()
    self.lew_received_at = received  # type: ignore[attr-defined]


SqsMessage.mark_received = _remember_receipt  # type: ignore[method-assign]


def _visibility_within_12_hours(
    self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    queue = self.get_queue(queue_name)
    for message in queue._messages:
        if message.had_receipt_handle(receipt_handle):
            received = getattr(message, "lew_received_at", {}).get(receipt_handle, unix_time())
            if unix_time() + int(visibility_timeout) - received > MAX_VISIBILITY_S:
                raise InvalidParameterValue(
                    f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. "
                    f"Reason: Total VisibilityTimeout for the message is beyond the limit "
                    f"[{MAX_VISIBILITY_S} seconds]"
                )
            message.change_visibility(visibility_timeout)
            if message.visible and message in queue.pending_messages:
                queue.pending_messages.remove(message)
            return
    raise ReceiptHandleIsInvalid


SQSBackend.change_message_visibility = _visibility_within_12_hours  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------
# ECR backed by a real registry: only with LEW_EMULATOR_ECR_REGISTRY=localhost:PORT
#
# moto's ECR has no registry (its `/v2/` is 404): the repository URIs and the token's proxy
# endpoint it answers name `<account>.dkr.ecr.<region>.amazonaws.com`, which nothing here
# serves, and an image exists for its API only when PutImage is called. Given a Docker registry
# on loopback that accepts the login moto's tokens carry (scripts/container/env.sh starts
# Debian's docker-registry so), ECR's answers lead there instead, and what was pushed there is
# what ECR's API reports. A client then takes the one path it takes on AWS: the token from
# GetAuthorizationToken, `docker login` to its proxy endpoint, a push to the repository URI, the
# digest read back with DescribeImages. (One registry serves every account and region, so
# repository names must differ between them; tests use unique names anyway.)
#
# Not mirrored: PutImage and BatchDeleteImage stay moto's own (an image put through the API is
# not in the registry, and one deleted through it comes back from the registry on the next
# read); nothing of lew uses either.

ECR_REGISTRY = os.environ.get("LEW_EMULATOR_ECR_REGISTRY", "")

# Every manifest format a push may store, so the registry answers with the stored one (and its
# digest) rather than converting it.
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)

# Reads of the registry and changes to a repository's image list happen one at a time.
_registry_lock = threading.Lock()


def _from_registry(image: Image) -> bool:
    """Whether ECR reports the image because it is in the registry (not put through the API).
    (moto's models cannot be subclassed outside moto: its metaclass names the service by the
    module.)"""
    return getattr(image, "lew_from_registry", False)


def _registry_login(registry_id: str) -> str:
    # What moto's GetAuthorizationToken hands out for this registry id (AWS:<id>-auth-token):
    # the emulator reads the registry with the very login it gives clients.
    return base64.b64encode(f"AWS:{registry_id}-auth-token".encode()).decode()


def _registry_failure(what: str) -> ServiceException:
    # ECR's error for a failure on its side; the message says which registry and why.
    return ServiceException(
        "ServerException",
        f"the emulator's registry {ECR_REGISTRY} (LEW_EMULATOR_ECR_REGISTRY): {what}",
    )


def _registry(
    method: str, path: str, registry_id: str, accept: str | None = None
) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(f"http://{ECR_REGISTRY}{path}", method=method)
    request.add_header("Authorization", f"Basic {_registry_login(registry_id)}")
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (http only)
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except OSError as error:
        raise _registry_failure(f"{method} {path}: {error}") from error


def _pushed(repository: Repository) -> dict[str, tuple[list[str], bytes, str]]:
    """Every tagged manifest of the repository in the registry: digest -> (tags, manifest,
    media type)."""
    name, registry_id = repository.name, repository.registry_id
    status, _, body = _registry("GET", f"/v2/{name}/tags/list", registry_id)
    if status == 404:
        return {}  # nothing pushed yet: the registry does not know the name
    if status != 200:
        raise _registry_failure(f"listing the tags of {name} answered {status}: {body[:200]!r}")
    found: dict[str, tuple[list[str], bytes, str]] = {}
    for tag in sorted(json.loads(body).get("tags") or []):
        status, headers, manifest = _registry(
            "GET", f"/v2/{name}/manifests/{tag}", registry_id, accept=MANIFEST_TYPES
        )
        if status == 404:
            continue  # deleted since the listing
        if status != 200:
            raise _registry_failure(f"reading {name}:{tag} answered {status}")
        digest = headers.get("Docker-Content-Digest", "")
        tags, _, _ = found.setdefault(digest, ([], manifest, headers.get("Content-Type", "")))
        tags.append(tag)
    return found


def _sync_images(repository: Repository) -> None:
    """Makes the repository's image list hold what the registry holds (images put through the
    API stay, minus any tag the registry now has on a pushed image)."""
    pushed = _pushed(repository)
    known = {i.image_digest: i for i in repository.images if _from_registry(i)}
    images = [i for i in repository.images if not _from_registry(i)]
    for digest, (tags, manifest, media_type) in pushed.items():
        for other in images:
            for tag in tags:
                other.remove_tag(tag)
        image = known.get(digest) or Image(
            repository.account_id,
            tags[0],
            manifest.decode(),
            repository.name,
            image_manifest_mediatype=media_type,
            digest=digest,
            registry_id=repository.registry_id,
        )
        image.lew_from_registry = True  # type: ignore[attr-defined]
        image.image_tags = list(tags)
        image.image_tag = tags[-1]
        images.append(image)
    repository.images = images


def _reads_the_registry(method: Callable[..., Any]) -> Callable[..., Any]:
    # AWS, "DescribeImages" (ECR API reference): "Returns metadata about the images in a
    # repository", each with "imageDigest: The sha256 digest of the image manifest" and
    # "imageTags: The list of tags associated with this image"; "BatchGetImage": "Gets detailed
    # information for an image. Images are specified with either an imageTag or imageDigest."
    # An image pushed to the repository URI is one of them, with the digest the registry
    # computed for its manifest.
    @functools.wraps(method)
    def synced(self: ECRBackend, repository_name: str, *args: Any, **kwargs: Any) -> Any:
        with _registry_lock:
            repository = self.repositories.get(repository_name)
            if repository is not None:
                _sync_images(repository)
            return method(self, repository_name, *args, **kwargs)

    return synced


_delete_repository = ECRBackend.delete_repository


def _delete_repository_and_images(
    self: ECRBackend, repository_name: str, registry_id: str | None = None, force: bool = False
) -> Repository:
    # AWS, "DeleteRepository" (ECR API reference): "If the repository isn't empty, you must
    # either delete the contents of the repository or use the force option to delete the
    # repository and have Amazon ECR delete all of its contents on your behalf." Pushed images
    # count as contents, and a forced delete removes them from the registry, so a repository
    # created again under the name starts empty.
    with _registry_lock:
        repository = self.repositories.get(repository_name)
        if repository is not None:
            _sync_images(repository)
        deleted = _delete_repository(self, repository_name, registry_id, force)
        for image in deleted.images:
            if _from_registry(image):
                path = f"/v2/{deleted.name}/manifests/{image.image_digest}"
                status, _, body = _registry("DELETE", path, deleted.registry_id)
                if status not in (202, 404):
                    raise _registry_failure(f"DELETE {path} answered {status}: {body[:200]!r}")
        return deleted


_repository_init = Repository.__init__


def _uri_in_the_registry(self: Repository, *args: Any, **kwargs: Any) -> None:
    # AWS, "Repository" (ECR API reference): "repositoryUri: The URI for the repository. You can
    # use this URI for container image push and pull operations." Here that is the repository's
    # name in the local registry.
    _repository_init(self, *args, **kwargs)
    self.uri = f"{ECR_REGISTRY}/{self.name}"


_get_authorization_token = ECRResponse.get_authorization_token


def _token_for_the_registry(self: ECRResponse) -> ActionResult:
    # AWS, "AuthorizationData" (ECR API reference): "proxyEndpoint: The registry URL to use for
    # this authorization token in a docker login command", and "authorizationToken: A
    # base64-encoded string that contains authorization data for the specified Amazon ECR
    # registry. When the string is decoded, it is presented in the format user:password for
    # private registry authentication using docker login." moto's token decodes to
    # AWS:<account>-auth-token, the login the local registry accepts; the proxy endpoint becomes
    # that registry (plain HTTP on loopback). "Authorization tokens are valid for 12 hours"
    # (moto's expired in 2015).
    result = _get_authorization_token(self)
    expires = datetime.now(UTC) + timedelta(hours=12)
    for data in result.result["authorizationData"]:  # type: ignore[index]
        data["proxyEndpoint"] = f"http://{ECR_REGISTRY}"
        data["expiresAt"] = expires
    return result


if ECR_REGISTRY:
    Repository.__init__ = _uri_in_the_registry  # type: ignore[method-assign]
    ECRResponse.get_authorization_token = _token_for_the_registry  # type: ignore[method-assign]
    for _name in ("describe_images", "batch_get_image", "list_images"):
        setattr(ECRBackend, _name, _reads_the_registry(getattr(ECRBackend, _name)))
    ECRBackend.delete_repository = _delete_repository_and_images  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
