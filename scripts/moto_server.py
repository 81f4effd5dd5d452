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
retried AddPermission would go unnoticed. Nothing else of moto is changed.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.policy import Policy
from moto.iam.access_control import PermissionResult
from moto.logs.models import LogEvent
from moto.s3.models import FakeBucket
from moto.server import main

# One evaluator for the conditions of every stand-in's policies (scripts/ is on sys.path).
from testkit.iam import conditions_hold

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

if __name__ == "__main__":
    sys.exit(main())
